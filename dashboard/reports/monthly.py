"""The monthly handling report: gather, seal, render (PDF or CSV), record as issued; verify."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from controller.envelope import canonical_json
from dashboard.audit import append_audit
from dashboard.models.correlation import IssuedReport
from dashboard.reports.csvout import CSV_SEAL_RE, csv_bytes
from dashboard.reports.data import MediaRecord, MonthlyData, ReportError, gather
from dashboard.reports.labels import Lang, label
from dashboard.reports.pdf import Doc, read_seal, seal_keyword
from dashboard.reports.seal import VerifyResult, compute_seal, seal_sha256, verify
from dashboard.textguard import guard_text

Format = Literal["pdf", "csv"]
# column widths (mm) of the PDF tables, 180 mm in all
WIDTHS = ([60, 90, 30], [62, 50, 43, 25], [50, 80, 25, 25], [40, 50, 50, 40], [40, 40, 100],
          [22, 38, 15, 45, 14, 46], [60, 120], [35, 120, 25])


@dataclass
class Issued:
    data: MonthlyData
    seal: dict[str, Any]
    content: bytes
    record_id: int


def _local(ts: datetime, zone: ZoneInfo) -> str:
    return ts.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def sections(d: MonthlyData, lang: Lang, seal: dict[str, Any], issued_at: datetime
             ) -> list[tuple[str, list[str], list[list[Any]]]]:
    """The report as (heading, header, rows) sections, shared by the PDF and the CSV."""
    L = lambda k, **f: label(k, lang, **f)  # noqa: E731
    z = d.zone
    until_local = d.until.astimezone(z)
    period = f"{d.since.astimezone(z):%Y-%m-%d} - {until_local:%Y-%m-%d} ({d.zone.key})"
    out: list[tuple[str, list[str], list[list[Any]]]] = [
        ("", [L("title"), ""], [[L("org"), d.org or "-"], [L("period"), period],
                                [L("issued"), _local(issued_at, z)]]),
        (L("s_entries"), [L("person"), L("name"), L("count")],
         [[L("entries_total"), "", d.entries_total], [L("denied_total"), "", d.denied_total]]
         + [[p, n, c] for p, n, c in d.entries_by_person]),
        (L("s_access"), [L("operator"), L("action"), L("purpose"), L("count")],
         [[L("accesses_total"), "", "", d.accesses_total],
          [L("exports_total"), "", "", d.exports_total]]
         + [[o, a, p or "-", n] for o, a, p, n in d.accesses]),
        (L("s_output"), [L("person"), L("printer"), L("count"), L("pages")],
         [[L("prints_total"), "", d.prints_total, sum(r[3] for r in d.prints)]]
         + [list(r) for r in d.prints]),
        (L("s_media"), [L("at"), L("control_number"), L("action"), L("by")],
         [[L(a), "", d.media.get(a, 0), ""] for a in ("check_out", "return", "wipe", "dispose")]
         + [[_local(m.at, z), m.control_number, L(m.action) if m.action in d.media else m.action,
             m.actor] for m in d.media_rows]),
        (L("s_backup"), [L("night"), L("result"), ""],
         [[n.isoformat(), L(r), det] for n, r, det in d.backups]),
        (L("s_anomalies"), [L("at"), L("kind"), L("severity"), L("subject"), L("state"),
                            L("reason")],
         [[_local(a["at"], z), a["kind"], a["severity"], a["subject"], L(a["state"]),
           (f"{a['by']}: " if a["by"] else "") + a["reason"]] for a in d.anomalies]
         or [[L("none_rows"), "", "", "", "", ""]]),
        (L("s_leak"), ["", ""],
         [[L("s_leak"), L("leak_" + d.leak, n=d.leak_count)]]),
        (L("s_seal"), [L("node"), L("head"), L("events")],
         [[n, f"{i['head_seq']}:{i['head_hash']}", i["events"]]
          for n, i in seal["nodes"].items()]
         + [[L("audit_log"), f"{seal['audit']['head_seq']}:{seal['audit']['head_hash']}", ""],
            [L("rows_digest"), seal["number_access"]["digest"], seal["number_access"]["rows"]],
            [L("seal_id"), seal_sha256(seal), L("verify_hint")]]),
    ]
    return out


def render_pdf(d: MonthlyData, lang: Lang, seal: dict[str, Any], issued_at: datetime) -> bytes:
    doc = Doc()
    secs = sections(d, lang, seal, issued_at)
    head = secs[0]
    doc.title(head[1][0])
    for k, v in head[2]:
        doc.text(f"{k}: {v}")
    for (heading, header, rows), widths in zip(secs[1:], WIDTHS, strict=True):
        doc.heading(heading)
        doc.table(header, rows, widths)
    return doc.render(title=label("title", lang), keywords=seal_keyword(seal))


def render_csv(d: MonthlyData, lang: Lang, seal: dict[str, Any], issued_at: datetime) -> bytes:
    return csv_bytes(sections(d, lang, seal, issued_at),
                     base64.b64encode(canonical_json(seal)).decode())


def issue(session: Session, *, month: str, org: str, lang: Lang, fmt: Format, zone: ZoneInfo,
          now: datetime, actor: str = "cli", media: Sequence[MediaRecord] | None = None
          ) -> Issued:
    """Make the report, record it (with its seal) as issued and audit it. The caller commits.
    ``media``: the ledger's actions (default: read from the dashboard's media ledger)."""
    if lang not in ("ja", "en"):
        raise ReportError("lang must be ja or en")
    org = guard_text(org, "org")
    if media is None:
        from dashboard.reports.data import month_bounds
        from dashboard.reports.media_source import media_records

        media = media_records(session, *month_bounds(month, zone))
    d = gather(session, month, org, zone, media)
    seal = compute_seal(session, d.since, d.until)
    content = (render_pdf if fmt == "pdf" else render_csv)(d, lang, seal, now)
    rec = IssuedReport(kind="monthly", month=month, org=org[:255], lang=lang,
                       period_start=d.since, period_end=d.until, issued_at=now, issued_by=actor,
                       seal=seal, seal_sha256=seal_sha256(seal),
                       file_sha256=hashlib.sha256(content).hexdigest())
    session.add(rec)
    session.flush()
    append_audit(session, actor=actor, action="report.issue", target_type="report",
                 target_id=str(rec.id), before=None,
                 after={"month": month, "org": org, "lang": lang, "format": fmt,
                        "seal": rec.seal_sha256, "file": rec.file_sha256}, now=now)
    return Issued(data=d, seal=seal, content=content, record_id=rec.id)


def seal_of_file(content: bytes) -> dict[str, Any]:
    if content.startswith(b"%PDF"):
        return read_seal(content)
    m = CSV_SEAL_RE.search(content)
    if not m:
        raise ReportError("no secroom seal in this file (was it made by secroom report?)")
    return read_seal(b"secroom-seal:" + m.group(1))


def verify_file(session: Session, content: bytes) -> VerifyResult:
    """Recompute the file's sealed period from the database and compare."""
    seal = seal_of_file(content)
    return verify(session, seal)
