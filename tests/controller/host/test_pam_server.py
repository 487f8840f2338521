"""The PAM socket: the real helper against the real server; who may ask what (SO_PEERCRED),
bad requests, a failing handler (fail closed), the rate limit for users."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.host import pam_client
from controller.host.pam_server import Caller, PamAnswer, PamRequest, PamServer

HELPER = Path(pam_client.__file__)
NOBODY = 65534


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[PamRequest, Caller]] = []
        self.answer: PamAnswer | Exception = PamAnswer(True)

    def __call__(self, req: PamRequest, caller: Caller) -> PamAnswer:
        self.seen.append((req, caller))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.fixture
def served() -> Iterator[tuple[PamServer, Recorder, Path]]:
    rec = Recorder()
    # not below pytest's tmp_path (0700): another user must reach it, as in /run/secroom
    run = Path(tempfile.mkdtemp(prefix="secroom-pam-"))
    run.chmod(0o755)
    sock = run / "agent.sock"
    uids = {"hana": 24001, "nobody": NOBODY}
    server = PamServer(sock, rec, rate_per_min=3, uid_of=uids.get)
    server.start()
    try:
        yield server, rec, sock
    finally:
        server.stop()
        shutil.rmtree(run)


def helper(sock: Path, step: str = "card", user: str = "hana", *, as_uid: int | None = None,
           **env: str) -> int:
    cmd = ["/usr/bin/python3", "-IS", str(HELPER), step, "--socket", str(sock)]
    if as_uid is not None:
        setpriv = shutil.which("setpriv")
        if setpriv is None or os.geteuid() != 0:
            pytest.skip("needs root and setpriv to ask as another user")
        cmd = [setpriv, f"--reuid={as_uid}", f"--regid={as_uid}", "--clear-groups", *cmd]
    full = {"PATH": "/usr/bin:/bin", "PAM_USER": user, "PAM_SERVICE": "login",
            "PAM_TTY": "tty1", **env}
    return subprocess.run(cmd, env=full, capture_output=True, timeout=60, check=False).returncode


def test_the_helper_relays_the_step_and_the_answer(served) -> None:
    server, rec, sock = served
    assert helper(sock, PAM_RHOST="10.0.0.5") == 0
    [(req, caller)] = rec.seen
    assert (req.step, req.user, req.service, req.tty, req.rhost) == (
        "card", "hana", "login", "tty1", "10.0.0.5")
    assert caller.uid == os.geteuid() and caller.pid > 0
    rec.answer = PamAnswer(False, "not_in_room")
    assert helper(sock, "password_failed") == 1


def test_a_failing_handler_denies(served) -> None:
    server, rec, sock = served
    rec.answer = RuntimeError("bug")
    assert helper(sock) == 1
    assert server.counters["handler_errors"] == 1


def test_no_agent_is_an_error_not_a_grant(tmp_path) -> None:
    assert helper(tmp_path / "nothing.sock") == 2


def test_pam_items_with_tabs_or_line_breaks_never_reach_the_agent(served) -> None:
    _server, rec, sock = served
    assert helper(sock, user="hana\tkenji") == 3
    assert helper(sock, PAM_TTY="tty1\nroot") == 3
    assert rec.seen == []


def test_garbage_is_answered_and_counted(served) -> None:
    import socket

    server, rec, sock = served
    for payload in (b"v2\tcard\thana\tlogin\t\t\t\n", b"not a request\n", b"\xff\xfe\n",
                    b"v1\tgranted\thana\tlogin\t\t\t\n", b"x" * 5000):
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(sock))
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
            assert s.recv(100) == b"no bad_request\n"
    assert server.counters["bad_request"] == 5 and rec.seen == []


def test_a_user_may_ask_only_about_their_own_account_and_not_too_often(served) -> None:
    server, rec, sock = served
    assert helper(sock, user="hana", as_uid=NOBODY) == 1  # nobody asks about hana
    assert server.counters["bad_caller"] == 1 and rec.seen == []
    assert [helper(sock, user="nobody", as_uid=NOBODY) for _ in range(4)] == [0, 0, 0, 1]
    assert server.counters["rate_limited"] == 1 and len(rec.seen) == 3
