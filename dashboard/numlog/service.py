"""Import entry points used by the CLI, the upload page, the API and the drop folder."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from controller.numguard import contains_my_number, redact
from dashboard.audit import append_audit
from dashboard.correlation.engine import Correlator
from dashboard.numlog.parse import ColumnMapping, NumlogError, load_json, parse_csv, parse_json_rows
from dashboard.numlog.store import ImportReport, store_rows

SOURCE_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
MAX_BYTES = 64 * 1024 * 1024


def check_source(source: str) -> str:
    if not SOURCE_RE.match(source or "") or contains_my_number(source):
        raise NumlogError("source must be 1-64 letters, digits, '.', '_' or '-' (and no number)")
    return source


def import_csv(session: Session, data: bytes, *, source: str, now: datetime, zone: ZoneInfo,
               actor: str = "cli", filename: str = "", preset: str | None = None,
               mapping: ColumnMapping | None = None, correlator: Correlator | None = None
               ) -> ImportReport:
    """Parse, redact, store and correlate one CSV file; audited. The caller commits."""
    check_source(source)
    if len(data) > MAX_BYTES:
        raise NumlogError(f"the file is larger than {MAX_BYTES // (1024 * 1024)} MiB; split it")
    filename = redact(filename).text  # a file may be named after a person's number
    parsed = parse_csv(data, zone, preset=preset, mapping=mapping)
    digest = hashlib.sha256(data).hexdigest()
    report = store_rows(session, parsed, source=source, now=now, actor=actor,
                        filename=filename, file_sha256=digest, correlator=correlator)
    _audit(session, actor, report, now, filename)
    return report


def import_json(session: Session, data: bytes | list[Any], *, source: str, now: datetime,
                zone: ZoneInfo, actor: str, correlator: Correlator | None = None
                ) -> ImportReport:
    check_source(source)
    items = load_json(data) if isinstance(data, bytes) else data
    parsed = parse_json_rows(items, zone)
    report = store_rows(session, parsed, source=source, now=now, actor=actor, filename="(api)",
                        correlator=correlator)
    _audit(session, actor, report, now, "(api)")
    return report


def _audit(session: Session, actor: str, report: ImportReport, now: datetime, filename: str
           ) -> None:
    summary = report.as_dict()
    summary.pop("errors")
    summary["error_lines"] = [e["line"] for e in report.errors[:200]]
    summary["file"] = filename[:255]
    append_audit(session, actor=actor or "system", action="numlog.import",
                 target_type="numlog_batch", target_id=str(report.batch_id), before=None,
                 after=summary, now=now)
