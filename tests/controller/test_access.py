from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.access import (
    AccessRequest,
    AccessState,
    Decision,
    Denial,
    Direction,
    access_events,
    decide,
    may_print,
    person_for_card,
)
from controller.events import KINDS
from controller.policy import Policy
from tests.controller.door_fixtures import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    ERIN,
    FRANK,
    GINA,
    HANA,
    UNKNOWN,
    jst,
    make_policy,
    utc,
)

POLICY = make_policy()
TUESDAY_10 = jst(2026, 11, 24, 10)  # an ordinary working morning
HOLIDAY_10 = jst(2026, 11, 23, 10)  # Monday, Labour Thanksgiving Day
EMPTY = AccessState()


def tap(
    uid: str,
    door: str = "main",
    direction: Direction = Direction.IN,
    *,
    policy: Policy | None = POLICY,
    state: AccessState = EMPTY,
    now: datetime = TUESDAY_10,
) -> tuple[Decision, AccessState]:
    return decide(policy, state, AccessRequest(door, direction, uid, f"{door}-{direction}"), now)


def test_authorised_card_in_hours_is_granted_and_marks_presence() -> None:
    decision, state = tap(ALICE)
    assert decision.granted and decision.reason is None
    assert decision.person_id == "alice"
    assert state.presence == {"alice": Direction.IN}
    assert EMPTY.presence == {}  # the old state is untouched


@pytest.mark.parametrize(
    ("uid", "door", "now", "reason", "person"),
    [
        (UNKNOWN, "main", TUESDAY_10, Denial.UNKNOWN_CARD, None),
        (DAVE, "main", TUESDAY_10, Denial.INACTIVE, "dave"),
        (ERIN, "main", TUESDAY_10, Denial.EXPIRED, "erin"),
        (FRANK, "main", TUESDAY_10, Denial.NOT_YET_VALID, "frank"),
        (GINA, "main", TUESDAY_10, Denial.NOT_PERMITTED, "gina"),
        (ALICE, "rack", TUESDAY_10, Denial.NOT_PERMITTED, "alice"),
        (ALICE, "no-such-door", TUESDAY_10, Denial.NOT_PERMITTED, "alice"),
        (ALICE, "main", jst(2026, 11, 24, 20), Denial.OUTSIDE_SCHEDULE, "alice"),
        (ALICE, "main", jst(2026, 11, 28, 10), Denial.OUTSIDE_SCHEDULE, "alice"),
        (ALICE, "main", HOLIDAY_10, Denial.OUTSIDE_SCHEDULE, "alice"),
    ],
)
def test_denials_name_their_reason_and_leave_state_alone(
    uid: str, door: str, now: datetime, reason: Denial, person: str | None
) -> None:
    decision, state = tap(uid, door, now=now)
    assert not decision.granted
    assert decision.reason is reason
    assert decision.person_id == person
    assert state is EMPTY


def test_no_policy_denies_everyone() -> None:
    decision, _ = tap(BOB, policy=None)
    assert decision.reason is Denial.NO_POLICY


def test_card_uid_format_does_not_matter() -> None:
    assert tap("04:a1:b2:c3:d4:e5:f6")[0].granted
    assert tap("04 A1 B2 C3 D4 E5 F6")[0].person_id == "alice"
    assert person_for_card(POLICY, "zz-not-hex") is None
    assert tap("zz-not-hex")[0].reason is Denial.UNKNOWN_CARD


def test_japanese_holiday_needs_on_holidays() -> None:
    # Hana's group may enter on public holidays, within its hours.
    assert tap(HANA, "side", now=HOLIDAY_10)[0].granted
    assert tap(HANA, "side", now=jst(2026, 11, 23, 19))[0].reason is Denial.OUTSIDE_SCHEDULE
    # Bob's admins group has no windows at all: any time, holidays included.
    assert tap(BOB, now=HOLIDAY_10)[0].granted
    # The same weekday a week later is an ordinary Monday for Alice.
    assert tap(ALICE, now=jst(2026, 11, 30, 10))[0].granted


