"""Who is logged on with which card, and the locks and log-offs that follow (pure)."""

from __future__ import annotations

from datetime import timedelta

from controller.host.logon import LogonDecision
from controller.host.sessions import CardSessions, Lock, Logoff
from tests.controller.host.fixtures import HANA, KENJI, MONDAY_10

T = MONDAY_10


def granted(card: str | None = HANA, person: str | None = "hana") -> LogonDecision:
    return LogonDecision(True, None, person, card, "reader 0" if card else None, "in",
                         break_glass=card is None)


def test_a_granted_log_on_holds_the_account_by_its_card() -> None:
    s = CardSessions(logoff_after_s=600)
    assert s.logged_on("hana", granted(), T) is False
    assert s.holders["hana"].card == HANA and not s.holders["hana"].locked


def test_break_glass_is_not_followed() -> None:
    s = CardSessions(logoff_after_s=600)
    s.logged_on("secroom-recovery", granted(None, None), T)
    assert s.holders == {}


def test_removing_the_card_locks_once_and_logs_off_after_the_delay() -> None:
    s = CardSessions(logoff_after_s=600)
    s.logged_on("hana", granted(), T)
    s.logged_on("kenji", granted(KENJI, "kenji"), T)
    assert s.card_removed(HANA, T) == [Lock("hana", "hana", "card_removed")]
    assert s.card_removed(HANA, T + timedelta(seconds=5)) == []  # already locked
    assert s.tick(T + timedelta(seconds=599)) == []  # near miss: one second short
    [off] = s.tick(T + timedelta(seconds=600))
    assert off == Logoff("hana", "hana", "card_away", 600.0)
    assert "hana" not in s.holders and "kenji" in s.holders


def test_card_back_stops_the_logoff_and_logging_on_again_unlocks() -> None:
    s = CardSessions(logoff_after_s=600)
    s.logged_on("hana", granted(), T)
    s.card_removed(HANA, T)
    s.card_present(HANA)
    assert s.tick(T + timedelta(hours=1)) == []
    assert s.holders["hana"].locked  # the card alone never unlocks
    assert s.logged_on("hana", granted(), T + timedelta(hours=1)) is True
    assert not s.holders["hana"].locked and s.holders["hana"].since == T


def test_leaving_the_room_locks_that_persons_accounts_only() -> None:
    s = CardSessions(logoff_after_s=0)
    s.logged_on("hana", granted(), T)
    s.logged_on("kenji", granted(KENJI, "kenji"), T)
    assert s.person_left("kenji", T) == [Lock("kenji", "kenji", "left_room")]
    assert s.person_left("kenji", T) == []
    assert s.tick(T + timedelta(days=1)) == []  # logoff_after 0: never ended
    s.forget("kenji")
    assert list(s.holders) == ["hana"]
