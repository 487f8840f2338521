"""Verify a file someone hands back: is it, byte for byte, a document we issued (and is that
issue still current, or was it superseded), and do the records its seal covers still hold?"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.models.correlation import DeletionCertificate, IssuedReport
from dashboard.models.reports import IssuedFile
from dashboard.reports.csvout import CSV_SEAL_RE
from dashboard.reports.data import ReportError
from dashboard.reports.monthly import issued_hashes, sha256, superseded_by
from dashboard.reports.pdf import read_seal
from dashboard.reports.render import xlsx_seal
from dashboard.reports.seal import verify as verify_seal

MAX_BYTES = 50 * 1024 * 1024


@dataclass
class Verified:
    ok: bool
    problems: list[str] = field(default_factory=list)
    document: str = ""  # "report 2026-0003" / "certificate 2026-0001"
    kind: str = ""  # report, certificate, "" (not one we issued)
    number: str = ""
    superseded_by: str = ""
    supersede_reason: str = ""
    checked_events: int = 0
    checked_rows: int = 0

    @property
    def technical(self) -> list[str]:
        """The problems other than "superseded" and "not one we issued" (said in words)."""
        return [p for p in self.problems
                if not p.startswith(("superseded by", "not a file we issued"))]

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "document": self.document, "superseded_by": self.superseded_by,
                "reason": self.supersede_reason, "events": self.checked_events,
                "rows": self.checked_rows, "problems": self.problems}


def seal_of_file(content: bytes) -> dict[str, Any] | None:
    """The seal a report file carries (PDF keywords, CSV last row, XLSX property)."""
    if content.startswith(b"%PDF"):
        return read_seal(content)
    if content.startswith(b"PK"):
        b64 = xlsx_seal(content)
        return read_seal(b"secroom-seal:" + b64.encode()) if b64 else None
    m = CSV_SEAL_RE.search(content)
    if m:
        return read_seal(b"secroom-seal:" + m.group(1))
    return None


def verify_file(session: Session, content: bytes) -> Verified:
    if not content:
        raise ReportError("the file is empty")
    if len(content) > MAX_BYTES:
        raise ReportError("the file is larger than any document we issue")
    res = Verified(ok=True)
    digest = sha256(content)
    row = session.scalars(select(IssuedFile).where(IssuedFile.sha256 == digest).limit(1)).first()
    if row is None:
        res.problems.append("not a file we issued, or altered since (no issued file has its "
                            "SHA-256)")
    elif row.report_id is not None:
        rep = session.get(IssuedReport, row.report_id)
        assert rep is not None
        res.kind, res.number = "report", rep.number or str(rep.id)
        res.document = f"report {res.number}"
        if issued_hashes(session, "report", rep.id).get(row.fmt) != digest:
            res.problems.append("the audit log does not record this file for the issue")
        newer = superseded_by(session, rep.id)
        if newer is not None:
            res.superseded_by = newer.number or str(newer.id)
            res.supersede_reason = newer.supersede_reason or ""
            res.problems.append(f"superseded by report {res.superseded_by}: "
                                f"{res.supersede_reason}")
    else:
        cert = session.get(DeletionCertificate, row.certificate_id)
        assert cert is not None
        res.kind, res.number = "certificate", cert.number
        res.document = f"certificate {cert.number}"
        if issued_hashes(session, "certificate", cert.id).get(row.fmt) != digest:
            res.problems.append("the audit log does not record this file for the certificate")
    try:
        seal = seal_of_file(content)
    except ReportError as exc:
        res.problems.append(str(exc))
        seal = None
    if seal is not None:
        sealed = verify_seal(session, seal)
        res.problems += sealed.problems
        res.checked_events, res.checked_rows = sealed.checked_events, sealed.checked_rows
    elif res.kind == "report":
        res.problems.append("the report carries no seal")
    res.ok = not res.problems
    return res
