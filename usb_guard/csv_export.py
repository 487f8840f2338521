"""CSV exports (certificates, the media ledger) that are safe to open in a spreadsheet.

Every cell that a spreadsheet could read as a formula (starting with = + - @, a tab or a
carriage return, or their full-width forms) is prefixed with a single quote.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from usb_guard.certificate import DEFAULT_TZ, SanitizationCertificate, format_when, rows
from usb_guard.i18n import Lang, label, value
from usb_guard.ledger import Medium

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")
BOM = "\ufeff"


def safe_cell(cell: object) -> str:
    text = "" if cell is None else str(cell)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _write(table: Iterable[Iterable[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in table:
        writer.writerow([safe_cell(c) for c in row])
    return out.getvalue()


def certificate_csv(cert: SanitizationCertificate, lang: Lang, tz: str = DEFAULT_TZ) -> str:
    table: list[list[object]] = [[label("field", lang), label("value", lang)]]
    for section, items in rows(cert, lang, tz):
        for name, text in items:
            table.append([f"{section} / {name}" if section else name, text])
    return _write(table)


LEDGER_COLUMNS = (
    "control_number", "state", "media_type", "make", "model", "vendor_product", "serial",
    "custodian", "hosts", "read_only", "registered_at", "holder", "purpose", "due_back",
    "approved_by", "wipe_method", "wiped_at", "verifier", "disposal_method",
    "disposal_certificate", "disposed_at",
)


def ledger_csv(media: Iterable[Medium], lang: Lang, tz: str = DEFAULT_TZ) -> str:
    """The media ledger (媒体管理台帳), one row per medium."""
    table: list[list[object]] = [[label(c, lang) for c in LEDGER_COLUMNS]]
    for m in media:
        co, wp, dp = m.checkout, m.last_wipe, m.disposal
        table.append([
            m.control_number, value(m.state, lang), m.media_type, m.make, m.model,
            f"{m.identity.vendor_id}:{m.identity.product_id}", m.identity.serial or "",
            m.custodian, " ".join(m.hosts), value("yes" if m.read_only else "no", lang),
            format_when(m.registered_at, tz),
            co.holder if co else "", co.purpose if co else "",
            format_when(co.due_back, tz) if co else "", co.approved_by if co else "",
            value(wp.method, lang) if wp else "", format_when(wp.wiped_at, tz) if wp else "",
            wp.verifier if wp else "",
            value(dp.method, lang) if dp else "", dp.certificate_number if dp else "",
            format_when(dp.disposed_at, tz) if dp else "",
        ])
    return _write(table)


def excel_bytes(text: str) -> bytes:
    """UTF-8 with a BOM, so that Excel opens Japanese CSV correctly."""
    return (BOM + text).encode("utf-8")
