"""The PostgreSQL the tests use: ``SECROOM_TEST_PG_URL`` when it is set, else a private cluster.

``postgres_url()`` is the one place that reads ``SECROOM_TEST_PG_URL``; the session fixture
``pg_url`` (tests/conftest.py) and the soak (tests/bench/soak.py) go through it. Without the
variable it starts a throwaway cluster (Debian's ``postgresql`` package): ``initdb`` into a fresh
``tempfile.mkdtemp()`` folder, then the postmaster on a free loopback port, stopped and removed
afterwards. initdb and the server refuse to run as root, so as root both run as the ``postgres``
user (``nobody`` when there is none) owning that folder; as anyone else, as that user.

The postmaster is our own child (not daemonised by ``pg_ctl``, which would call setsid): Linux
sends it SIGINT (fast shutdown) when the thread that started it dies, so a killed test session
leaves no server behind. The cluster trades durability for speed (``fsync=off``,
``synchronous_commit=off``, ``full_page_writes=off``): the tests kill clients, never it.

Each user of the server works in a schema of its own: ``create_schema`` / ``schema_url`` /
``drop_schema``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from tests.support import free_port

ENV = "SECROOM_TEST_PG_URL"
BIN_ROOT = Path("/usr/lib/postgresql")
SUPERUSER = "postgres"  # the role initdb creates; the tests connect as it (trust, loopback)
READY = "database system is ready to accept connections"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL for the tests: the message says why and what to install."""


def find_bindir(root: Path = BIN_ROOT) -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding initdb and postgres."""
    found = []
    for d in root.glob("*/bin"):
        if (d / "initdb").exists() and (d / "postgres").exists() and d.parent.name.isdigit():
            found.append((int(d.parent.name), d))
    return max(found)[1] if found else None


def _int_with_parent() -> None:
    """In the child before exec (after its uid changed): SIGINT when the parent thread dies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGINT, 0, 0, 0)  # PR_SET_PDEATHSIG


class PrivatePostgres:
    """A throwaway cluster in ``workdir`` (created and owned by the user it runs as)."""

    def __init__(self, bindir: Path, workdir: Path) -> None:
        self.bindir = bindir
        self.workdir = workdir
        self.data = workdir / "data"
        self.log_path = workdir / "postgres.log"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._as: dict[str, Any] = {}
        self.runs_as = pwd.getpwuid(os.geteuid()).pw_name
        if os.geteuid() == 0:
            user = _unprivileged_user()
            os.chown(workdir, user.pw_uid, user.pw_gid)
            self._as = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
            self.runs_as = user.pw_name
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PG")},
            "LC_ALL": "C",
        }

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/postgres"

    def initdb(self) -> None:
        done = subprocess.run(
            [str(self.bindir / "initdb"), "-D", str(self.data), "-U", SUPERUSER,
             "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"],
            capture_output=True, text=True, check=False, env=self.env, cwd=self.workdir,
            **self._as,
        )  # fmt: skip
        if done.returncode != 0:
            raise PostgresUnavailable(
                f"initdb (as {self.runs_as}) failed: {done.stderr.strip()[-800:]}"
            )

    def start(self, timeout: float = 60.0, attempts: int = 3) -> None:
        """Start on a free port (another one if that port was taken meanwhile)."""
        for _ in range(attempts):
            self.port = free_port()
            if self._start_once(timeout):
                return
        raise PostgresUnavailable(f"postgres would not start: {self.log_tail()}")

    def _start_once(self, timeout: float) -> bool:
        self._log = self.log_path.open("ab")
        offset = self._log.tell()
        self.proc = subprocess.Popen(
            [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port),
             "-k", str(self.workdir), "-c", "listen_addresses=127.0.0.1",
             "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "max_connections=200", "-c", "logging_collector=off"],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=self.env, cwd=self.workdir,
            preexec_fn=_int_with_parent,  # noqa: PLW1509 - a single-purpose prctl
            **self._as,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self._log_since(offset)
            if READY in text:
                return True
            if self.proc.poll() is not None:
                if re.search(r"could not (bind|create listen socket)", text):
                    return False  # the port was taken meanwhile: try another
                raise PostgresUnavailable(f"postgres exited with {self.proc.returncode}: {text}")
            time.sleep(0.02)  # a separate process writing a log: nothing to subscribe to
        self.stop()
        raise PostgresUnavailable(f"postgres not ready after {timeout:g} s: {self.log_tail()}")

    def _log_since(self, offset: int) -> str:
        with self.log_path.open("rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def log_tail(self, lines: int = 10) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT: clients are disconnected), SIGKILL if it hangs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None


def _unprivileged_user() -> pwd.struct_passwd:
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise PostgresUnavailable("running as root and no postgres or nobody user to run initdb as")


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A started private cluster; stopped and its folder removed afterwards."""
    bindir = find_bindir()
    if bindir is None:
        raise PostgresUnavailable(
            f"PostgreSQL is not installed (no initdb under {BIN_ROOT}/<version>/bin): "
            f"apt-get install postgresql, or set {ENV} to a server of yours"
        )
    workdir = Path(tempfile.mkdtemp(prefix="secroom-pg-"))
    try:
        pg = PrivatePostgres(bindir, workdir)
        pg.initdb()
        pg.start()
        try:
            yield pg
        finally:
            pg.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def check(url: str) -> None:
    """Raise PostgresUnavailable unless ``url`` answers a query."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    try:
        engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 5})
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        finally:
            engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any driver or URL error: this server is unusable
        reason = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or ["?"])[0]
        raise PostgresUnavailable(
            f"{ENV}={url} does not answer ({reason[:300]}); unset it and the tests start a "
            "PostgreSQL of their own"
        ) from exc


@contextmanager
def postgres_url(environ: Mapping[str, str] = os.environ) -> Iterator[str]:
    """``SECROOM_TEST_PG_URL`` when set (it must answer), else a private cluster's URL."""
    given = environ.get(ENV, "")
    if given:
        check(given)
        yield given
        return
    with private_postgres() as pg:
        yield pg.url


# -- a schema per user ---------------------------------------------------------------------
def schema_url(url: str, schema: str) -> str:
    """``url`` with every connection's search_path set to ``schema``, and the schema as its
    application_name: a test that kills connections kills only its own (the run's other
    workers share the server)."""
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}&application_name={schema}"


def _admin(url: str, sql: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


def create_schema(url: str, prefix: str) -> str:
    """A new empty schema named ``<prefix>_<pid>_<random>``; returns its name."""
    schema = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    _admin(url, f'CREATE SCHEMA "{schema}"')
    return schema


def drop_schema(url: str, schema: str) -> None:
    _admin(url, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
