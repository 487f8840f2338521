"""The room PCs' correlation rules, each with its near miss (pure), then through the database:
the incremental path, the periodic check of sessions left open, and a re-run giving the same
keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controller.host import events as H
from dashboard.correlation import host_rules as HR
from dashboard.correlation.engine import Correlator
from dashboard.correlation.rerun import rerun
from dashboard.correlation.settings import CorrelationSettings
from dashboard.correlation.types import AccessIn, Interval
from dashboard.hosts.queries import HostEvent, PcSession
from dashboard.models import DoorAccess, Presence
from dashboard.models.correlation import Finding
from dashboard.models.numlog import NumberAccess
from tests.dashboard.printing.conftest import make_feed

S = CorrelationSettings(grace_s=120, failed_login_threshold=3, failed_login_window_s=600,
                        usb_window_s=1800)
T = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)  # Monday 11:00 JST


def ev(kind: str, model: object, ts: datetime = T, ref: str = "pc-01:1") -> HostEvent:
    return HostEvent(ref, ref.split(":")[0], ts, kind, model)


def logon(ts: datetime = T, *, granted: bool = True, person: str | None = "hana",
          reason: str | None = None, presence: str | None = "in", remote: bool = False,
          break_glass: bool = False, account: str = "hana", ref: str = "pc-01:1") -> HostEvent:
    return ev(H.KIND_LOGON, H.HostLogon(
        host="pc-01", account=account, service="gdm-password", granted=granted, reason=reason,
        person_id=person, presence=presence, remote=remote, break_glass=break_glass), ts, ref)


def stay(start: datetime, end: datetime | None) -> Interval:
    return Interval(start, end, "room", "gw1:1")


# -- pure, with near misses ------------------------------------------------------------------


def test_logon_not_in_room_and_its_near_miss() -> None:
    left = stay(T - timedelta(hours=2), T - timedelta(seconds=121))
    f = HR.logon_not_in_room(logon(), [left], S)
    assert f is not None and f.rule == HR.PC_NOT_IN_ROOM and f.severity == "critical"
    assert "hana" in f.ja and "pc-01" in f.en
    near = stay(T - timedelta(hours=2), T - timedelta(seconds=119))  # within the grace
    assert HR.logon_not_in_room(logon(), [near], S) is None
    assert HR.logon_not_in_room(logon(granted=False, reason="not_in_room"), [left], S) is None
    assert HR.logon_not_in_room(logon(remote=True), [left], S) is None


def test_logon_outside_hours_and_its_near_miss() -> None:
    eight = datetime(2026, 12, 7, 23, 0, tzinfo=UTC) - timedelta(days=1)  # Mon 08:00 JST
    assert HR.logon_outside_hours(logon(eight), S) is None
    f = HR.logon_outside_hours(logon(eight - timedelta(seconds=1)), S)
    assert f is not None and f.evidence["why"] == "hours"
    sunday = T - timedelta(days=1)
    assert HR.logon_outside_hours(logon(sunday), S).evidence["why"] == "weekend"


def test_presence_unknown_raised_either_way_and_a_known_presence_is_not() -> None:
    granted = HR.presence_unknown(logon(presence="unknown"), S)
    denied = HR.presence_unknown(logon(granted=False, reason="presence_unknown",
                                       presence="unknown"), S)
    assert granted.severity == "critical" and denied.severity == "warning"
    assert HR.presence_unknown(logon(presence="in"), S) is None


def test_break_glass_is_raised() -> None:
    f = HR.break_glass(logon(person=None, presence=None, break_glass=True,
                             account="secroom-recovery"), S)
    assert f is not None and f.severity == "critical" and "secroom-recovery" in f.ja
    assert HR.break_glass(logon(), S) is None


def sudo(admin: bool | None, ok: bool = True) -> HostEvent:
    return ev(H.KIND_SUDO, H.HostSudo(host="pc-01", tool="sudo", account="hana",
                                      command="/usr/bin/apt upgrade", ok=ok, person_id="hana",
                                      admin_right=admin, at=T))


def test_sudo_without_admin_and_its_near_miss() -> None:
    assert HR.sudo_without_admin(sudo(False), S).severity == "critical"
    assert HR.sudo_without_admin(sudo(False, ok=False), S).severity == "warning"
    assert HR.sudo_without_admin(sudo(True), S) is None
    assert HR.sudo_without_admin(sudo(None), S) is None  # nobody known: not this rule


def files(op: str = "copy", person: str | None = "hana", cls: str = "number_data") -> HostEvent:
    return ev(H.KIND_FILE_ACCESS, H.HostFileAccess(
        host="pc-01", path_class=cls, op=op, names=["a.csv"], count=3, program="/usr/bin/cp",
        account="hana", person_id=person, at=T, last_at=T + timedelta(seconds=5)))


def access(ts: datetime, person: str = "hana", category: str = "access") -> AccessIn:
    return AccessIn(key=f"k{ts.timestamp()}", ts=ts, source="numsys.csv", line=1, no="1",
                    operator="op7", person_id=person, host="pc-01", category=category, ok=True)


def test_number_files_without_access_and_its_near_miss() -> None:
    far = access(T - timedelta(seconds=1801))
    f = HR.files_without_access(files(), [far], S)
    assert f is not None and f.severity == "critical"  # a copy
    assert HR.files_without_access(files("read"), [far], S).severity == "warning"
    near = access(T - timedelta(seconds=1800))
    assert HR.files_without_access(files(), [near], S) is None
    after = access(T + timedelta(seconds=1805))  # the burst ended 5 s after it began
    assert HR.files_without_access(files(), [after], S) is None
    assert HR.files_without_access(files(), [access(T, category="login")], S) is not None
    assert HR.files_without_access(files(cls="vault"), [], S) is None


def test_session_left_open_after_exit_and_its_near_misses() -> None:
    left = T
    open_ = PcSession("pc-01", "pc-01", "4", "hana", "hana", T - timedelta(hours=1))
    f = HR.session_after_exit("gw1:9", "hana", left, [open_], [], S)
    assert f is not None and f.evidence["sessions"] == ["pc-01#4"]
    closed = PcSession("pc-01", "pc-01", "4", "hana", "hana", T - timedelta(hours=1),
                       closed_at=left + timedelta(seconds=119))
    assert HR.session_after_exit("gw1:9", "hana", left, [closed], [], S) is None
    lock = ev(H.KIND_LOCKED, H.HostLocked(host="pc-01", account="hana", person_id="hana",
                                         reason="left_room", sessions=["4"]),
              left + timedelta(seconds=2))
    assert HR.session_after_exit("gw1:9", "hana", left, [open_], [lock], S) is None
    failed = ev(H.KIND_LOCKED, H.HostLocked(host="pc-01", account="hana", person_id="hana",
                                           reason="left_room", ok=False, detail="no logind"),
                left + timedelta(seconds=2))
    assert HR.session_after_exit("gw1:9", "hana", left, [open_], [failed], S) is not None


def session_open(host: str, sid: str, ts: datetime, person: str = "hana") -> HostEvent:
    return ev(H.KIND_SESSION, H.HostSession(host=host, action="opened", session_id=sid,
                                            account=person, person_id=person, at=ts),
              ts, f"{host}:{sid}")


def test_one_account_on_two_hosts_and_its_near_miss() -> None:
    other = PcSession("pc-02", "pc-02", "8", "hana", "hana", T - timedelta(hours=1))
    f = HR.two_hosts(session_open("pc-01", "4", T), [other], S)
    assert f is not None and f.evidence["others"] == ["pc-02#8"]
    ended = PcSession("pc-02", "pc-02", "8", "hana", "hana", T - timedelta(hours=1),
                      closed_at=T)
    assert HR.two_hosts(session_open("pc-01", "4", T), [ended], S) is None
    same_host = PcSession("pc-01", "pc-01", "3", "hana", "hana", T - timedelta(hours=1))
    assert HR.two_hosts(session_open("pc-01", "4", T), [same_host], S) is None


def failure(i: int, seconds: float, count: int = 1) -> HostEvent:
    if count > 1:
        return ev(H.KIND_AUTH_FAILED, H.HostAuthFailed(host="pc-01", service="login",
                                                       account="hana", count=count,
                                                       at=T + timedelta(seconds=seconds)),
                  T + timedelta(seconds=seconds), f"pc-01:{i}")
    return logon(T + timedelta(seconds=seconds), granted=False, reason="wrong_password",
                 ref=f"pc-01:{i}")


def test_repeated_failed_logins_and_the_near_miss() -> None:
    a, b, c = failure(1, 0), failure(2, 60), failure(3, 120)
    assert HR.failed_logins(b, [a], S) is None  # two: one short
    f = HR.failed_logins(c, [a, b], S)
    assert f is not None and f.evidence["count"] == 3
    assert HR.failed_logins(failure(4, 180), [a, b, c], S) is None  # raised once per run
    late = failure(5, 601)  # the first failure has left the window
    assert HR.failed_logins(late, [a, b], S) is None
    burst = failure(6, 0, count=5)  # a summarised burst of five counts as five
    assert HR.failed_logins(burst, [], S) is not None


# -- through the database ----------------------------------------------------------------------


@pytest.fixture
def pc(sm):
    return make_feed(sm, "pc-01")


def findings(sm, rule: str) -> list[Finding]:
    with sm() as s:
        return list(s.query(Finding).filter(Finding.rule == rule, Finding.withdrawn.is_(False)))


def test_incremental_and_rerun_agree_on_host_findings(sm, pc) -> None:
    with sm.begin() as s:
        s.add(Presence(person_id="hana", door="room", entered_at=T - timedelta(hours=3),
                       left_at=T - timedelta(hours=1)))
    stored = [
        pc.event(H.KIND_LOGON, logon().data, T),
        pc.event(H.KIND_SUDO, sudo(False).data, T + timedelta(minutes=1)),
        pc.event(H.KIND_FILE_ACCESS, files().data, T + timedelta(minutes=2)),
    ]
    pc.store(stored, T + timedelta(minutes=3))
    c = Correlator(S)
    with sm.begin() as s:
        for e in stored:
            c.on_stored(s, e.node, e.seq, T + timedelta(minutes=3))
    keys = {r: [f.dedupe_key for f in findings(sm, r)]
            for r in (HR.PC_NOT_IN_ROOM, HR.PC_SUDO_NOT_ADMIN, HR.PC_FILES_WITHOUT_ACCESS)}
    assert all(len(v) == 1 for v in keys.values()), keys
    with sm.begin() as s:
        res = rerun(s, T - timedelta(hours=1), T + timedelta(hours=1), T + timedelta(hours=2), S)
    again = {f.key for f in res.findings if f.rule in keys}
    assert again == {k for v in keys.values() for k in v}
    assert res.persisted is not None and not res.persisted.withdrawn


def test_a_late_number_system_import_clears_the_file_finding(sm, pc) -> None:
    stored = [pc.event(H.KIND_FILE_ACCESS, files("read").data, T)]
    pc.store(stored, T)
    c = Correlator(S)
    with sm.begin() as s:
        c.on_stored(s, "pc-01", stored[0].seq, T)
    assert len(findings(sm, HR.PC_FILES_WITHOUT_ACCESS)) == 1
    with sm.begin() as s:  # the number system's log arrives: hana opened a record then
        row = NumberAccess(row_key="r1", source="numsys.csv", line=1, no="1",
                           ts=T + timedelta(minutes=3), action="照会", operator="op7",
                           person_id="hana", host="pc-01", category="access", ok=True,
                           redacted_fields=[])
        s.add(row)
        s.flush()
        res = c.on_rows(s, [row], T + timedelta(minutes=5))
    assert res.withdrawn == [f"{HR.PC_FILES_WITHOUT_ACCESS}:pc-01:1"]
    assert findings(sm, HR.PC_FILES_WITHOUT_ACCESS) == []


def test_the_periodic_check_finds_a_session_left_open(sm, pc) -> None:
    gate = make_feed(sm, "gw1")
    exit_ev = gate.event("door.access", {"door": "room", "reader": "out", "direction": "out",
                                         "granted": True, "person_id": "hana"}, T)
    gate.store([exit_ev], T)
    pc.store([pc.event(H.KIND_SESSION, session_open("pc-01", "4",
                                                     T - timedelta(hours=1)).data,
                       T - timedelta(hours=1)),
              pc.event(H.KIND_SESSION, session_open("pc-01", "5", T - timedelta(hours=1),
                                                     person="kenji").data,
                       T - timedelta(hours=1))], T)
    c = Correlator(S)
    with sm.begin() as s:
        c.tick(s, T + timedelta(seconds=60))  # the grace has not passed yet
    assert findings(sm, HR.PC_AFTER_EXIT) == []
    with sm.begin() as s:
        c.tick(s, T + timedelta(seconds=121))
    [f] = findings(sm, HR.PC_AFTER_EXIT)
    assert f.person_id == "hana" and "pc-01#4" in f.evidence["sessions"]
    with sm() as s:
        assert s.query(DoorAccess).count() == 1
