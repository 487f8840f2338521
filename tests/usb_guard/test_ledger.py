from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from usb_guard import ledger
from usb_guard.errors import LedgerError
from usb_guard.ledger import TRANSITIONS, ControlNumbering, Medium, Transition
from usb_guard.policy import MediumIdentity

from .conftest import HOST, NOW

IDENTITY = MediumIdentity(vendor_id="0781", product_id="5583", serial="AA0001")
DIGEST = "ab" * 32


def registered(control_number: str = "USB-0001") -> Medium:
    return ledger.register(control_number, IDENTITY, DIGEST, make="SanDisk", model="Cruzer",
                           custodian="Sato", actor="admin", now=NOW, hosts=[HOST]).medium


def in_storage() -> Medium:
    return ledger.store(registered(), actor="admin", now=NOW).medium


def checked_out(due: timedelta = timedelta(days=1)) -> Medium:
    return ledger.check_out(in_storage(), holder="Tanaka", purpose="年末調整の提出",
                            due_back=NOW + due, requested_by="Tanaka", approved_by="Suzuki",
                            now=NOW).medium


def test_control_numbers_are_formatted_and_parsed() -> None:
    numbering = ControlNumbering("USB-", 4)
    assert numbering.allocate(0) == ("USB-0001", 1)
    assert numbering.allocate(9999) == ("USB-10000", 10000)
    assert numbering.parse("USB-0042") == 42
    with pytest.raises(LedgerError):
        numbering.parse("MED-0042")
    assert ControlNumbering("MED", 6).format(7) == "MED000007"


@settings(database=None)  # nothing written into the working directory
@given(st.lists(st.sampled_from(["issue", "dispose_last", "delete_last"]), max_size=60))
def test_control_numbers_are_never_reused(operations: list[str]) -> None:
    """Whatever happens to media, the next number follows the highest ever issued."""
    numbering = ControlNumbering()
    highest = 0
    live: list[str] = []
    issued: list[str] = []
    for op in operations:
        if op == "issue" or not live:
            number, highest = numbering.allocate(highest)
            live.append(number)
            issued.append(number)
        else:
            live.pop()  # disposed of or deleted: the number stays used
    assert len(set(issued)) == len(issued)
    assert [numbering.parse(n) for n in issued] == list(range(1, len(issued) + 1))


def test_full_lifecycle_produces_an_audit_record_per_step() -> None:
    t = ledger.register("USB-0001", IDENTITY, DIGEST, make="SanDisk", model="Cruzer",
                        custodian="Sato", actor="admin", now=NOW, hosts=[HOST])
    audits = [t.audit]
    m = t.medium
    steps: list[Callable[[Medium], Transition]] = [
        lambda m: ledger.store(m, actor="admin", now=NOW),
        lambda m: ledger.check_out(m, holder="Tanaka", purpose="給与計算",
                                   due_back=NOW + timedelta(1), requested_by="Tanaka",
                                   approved_by="Suzuki", now=NOW),
        lambda m: ledger.return_medium(m, actor="Tanaka", now=NOW + timedelta(hours=3)),
        lambda m: ledger.wipe(m, method="Purge", tool="nwipe 0.34", performed_by="Sato",
                              verifier="Suzuki", verification="full read-back", now=NOW),
        lambda m: ledger.store(m, actor="admin", now=NOW),
        lambda m: ledger.check_out(m, holder="Ito", purpose="監査", due_back=NOW + timedelta(2),
                                   requested_by="Ito", approved_by="Sato", now=NOW),
        lambda m: ledger.mark_lost(m, actor="Ito", now=NOW, note="not returned"),
        lambda m: ledger.found(m, actor="Ito", now=NOW),
        lambda m: ledger.dispose(m, method="Destroy", certificate_number="DC-2026-001",
                                 performed_by="Sato", now=NOW),
    ]
    for step in steps:
        t = step(m)
        audits.append(t.audit)
        assert t.audit.from_state == m.state and t.audit.to_state == t.medium.state
        m = t.medium
    assert [a.action for a in audits] == ["register", "store", "check_out", "return", "wipe",
                                          "store", "check_out", "mark_lost", "found", "dispose"]
    assert m.state == "disposed" and m.disposal is not None
    assert m.disposal.certificate_number == "DC-2026-001"
    assert dict(audits[2].details)["approved_by"] == "Suzuki"
    assert dict(audits[3].details)["late"] == "no"
    assert dict(audits[4].details)["method"] == "Purge"


