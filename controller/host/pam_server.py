"""The agent's side of the PAM helper: a Unix socket answering one line per connection.

Why pam_exec and a socket (and not a PAM module of our own): pam_exec ships with Linux-PAM
on every Debian/Ubuntu host, so nothing is loaded into login, gdm or sudo; the helper is a
small C program (hardware/host-agent/pam/secroom-pam-card.c; controller/host/pam_client.py is
its Python fallback, same protocol) that only relays the step to the agent, which holds the
reader, the signed policy and presence and answers in a millisecond or two (the grant is
journaled, fsync included, before the answer). The password stays with the host's own PAM
stack (pam_unix): the agent never sees it.

The stack (hardware/host-agent/pam) asks once per log-on, after the password check: ``card``
when the password passed (the agent decides card, rights and presence, and journals the
log-on granted or denied), ``password_failed`` when it did not (journaled as denied). So one
helper process per log-on, and the agent's answer is final.

Request: one line of tab-separated fields ``v1, step, user, service, tty, rhost, ruser``
(PAM items never hold tabs or line breaks; a request that does is refused). Answer: ``ok`` or
``no <reason>``, one line. Who asks is read from the socket (SO_PEERCRED), never from the
request: root (login, gdm, sudo, su run their PAM stack as root) may ask about any account;
another user (a screen locker unlocking its own session) only about its own account, and at
most ``rate_per_min`` times a minute. Bad requests are answered, counted and never raise.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import socket
import struct
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

log = logging.getLogger(__name__)
VERSION = "v1"
MAX_REQUEST = 4096
MAX_CLIENTS = 32
READ_TIMEOUT_S = 5.0
_UCRED = struct.Struct("3i")


class PamRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    step: Literal["card", "password_failed"]
    user: str = Field(min_length=1, max_length=64)
    service: str = Field(max_length=64)
    tty: str = Field(default="", max_length=128)
    rhost: str = Field(default="", max_length=256)
    ruser: str = Field(default="", max_length=64)

    @classmethod
    def from_line(cls, data: bytes) -> PamRequest:
        fields = data.rstrip(b"\n").decode("utf-8").split("\t")
        if len(fields) != 7 or fields[0] != VERSION:
            raise ValueError("not a v1 request line")
        _v, step, user, service, tty, rhost, ruser = fields
        return cls.model_validate({"step": step, "user": user, "service": service,
                                   "tty": tty, "rhost": rhost, "ruser": ruser})


@dataclass(frozen=True)
class Caller:
    pid: int
    uid: int


@dataclass(frozen=True)
class PamAnswer:
    ok: bool
    reason: str | None = None


Handler = Callable[[PamRequest, Caller], PamAnswer]


def account_uid(account: str) -> int | None:
    try:
        return pwd.getpwnam(account).pw_uid
    except KeyError:
        return None


class PamServer:
    def __init__(self, path: Path, handler: Handler, *, rate_per_min: int = 30,
                 uid_of: Callable[[str], int | None] = account_uid) -> None:
        self.path = path
        self.handler = handler
        self.rate_per_min = rate_per_min
        self.uid_of = uid_of
        self.counters: Counter[str] = Counter()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._slots = threading.BoundedSemaphore(MAX_CLIENTS)
        self._recent: dict[int, deque[float]] = {}
        self._rate_lock = threading.Lock()

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(self.path))
        # screen lockers run as the user: anyone may connect, SO_PEERCRED decides what they ask
        os.chmod(self.path, 0o666)  # noqa: S103
        sock.listen(64)
        sock.settimeout(0.5)
        self._sock = sock
        self._stop.clear()
        self._thread = threading.Thread(target=self._accept, name="pam-server", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _accept(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                self.counters["accept_errors"] += 1
                continue
            if not self._slots.acquire(blocking=False):
                self.counters["busy"] += 1
                self._answer(conn, PamAnswer(False, "busy"))
                conn.close()
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            with conn:
                conn.settimeout(READ_TIMEOUT_S)
                self._answer(conn, self._handle(conn))
        except OSError:
            self.counters["io_errors"] += 1
        finally:
            self._slots.release()

    def _handle(self, conn: socket.socket) -> PamAnswer:
        pid, uid, _gid = _UCRED.unpack(
            conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size))
        data = b""
        while not data.endswith(b"\n"):
            chunk = conn.recv(MAX_REQUEST)
            if not chunk:
                break
            data += chunk
            if len(data) > MAX_REQUEST:
                self.counters["bad_request"] += 1
                return PamAnswer(False, "bad_request")
        try:
            req = PamRequest.from_line(data)
        except (ValueError, ValidationError):
            self.counters["bad_request"] += 1
            return PamAnswer(False, "bad_request")
        if uid != 0:
            if self.uid_of(req.user) != uid:
                self.counters["bad_caller"] += 1
                return PamAnswer(False, "bad_caller")
            if not self._within_rate(uid):
                self.counters["rate_limited"] += 1
                return PamAnswer(False, "rate_limited")
        self.counters[f"step.{req.step}"] += 1
        try:
            return self.handler(req, Caller(pid, uid))
        except Exception:  # a failing handler must still answer: fail closed
            self.counters["handler_errors"] += 1
            log.exception("the PAM request handler failed; answered with a denial")
            return PamAnswer(False, "agent_error")

    def _within_rate(self, uid: int) -> bool:
        now = time.monotonic()
        with self._rate_lock:
            recent = self._recent.setdefault(uid, deque())
            while recent and recent[0] < now - 60:
                recent.popleft()
            if len(recent) >= self.rate_per_min:
                return False
            recent.append(now)
            return True

    @staticmethod
    def _answer(conn: socket.socket, answer: PamAnswer) -> None:
        with contextlib.suppress(OSError):
            line = "ok" if answer.ok else f"no {answer.reason or 'denied'}"
            conn.sendall(line.encode() + b"\n")
