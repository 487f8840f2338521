"""Issue the monthly handling report (per client, or the internal all-clients report): gather,
seal, render as PDF, CSV and XLSX, keep the three files as issued with their hashes in the audit
chain; download them again (checked against that record), supersede an issue with a corrected
one that states why.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dashboard.audit import append_audit
from dashboard.models.audit import AuditRecord
from dashboard.models.correlation import DeletionCertificate, IssuedReport
from dashboard.models.reports import IssuedFile
from dashboard.reports.clients import measures_of, office_profile
from dashboard.reports.collect import gather
from dashboard.reports.data import MonthData, ReportError
from dashboard.reports.document import Document, Issue, build
from dashboard.reports.guard import has_number
from dashboard.reports.names import Names
from dashboard.reports.render import render_csv, render_pdf, render_xlsx
from dashboard.reports.seal import compute_seal, seal_sha256

Format = Literal["pdf", "csv", "xlsx"]
FORMATS: tuple[Format, ...] = ("pdf", "csv", "xlsx")
MEDIA_TYPES = {"pdf": "application/pdf", "csv": "text/csv; charset=utf-8",
               "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


@dataclass
class Issued:
    data: MonthData
    doc: Document
    seal: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    record_id: int = 0
    number: str = ""

    @property
    def content(self) -> bytes:
        return self.files["pdf"]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def next_number(session: Session, now: datetime, zone: ZoneInfo, *, certificate: bool = False
                ) -> str:
    """年-連番 (2026-0007): the year's next number for reports, or for certificates."""
    year = now.astimezone(zone).year
    model: Any = DeletionCertificate if certificate else IssuedReport
    taken = session.scalars(select(model.number).where(model.number.like(f"{year}-%"))).all()
    seq = max((int(n.split("-")[1]) for n in taken if n and n.split("-")[1].isdigit()),
              default=0)
    return f"{year}-{seq + 1:04d}"


def issue(session: Session, *, month: str, client_id: int | None, lang: str, zone: ZoneInfo,
          now: datetime, actor: str = "cli", supersedes: int | None = None,
          reason: str = "") -> Issued:
    """Make the report, keep its files as issued and audit the issue. The caller commits."""
    if lang not in ("ja", "en"):
        raise ReportError("lang must be ja or en")
    corrects = None
    if supersedes is not None:
        old = session.get(IssuedReport, supersedes)
        if old is None:
            raise ReportError(f"no issued report {supersedes}")
        if superseded_by(session, old.id) is not None:
            raise ReportError(f"report {old.number or old.id} was superseded already")
        reason = reason.strip()
        if not reason or len(reason) > 1000 or has_number(reason):
            raise ReportError("reason: state why the report is corrected (1-1000 characters, "
                              "no individual number)")
        month, client_id = old.month, old.client_id
        corrects = (old.number or str(old.id), old.issued_at.astimezone(zone).date(), reason)
    d = gather(session, month, client_id, zone, now)
    seal = compute_seal(session, d.since, d.until)
    profile = office_profile(session)
    number = next_number(session, now, zone)
    doc = build(d, profile, measures_of(profile), lang, seal,  # type: ignore[arg-type]
                Issue(number, now, corrects), Names(session).node)
    files = {"pdf": render_pdf(doc), "csv": render_csv(doc), "xlsx": render_xlsx(doc)}
    rec = IssuedReport(kind="monthly", month=month, org=(d.client.name if d.client else "")[:255],
                       lang=lang, period_start=d.since, period_end=d.until, issued_at=now,
                       issued_by=actor, seal=seal, seal_sha256=seal_sha256(seal),
                       file_sha256=sha256(files["pdf"]), number=number, client_id=client_id,
                       supersedes=supersedes, supersede_reason=reason or None)
    session.add(rec)
    session.flush()
    hashes = store_files(session, files, report_id=rec.id)
    append_audit(session, actor=actor, action="report.supersede" if supersedes else
                 "report.issue", target_type="report", target_id=str(rec.id), before=None,
                 after={"number": number, "month": month, "client_id": client_id,
                        "lang": lang, "seal": rec.seal_sha256, "files": hashes,
                        "supersedes": supersedes, "reason": reason or None}, now=now)
    return Issued(data=d, doc=doc, seal=seal, files=files, record_id=rec.id, number=number)


def store_files(session: Session, files: dict[str, bytes], *, report_id: int | None = None,
                certificate_id: int | None = None) -> dict[str, str]:
    hashes = {}
    for fmt, content in files.items():
        hashes[fmt] = sha256(content)
        session.add(IssuedFile(report_id=report_id, certificate_id=certificate_id, fmt=fmt,
                               sha256=hashes[fmt], size=len(content), content=content))
    session.flush()
    return hashes


def superseded_by(session: Session, report_id: int) -> IssuedReport | None:
    return session.scalars(select(IssuedReport).where(IssuedReport.supersedes == report_id)
                           .limit(1)).first()


def issued_hashes(session: Session, target_type: str, target_id: int) -> dict[str, str]:
    """The file hashes the audit chain recorded when the document was issued."""
    rec = session.scalars(select(AuditRecord).where(
        AuditRecord.target_type == target_type, AuditRecord.target_id == str(target_id),
        AuditRecord.action.in_(("report.issue", "report.supersede", "certificate.issue")))
        .order_by(AuditRecord.seq).limit(1)).first()
    files = (rec.after or {}).get("files") if rec is not None else None
    return dict(files) if isinstance(files, dict) else {}


def stored_file(session: Session, *, fmt: str, report_id: int | None = None,
                certificate_id: int | None = None) -> bytes:
    """A file as issued, checked against the hash in the audit chain."""
    if fmt not in FORMATS:
        raise ReportError("format must be pdf, csv or xlsx")
    q = select(IssuedFile).where(IssuedFile.fmt == fmt)
    q = q.where(IssuedFile.report_id == report_id) if report_id is not None else q.where(
        IssuedFile.certificate_id == certificate_id)
    row = session.scalars(q.limit(1)).first()
    if row is None:
        raise ReportError("no such issued file")
    expected = issued_hashes(session, "report" if report_id is not None else "certificate",
                             report_id if report_id is not None else certificate_id or 0)
    if sha256(row.content) != row.sha256 or expected.get(fmt) != row.sha256:
        raise ReportError("the stored file differs from the one issued (altered after issue); "
                          "verify the audit log")
    return row.content


def issued_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(IssuedReport)) or 0