@pytest.mark.parametrize(
    ("now", "granted"),
    [
        (jst(2026, 11, 24, 8, 59, 59), False),
        (jst(2026, 11, 24, 9, 0, 0), True),
        (jst(2026, 11, 24, 17, 59, 59), True),
        (jst(2026, 11, 24, 18, 0, 0), False),
        (utc(2026, 11, 23, 23, 59, 59), False),  # 08:59:59 JST Tuesday
        (utc(2026, 11, 24, 0, 0, 0), True),  # 09:00 JST Tuesday
        (utc(2026, 11, 23, 0, 30), False),  # 09:30 JST on the holiday
        (utc(2026, 11, 22, 23, 59, 59), False),  # 08:59:59 JST Monday (holiday anyway)
    ],
)
def test_schedule_boundaries_in_site_time(now: datetime, granted: bool) -> None:
    decision, _ = tap(ALICE, now=now)
    assert decision.granted is granted
    if not granted:
        assert decision.reason is Denial.OUTSIDE_SCHEDULE


@pytest.mark.parametrize(
    ("now", "reason"),
    [
        (jst(2026, 11, 20, 10), None),  # last valid day, inclusive
        (jst(2026, 11, 20, 17, 59), None),
        (jst(2026, 11, 21, 0, 0), Denial.EXPIRED),
        (utc(2026, 11, 20, 15, 0), Denial.EXPIRED),  # already the 21st in Tokyo
    ],
)
def test_valid_until_is_inclusive_in_site_time(now: datetime, reason: Denial | None) -> None:
    # Erin's group has office hours; to test dates alone, she is given 24/7 rights here.
    data = make_policy().model_dump(mode="json")
    data["people"][4]["groups"] = ["admins"]
    decision, _ = tap(ERIN, policy=Policy.model_validate(data), now=now)
    assert decision.reason is reason


def test_valid_from_starts_at_local_midnight() -> None:
    data = make_policy().model_dump(mode="json")
    data["people"][5]["groups"] = ["admins"]
    policy = Policy.model_validate(data)
    assert tap(FRANK, policy=policy, now=jst(2026, 11, 30, 23, 59))[0].reason is (
        Denial.NOT_YET_VALID
    )
    assert tap(FRANK, policy=policy, now=jst(2026, 12, 1, 0, 0))[0].granted
    assert tap(FRANK, policy=policy, now=utc(2026, 11, 30, 15, 0))[0].granted  # 00:00 JST


def test_anti_passback_refuses_in_twice_and_out_twice() -> None:
    first, state = tap(ALICE)
    assert first.granted
    again, same_state = tap(ALICE, state=state)
    assert again.reason is Denial.ANTI_PASSBACK and same_state is state
    out, state = tap(ALICE, direction=Direction.OUT, state=state)
    assert out.granted and state.presence["alice"] is Direction.OUT
    out_again, _ = tap(ALICE, direction=Direction.OUT, state=state)
    assert out_again.reason is Denial.ANTI_PASSBACK
    back_in, state = tap(ALICE, state=state)
    assert back_in.granted and state.inside() == ["alice"]


def test_no_anti_passback_on_a_door_without_it() -> None:
    _, state = tap(ALICE, "side")
    assert tap(ALICE, "side", state=state)[0].granted


def test_first_exit_after_a_restart_is_allowed() -> None:
    decision, state = tap(ALICE, direction=Direction.OUT)
    assert decision.granted and state.presence == {"alice": Direction.OUT}


