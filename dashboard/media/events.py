"""USB events (usb.inserted / usb.removed) from the stored events table, newest first."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.models.events import StoredEvent

KINDS = ("usb.inserted", "usb.removed")
SCAN_BATCH = 500
SCAN_MAX = 20_000


@dataclass(frozen=True)
class UsbEventFilter:
    start: datetime | None = None
    end: datetime | None = None
    host: str | None = None
    verdict: str | None = None
    control_numbers: frozenset[str] | None = None
    before_id: int | None = None


@dataclass(frozen=True)
class UsbEventRow:
    id: int
    node: str
    seq: int
    ts: datetime
    kind: str
    host: str
    device: str
    verdict: str | None
    rule: str | None
    control_number: str | None
    vendor_product: str
    serial_masked: str | None
    interfaces: tuple[str, ...]
    reason: str


@dataclass
class UsbEventPage:
    items: list[UsbEventRow] = field(default_factory=list)
    next_before_id: int | None = None


def _s(d: dict[str, Any], key: str) -> str | None:
    value = d.get(key)
    return value if isinstance(value, str) else None


def to_row(e: StoredEvent) -> UsbEventRow:
    d = e.data if isinstance(e.data, dict) else {}
    ifaces = d.get("interfaces")
    return UsbEventRow(
        id=e.id, node=e.node, seq=e.seq, ts=e.ts, kind=e.kind, host=_s(d, "host") or e.node,
        device=_s(d, "device") or "", verdict=_s(d, "verdict"), rule=_s(d, "rule"),
        control_number=_s(d, "control_number"),
        vendor_product=f"{_s(d, 'vendor_id') or '?'}:{_s(d, 'product_id') or '?'}",
        serial_masked=_s(d, "serial_masked"),
        interfaces=tuple(str(i) for i in ifaces) if isinstance(ifaces, list) else (),
        reason=_s(d, "reason") or "",
    )


def _keep(r: UsbEventRow, f: UsbEventFilter) -> bool:
    if f.host and r.host != f.host:
        return False
    if f.verdict and r.verdict != f.verdict:
        return False
    return not (f.control_numbers is not None and r.control_number not in f.control_numbers)


def usb_events(session: Session, f: UsbEventFilter, limit: int = 100) -> UsbEventPage:
    """One page of events matching ``f`` (the payload fields are filtered here, the kind, time
    and paging in SQL), scanning at most ``SCAN_MAX`` stored rows per page."""
    page = UsbEventPage()
    cursor, scanned = f.before_id, 0
    while len(page.items) < limit and scanned < SCAN_MAX:
        q = select(StoredEvent).where(StoredEvent.kind.in_(KINDS))
        if f.start is not None:
            q = q.where(StoredEvent.ts >= f.start)
        if f.end is not None:
            q = q.where(StoredEvent.ts < f.end)
        if cursor is not None:
            q = q.where(StoredEvent.id < cursor)
        batch = session.scalars(q.order_by(StoredEvent.id.desc()).limit(SCAN_BATCH)).all()
        if not batch:
            return page
        for e in batch:
            scanned += 1
            cursor = e.id
            row = to_row(e)
            if _keep(row, f):
                page.items.append(row)
                if len(page.items) == limit:
                    page.next_before_id = e.id
                    return page
    if scanned >= SCAN_MAX:
        page.next_before_id = cursor
    return page