ACTIONS = {
    "store": lambda m: ledger.store(m, actor="a", now=NOW),
    "check_out": lambda m: ledger.check_out(m, holder="h", purpose="p", due_back=NOW + timedelta(1),
                                            requested_by="r", approved_by="x", now=NOW),
    "return": lambda m: ledger.return_medium(m, actor="a", now=NOW),
    "wipe": lambda m: ledger.wipe(m, method="Clear", tool="t", performed_by="a", verifier="b",
                                  verification="v", now=NOW),
    "mark_lost": lambda m: ledger.mark_lost(m, actor="a", now=NOW),
    "found": lambda m: ledger.found(m, actor="a", now=NOW),
    "dispose": lambda m: ledger.dispose(m, method="Destroy", certificate_number="C1",
                                        performed_by="a", now=NOW),
}
STATES = ["registered", "in_storage", "checked_out", "returned", "wiped", "lost", "disposed"]


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("action", list(ACTIONS))
def test_every_transition_is_validated(state: str, action: str) -> None:
    from dataclasses import replace

    medium = replace(registered(), state=state)  # type: ignore[arg-type]
    allowed_from, target = TRANSITIONS[action]
    if state in allowed_from:
        assert ACTIONS[action](medium).medium.state == target
    else:
        with pytest.raises(LedgerError, match=f"is {state}: cannot"):
            ACTIONS[action](medium)


def test_approver_must_be_a_second_person_and_due_back_in_the_future() -> None:
    m = in_storage()
    with pytest.raises(LedgerError, match="second person"):
        ledger.check_out(m, holder="Tanaka", purpose="p", due_back=NOW + timedelta(1),
                         requested_by="Tanaka", approved_by="Tanaka", now=NOW)
    with pytest.raises(LedgerError, match="themselves"):
        ledger.check_out(m, holder="Suzuki", purpose="p", due_back=NOW + timedelta(1),
                         requested_by="Tanaka", approved_by="Suzuki", now=NOW)
    with pytest.raises(LedgerError, match="future"):
        ledger.check_out(m, holder="Tanaka", purpose="p", due_back=NOW,
                         requested_by="Tanaka", approved_by="Suzuki", now=NOW)
    with pytest.raises(LedgerError, match="purpose is required"):
        ledger.check_out(m, holder="Tanaka", purpose="  ", due_back=NOW + timedelta(1),
                         requested_by="Tanaka", approved_by="Suzuki", now=NOW)


def test_wipe_and_disposal_rules() -> None:
    m = in_storage()
    with pytest.raises(LedgerError, match="verifier must differ"):
        ledger.wipe(m, method="Clear", tool="t", performed_by="a", verifier="a",
                    verification="v", now=NOW)
    with pytest.raises(LedgerError, match="one of"):
        ledger.wipe(m, method="Shred", tool="t", performed_by="a",  # type: ignore[arg-type]
                    verifier="b", verification="v", now=NOW)
    with pytest.raises(LedgerError, match="only be disposed of by Destroy"):
        ledger.dispose(m, method="Clear", certificate_number="C", performed_by="a", now=NOW)
    wiped = ledger.wipe(m, method="Purge", tool="t", performed_by="a", verifier="b",
                        verification="v", now=NOW).medium
    assert ledger.dispose(wiped, method="Purge", certificate_number="C", performed_by="a",
                          now=NOW).medium.state == "disposed"


def test_overdue_detection() -> None:
    late = checked_out(timedelta(hours=2))
    on_time = ledger.check_out(
        ledger.store(registered("USB-0002"), actor="a", now=NOW).medium, holder="Ito",
        purpose="p", due_back=NOW + timedelta(days=3), requested_by="Ito", approved_by="Sato",
        now=NOW).medium
    stored = in_storage()
    later = NOW + timedelta(days=1)
    result = ledger.overdue([late, on_time, stored], later)
    assert [(o.control_number, o.holder) for o in result] == [("USB-0001", "Tanaka")]
    assert result[0].overdue_by == timedelta(hours=22)
    assert ledger.overdue([late], NOW + timedelta(hours=1)) == []
    returned = ledger.return_medium(late, actor="Tanaka", now=later)
    assert dict(returned.audit.details)["late"] == "yes"
    assert ledger.overdue([returned.medium], later) == []


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(LedgerError, match="timezone"):
        ledger.store(registered(), actor="a", now=NOW.replace(tzinfo=None))


def test_to_policy_publishes_state_hosts_and_digest_never_the_token() -> None:
    lost = ledger.store(registered("USB-0002"), actor="a", now=NOW).medium
    media = [checked_out(), ledger.mark_lost(lost, actor="a", now=NOW).medium]
    policy = ledger.to_policy(media, block_when_overdue=True)
    assert [m.state for m in policy.media] == ["checked_out", "lost"]
    assert policy.media[0].hosts == (HOST,) and policy.media[0].token_digest == DIGEST
    assert policy.media[0].usable_until == NOW + timedelta(days=1)
    assert ledger.to_policy(media).media[0].usable_until is None
    with pytest.raises(LedgerError, match="appears twice"):
        ledger.to_policy([in_storage(), in_storage()])


def test_reconfigure_is_audited_and_refused_once_disposed() -> None:
    t = ledger.reconfigure(in_storage(), hosts=["pc9"], read_only=True, actor="a", now=NOW)
    assert t.medium.hosts == ("pc9",) and t.medium.read_only
    assert t.audit.action == "reconfigure" and t.audit.from_state == t.audit.to_state
    gone = ledger.dispose(in_storage(), method="Destroy", certificate_number="C",
                          performed_by="a", now=NOW).medium
    with pytest.raises(LedgerError, match="disposed"):
        ledger.reconfigure(gone, hosts=[], read_only=False, actor="a", now=NOW)
