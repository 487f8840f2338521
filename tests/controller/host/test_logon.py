"""The pure log-on decision: every reason, their order, and the near misses."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from controller.host.logon import (
    CardOnReader,
    LogonRequest,
    LogonRules,
    decide_logon,
    is_admin,
)
from tests.controller.host.fixtures import (
    HANA,
    HOST,
    KENJI,
    MIKA,
    MONDAY_10,
    RYO,
    SUNDAY_10,
    make_policy,
)

RULES = LogonRules(frozenset({"sshd"}), frozenset({"secroom-recovery"}), "deny")
IN = {"hana": "in", "kenji": "in", "mika": "in", "ryo": "in"}


def decide(account: str = "hana", cards: tuple[str, ...] = (HANA,), *, presence=None,
           service: str = "login", rhost: str = "", readers: int = 1,
           now: datetime = MONDAY_10, rules: LogonRules = RULES, policy=None):
    req = LogonRequest(account, service, HOST, "tty1", rhost)
    on = [CardOnReader(f"reader {i}", uid) for i, uid in enumerate(cards)]
    return decide_logon(make_policy() if policy is None else policy, req, on, readers,
                        IN if presence is None else presence, now, rules)


def test_granted_with_the_holders_card_while_in_the_room() -> None:
    d = decide()
    assert d.granted and d.reason is None
    assert (d.person_id, d.card, d.presence, d.break_glass) == ("hana", HANA, "in", False)


@pytest.mark.parametrize(("kwargs", "reason"), [
    ({"rhost": "10.0.0.5"}, "remote"),
    ({"service": "sshd"}, "remote"),
    ({"readers": 0}, "no_reader"),
    ({"cards": ()}, "no_card"),
    ({"cards": ("DEADBEEF",)}, "unknown_card"),
    ({"account": "ryo", "cards": (RYO,)}, "inactive"),
    ({"account": "kenji"}, "wrong_account"),  # hana's card for kenji's account
    ({"account": "mika", "cards": (MIKA,)}, "not_permitted"),  # no group names pc-01
    ({"now": SUNDAY_10}, "outside_schedule"),
    ({"presence": {"hana": "out"}}, "not_in_room"),
    ({"presence": {}}, "presence_unknown"),
])
def test_each_denial_has_its_reason(kwargs, reason) -> None:
    d = decide(**kwargs)
    assert not d.granted and d.reason == reason


def test_remote_is_refused_even_with_the_card_on_the_reader() -> None:
    # the card lies there, the person is in the room: a log-in from elsewhere still never
    # counts the card
    assert decide(rhost="pc-02.example").reason == "remote"


def test_no_policy_denies() -> None:
    req = LogonRequest("hana", "login", HOST)
    d = decide_logon(None, req, [CardOnReader("r", HANA)], 1, IN, MONDAY_10, RULES)
    assert d.reason == "no_policy"


def test_break_glass_is_granted_without_a_card_and_marked() -> None:
    d = decide("secroom-recovery", cards=(), readers=0)
    assert d.granted and d.break_glass and d.card is None


def test_unknown_presence_may_be_allowed_and_is_then_marked() -> None:
    allow = LogonRules(RULES.remote_services, RULES.break_glass_accounts, "allow")
    d = decide(presence={}, rules=allow)
    assert d.granted and d.presence == "unknown"
    assert decide(presence={"hana": "out"}, rules=allow).reason == "not_in_room"


def test_windows_edges_are_start_inclusive_end_exclusive() -> None:
    monday_8 = MONDAY_10 - timedelta(hours=2)  # 08:00 JST
    assert decide(now=monday_8).granted
    assert decide(now=monday_8 - timedelta(seconds=1)).reason == "outside_schedule"
    assert decide(now=MONDAY_10 + timedelta(hours=10)).reason == "outside_schedule"  # 20:00


def test_admin_group_without_windows_lets_kenji_in_on_sunday() -> None:
    assert decide("kenji-adm", cards=(KENJI,), now=SUNDAY_10).granted


def test_with_two_cards_the_owners_card_decides() -> None:
    # mika's card (no host right) and hana's card both on readers: hana's account is granted
    assert decide(cards=(MIKA, HANA)).granted
    # and the reason given is the owner's own, not the other card's
    assert decide(cards=(MIKA, HANA), presence={"hana": "out"}).reason == "not_in_room"


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone"):
        decide(now=datetime(2026, 12, 7, 10, 0))


def test_admin_right_comes_from_a_group_naming_the_host() -> None:
    policy = make_policy()
    assert is_admin(policy, policy.person("kenji"), HOST) is True
    assert is_admin(policy, policy.person("hana"), HOST) is False
    assert is_admin(policy, policy.person("kenji"), "pc-02") is False
    assert is_admin(policy, None, HOST) is None
