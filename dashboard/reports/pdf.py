"""PDF rendering (reportlab, with the Japanese TrueType font usb_guard.fonts finds).

The seal travels inside the PDF as a base64 keyword (``secroom-seal:...`` in the document
info), so ``report verify`` can read it back without a PDF parser.
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from controller.envelope import canonical_json
from dashboard.reports.data import ReportError
from usb_guard.errors import FontError
from usb_guard.fonts import find_japanese_ttf

FONT = "SecroomReportGothic"
SEAL_RE = re.compile(rb"secroom-seal:([A-Za-z0-9+/=]+)")
_registered: Path | None = None


def font(path: Path | None = None) -> str:
    global _registered
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFError, TTFont

    try:
        path = path or find_japanese_ttf()
    except FontError as exc:
        raise ReportError(str(exc)) from exc
    if _registered != path:
        try:
            pdfmetrics.registerFont(TTFont(FONT, str(path)))
        except (TTFError, OSError) as exc:
            raise ReportError(f"cannot embed {path}: {exc}; install fonts-ipaexfont-gothic"
                              ) from exc
        _registered = path
    return FONT


def seal_keyword(seal: dict[str, Any]) -> str:
    return "secroom-seal:" + base64.b64encode(canonical_json(seal)).decode()


def read_seal(data: bytes) -> dict[str, Any]:
    m = SEAL_RE.search(data)
    if not m:
        raise ReportError("no secroom seal in this file (was it made by secroom report?)")
    try:
        seal = json.loads(base64.b64decode(m.group(1)))
    except ValueError as exc:
        raise ReportError("the seal in this file is damaged") from exc
    if not isinstance(seal, dict):
        raise ReportError("the seal in this file is damaged")
    return seal


class Doc:
    """A small builder over platypus: title, headings, key/value lines, tables."""

    def __init__(self) -> None:
        from reportlab.lib.styles import ParagraphStyle

        f = font()
        self.title_s = ParagraphStyle("t", fontName=f, fontSize=15, leading=21, spaceAfter=6)
        self.head_s = ParagraphStyle("h", fontName=f, fontSize=11, leading=16, spaceBefore=10,
                                     spaceAfter=4)
        self.cell_s = ParagraphStyle("c", fontName=f, fontSize=8, leading=11, wordWrap="CJK")
        self.text_s = ParagraphStyle("p", fontName=f, fontSize=9, leading=13, wordWrap="CJK")
        self.story: list[Any] = []

    def title(self, text: str) -> None:
        from reportlab.platypus import Paragraph

        self.story.append(Paragraph(escape(text), self.title_s))

    def heading(self, text: str) -> None:
        from reportlab.platypus import Paragraph

        self.story.append(Paragraph(escape(text), self.head_s))

    def text(self, text: str) -> None:
        from reportlab.platypus import Paragraph

        self.story.append(Paragraph(escape(text), self.text_s))

    def table(self, header: Sequence[str], rows: Sequence[Sequence[Any]],
              widths: Sequence[float] | None = None) -> None:
        from reportlab.lib import colors
        from reportlab.lib.units import mm
        from reportlab.platypus import Paragraph, Table, TableStyle

        data = [[Paragraph(escape(str(h)), self.cell_s) for h in header]]
        data += [[Paragraph(escape("" if v is None else str(v)), self.cell_s) for v in r]
                 for r in rows]
        t = Table(data, colWidths=[w * mm for w in widths] if widths else None, repeatRows=1)
        t.setStyle(TableStyle([
            ("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
            ("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ]))
        self.story.append(t)

    def render(self, *, title: str, keywords: str = "") -> bytes:
        from reportlab.lib.pagesizes import A4
        from reportlab.lib.units import mm
        from reportlab.platypus import SimpleDocTemplate

        buf = io.BytesIO()
        doc = SimpleDocTemplate(buf, pagesize=A4, title=title, author="secroom",
                                keywords=keywords, leftMargin=15 * mm, rightMargin=15 * mm,
                                topMargin=15 * mm, bottomMargin=15 * mm)
        doc.build(self.story)
        return buf.getvalue()
