"""CSV that Excel opens correctly: UTF-8 with a BOM, CRLF, every cell neutralised against
formula injection (a leading quote before = + - @ tab CR LF | %)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from typing import Any

from dashboard.web.csvsafe import neutralise

CSV_SEAL_RE = re.compile(rb"secroom-seal,'?([A-Za-z0-9+/=]+)")


def write_rows(rows: Sequence[Sequence[Any]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    for r in rows:
        w.writerow([neutralise(v) for v in r])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def csv_bytes(sections: Sequence[tuple[str, list[str], list[list[Any]]]], seal_b64: str) -> bytes:
    rows: list[list[Any]] = []
    for heading, header, body in sections:
        if heading:
            rows.append([])
            rows.append([heading])
        rows.append(header)
        rows.extend(body)
    rows.append([])
    rows.append(["secroom-seal", seal_b64])
    return write_rows(rows)
