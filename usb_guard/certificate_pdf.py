"""PDF rendering of sanitisation certificates (the only module that imports reportlab)."""

from __future__ import annotations

import io
from pathlib import Path
from xml.sax.saxutils import escape

from usb_guard.certificate import DEFAULT_TZ, SanitizationCertificate, rows
from usb_guard.errors import CertificateError, FontError
from usb_guard.fonts import find_japanese_ttf
from usb_guard.i18n import Lang, label

FONT_NAME = "SecroomGothic"
_registered: Path | None = None


def _font(path: Path | None) -> str:
    global _registered
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFError, TTFont

    path = path or find_japanese_ttf()
    if _registered != path:
        try:
            pdfmetrics.registerFont(TTFont(FONT_NAME, str(path)))
        except (TTFError, OSError) as exc:
            raise FontError(f"cannot embed {path}: {exc}; install fonts-ipaexfont-gothic") from exc
        _registered = path
    return FONT_NAME


def certificate_pdf(cert: SanitizationCertificate, lang: Lang, *, tz: str = DEFAULT_TZ,
                    font_path: Path | None = None) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    font = _font(font_path)
    title = ParagraphStyle("title", fontName=font, fontSize=16, leading=22)
    head = ParagraphStyle("head", fontName=font, fontSize=10.5, leading=14, spaceBefore=5,
                          spaceAfter=2)
    cell = ParagraphStyle("cell", fontName=font, fontSize=8.5, leading=11, wordWrap="CJK")
    story: list[object] = [
        Paragraph(escape(label("certificate_title", lang)), title),
        Paragraph(escape(label("certificate_subtitle", lang)), cell),
        Spacer(1, 4 * mm),
    ]
    for section, items in rows(cert, lang, tz):
        if section:
            story.append(Paragraph(escape(section), head))
        data = [[Paragraph(escape(k), cell), Paragraph(escape(v or "-"), cell)] for k, v in items]
        table = Table(data, colWidths=[55 * mm, 115 * mm])
        table.setStyle(TableStyle([
            ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
            ("BACKGROUND", (0, 0), (0, -1), colors.whitesmoke),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("TOPPADDING", (0, 0), (-1, -1), 1.5),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
        ]))
        story.append(table)
    colon = "：" if lang == "ja" else ": "
    signatures = [[Paragraph(escape(label(key, lang) + colon) + "_" * 26, cell)
                   for key in ("signature_performer", "signature_validator")]]
    story += [Spacer(1, 8 * mm), Table(signatures, colWidths=[85 * mm, 85 * mm])]
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=A4, title=f"{cert.certificate_number}",
                            leftMargin=20 * mm, rightMargin=20 * mm,
                            topMargin=18 * mm, bottomMargin=18 * mm)
    try:
        doc.build(story)
    except (ValueError, KeyError, OSError) as exc:
        raise CertificateError(f"cannot render certificate {cert.certificate_number}: {exc}") \
            from exc
    return out.getvalue()