def test_exit_is_not_held_by_schedule_or_lockdown() -> None:
    _, state = tap(ALICE)
    late = jst(2026, 11, 24, 22)
    assert tap(ALICE, direction=Direction.OUT, state=state, now=late)[0].granted
    locked = make_policy(lockdown=True)
    assert tap(ALICE, direction=Direction.OUT, state=state, policy=locked)[0].granted
    # ...but an unknown or revoked card is still refused on the way out.
    assert tap(UNKNOWN, direction=Direction.OUT)[0].reason is Denial.UNKNOWN_CARD
    assert tap(DAVE, direction=Direction.OUT)[0].reason is Denial.INACTIVE


def test_lockdown_denies_every_entry_even_admins() -> None:
    locked = make_policy(lockdown=True)
    for uid, door in [(BOB, "main"), (BOB, "rack"), (ALICE, "side")]:
        decision, _ = tap(uid, door, policy=locked)
        assert decision.reason is Denial.LOCKDOWN
    assert tap(UNKNOWN, policy=locked)[0].reason is Denial.LOCKDOWN
    assert tap(BOB, policy=locked)[0].person_id == "bob"  # the record still names who tried


def test_lockdown_of_one_door_leaves_the_others() -> None:
    partial = make_policy(lockdown_doors=["main"])
    assert tap(BOB, "main", policy=partial)[0].reason is Denial.LOCKDOWN
    assert tap(BOB, "side", policy=partial)[0].granted


def test_two_different_authorised_cards_within_the_window_open_the_rack() -> None:
    first, state = tap(BOB, "rack")
    assert not first.granted and first.pending
    assert first.reason is Denial.AWAITING_SECOND and first.person_id == "bob"
    assert state.pending_two_person["rack"] == ("bob", TUESDAY_10)
    second, state = tap(CAROL, "rack", state=state, now=TUESDAY_10 + timedelta(seconds=10))
    assert second.granted and not second.pending
    assert (second.person_id, second.second_person_id) == ("carol", "bob")
    assert "rack" not in state.pending_two_person
    assert state.inside() == ["bob", "carol"]
    # The pair was consumed: the next card starts a new pair.
    third, _ = tap(BOB, "rack", state=state, now=TUESDAY_10 + timedelta(seconds=11))
    assert third.reason is Denial.AWAITING_SECOND


def test_two_person_same_person_twice_is_refused() -> None:
    _, state = tap(BOB, "rack")
    again, after = tap(BOB, "rack", state=state, now=TUESDAY_10 + timedelta(seconds=3))
    assert again.reason is Denial.SAME_PERSON_TWICE and not again.pending
    assert after is state  # the first card still waits


def test_two_person_window_expires() -> None:
    _, state = tap(BOB, "rack")
    late = TUESDAY_10 + timedelta(seconds=10, microseconds=1)
    second, state = tap(CAROL, "rack", state=state, now=late)
    assert not second.granted and second.reason is Denial.AWAITING_SECOND
    assert state.pending_two_person["rack"] == ("carol", late)  # Carol is now the first card
    # After expiry, the same person tapping again is a fresh first card, not "twice".
    _, state = tap(BOB, "rack")
    fresh, _ = tap(BOB, "rack", state=state, now=TUESDAY_10 + timedelta(seconds=30))
    assert fresh.reason is Denial.AWAITING_SECOND


def test_two_person_second_card_must_itself_be_authorised() -> None:
    _, state = tap(BOB, "rack")
    for uid, reason in [(ALICE, Denial.NOT_PERMITTED), (UNKNOWN, Denial.UNKNOWN_CARD)]:
        decision, after = tap(uid, "rack", state=state, now=TUESDAY_10 + timedelta(seconds=2))
        assert decision.reason is reason and after is state
    # Carol's rackops group keeps office hours: out of hours she cannot be the second person.
    _, night = tap(BOB, "rack", now=jst(2026, 11, 24, 21))
    late, _ = tap(CAROL, "rack", state=night, now=jst(2026, 11, 24, 21, 0, 5))
    assert late.reason is Denial.OUTSIDE_SCHEDULE


