"""The monthly handling report (dashboard.reports.document) as PDF, CSV and XLSX.

The three carry the same text and the same seal: the PDF in its keywords, the CSV in its last
row, the XLSX in a custom document property (``secroom-seal``).
"""

from __future__ import annotations

import base64
import io
from typing import Any

from controller.envelope import canonical_json
from dashboard.reports.csvout import csv_bytes
from dashboard.reports.document import Document
from dashboard.reports.labels import label
from dashboard.reports.pdf import Doc, seal_keyword

XLSX_SEAL = "secroom-seal"


def render_pdf(d: Document) -> bytes:
    L = lambda key_, **f: label(key_, d.lang, **f)  # noqa: E731
    doc = Doc()
    doc.letterhead(d.addressee, d.number, d.issued_on, d.issuer, L("seal"))
    doc.title(d.title, d.subtitle)
    for line in d.letter[:-1]:
        doc.text(line)
    doc.right(d.letter[-1])
    doc.centre(L("ki"))
    doc.heading(L("s1"))
    doc.table([L("kind_col"), L("policy_col"), L("record_col")],
              [["\n".join([k]), "\n".join(f"・{p}" for p in policy),
                "\n".join(f"・{f}" for f in figures)] for k, policy, figures in d.measures],
              [38, 56, 86])
    for heading, lines in d.sections:
        doc.heading(heading)
        for line in lines:
            doc.text(line)
    doc.right(L("ijo"))
    for t in d.annexes:
        doc.page_break()
        doc.heading(L("annex", n=t.n, title=t.title))
        for note in t.notes:
            doc.text(note)
        doc.table(t.header, t.rows or [[L("none_rows")] + [""] * (len(t.header) - 1)],
                  t.widths)
    return doc.render(title=d.title, keywords=seal_keyword(d.seal), footer=d.footer,
                      page_label=lambda n, total: L("page", page=n, pages=total))


def _body_rows(d: Document) -> list[list[Any]]:
    L = lambda key_, **f: label(key_, d.lang, **f)  # noqa: E731
    rows: list[list[Any]] = [[d.number, d.issued_on], [d.addressee]]
    rows += [[k, v] for k, v in d.issuer]
    rows += [[d.title], [d.subtitle]] + [[line] for line in d.letter] + [[L("ki")], [L("s1")]]
    rows.append([L("kind_col"), L("policy_col"), L("record_col")])
    for kind, policy, figures in d.measures:
        for i in range(max(len(policy), len(figures))):
            rows.append([kind if i == 0 else "", policy[i] if i < len(policy) else "",
                         figures[i] if i < len(figures) else ""])
    for heading, lines in d.sections:
        rows.append([heading])
        rows += [[line] for line in lines]
    rows.append([L("ijo")])
    return rows


def render_csv(d: Document) -> bytes:
    L = lambda key_, **f: label(key_, d.lang, **f)  # noqa: E731
    sections: list[tuple[str, list[str], list[list[Any]]]] = [("", [], _body_rows(d))]
    for t in d.annexes:
        sections.append((L("annex", n=t.n, title=t.title), t.header,
                         [[n] for n in t.notes] + t.rows))
    return csv_bytes(sections, base64.b64encode(canonical_json(d.seal)).decode())


def _sheet(wb: Any, title: str, rows: list[list[Any]], widths: list[float] | None = None
           ) -> None:
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.utils import get_column_letter

    ws = wb.create_sheet(title=title[:31])
    if widths:
        for i, w in enumerate(widths, start=1):
            ws.column_dimensions[get_column_letter(i)].width = max(8.0, w * 0.6)
    for r in rows:
        cells = []
        for v in r:
            c = WriteOnlyCell(ws, value=None if v is None else str(v))
            if c.data_type == "f":  # text that looks like a formula stays text
                c.data_type = "s"
            cells.append(c)
        ws.append(cells)


def render_xlsx(d: Document) -> bytes:
    from openpyxl import Workbook
    from openpyxl.packaging.custom import StringProperty

    L = lambda key_, **f: label(key_, d.lang, **f)  # noqa: E731
    wb = Workbook(write_only=True)
    _sheet(wb, "報告書" if d.lang == "ja" else "Report", _body_rows(d), [40, 70, 90])
    for t in d.annexes:
        name = L("annex_ref", n=t.n)
        _sheet(wb, name, [[L("annex", n=t.n, title=t.title)], *[[n] for n in t.notes],
                          t.header, *t.rows], t.widths)
    wb.properties.title = d.title
    wb.properties.creator = "secroom"
    wb.custom_doc_props.append(StringProperty(
        name=XLSX_SEAL, value=base64.b64encode(canonical_json(d.seal)).decode()))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def xlsx_seal(content: bytes) -> str | None:
    """The base64 seal of an XLSX made by ``render_xlsx`` (None if it has none)."""
    from zipfile import BadZipFile

    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(content), read_only=True)
    except (BadZipFile, OSError, KeyError, ValueError):
        return None
    for prop in wb.custom_doc_props.props:
        if prop.name == XLSX_SEAL:
            return str(prop.value)
    return None
