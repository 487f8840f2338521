"""The host agent's composition with stateful fakes (card reader, logind): each PAM step's
event, locks and log-offs carried out, failing closed when the reader goes away or logind
cannot be reached, health."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controller.host.agent import HostAgent
from controller.host.config import HostAgentConfig
from controller.host.logind import LogindError, SessionInfo
from controller.host.pam_server import Caller, PamRequest
from readers.fake import FakeReader
from tests.controller.host.fixtures import HANA, HOST, KENJI, MONDAY_10, SITE, make_policy
from tests.controller.host.fixtures import presence_blob as blob

KEY = Ed25519PrivateKey.generate()
ROOT = Caller(pid=1, uid=0)


class FakeLogind:
    def __init__(self) -> None:
        self.by_account: dict[str, list[SessionInfo]] = {}
        self.locked: list[str] = []
        self.terminated: list[str] = []
        self.down = False

    def add(self, sid: str, account: str, type_: str = "x11", seat: str = "seat0") -> None:
        self.by_account.setdefault(account, []).append(SessionInfo(sid, 1000, account, seat,
                                                                   type_))

    def sessions(self, account: str) -> list[SessionInfo]:
        if self.down:
            raise LogindError("logind unreachable on SYSTEM: [Errno 2]")
        return list(self.by_account.get(account, []))

    def lock(self, sid: str) -> None:
        self.locked.append(sid)

    def terminate(self, sid: str) -> None:
        self.terminated.append(sid)


class Events:
    def __init__(self) -> None:
        self.items: list[tuple[str, Any]] = []
        self.cond = threading.Condition()

    def __call__(self, kind: str, data: Any) -> None:
        with self.cond:
            self.items.append((kind, data))
            self.cond.notify_all()

    def wait(self, kind: str, timeout: float = 10) -> Any:
        with self.cond:
            assert self.cond.wait_for(lambda: any(k == kind for k, _ in self.items), timeout), \
                self.items
            return next(d for k, d in self.items if k == kind)

    def of(self, kind: str) -> list[Any]:
        return [d for k, d in self.items if k == kind]


class Clock:
    def __init__(self) -> None:
        self.now = MONDAY_10

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def world(tmp_path) -> Iterator[tuple[HostAgent, FakeReader, FakeLogind, Events, Clock]]:
    config = HostAgentConfig.model_validate({
        "host": HOST, "socket": str(tmp_path / "agent.sock"), "logoff_after_s": 600,
        "journal": {"enabled": False}, "audit": {"enabled": False},
        "health_interval_s": 86400})
    logind, events, clock = FakeLogind(), Events(), Clock()
    policy = make_policy()
    agent = HostAgent(config, site=SITE, emit=events, policy=lambda: policy, logind=logind,
                      trusted=[KEY.public_key()], clock=clock, state_dir=tmp_path)
    reader = FakeReader(("Reader A 00 00", "Reader B 00 00"))
    agent.start()
    reader.start(agent)
    agent.on_presence_message("", blob(KEY, ["hana", "kenji"], issued_at=MONDAY_10))
    yield agent, reader, logind, events, clock
    agent.stop()


def ask(agent: HostAgent, step: str = "card", user: str = "hana", **kw: str) -> tuple[bool, Any]:
    req = PamRequest(step=step, user=user, service=kw.get("service", "gdm-password"),
                     tty=kw.get("tty", ""), rhost=kw.get("rhost", ""))
    answer = agent.handle_pam(req, ROOT)
    return answer.ok, answer.reason


def test_password_failed_names_the_card_lying_there(world) -> None:
    agent, reader, _logind, events, _clock = world
    reader.present(HANA)
    assert ask(agent, "password_failed") == (True, None)  # noted; PAM fails on its own
    [ev] = events.of("host.logon")
    assert (ev.granted, ev.reason, ev.stage, ev.person_id, ev.card) == \
        (False, "wrong_password", "password", "hana", HANA)


def test_card_removal_locks_x11_and_ends_a_text_console(world) -> None:
    agent, reader, logind, events, _clock = world
    logind.add("2", "hana", "x11")
    logind.add("3", "hana", "tty")
    logind.add("9", "hana", "x11", seat="")  # a remote (ssh) session: not locked
    reader.present(HANA)
    assert ask(agent) == (True, None)
    reader.remove()
    locked = events.wait("host.locked")
    assert (locked.sessions, locked.terminated, locked.reason) == (["2"], ["3"], "card_removed")
    assert logind.locked == ["2"] and logind.terminated == ["3"]


def test_the_reader_going_away_locks_as_a_removal_would(world) -> None:
    agent, reader, logind, events, _clock = world
    logind.add("2", "hana")
    reader.present(HANA)
    assert ask(agent)[0]
    reader.disconnect()
    assert events.wait("host.locked").reason == "card_removed"
    assert ask(agent) == (False, "no_card")  # the other reader is still there
    reader.disconnect("Reader B 00 00")
    assert ask(agent) == (False, "no_reader")


def test_logind_unreachable_is_said_not_hidden(world) -> None:
    agent, reader, logind, events, _clock = world
    reader.present(HANA)
    assert ask(agent)[0]
    logind.down = True
    reader.remove()
    locked = events.wait("host.locked")
    assert locked.ok is False and "unreachable" in locked.detail


def test_card_away_too_long_ends_the_sessions(world) -> None:
    agent, reader, logind, events, clock = world
    logind.add("2", "hana")
    reader.present(HANA)
    assert ask(agent)[0]
    reader.remove()
    events.wait("host.locked")
    clock.now += timedelta(seconds=600)  # the agent's tick sees it within a second
    off = events.wait("host.logoff")
    assert (off.reason, off.sessions, off.away_s) == ("card_away", ["2"], 600.0)


def test_unlock_after_relogon_and_a_second_card_reader(world) -> None:
    agent, reader, _logind, events, _clock = world
    reader.present(HANA, reader="Reader A 00 00")
    reader.present(KENJI, reader="Reader B 00 00")
    assert ask(agent)[0] and ask(agent, user="kenji")[0]
    reader.remove("Reader A 00 00")
    events.wait("host.locked")
    assert ask(agent) == (False, "wrong_account")  # only kenji's card lies there now
    reader.present(HANA, reader="Reader A 00 00")
    assert ask(agent)[0]
    assert events.wait("host.unlocked").person_id == "hana"


def test_remote_log_on_is_denied_without_waiting_for_a_card(world) -> None:
    agent, _reader, _logind, events, _clock = world
    assert ask(agent, rhost="10.0.0.5", service="sshd") == (False, "remote")
    assert events.of("host.logon")[0].remote is True


def test_health_is_reported_at_start(world) -> None:
    _agent, _reader, _logind, events, _clock = world
    health = events.wait("host.health")
    assert health.host == HOST and health.presence_fresh
    assert sorted(health.readers) == ["Reader A 00 00", "Reader B 00 00"]
    assert any(d.mount == "/" for d in health.disks)
