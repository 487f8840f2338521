"""Sanitisation and disposal certificates with the fields NIST SP 800-88 (appendix G) asks for.

``SanitizationCertificate`` is the record; ``rows`` lays it out as labelled sections in Japanese
or English, which both the PDF (``certificate_pdf``) and the CSV (``csv_export``) renderers use.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from usb_guard.errors import CertificateError
from usb_guard.i18n import Lang, label, value
from usb_guard.ledger import Medium, SanitizationMethod

Destination = Literal[
    "internal_reuse", "external_reuse", "recycling", "manufacturer", "destroyed", "other"
]
DEFAULT_TZ = "Asia/Tokyo"


class Person(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    title: str = Field(default="", max_length=200)
    organization: str = Field(default="", max_length=200)
    location: str = Field(default="", max_length=200)
    phone: str = Field(default="", max_length=50)


class SanitizationCertificate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    certificate_number: str = Field(min_length=1, max_length=64)
    organization: str = Field(min_length=1, max_length=200)
    performed_by: Person
    # media information
    control_number: str = Field(min_length=1, max_length=32)
    media_type: str = Field(min_length=1, max_length=100)
    make: str = Field(min_length=1, max_length=200)
    model: str = Field(min_length=1, max_length=200)
    serial: str | None = Field(default=None, max_length=255)
    capacity: str = Field(default="", max_length=50)
    custodian: str = Field(default="", max_length=200)
    classification: str = Field(default="", max_length=200)
    # sanitisation details
    method: SanitizationMethod
    technique: str = Field(min_length=1, max_length=200, description="overwrite, shred, ...")
    tool: str = Field(min_length=1, max_length=200, description="tool and its version")
    verification_method: str = Field(min_length=1, max_length=200)
    verification_result: Literal["passed", "failed"]
    post_classification: str = Field(default="", max_length=200)
    # left empty (a blank to fill in by hand) until the disposal records where the medium went
    destination: Destination | None = None
    destination_detail: str = Field(default="", max_length=200)
    notes: str = Field(default="", max_length=1000)
    # validation
    validated_by: Person
    sanitized_at: datetime
    validated_at: datetime
    issued_at: datetime

    @model_validator(mode="after")
    def _checks(self) -> SanitizationCertificate:
        for when in (self.sanitized_at, self.validated_at, self.issued_at):
            if when.tzinfo is None:
                raise ValueError("certificate dates must be timezone-aware")
        if self.validated_by.name == self.performed_by.name:
            raise ValueError("the validator must be a different person from the performer")
        if self.validated_at < self.sanitized_at:
            raise ValueError("validation cannot precede sanitization")
        if self.verification_result != "passed":
            raise ValueError("a certificate is issued only after a passed verification")
        if self.method == "Destroy" and self.destination in ("internal_reuse", "external_reuse"):
            raise ValueError("a destroyed medium cannot be reused")
        return self


def certificate_for(medium: Medium, **fields: object) -> SanitizationCertificate:
    """Build a certificate from a ledger medium; ``fields`` supply the rest (performer, ...)."""
    base: dict[str, object] = {
        "control_number": medium.control_number, "media_type": medium.media_type,
        "make": medium.make, "model": medium.model, "serial": medium.identity.serial,
        "custodian": medium.custodian,
    }
    if medium.last_wipe is not None:
        base.update(method=medium.last_wipe.method, tool=medium.last_wipe.tool,
                    sanitized_at=medium.last_wipe.wiped_at,
                    verification_method=medium.last_wipe.verification)
    elif medium.disposal is not None:
        base.update(method=medium.disposal.method, sanitized_at=medium.disposal.disposed_at)
    if medium.disposal is not None:
        base.setdefault("certificate_number", medium.disposal.certificate_number)
    base.update(fields)
    try:
        return SanitizationCertificate.model_validate(base)
    except ValidationError as exc:
        raise CertificateError(f"certificate for {medium.control_number} is incomplete: "
                               f"{exc}") from exc


def format_when(when: datetime | None, tz: str = DEFAULT_TZ, lang: Lang = "en") -> str:
    """In the given zone: 2026年11月20日 10:00 JST (ja) or 2026-11-20 10:00 JST (en)."""
    if when is None:
        return ""
    local = when.astimezone(ZoneInfo(tz))
    if lang == "ja":
        return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M %Z}"
    return local.strftime("%Y-%m-%d %H:%M %Z")


Section = tuple[str, list[tuple[str, str]]]


def rows(cert: SanitizationCertificate, lang: Lang, tz: str = DEFAULT_TZ) -> list[Section]:
    """The certificate as (section title, [(label, value)]) in one language."""

    def person(p: Person) -> list[tuple[str, str]]:
        return [(label("name", lang), p.name), (label("title", lang), p.title),
                (label("organization", lang), p.organization),
                (label("location", lang), p.location), (label("phone", lang), p.phone)]

    def L(key: str) -> str:  # noqa: N802
        return label(key, lang)

    return [
        ("", [(L("certificate_number"), cert.certificate_number),
              (L("organization"), cert.organization),
              (L("issued_at"), format_when(cert.issued_at, tz, lang))]),
        (L("section_person"), person(cert.performed_by)),
        (L("section_media"), [
            (L("control_number"), cert.control_number), (L("media_type"), cert.media_type),
            (L("make"), cert.make), (L("model"), cert.model), (L("serial"), cert.serial or "-"),
            (L("capacity"), cert.capacity), (L("custodian"), cert.custodian),
            (L("classification"), cert.classification)]),
        (L("section_sanitization"), [
            (L("method"), value(cert.method, lang)), (L("technique"), cert.technique),
            (L("tool"), cert.tool), (L("verification_method"), cert.verification_method),
            (L("verification_result"), value(cert.verification_result, lang)),
            (L("post_classification"), cert.post_classification),
            (L("sanitized_at"), format_when(cert.sanitized_at, tz, lang)),
            (L("notes"), cert.notes)]),
        (L("section_destination"), [
            (L("destination"), value(cert.destination, lang) if cert.destination else ""),
            (L("destination_detail"), cert.destination_detail)]),
        (L("section_validation"), person(cert.validated_by)
         + [(L("validated_at"), format_when(cert.validated_at, tz, lang))]),
    ]
