"""Sanitisation/disposal certificates (NIST SP 800-88) and the ledger export, from stored rows."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from dashboard.media.convert import to_ledger
from dashboard.models.media import Medium
from dashboard.services.base import ServiceError
from usb_guard.certificate import Person, SanitizationCertificate, certificate_for
from usb_guard.certificate_pdf import certificate_pdf
from usb_guard.csv_export import certificate_csv, excel_bytes, ledger_csv
from usb_guard.errors import CertificateError
from usb_guard.i18n import Lang

TECHNIQUE_OF = {"Clear": "overwrite", "Purge": "purge (block erase / crypto erase)",
                "Destroy": "physical destruction"}


class NoCertificate(ServiceError):
    """The medium has no sanitisation to certify yet (not wiped, not disposed of)."""


def has_certificate(row: Medium) -> bool:
    return row.wiped_at is not None or row.disposed_at is not None


def certificate_of(row: Medium, *, organization: str, now: datetime) -> SanitizationCertificate:
    """The certificate for the medium's last sanitisation: its disposal when disposed of
    (certificate number of the disposal), else its last wipe."""
    if not has_certificate(row):
        raise NoCertificate(f"{row.control_number} was neither wiped nor disposed of: "
                            "there is nothing to certify yet")
    fields: dict[str, object] = {
        "organization": organization, "capacity": row.capacity, "issued_at": now,
        "verification_result": "passed",
    }
    if row.wiped_at is not None:
        fields.update(
            performed_by=Person(name=row.wiped_by or "?"),
            validated_by=Person(name=row.wipe_verifier or "?"),
            technique=row.wipe_technique or TECHNIQUE_OF.get(row.wipe_method or "", "-"),
            validated_at=row.wiped_at,
            certificate_number=row.disposal_certificate
            or f"{row.control_number}-W{row.wiped_at:%Y%m%d%H%M}",
            destination=row.disposal_destination or "internal_reuse",
        )
    else:  # disposed of by Destroy without a wipe first
        assert row.disposed_at is not None
        fields.update(
            performed_by=Person(name=row.disposed_by or "?"),
            validated_by=Person(name=row.disposal_verifier or "?"),
            technique=TECHNIQUE_OF["Destroy"],
            tool=f"disposal certificate {row.disposal_certificate}",
            verification_method=f"destruction confirmed by {row.disposal_verifier}",
            validated_at=row.disposed_at,
            destination=row.disposal_destination or "destroyed",
        )
    if row.disposed_at is not None:
        fields["notes"] = (f"disposed of {row.disposed_at:%Y-%m-%d} by {row.disposal_method}, "
                           f"certificate {row.disposal_certificate}")
    try:
        return certificate_for(to_ledger(row), **fields)
    except CertificateError as exc:
        raise ServiceError(str(exc)) from exc


def pdf(cert: SanitizationCertificate, lang: Lang, tz: str) -> bytes:
    try:
        return certificate_pdf(cert, lang, tz=tz)
    except CertificateError as exc:
        raise ServiceError(f"cannot render the certificate: {exc}") from exc


def csv_bytes(cert: SanitizationCertificate, lang: Lang, tz: str) -> bytes:
    return excel_bytes(certificate_csv(cert, lang, tz))


def ledger_csv_bytes(rows: Iterable[Medium], lang: Lang, tz: str) -> bytes:
    return excel_bytes(ledger_csv([to_ledger(r) for r in rows], lang, tz))
