"""The PAM socket: the real helpers (the C one, as installed, and the Python fallback) against
the real server; who may ask what (SO_PEERCRED), bad requests, a failing handler (fail
closed), the rate limit for users. Both helpers pass the same cases."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.host.pam_server import Caller, PamAnswer, PamRequest, PamServer
from tests.support.pam import c_helper, python_helper

NOBODY = 65534


@pytest.fixture(params=["c", "python"])
def helper_cmd(request) -> list[str]:
    return c_helper() if request.param == "c" else python_helper()


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


def run_helper(cmd: list[str], sock: Path, step: str = "card", user: str = "hana", *,
               as_uid: int | None = None, extra: tuple[str, ...] = (), **env: str
               ) -> subprocess.CompletedProcess[bytes]:
    cmd = [*cmd, step, "--socket", str(sock), *extra]
    if as_uid is not None:
        setpriv = shutil.which("setpriv")
        if setpriv is None or os.geteuid() != 0:
            pytest.skip("needs root and setpriv to ask as another user")
        cmd = [setpriv, f"--reuid={as_uid}", f"--regid={as_uid}", "--clear-groups", *cmd]
    full = {"PATH": "/usr/bin:/bin", "PAM_USER": user, "PAM_SERVICE": "login",
            "PAM_TTY": "tty1", **env}
    return subprocess.run(cmd, env=full, capture_output=True, timeout=60, check=False)


def rc(cmd: list[str], sock: Path, *args: str, **kw: str) -> int:
    return run_helper(cmd, sock, *args, **kw).returncode


def test_the_helper_relays_the_step_and_the_answer(served, helper_cmd) -> None:
    server, rec, sock = served
    assert rc(helper_cmd, sock, PAM_RHOST="10.0.0.5") == 0
    [(req, caller)] = rec.seen
    assert (req.step, req.user, req.service, req.tty, req.rhost) == (
        "card", "hana", "login", "tty1", "10.0.0.5")
    assert caller.uid == os.geteuid() and caller.pid > 0
    rec.answer = PamAnswer(False, "not_in_room")
    done = run_helper(helper_cmd, sock, "password_failed")
    assert done.returncode == 1
    assert done.stdout == b"" and b"not_in_room" not in done.stderr and b"hana" not in done.stderr
    assert [r.step for r, _ in rec.seen] == ["card", "password_failed"]


def test_a_failing_handler_denies(served, helper_cmd) -> None:
    server, rec, sock = served
    rec.answer = RuntimeError("bug")
    assert rc(helper_cmd, sock) == 1
    assert server.counters["handler_errors"] == 1


def test_no_agent_is_an_error_not_a_grant(tmp_path, helper_cmd) -> None:
    done = run_helper(helper_cmd, tmp_path / "nothing.sock")
    assert done.returncode == 2
    assert b"hana" not in done.stdout + done.stderr


def test_pam_items_with_tabs_or_line_breaks_never_reach_the_agent(served, helper_cmd) -> None:
    _server, rec, sock = served
    assert rc(helper_cmd, sock, user="hana\tkenji") == 3
    assert rc(helper_cmd, sock, PAM_TTY="tty1\nroot") == 3
    assert rec.seen == []


def test_bad_usage_asks_nobody(served, helper_cmd) -> None:
    _server, rec, sock = served
    assert rc(helper_cmd, sock, "granted") == 3
    assert rc(helper_cmd, sock, extra=("--timeout", "soon")) == 3
    assert subprocess.run([*helper_cmd, "card", "--socket"], capture_output=True,
                          check=False).returncode == 3
    assert rec.seen == []


class FakeAgent:
    """Not the agent: a socket that answers ``reply`` (None: never) to whatever it reads."""

    def __init__(self, sock: Path, reply: bytes | None) -> None:
        import socket

        self.reply = reply
        self.got: list[bytes] = []
        self.srv = socket.socket(socket.AF_UNIX)
        self.srv.bind(str(sock))
        self.srv.listen(4)
        self.release = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.srv.accept()
        with conn:
            data = b""
            while not data.endswith(b"\n"):
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
            self.got.append(data)
            if self.reply is not None:
                conn.sendall(self.reply)
            else:
                self.release.wait(30)

    def close(self) -> None:
        self.release.set()
        self.thread.join(30)
        self.srv.close()


@pytest.mark.parametrize("reply", [b"yes\n", b"OK\n", b"ok ok\n", b"okay\n", b"\n", b"",
                                   b"\xff\xfe\n", b"granted"])
def test_a_garbage_answer_is_no_grant(tmp_path, helper_cmd, reply) -> None:
    agent = FakeAgent(tmp_path / "fake.sock", reply)
    try:
        done = run_helper(helper_cmd, tmp_path / "fake.sock")
    finally:
        agent.close()
    assert done.returncode == 2, done.stderr
    assert agent.got == [b"v1\tcard\thana\tlogin\ttty1\t\t\n"]  # the same request line
    assert b"hana" not in done.stdout + done.stderr


def test_an_agent_that_does_not_answer_is_no_grant(tmp_path, helper_cmd) -> None:
    agent = FakeAgent(tmp_path / "fake.sock", None)
    try:
        t0 = time.monotonic()
        done = run_helper(helper_cmd, tmp_path / "fake.sock", extra=("--timeout", "0.5"))
        took = time.monotonic() - t0
    finally:
        agent.close()
    assert done.returncode == 2, done.stderr
    assert 0.4 < took < 10
    assert len(agent.got) == 1


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


def test_a_user_may_ask_only_about_their_own_account_and_not_too_often(served,
                                                                      helper_cmd) -> None:
    server, rec, sock = served
    assert rc(helper_cmd, sock, user="hana", as_uid=NOBODY) == 1  # nobody asks about hana
    assert server.counters["bad_caller"] == 1 and rec.seen == []
    assert [rc(helper_cmd, sock, user="nobody", as_uid=NOBODY) for _ in range(4)] == [0, 0, 0, 1]
    assert server.counters["rate_limited"] == 1 and len(rec.seen) == 3
