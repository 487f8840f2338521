"""Card log-on at a room PC, end to end: PAM (pamtester under pam_wrapper, the real pam_exec and
helper) asks the host agent, which holds the card from a real pcscd with the vpcd virtual card,
the signed policy and the signed presence from the dashboard; every outcome is an event the
dashboard stores; removing the card or badging out locks the session through logind's
stand-in (python-dbusmock's logind template on a private bus)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.dashboard.hosts.kit import HANA, HOST, KENJI, HostWorld
from tests.support.logind import LogindStandIn
from tests.support.pcscd import start_pcscd

pytestmark = pytest.mark.integration


@pytest.fixture
def logind(tmp_path) -> Iterator[LogindStandIn]:
    stand_in = LogindStandIn(tmp_path / "logind")
    stand_in.start()
    yield stand_in
    stand_in.stop()


@pytest.fixture
def room(tmp_path, broker, logind, sm) -> Iterator[HostWorld]:
    pcscd = start_pcscd(tmp_path)
    pcscd.use_in_this_process()
    world = HostWorld(tmp_path, broker, pcscd, logind, sm)
    try:
        world.start()
        yield world
    finally:
        world.stop()
        pcscd.stop()


@pytest.fixture(params=["sqlite"])
def engine(request, tmp_path):  # SQLite is enough here: the ingest has its own PG tests
    from dashboard.db import Base, make_engine

    eng = make_engine(f"sqlite:///{tmp_path / 'dashboard.sqlite3'}")
    Base.metadata.create_all(eng)
    yield eng
    eng.dispose()


def test_granted_with_card_and_password_while_in_the_room(room) -> None:
    room.badge("hana", "in")
    room.lay(HANA)
    result = room.pam.authenticate("hana", "hana-pw")
    assert result.ok, result.output
    ev = room.next_event("host.logon", account="hana")
    d = ev["data"]
    assert (d["granted"], d["reason"], d["person_id"], d["card"], d["presence"]) == \
        (True, None, "hana", HANA, "in")
    assert d["host"] == HOST and d["service"] == "secroom-login" and d["stage"] == "card"
    assert ev["node"] == "pc-01"


def test_each_denial_reaches_the_dashboard_with_its_reason(room) -> None:
    room.badge("hana", "in")
    # no card on the reader
    assert not room.pam.authenticate("hana", "hana-pw").ok
    assert room.next_event("host.logon", account="hana")["data"]["reason"] == "no_card"
    room.lay(HANA)
    # the right card, a wrong password: the host's own password check says no
    assert not room.pam.authenticate("hana", "not-her-password").ok
    d = room.next_event("host.logon", account="hana")["data"]
    assert (d["granted"], d["reason"], d["stage"], d["person_id"]) == \
        (False, "wrong_password", "password", "hana")
    # remote (PAM_RHOST set): the card on the reader never counts
    assert not room.pam.authenticate("hana", "hana-pw", tty="pts/4", rhost="10.0.0.5").ok
    d = room.next_event("host.logon", account="hana")["data"]
    assert (d["reason"], d["remote"]) == ("remote", True)
    room.lift(HANA)
    # kenji's card and password, but kenji is not in the room
    room.lay(KENJI)
    assert not room.pam.authenticate("kenji", "kenji-pw").ok
    d = room.next_event("host.logon", account="kenji")["data"]
    assert (d["reason"], d["person_id"], d["presence"]) == ("not_in_room", "kenji", "out")
    # near miss: the same, once kenji badged in, is granted
    room.badge("kenji", "in")
    assert room.pam.authenticate("kenji", "kenji-pw").ok
    assert room.next_event("host.logon", account="kenji")["data"]["granted"] is True


def test_removing_the_card_locks_the_session_then_card_and_password_unlock(room) -> None:
    room.logind.add_session("c1", "hana", 24001)
    room.badge("hana", "in")
    room.lay(HANA)
    assert room.pam.authenticate("hana", "hana-pw").ok
    room.lift(HANA)
    d = room.next_event("host.locked", account="hana")["data"]
    assert (d["reason"], d["sessions"], d["ok"], d["person_id"]) == \
        ("card_removed", ["c1"], True, "hana")
    assert room.logind.calls("LockSession") == [("c1",)]
    room.lay(HANA)
    assert room.pam.authenticate("hana", "hana-pw").ok
    d = room.next_event("host.unlocked", account="hana")["data"]
    assert d["person_id"] == "hana" and d["card"] == HANA


def test_badging_out_locks_that_persons_session(room) -> None:
    room.logind.add_session("c7", "hana", 24001)
    room.logind.add_session("c8", "kenji", 24002)
    room.badge("hana", "in")
    room.badge("kenji", "in")
    room.lay(HANA)
    assert room.pam.authenticate("hana", "hana-pw").ok
    room.lift(HANA)
    room.next_event("host.locked", account="hana")
    room.lay(KENJI)
    assert room.pam.authenticate("kenji", "kenji-pw").ok
    room.badge("kenji", "out")  # the card stays on the reader: leaving alone locks
    d = room.next_event("host.locked", account="kenji")["data"]
    assert (d["reason"], d["sessions"]) == ("left_room", ["c8"])
    assert ("c8",) in room.logind.calls("LockSession")
    # and kenji cannot log on again from outside the room, with his card still there
    assert not room.pam.authenticate("kenji", "kenji-pw").ok
    assert room.next_event("host.logon", account="kenji")["data"]["reason"] == "not_in_room"


def test_leaving_locks_at_once_even_while_the_dashboard_is_away(room) -> None:
    """The agent follows the door's own signed events too (keys vouched for by the dashboard's
    statement): with the dashboard's ingest and presence publisher stopped, badging out still
    locks, and the event waits in the node's journal for the dashboard."""
    room.logind.add_session("c9", "hana", 24001)
    room.badge("hana", "in")
    room.lay(HANA)
    assert room.pam.authenticate("hana", "hana-pw").ok
    room.presence.stop()
    room.consumer.stop()
    wire = room.watch_node("host.locked")
    room.badge("hana", "out")
    locked = wire.get(timeout=30)
    assert (locked.data["reason"], locked.data["sessions"]) == ("left_room", ["c9"])
    assert room.logind.calls("LockSession") == [("c9",)]


def test_the_pam_auth_update_profile_gates_common_auth_the_same_way(room) -> None:
    from tests.support.pam import PamService, common_auth_with_profile

    pam = PamService(room.tmp / "pam-profile", room.node.config.host.socket,
                     name="common-login", passwords={"hana": "hana-pw"},
                     stack=common_auth_with_profile)
    room.badge("hana", "in")
    assert not pam.authenticate("hana", "hana-pw").ok  # no card yet
    assert room.next_event("host.logon", account="hana")["data"]["reason"] == "no_card"
    room.lay(HANA)
    assert not pam.authenticate("hana", "wrong").ok  # the password block fails first
    assert pam.authenticate("hana", "hana-pw").ok
    assert room.next_event("host.logon", account="hana")["data"]["granted"] is True
