"""What a journal entry says happened on the host (pure): a session opened or closed, sudo, su
or pkexec used, polkit authorisation, a failed authentication. Anything else is None.

Recognised (Debian 12 / Ubuntu formats; the tests read them from real journal files):

- logind: ``MESSAGE_ID`` SESSION_START / SESSION_STOP with ``SESSION_ID`` and ``USER_ID``
- sudo: ``alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/apt update``, and
  the refusals ``alice : 3 incorrect password attempts ; TTY=...`` / ``user NOT in sudoers``
- su (util-linux): ``(to root) alice on pts/0`` and ``FAILED SU (to root) alice on pts/0``
- pkexec: ``alice: Executing command [USER=root] [TTY=/dev/pts/0] [CWD=...] [COMMAND=...]``
  and ``alice: Error executing command as another user: Not authorized [USER=root] ...``
- polkitd: ``Operator of unix-session:2 successfully authenticated as unix-user:alice to gain
  ... authorization for action org.freedesktop... [cmd] (owned by unix-user:alice)``
- sshd: ``Failed password for [invalid user ]bob from 10.0.0.5 port 50000 ssh2`` (and
  publickey, keyboard-interactive/pam), ``Invalid user bob from 10.0.0.5``
- pam_unix of any other service: ``pam_unix(login:auth): authentication failure; logname=LOGIN
  uid=0 euid=0 tty=/dev/tty1 ruser= rhost=  user=alice`` (sshd's own lines are used for sshd,
  so a failure is counted once)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

SESSION_START = "8d45620c1a4348dbb17410da57c60c66"
SESSION_STOP = "3354939424b4456d9802ca8333ed424a"
IDENTIFIERS = ("sudo", "su", "sshd", "polkitd", "pkexec", "login", "gdm-password]",
               "gdm-password", "lightdm", "sddm-helper", "xscreensaver", "unix_chkpwd")
MESSAGE_IDS = (SESSION_START, SESSION_STOP)


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """The fields of one journal entry the classifier reads (strings), its time and cursor."""

    at: datetime
    cursor: str
    identifier: str = ""
    message: str = ""
    message_id: str = ""
    session_id: str = ""
    user_id: str = ""

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> JournalEntry:
        def text(name: str) -> str:
            value = fields.get(name)
            if value is None:
                return ""
            if isinstance(value, bytes):
                return value.decode("utf-8", "replace")
            if hasattr(value, "hex") and not isinstance(value, int | float | str):
                return str(value.hex)  # UUID
            return str(value)

        return cls(at=fields["__REALTIME_TIMESTAMP"], cursor=text("__CURSOR"),
                   identifier=text("SYSLOG_IDENTIFIER"), message=text("MESSAGE"),
                   message_id=text("MESSAGE_ID").replace("-", ""),
                   session_id=text("SESSION_ID"), user_id=text("USER_ID"))


@dataclass(frozen=True, slots=True)
class SessionOp:
    action: str  # opened | closed
    session_id: str
    account: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class SudoOp:
    tool: str  # sudo | su | pkexec | polkit
    account: str
    target: str
    command: str
    tty: str
    ok: bool
    at: datetime


@dataclass(frozen=True, slots=True)
class AuthFailOp:
    service: str
    account: str
    rhost: str
    at: datetime


Op = SessionOp | SudoOp | AuthFailOp

_SUDO = re.compile(
    r"^\s*(?P<user>[^\s:]+) : (?:(?P<why>[^;]*?) ; )?TTY=(?P<tty>\S+) ; PWD=.*? ; "
    r"USER=(?P<target>\S+) ;(?: [A-Z]+=.*? ;)* COMMAND=(?P<cmd>.*)$")
_SU = re.compile(r"^(?P<failed>FAILED SU )?\(to (?P<target>[^)]+)\) (?P<user>\S+) on (?P<tty>\S+)")
_PKEXEC = re.compile(
    r"^(?P<user>[^\s:]+): (?P<what>Executing command|Error executing command as another user"
    r"[^\[]*)\s*\[USER=(?P<target>[^\]]*)\] \[TTY=(?P<tty>[^\]]*)\].*?\[COMMAND=(?P<cmd>.*)\]$")
_POLKIT = re.compile(
    r"^Operator of \S+ successfully authenticated as unix-user:(?P<target>\S+) to gain "
    r"\S+ authorization for action (?P<action>\S+) for \S+ (?:\[(?P<cmd>.*)\] )?"
    r"\(owned by unix-user:(?P<user>[^)]+)\)")
_SSHD_FAIL = re.compile(
    r"^Failed (?:password|publickey|keyboard-interactive/pam|none) for (?:invalid user )?"
    r"(?P<user>\S*) from (?P<rhost>\S+)")
_SSHD_INVALID = re.compile(r"^Invalid user (?P<user>\S*) from (?P<rhost>\S+)")
_PAM_FAIL = re.compile(r"^pam_unix\((?P<svc>[^:]+):auth\): authentication failure;(?P<rest>.*)$")
_KV = re.compile(r"(\w+)=(\S*)")


def classify(e: JournalEntry) -> Op | None:
    if e.message_id == SESSION_START or e.message_id == SESSION_STOP:
        if not e.session_id:
            return None
        return SessionOp("opened" if e.message_id == SESSION_START else "closed",
                         e.session_id, e.user_id or None, e.at)
    ident, msg = e.identifier, e.message
    if ident == "sudo":
        if (m := _SUDO.match(msg)) is not None:
            return SudoOp("sudo", m["user"], m["target"], m["cmd"], m["tty"], not m["why"], e.at)
    elif ident == "su":
        if (m := _SU.match(msg)) is not None:
            return SudoOp("su", m["user"], m["target"], "", m["tty"], not m["failed"], e.at)
    elif ident == "pkexec":
        if (m := _PKEXEC.match(msg)) is not None:
            ok = m["what"] == "Executing command"
            return SudoOp("pkexec", m["user"], m["target"], m["cmd"], m["tty"], ok, e.at)
    elif ident == "polkitd" and (m := _POLKIT.match(msg)) is not None:
        cmd = m["cmd"] or m["action"]
        return SudoOp("polkit", m["user"], m["target"], cmd, "", True, e.at)
    if ident == "sshd":
        if (m := _SSHD_FAIL.match(msg) or _SSHD_INVALID.match(msg)) is not None:
            return AuthFailOp("sshd", m["user"], m["rhost"], e.at)
        return None
    if (m := _PAM_FAIL.match(msg)) is not None and m["svc"] != "sshd":
        kv = dict(_KV.findall(m["rest"]))
        account = kv.get("ruser") or kv.get("user") or kv.get("logname") or ""
        if account == "LOGIN":
            account = kv.get("user", "")
        return AuthFailOp(m["svc"], account, kv.get("rhost", ""), e.at)
    return None
