"""Which accounts are logged on with which card, and what the agent must do about it (pure).

A log-on passes through PAM in steps (see controller.host.pam_server): the card step decides
and is kept here as *pending* for its PAM transaction (the calling process, the account and the
service); the password step then either failed (``password_failed``) or passed
(``completed``): the account is now *held* by that card. Removing that card locks the account's
sessions at once; the card staying away ``logoff_after`` ends them; the holder leaving the room
by the door locks them too. A locked account that authenticates again (card and password) is
unlocked. Every method takes ``now`` and returns the actions for the agent to carry out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from controller.host.events import LockReason, LogoffReason
from controller.host.logon import LogonDecision, LogonRequest


@dataclass(frozen=True)
class Transaction:
    """One PAM transaction: the process running the PAM stack, the account, the service."""

    caller: int
    account: str
    service: str


@dataclass(frozen=True)
class Pending:
    request: LogonRequest
    decision: LogonDecision
    at: datetime


@dataclass
class Holder:
    account: str
    person_id: str | None
    card: str | None
    reader: str | None
    since: datetime
    locked: bool = False
    away_since: datetime | None = None


@dataclass(frozen=True)
class Lock:
    account: str
    person_id: str | None
    reason: LockReason


@dataclass(frozen=True)
class Logoff:
    account: str
    person_id: str | None
    reason: LogoffReason
    away_s: float


class CardSessions:
    def __init__(self, *, pending_s: float, logoff_after_s: float) -> None:
        self.pending_for = timedelta(seconds=pending_s)
        self.logoff_after = timedelta(seconds=logoff_after_s) if logoff_after_s > 0 else None
        self.pending: dict[Transaction, Pending] = {}
        self.holders: dict[str, Holder] = {}
        self.expired = 0  # card decisions whose password step never came

    # -- the PAM steps -----------------------------------------------------------------------

    def card_decided(self, tx: Transaction, req: LogonRequest, decision: LogonDecision,
                     now: datetime) -> None:
        """Keep a granted card step until its password step reports."""
        if decision.granted:
            self.pending[tx] = Pending(req, decision, now)

    def password_failed(self, tx: Transaction) -> Pending | None:
        return self.pending.pop(tx, None)

    def completed(self, tx: Transaction, now: datetime) -> tuple[Pending, bool] | None:
        """The password passed after the card: the account is held by that card. Returns the
        pending step and whether the account was locked (so this was an unlock)."""
        pend = self.pending.pop(tx, None)
        if pend is None:
            return None
        d = pend.decision
        held = self.holders.get(tx.account)
        was_locked = held is not None and held.locked
        if d.card is not None:
            since = held.since if held is not None else now
            self.holders[tx.account] = Holder(tx.account, d.person_id, d.card, d.reader, since)
        return pend, was_locked

    # -- the card and the door ---------------------------------------------------------------

    def card_removed(self, uid: str, now: datetime) -> list[Lock]:
        out = []
        for h in self.holders.values():
            if h.card != uid:
                continue
            if h.away_since is None:
                h.away_since = now
            if not h.locked:
                h.locked = True
                out.append(Lock(h.account, h.person_id, "card_removed"))
        return out

    def card_present(self, uid: str) -> None:
        """The holder's card is back: the sessions stay locked (unlocking needs the password)
        but are no longer ended after ``logoff_after``."""
        for h in self.holders.values():
            if h.card == uid:
                h.away_since = None

    def person_left(self, person_id: str, now: datetime) -> list[Lock]:
        out = []
        for h in self.holders.values():
            if h.person_id == person_id and not h.locked:
                h.locked = True
                if h.away_since is None:
                    h.away_since = now
                out.append(Lock(h.account, h.person_id, "left_room"))
        return out

    def tick(self, now: datetime) -> list[Logoff]:
        """Forget stale pending steps; end the sessions whose card stayed away too long."""
        for tx in [tx for tx, p in self.pending.items() if now - p.at > self.pending_for]:
            del self.pending[tx]
            self.expired += 1
        if self.logoff_after is None:
            return []
        out = []
        for account, h in list(self.holders.items()):
            if h.away_since is not None and now - h.away_since >= self.logoff_after:
                del self.holders[account]
                out.append(Logoff(account, h.person_id, "card_away",
                                  (now - h.away_since).total_seconds()))
        return out

    def forget(self, account: str) -> None:
        """The account has no session left on this host."""
        self.holders.pop(account, None)
