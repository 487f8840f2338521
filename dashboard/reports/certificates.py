"""Deletion / disposal certificates (削除証明書): date, person in charge, reason, subject, result,
method. No individual number may appear: one typed into any field is replaced by the guard
(``GuardedModel``) before the certificate is stored or printed (the subject is named, e.g.
"従業員 山田太郎 の個人番号", never the number itself)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import ConfigDict, Field
from sqlalchemy.orm import Session

from dashboard.audit import append_audit
from dashboard.models.correlation import DeletionCertificate
from dashboard.reports.csvout import write_rows
from dashboard.reports.labels import Lang, label
from dashboard.reports.pdf import Doc
from dashboard.textguard import GuardedModel


class CertificateIn(GuardedModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)
    number: str = Field(min_length=1, max_length=64)
    org: str = Field(min_length=1, max_length=255)
    processed_on: date
    person_in_charge: str = Field(min_length=1, max_length=128)
    reason: str = Field(min_length=1, max_length=2000)
    subject: str = Field(min_length=1, max_length=2000)
    result: str = Field(min_length=1, max_length=255)
    method: str = Field(min_length=1, max_length=255)


class CertificateError(ValueError):
    """The certificate's fields are invalid (the message never echoes a value)."""


def parse_certificate(data: dict[str, object]) -> CertificateIn:
    try:
        return CertificateIn.model_validate(data)
    except ValueError as exc:
        errors = getattr(exc, "errors", None)
        msg = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors()
                        ) if callable(errors) else "invalid certificate"
        raise CertificateError(msg) from None


def record(session: Session, cert: CertificateIn, *, actor: str, now: datetime
           ) -> DeletionCertificate:
    row = DeletionCertificate(**cert.model_dump(), issued_at=now, issued_by=actor)
    session.add(row)
    session.flush()
    append_audit(session, actor=actor, action="certificate.issue", target_type="certificate",
                 target_id=cert.number, before=None, after=cert.model_dump(), now=now)
    return row


FIELDS = ("processed_on", "person_in_charge", "cert_reason", "cert_subject", "cert_result",
          "method")


def _values(c: CertificateIn) -> list[str]:
    return [c.processed_on.isoformat(), c.person_in_charge, c.reason, c.subject, c.result,
            c.method]


def certificate_pdf(certs: list[CertificateIn], lang: Lang, *, issuer: str = "") -> bytes:
    doc = Doc()
    for i, c in enumerate(certs):
        if i:
            from reportlab.platypus import PageBreak

            doc.story.append(PageBreak())
        doc.text(label("to_org", lang, org=c.org))
        doc.title(label("cert_title", lang))
        doc.text(label("cert_body", lang))
        doc.text(f"{label('cert_number', lang)}: {c.number}")
        doc.table(["", ""], [[label(k, lang), v] for k, v in zip(FIELDS, _values(c), strict=True)],
                  [40, 140])
        if issuer:
            doc.text(issuer)
    return doc.render(title=label("cert_title", lang))


def certificate_csv(certs: list[CertificateIn], lang: Lang) -> bytes:
    header = [label("cert_number", lang), label("org", lang)]
    header += [label(k, lang) for k in FIELDS]
    return write_rows([header, *[[c.number, c.org, *_values(c)] for c in certs]])
