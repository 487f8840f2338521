"""Who is logged on with which card, and the locks and log-offs that follow (pure)."""

from __future__ import annotations

from datetime import timedelta

from controller.host.logon import LogonDecision, LogonRequest
from controller.host.sessions import CardSessions, Lock, Logoff, Transaction
from tests.controller.host.fixtures import HANA, HOST, KENJI, MONDAY_10

T = MONDAY_10


def granted(card: str = HANA, person: str = "hana") -> LogonDecision:
    return LogonDecision(True, None, person, card, "reader 0", "in")


def logged_on(s: CardSessions, account: str = "hana", card: str = HANA, person: str = "hana",
              caller: int = 100, service: str = "gdm-password") -> Transaction:
    tx = Transaction(caller, account, service)
    s.card_decided(tx, LogonRequest(account, service, HOST), granted(card, person), T)
    assert s.completed(tx, T) is not None
    return tx


def test_card_step_then_password_passed_holds_the_account() -> None:
    s = CardSessions(pending_s=60, logoff_after_s=600)
    tx = Transaction(100, "hana", "login")
    s.card_decided(tx, LogonRequest("hana", "login", HOST), granted(), T)
    assert tx in s.pending and "hana" not in s.holders
    pend, was_locked = s.completed(tx, T)
    assert pend.decision.person_id == "hana" and not was_locked
    assert s.holders["hana"].card == HANA


def test_password_failed_drops_the_pending_step() -> None:
    s = CardSessions(pending_s=60, logoff_after_s=600)
    tx = Transaction(100, "hana", "login")
    s.card_decided(tx, LogonRequest("hana", "login", HOST), granted(), T)
    assert s.password_failed(tx).decision.card == HANA
    assert s.completed(tx, T) is None  # nothing left to complete
    assert "hana" not in s.holders


def test_a_step_of_another_transaction_completes_nothing() -> None:
    s = CardSessions(pending_s=60, logoff_after_s=600)
    s.card_decided(Transaction(100, "hana", "login"), LogonRequest("hana", "login", HOST),
                   granted(), T)
    assert s.completed(Transaction(101, "hana", "login"), T) is None
    assert s.completed(Transaction(100, "hana", "sudo"), T) is None


def test_removing_the_card_locks_once_and_logs_off_after_the_delay() -> None:
    s = CardSessions(pending_s=60, logoff_after_s=600)
    logged_on(s)
    logged_on(s, "kenji", KENJI, "kenji", caller=200)
    assert s.card_removed(HANA, T) == [Lock("hana", "hana", "card_removed")]
    assert s.card_removed(HANA, T + timedelta(seconds=5)) == []  # already locked
    assert s.tick(T + timedelta(seconds=599)) == []  # near miss: one second short
    [off] = s.tick(T + timedelta(seconds=600))
    assert off == Logoff("hana", "hana", "card_away", 600.0)
    assert "hana" not in s.holders and "kenji" in s.holders


def test_card_back_stops_the_logoff_but_keeps_the_lock() -> None:
    s = CardSessions(pending_s=60, logoff_after_s=600)
    tx = logged_on(s)
    s.card_removed(HANA, T)
    s.card_present(HANA)
    assert s.tick(T + timedelta(hours=1)) == []
    assert s.holders["hana"].locked
    # authenticating again (card and password) is an unlock
    s.card_decided(tx, LogonRequest("hana", "gdm-password", HOST), granted(), T)
    _, was_locked = s.completed(tx, T)
    assert was_locked and not s.holders["hana"].locked


def test_leaving_the_room_locks_that_persons_accounts_only() -> None:
    s = CardSessions(pending_s=60, logoff_after_s=0)
    logged_on(s)
    logged_on(s, "kenji", KENJI, "kenji", caller=200)
    assert s.person_left("kenji", T) == [Lock("kenji", "kenji", "left_room")]
    assert s.person_left("kenji", T) == []
    assert s.tick(T + timedelta(days=1)) == []  # logoff_after 0: never ended


def test_pending_steps_expire() -> None:
    s = CardSessions(pending_s=60, logoff_after_s=600)
    tx = Transaction(100, "hana", "login")
    s.card_decided(tx, LogonRequest("hana", "login", HOST), granted(), T)
    s.tick(T + timedelta(seconds=60))
    assert tx in s.pending  # near miss
    s.tick(T + timedelta(seconds=61))
    assert tx not in s.pending and s.expired == 1
