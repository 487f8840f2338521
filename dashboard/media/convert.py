"""Between the stored row (``dashboard.models.media.Medium``) and the pure ledger's ``Medium``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dashboard.models.media import Medium as Row
from usb_guard import ledger
from usb_guard.policy import MediumIdentity


def identity_of(row: Row) -> MediumIdentity:
    return MediumIdentity(vendor_id=row.vendor_id, product_id=row.product_id, serial=row.serial,
                          descriptors_sha256=row.descriptors_sha256,
                          interfaces=tuple(row.interfaces or ()))


def to_ledger(row: Row) -> ledger.Medium:
    checkout = None
    if row.holder and row.due_back and row.requested_by and row.approved_by \
            and row.checked_out_at and row.purpose:
        checkout = ledger.Checkout(row.holder, row.purpose, row.due_back, row.requested_by,
                                   row.approved_by, row.checked_out_at)
    wipe = None
    if row.wipe_method and row.wiped_at:
        wipe = ledger.WipeRecord(row.wipe_method, row.wipe_tool or "",  # type: ignore[arg-type]
                                 row.wiped_by or "", row.wipe_verifier or "",
                                 row.wipe_verification or "", row.wiped_at)
    disposal = None
    if row.disposal_method and row.disposed_at:
        disposal = ledger.DisposalRecord(row.disposal_method,  # type: ignore[arg-type]
                                         row.disposal_certificate or "", row.disposed_by or "",
                                         row.disposed_at)
    return ledger.Medium(
        control_number=row.control_number, identity=identity_of(row),
        token_digest=row.token_digest, state=row.state,  # type: ignore[arg-type]
        custodian=row.custodian, make=row.make, model=row.model,
        registered_at=row.registered_at, media_type=row.media_type,
        hosts=tuple(row.hosts or ()), read_only=row.read_only, checkout=checkout,
        last_wipe=wipe, disposal=disposal, lost_at=row.lost_at,
    )


def apply_to_row(row: Row, m: ledger.Medium, now: datetime) -> None:
    """Write the ledger's new medium onto the row (identity never changes after registration)."""
    ident = m.identity
    row.vendor_id, row.product_id, row.serial = ident.vendor_id, ident.product_id, ident.serial
    row.descriptors_sha256, row.interfaces = ident.descriptors_sha256, list(ident.interfaces)
    row.token_digest, row.state, row.custodian = m.token_digest, m.state, m.custodian
    row.make, row.model, row.media_type = m.make, m.model, m.media_type
    row.hosts, row.read_only, row.lost_at = list(m.hosts), m.read_only, m.lost_at
    co = m.checkout
    row.holder = co.holder if co else None
    row.purpose = co.purpose if co else None
    row.due_back = co.due_back if co else None
    row.requested_by = co.requested_by if co else None
    row.approved_by = co.approved_by if co else None
    row.checked_out_at = co.checked_out_at if co else None
    wp = m.last_wipe
    if wp is not None:
        row.wipe_method, row.wipe_tool, row.wiped_by = wp.method, wp.tool, wp.performed_by
        row.wipe_verifier, row.wipe_verification = wp.verifier, wp.verification
        row.wiped_at = wp.wiped_at
    dp = m.disposal
    if dp is not None:
        row.disposal_method, row.disposal_certificate = dp.method, dp.certificate_number
        row.disposed_by, row.disposed_at = dp.performed_by, dp.disposed_at
    row.updated_at = now


AUDITED = (
    "control_number", "vendor_id", "product_id", "serial", "descriptors_sha256", "interfaces",
    "token_digest", "media_type", "make", "model", "capacity", "state", "custodian", "hosts",
    "read_only", "holder", "purpose", "due_back", "requested_by", "approved_by",
    "checked_out_at", "wipe_method", "wipe_technique", "wipe_tool", "wiped_by", "wipe_verifier",
    "wipe_verification", "wiped_at", "disposal_method", "disposal_certificate",
    "disposal_destination", "disposal_verifier", "disposed_by", "disposed_at", "lost_at",
)


def medium_dict(row: Row) -> dict[str, Any]:
    """The audit snapshot of a medium (the serial is kept: it is not personal data)."""
    return {name: getattr(row, name) for name in AUDITED}
