"""Real systemd journal files for tests, made without a running journald.

Entries are written in the Journal Export Format and turned into a ``.journal`` file by
``systemd-journal-remote --output=...`` (trusted ``_`` fields are kept), which python-systemd
and ``journalctl --file`` then read like any journal. The builders below write the messages
as logind, sudo, su, sshd, pam_unix and polkitd write them on Debian 12.
"""

from __future__ import annotations

import itertools
import subprocess
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from tests.support import require_binary

BOOT = "0123456789abcdef0123456789abcdef"
_mono = itertools.count(1_000_000, 1000)

Entry = dict[str, str]


def journal_remote() -> str:
    return require_binary("systemd-journal-remote", "/lib/systemd/systemd-journal-remote",
                          "/usr/lib/systemd/systemd-journal-remote")


def export_format(entries: Iterable[Entry]) -> bytes:
    out = []
    for e in entries:
        if any("\n" in v for v in e.values()):
            raise ValueError("multi-line values need the binary export form")
        out.append("".join(f"{k}={v}\n" for k, v in e.items()) + "\n")
    return "".join(out).encode()


def write_journal(directory: Path, entries: Iterable[Entry], name: str = "remote.journal"
                  ) -> Path:
    """A journal file ``directory/name`` holding ``entries`` (name must end in .journal)."""
    directory.mkdir(parents=True, exist_ok=True)
    export = directory / (name + ".export")
    export.write_bytes(export_format(entries))
    target = directory / name
    done = subprocess.run([journal_remote(), f"--output={target}", str(export)],
                          capture_output=True, text=True, timeout=120, check=False)
    export.unlink()
    if done.returncode != 0:
        raise RuntimeError(f"systemd-journal-remote failed: {done.stderr.strip()}")
    return target


def entry(at: datetime, ident: str, message: str, *, comm: str | None = None, pid: int = 4242,
          uid: int = 0, **fields: str) -> Entry:
    e = {
        "__REALTIME_TIMESTAMP": str(int(at.timestamp() * 1_000_000)),
        "__MONOTONIC_TIMESTAMP": str(next(_mono)),
        "_BOOT_ID": BOOT,
        "_HOSTNAME": "pc-01",
        "_COMM": comm or ident,
        "_PID": str(pid),
        "_UID": str(uid),
        "SYSLOG_IDENTIFIER": ident,
        "PRIORITY": "6",
        "MESSAGE": message,
    }
    e.update(fields)
    return e


def session_start(at: datetime, session: str, user: str) -> Entry:
    return entry(at, "systemd-logind", f"New session {session} of user {user}.",
                 MESSAGE_ID="8d45620c1a4348dbb17410da57c60c66", SESSION_ID=session,
                 USER_ID=user, LEADER="1234")


def session_stop(at: datetime, session: str, user: str) -> Entry:
    return entry(at, "systemd-logind", f"Removed session {session}.",
                 MESSAGE_ID="3354939424b4456d9802ca8333ed424a", SESSION_ID=session,
                 USER_ID=user, LEADER="1234")


def sudo(at: datetime, user: str, command: str, *, target: str = "root", tty: str = "pts/0",
         refused: str = "") -> Entry:
    why = f"{refused} ; " if refused else ""
    return entry(at, "sudo", f"   {user} : {why}TTY={tty} ; PWD=/home/{user} ; USER={target} ; "
                 f"COMMAND={command}", uid=1000)


def su(at: datetime, user: str, *, target: str = "root", failed: bool = False) -> Entry:
    return entry(at, "su", f"{'FAILED SU ' if failed else ''}(to {target}) {user} on pts/1")


def sshd_failed(at: datetime, user: str, rhost: str, *, invalid: bool = False) -> Entry:
    who = f"invalid user {user}" if invalid else user
    return entry(at, "sshd", f"Failed password for {who} from {rhost} port 50022 ssh2")


def pam_failure(at: datetime, service: str, user: str, *, ruser: str = "", tty: str = "tty1",
                rhost: str = "") -> Entry:
    return entry(at, service, f"pam_unix({service}:auth): authentication failure; "
                 f"logname={ruser or 'LOGIN'} uid=0 euid=0 tty={tty} ruser={ruser} "
                 f"rhost={rhost}  user={user}")


def polkit(at: datetime, user: str, action: str, command: str) -> Entry:
    return entry(at, "polkitd", f"Operator of unix-session:2 successfully authenticated as "
                 f"unix-user:{user} to gain TEMPORARY authorization for action {action} for "
                 f"system-bus-name::1.84 [{command}] (owned by unix-user:{user})",
                 comm="polkitd")


def noise(at: datetime, n: int = 1) -> list[Entry]:
    """Entries the operations log must not pick up."""
    return [entry(at, "cron", f"(root) CMD (run-parts /etc/cron.hourly) #{i}") for i in range(n)]
