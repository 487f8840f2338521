"""Which accounts are logged on with which card, and what the agent must do about it (pure).

A log-on's card step runs after the host's own password check passed (see
controller.host.pam_server), so a granted card step is a completed log-on: the account is now
*held* by that card. Removing that card locks the account's sessions at once; the card staying
away ``logoff_after`` ends them; the holder leaving the room by the door locks them too. A
locked account that logs on again (password and card) is unlocked. Every method takes ``now``
and returns the actions for the agent to carry out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from controller.host.events import LockReason, LogoffReason
from controller.host.logon import LogonDecision


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
    def __init__(self, *, logoff_after_s: float) -> None:
        self.logoff_after = timedelta(seconds=logoff_after_s) if logoff_after_s > 0 else None
        self.holders: dict[str, Holder] = {}

    def logged_on(self, account: str, decision: LogonDecision, now: datetime) -> bool:
        """A granted log-on: the account is held by the card. True if it was locked (so this
        was an unlock). A log-on without a card (break-glass) is not followed."""
        held = self.holders.get(account)
        was_locked = held is not None and held.locked
        if decision.card is not None:
            since = held.since if held is not None else now
            self.holders[account] = Holder(account, decision.person_id, decision.card,
                                           decision.reader, since)
        return was_locked

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
        """End the sessions whose card stayed away too long."""
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