def test_a_clock_step_backwards_voids_the_pending_card() -> None:
    _, state = tap(BOB, "rack")
    earlier = TUESDAY_10 - timedelta(seconds=5)
    decision, state = tap(CAROL, "rack", state=state, now=earlier)
    assert decision.reason is Denial.AWAITING_SECOND
    assert state.pending_two_person["rack"][0] == "carol"


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        tap(ALICE, now=datetime(2026, 11, 24, 10))


def test_decision_must_carry_a_reason_when_denied() -> None:
    with pytest.raises(ValueError):
        Decision(False, None, None, "main", Direction.IN)
    with pytest.raises(ValueError):
        Decision(True, Denial.LOCKDOWN, None, "main", Direction.IN)


def test_state_is_immutable() -> None:
    _, state = tap(ALICE)
    with pytest.raises(TypeError):
        state.presence["alice"] = Direction.OUT  # type: ignore[index]


@pytest.mark.parametrize(
    ("person", "printer", "now", "reason"),
    [
        ("alice", "prn1", TUESDAY_10, None),
        ("alice", "prn2", TUESDAY_10, Denial.NOT_PERMITTED),
        ("alice", "prn9", TUESDAY_10, Denial.NOT_PERMITTED),
        ("alice", "prn1", jst(2026, 11, 24, 19), Denial.OUTSIDE_SCHEDULE),
        ("alice", "prn1", HOLIDAY_10, Denial.OUTSIDE_SCHEDULE),
        ("bob", "prn2", HOLIDAY_10, None),
        ("dave", "prn1", TUESDAY_10, Denial.INACTIVE),
        ("erin", "prn1", TUESDAY_10, Denial.EXPIRED),
        ("frank", "prn1", TUESDAY_10, Denial.NOT_YET_VALID),
        ("nobody", "prn1", TUESDAY_10, Denial.UNKNOWN_CARD),
    ],
)
def test_may_print(person: str, printer: str, now: datetime, reason: Denial | None) -> None:
    assert may_print(POLICY, person, printer, now) is reason


def test_may_print_without_policy() -> None:
    assert may_print(None, "alice", "prn1", TUESDAY_10) is Denial.NO_POLICY


def test_access_events_are_valid_typed_payloads() -> None:
    req = AccessRequest("rack", Direction.IN, "01:23:45:67:89:ab:cd:ef", "rack-in")
    decision, _ = decide(POLICY, EMPTY, req, TUESDAY_10)
    events = access_events(decision, req, POLICY)
    assert [k for k, _ in events] == ["door.access", "door.two_person_pending"]
    access = events[0][1].model_dump(mode="json")
    assert access["card"] == BOB and access["reason"] == "awaiting_second_person"
    assert access["policy_version"] == POLICY.version
    assert events[1][1].model_dump()["window_s"] == 10
    for kind, model in events:
        KINDS[kind].model.model_validate(model.model_dump(mode="json"))


CARDS = [ALICE, BOB, CAROL, DAVE, ERIN, FRANK, GINA, HANA, UNKNOWN]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(CARDS),
            st.sampled_from(["main", "side", "rack"]),
            st.sampled_from(list(Direction)),
            st.integers(min_value=0, max_value=40_000),
        ),
        max_size=25,
    )
)
def test_any_sequence_keeps_the_invariants(taps: list[tuple[str, str, Direction, int]]) -> None:
    state, now = EMPTY, jst(2026, 11, 22, 8)
    for uid, door, direction, step in taps:
        now += timedelta(seconds=step)
        decision, new_state = tap(uid, door, direction, state=state, now=now)
        assert decision.granted == (decision.reason is None)
        if not decision.granted and not decision.pending:
            assert new_state is state
        if decision.granted:
            assert new_state.presence[decision.person_id or ""] == direction
            if door == "rack" and direction is Direction.IN:
                assert decision.second_person_id not in (None, decision.person_id)
        state = new_state
