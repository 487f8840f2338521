"""The USB part of the signed node policy, built from the stored ledger."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.media.convert import to_ledger
from dashboard.models.media import Medium
from dashboard.services.base import ServiceError
from usb_guard import ledger
from usb_guard.errors import LedgerError
from usb_guard.policy import UsbPolicy


def build_usb_policy(session: Session, *, block_when_overdue: bool = False) -> UsbPolicy:
    """Every medium of the ledger (lost and disposed ones too, so a reappearance is reported as
    such), the default class rules (hubs, keyboards, mice) and the default verdict block.

    With ``block_when_overdue`` a checked-out medium stops working on its due-back time.
    """
    rows = session.scalars(select(Medium).order_by(Medium.control_number)).all()
    try:
        return ledger.to_policy([to_ledger(r) for r in rows],
                                block_when_overdue=block_when_overdue)
    except LedgerError as exc:
        raise ServiceError(str(exc)) from exc
