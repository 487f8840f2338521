"""A consistent copy of the dashboard's database, and putting one back (the one module that
talks to sqlite3's backup API and to PostgreSQL's client tools).

SQLite: ``sqlite3.Connection.backup`` in one step copies the database as of one read
transaction while the ingest keeps writing (WAL: readers and the writer do not block each
other); the copy is switched to a rollback journal so it is one self-contained file.
PostgreSQL: ``pg_dump --format=custom --compress=0`` (one repeatable-read snapshot; not
compressed, so the backup's content-defined chunks find the unchanged parts from night to night,
and zstd compresses each chunk), put back with ``pg_restore --single-transaction`` into an
empty database. The password travels in the environment (PGPASSWORD), never on a command line.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy import make_url

from controller.files import create_private

Kind = Literal["sqlite", "postgresql"]
FILES: dict[Kind, str] = {"sqlite": "database.sqlite3", "postgresql": "database.pgdump"}


class DumpError(Exception):
    """The database could not be copied or put back (the message says why and what to do)."""


@dataclass(frozen=True)
class Dump:
    kind: Kind
    path: Path
    bytes: int


def kind_of(url: str) -> Kind:
    name = make_url(url).get_backend_name()
    if name == "sqlite":
        return "sqlite"
    if name == "postgresql":
        return "postgresql"
    raise DumpError(f"cannot back up a {name} database (SQLite and PostgreSQL only)")


def sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise DumpError("the SQLite database_url names no file")
    return Path(database)


def dump(url: str, folder: Path) -> Dump:
    """Copy the database into ``folder`` (FILES[kind]), consistently, while it is in use."""
    kind = kind_of(url)
    dest = folder / FILES[kind]
    dest.unlink(missing_ok=True)
    create_private(dest)
    if kind == "sqlite":
        _dump_sqlite(sqlite_path(url), dest)
    else:
        _pg("pg_dump", url, ["--format=custom", "--compress=0", "--no-owner",
                             "--no-privileges", f"--file={dest}"])
    return Dump(kind, dest, dest.stat().st_size)


def _dump_sqlite(source: Path, dest: Path) -> None:
    if not source.is_file():
        raise DumpError(f"the database {source} does not exist")
    try:
        src = sqlite3.connect(source, timeout=30)
        try:
            dst = sqlite3.connect(dest)
            try:
                src.backup(dst)  # pages=-1: one step, one read transaction, a consistent copy
                dst.execute("PRAGMA journal_mode=DELETE")
                ok = dst.execute("PRAGMA quick_check").fetchone()
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        raise DumpError(f"copying the SQLite database failed: {exc}") from exc
    if not ok or ok[0] != "ok":
        raise DumpError(f"the copy of the database fails its check ({ok}); nothing was kept")


def restore(kind: Kind, dump_file: Path, url: str) -> None:
    """Put a dump back as the database at ``url``, which must not hold a database yet."""
    if kind != kind_of(url):
        raise DumpError(f"the backup holds a {kind} database but database_url is "
                        f"{kind_of(url)}: restore into the same kind")
    if kind == "sqlite":
        target = sqlite_path(url)
        if target.exists() and target.stat().st_size:
            raise DumpError(f"{target} already holds a database; recover into a fresh place")
        create_private(target)
        tmp = target.with_name(target.name + ".recovering")
        shutil.copyfile(dump_file, tmp)
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
        return
    _pg("pg_restore", url, ["--no-owner", "--no-privileges", "--single-transaction",
                            "--exit-on-error", str(dump_file)])


def _pg(tool: str, url: str, args: list[str]) -> None:
    exe = shutil.which(tool)
    if exe is None:
        raise DumpError(f"{tool} is not installed (apt-get install postgresql-client, the "
                        "version of the server or newer)")
    parsed = make_url(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    libpq = parsed.set(drivername="postgresql", password=None)
    uri = libpq.render_as_string(hide_password=False)
    done = subprocess.run([exe, f"--dbname={uri}", *args], capture_output=True, text=True,
                          env=env, stdin=subprocess.DEVNULL, check=False)
    if done.returncode != 0:
        lines = [ln for ln in done.stderr.strip().splitlines() if ln.strip()]
        raise DumpError(f"{tool} failed ({done.returncode}): {' | '.join(lines[-3:])[:600]}")
