"""PDF rendering (reportlab, with the Japanese TrueType font usb_guard.fonts finds): a small
builder for business documents (addressee, issuer block with a seal box, centred 記, tables)
with "n / N" page numbers in the footer.

The seal travels inside the PDF as a base64 keyword (``secroom-seal:...`` in the document
info), so ``report verify`` can read it back without a PDF parser.
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Callable, Sequence
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
CHUNK = 40  # table rows per flowable


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


def _numbered(footer: str, page_label: Callable[[int, int], str]) -> type:
    """A canvas that writes the footer and "n / N" once the page count is known."""
    from reportlab.lib.units import mm
    from reportlab.pdfgen.canvas import Canvas

    class NumberedCanvas(Canvas):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:  # noqa: N802 - reportlab's name
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                self.setFont(FONT, 8)
                width = self._pagesize[0]
                self.drawString(15 * mm, 8 * mm, footer)
                self.drawRightString(width - 15 * mm, 8 * mm,
                                     page_label(self._pageNumber, total))
                super().showPage()
            super().save()

    return NumberedCanvas


class Doc:
    """A builder over platypus: title, headings, text, tables, letter blocks."""

    def __init__(self) -> None:
        from reportlab.lib.enums import TA_CENTER, TA_RIGHT
        from reportlab.lib.styles import ParagraphStyle

        f = font()
        self.title_s = ParagraphStyle("t", fontName=f, fontSize=14, leading=20, spaceAfter=4,
                                      alignment=TA_CENTER, spaceBefore=8)
        self.sub_s = ParagraphStyle("s", fontName=f, fontSize=10, leading=14, spaceAfter=8,
                                    alignment=TA_CENTER)
        self.head_s = ParagraphStyle("h", fontName=f, fontSize=11, leading=16, spaceBefore=10,
                                     spaceAfter=4)
        self.cell_s = ParagraphStyle("c", fontName=f, fontSize=7.5, leading=10,
                                     wordWrap="CJK")
        self.text_s = ParagraphStyle("p", fontName=f, fontSize=9.5, leading=14, wordWrap="CJK",
                                     spaceAfter=3)
        self.big_s = ParagraphStyle("b", fontName=f, fontSize=12, leading=17)
        self.center_s = ParagraphStyle("m", fontName=f, fontSize=11, leading=16,
                                       alignment=TA_CENTER, spaceBefore=6, spaceAfter=6)
        self.right_s = ParagraphStyle("r", fontName=f, fontSize=9.5, leading=14,
                                      alignment=TA_RIGHT)
        self.story: list[Any] = []

    def _p(self, text: str, style: Any) -> Any:
        from reportlab.platypus import Paragraph

        return Paragraph(escape(text).replace("\n", "<br/>"), style)

    def title(self, text: str, subtitle: str = "") -> None:
        self.story.append(self._p(text, self.title_s))
        if subtitle:
            self.story.append(self._p(subtitle, self.sub_s))

    def heading(self, text: str) -> None:
        self.story.append(self._p(text, self.head_s))

    def text(self, text: str) -> None:
        self.story.append(self._p(text, self.text_s))

    def centre(self, text: str) -> None:
        self.story.append(self._p(text, self.center_s))

    def right(self, text: str) -> None:
        self.story.append(self._p(text, self.right_s))

    def page_break(self) -> None:
        from reportlab.platypus import PageBreak

        self.story.append(PageBreak())

    def letterhead(self, addressee: str, number: str, date: str,
                   issuer: Sequence[tuple[str, str]], seal_label: str) -> None:
        """Number and date top right, addressee left, the issuer's block right with a box
        for the seal (印)."""
        from reportlab.lib import colors
        from reportlab.lib.units import mm
        from reportlab.platypus import Spacer, Table, TableStyle

        self.story.append(Table([["", self._p(number, self.right_s)],
                                 ["", self._p(date, self.right_s)]],
                                colWidths=[100 * mm, 80 * mm]))
        self.story.append(Spacer(1, 4 * mm))
        self.story.append(self._p(addressee, self.big_s))
        self.story.append(Spacer(1, 4 * mm))
        lines = [[self._p(f"{k} {v}", self.text_s)] for k, v in issuer] or [[""]]
        block = Table(lines, colWidths=[82 * mm])
        box = Table([[self._p(seal_label, self.center_s)]], colWidths=[18 * mm],
                    rowHeights=[18 * mm])
        box.setStyle(TableStyle([("BOX", (0, 0), (-1, -1), 0.6, colors.grey),
                                 ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                                 ("TEXTCOLOR", (0, 0), (-1, -1), colors.lightgrey)]))
        outer = Table([["", block, box]], colWidths=[76 * mm, 84 * mm, 20 * mm])
        outer.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "MIDDLE")]))
        self.story.append(outer)

    def table(self, header: Sequence[str], rows: Sequence[Sequence[Any]],
              widths: Sequence[float] | None = None, *, header_row: bool = True) -> None:
        from reportlab.lib import colors
        from reportlab.lib.units import mm
        from reportlab.pdfbase.pdfmetrics import stringWidth
        from reportlab.platypus import Table, TableStyle

        room = [w * mm - 4.5 for w in widths] if widths else None
        size = self.cell_s.fontSize

        def cell(v: Any, i: int) -> Any:
            # a plain string is drawn without a paragraph (much faster on long annexes) when
            # it fits its column on one line; anything longer wraps as a paragraph
            text = "" if v is None else str(v)
            if room is not None and "\n" not in text and stringWidth(
                    text, self.cell_s.fontName, size) <= room[i]:
                return text
            return self._p(text, self.cell_s)

        head = [[cell(h, i) for i, h in enumerate(header)]] if header_row else []
        body = [[cell(v, i) for i, v in enumerate(r)] for r in rows]
        style = [("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
                 ("VALIGN", (0, 0), (-1, -1), "TOP"),
                 ("FONT", (0, 0), (-1, -1), self.cell_s.fontName, size, self.cell_s.leading)]
        if header_row:
            style.append(("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke))
        # long annexes as page-sized tables: splitting one table of thousands of rows page by
        # page costs time quadratic in its length
        for i in range(0, max(len(body), 1), CHUNK):
            t = Table(head + body[i:i + CHUNK], repeatRows=1 if header_row else 0,
                      colWidths=[w * mm for w in widths] if widths else None)
            t.setStyle(TableStyle(style))
            self.story.append(t)

    def render(self, *, title: str, keywords: str = "", footer: str = "",
               page_label: Callable[[int, int], str] | None = None,
               wide: bool = False) -> bytes:
        """``wide``: A4 landscape (267 mm between the margins, for wide registers)."""
        from reportlab.lib.pagesizes import A4, landscape
        from reportlab.lib.units import mm
        from reportlab.platypus import SimpleDocTemplate

        buf = io.BytesIO()
        doc = SimpleDocTemplate(buf, pagesize=landscape(A4) if wide else A4, title=title,
                                author="secroom", keywords=keywords, leftMargin=15 * mm,
                                rightMargin=15 * mm, topMargin=15 * mm, bottomMargin=17 * mm)
        doc.build(self.story, canvasmaker=_numbered(
            footer, page_label or (lambda n, total: f"{n} / {total}")))
        return buf.getvalue()
