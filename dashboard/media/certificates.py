"""Sanitisation/disposal certificates (NIST SP 800-88) and the ledger export, from stored rows."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from dashboard.media.convert import to_ledger
from dashboard.models.media import Medium
from dashboard.services.base import ServiceError
from usb_guard.certificate import Person, SanitizationCertificate, certificate_for
from usb_guard.certificate_pdf import certificate_pdf
from usb_guard.csv_export import certificate_csv, excel_bytes, ledger_csv
from usb_guard.errors import CertificateError
from usb_guard.i18n import Lang

TECHNIQUE_OF = {"Clear": ("上書き消去", "overwrite"),
                "Purge": ("暗号消去・ブロック消去", "purge (block erase / crypto erase)"),
                "Destroy": ("物理的破壊", "physical destruction")}
METHOD_WORD = {"Clear": ("上書き消去", "overwrite"), "Purge": ("暗号消去", "purge"),
               "Destroy": ("物理的破壊", "destruction")}


class NoCertificate(ServiceError):
    """The medium has no sanitisation to certify yet (not wiped, not disposed of)."""


def has_certificate(row: Medium) -> bool:
    return row.wiped_at is not None or row.disposed_at is not None


def _tr(pair: tuple[str, str], lang: Lang) -> str:
    return pair[0] if lang == "ja" else pair[1]


def certificate_of(row: Medium, *, organization: str, now: datetime,
                   zone: ZoneInfo | None = None, name: Callable[[str], str] = str,
                   lang: Lang = "ja") -> SanitizationCertificate:
    """The certificate for the medium's last sanitisation: its disposal when disposed of
    (certificate number of the disposal), else its last wipe.

    People by name (``name`` maps a dashboard user or a person id to one), one time zone
    (``zone``, the site's: the certificate number's date too), and no destination unless the
    disposal recorded one (a blank to fill in, never a guess)."""
    if not has_certificate(row):
        raise NoCertificate(f"{row.control_number} was neither wiped nor disposed of: "
                            "there is nothing to certify yet")
    zone = zone or ZoneInfo("Asia/Tokyo")
    fields: dict[str, object] = {
        "organization": organization, "capacity": row.capacity, "issued_at": now,
        "verification_result": "passed", "custodian": name(row.custodian),
        "destination": row.disposal_destination or None,
    }
    if row.wiped_at is not None:
        fields.update(
            performed_by=Person(name=name(row.wiped_by or "") or "?"),
            validated_by=Person(name=row.wipe_verifier or "?"),
            technique=row.wipe_technique or _tr(TECHNIQUE_OF.get(
                row.wipe_method or "", ("-", "-")), lang),
            validated_at=row.wiped_at,
            certificate_number=row.disposal_certificate
            or f"{row.control_number}-W{row.wiped_at.astimezone(zone):%Y%m%d%H%M}",
        )
    else:  # disposed of by Destroy without a wipe first
        assert row.disposed_at is not None
        fields.update(
            performed_by=Person(name=name(row.disposed_by or "") or "?"),
            validated_by=Person(name=row.disposal_verifier or "?"),
            technique=_tr(TECHNIQUE_OF["Destroy"], lang),
            tool=(f"廃棄証明書 {row.disposal_certificate}" if lang == "ja"
                  else f"disposal certificate {row.disposal_certificate}"),
            verification_method=(f"{row.disposal_verifier} が破壊を確認" if lang == "ja"
                                 else f"destruction confirmed by {row.disposal_verifier}"),
            validated_at=row.disposed_at,
        )
    if row.disposed_at is not None:
        local = row.disposed_at.astimezone(zone)
        how = _tr(METHOD_WORD.get(row.disposal_method or "", (row.disposal_method or "",) * 2),
                  lang)
        fields["notes"] = (
            f"{local.year}年{local.month}月{local.day}日 {how}により廃棄、廃棄証明書 "
            f"{row.disposal_certificate}" if lang == "ja" else
            f"disposed of {local:%Y-%m-%d} by {how}, certificate {row.disposal_certificate}")
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
