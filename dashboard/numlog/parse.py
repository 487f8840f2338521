"""Read a number system's access log: detect the encoding, pick the columns, validate each row.

Pure: bytes in, ``ParseResult`` out (good rows with their line numbers, bad rows with a reason).
Every text field is redacted (``redact``) here, before a row can reach storage; a bad row's
error names the line and the column, never the value.
"""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from controller.numguard import contains_my_number, redact

FIELDS = ("no", "office", "ts", "screen", "action", "purpose", "operator", "result", "terminal")
REQUIRED = ("ts", "action", "operator")
Encoding = Literal["utf-8", "utf-8-sig", "cp932"]


class NumlogError(ValueError):
    """The file as a whole cannot be read (encoding, no header, unknown columns)."""


class RowError(ValueError):
    """A row is invalid; ``redacted`` names the fields in which a number was found."""

    def __init__(self, message: str, redacted: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.redacted = redacted


class ColumnMapping(BaseModel):
    """Header name in the file for each field; fields left out are empty."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    no: str | None = None
    office: str | None = None
    ts: str
    screen: str | None = None
    action: str
    purpose: str | None = None
    operator: str
    result: str | None = None
    terminal: str | None = None

    def columns(self) -> dict[str, str]:
        return {f: v for f in FIELDS if (v := getattr(self, f)) is not None}


PRESETS: dict[str, ColumnMapping] = {
    # the sample report in the seeds: NO, 事業所名, 日時, 画面, 処理, 利用目的, 処理者, 結果
    "ja-standard": ColumnMapping(
        no="NO", office="事業所名", ts="日時", screen="画面", action="処理",
        purpose="利用目的", operator="処理者", result="結果", terminal="端末",
    ),
    "en-standard": ColumnMapping(
        no="no", office="office", ts="timestamp", screen="screen", action="action",
        purpose="purpose", operator="operator", result="result", terminal="terminal",
    ),
}


class JsonRow(BaseModel):
    """One row over the JSON API (the field names of ``FIELDS``)."""

    model_config = ConfigDict(extra="forbid")
    no: str = Field(default="", max_length=64)
    office: str = Field(default="", max_length=255)
    ts: str = Field(max_length=64)
    screen: str = Field(default="", max_length=255)
    action: str = Field(max_length=255)
    purpose: str = Field(default="", max_length=255)
    operator: str = Field(max_length=128)
    result: str = Field(default="", max_length=255)
    terminal: str = Field(default="", max_length=128)


@dataclass(frozen=True)
class ParsedRow:
    line: int
    no: str
    office: str
    ts: datetime
    screen: str
    action: str
    purpose: str
    operator: str
    result: str
    terminal: str
    redacted_fields: tuple[str, ...]

    def normalised(self) -> list[str]:
        return [self.no, self.office, self.ts.isoformat(), self.screen, self.action,
                self.purpose, self.operator, self.result, self.terminal]


@dataclass
class ParseResult:
    encoding: str = ""
    preset: str = ""
    rows: list[ParsedRow] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0


def detect_encoding(data: bytes) -> Encoding:
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        data.decode("cp932")
        return "cp932"
    except UnicodeDecodeError as exc:
        raise NumlogError(
            f"the file is neither UTF-8 nor CP932 (undecodable byte at offset {exc.start}); "
            "save it as UTF-8 or Shift_JIS (CP932) and import it again"
        ) from exc


def _norm_header(h: str) -> str:
    return unicodedata.normalize("NFKC", h).strip().lower()


def pick_mapping(header: list[str], preset: str | None, mapping: ColumnMapping | None
                 ) -> tuple[str, ColumnMapping]:
    if mapping is not None:
        chosen = [("custom", mapping)]
    elif preset is not None:
        if preset not in PRESETS:
            raise NumlogError(f"unknown preset {preset!r} (known: {', '.join(sorted(PRESETS))})")
        chosen = [(preset, PRESETS[preset])]
    else:
        chosen = list(PRESETS.items())
    have = {_norm_header(h) for h in header}
    for name, m in chosen:
        need = {_norm_header(getattr(m, f)) for f in REQUIRED}
        if need <= have:
            return name, m
    raise NumlogError(
        "the header does not match "
        + (f"the {chosen[0][0]} columns" if len(chosen) == 1 else "any preset")
        + f" (need at least {', '.join(REQUIRED)}); give a column mapping"
    )


TS_FORMATS = ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M",
              "%Y年%m月%d日 %H:%M:%S", "%Y年%m月%d日 %H:%M")


def parse_ts(value: str, zone: ZoneInfo) -> datetime:
    """Site-local (or offset-carrying ISO 8601) time -> aware UTC."""
    text = " ".join(unicodedata.normalize("NFKC", value).split())
    if not text:
        raise ValueError("empty")
    parsed: datetime | None = None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        for fmt in TS_FORMATS:
            try:
                parsed = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        raise ValueError("not a date and time (e.g. 2015/8/10 9:58)")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)


LIMITS = {"no": 64, "office": 255, "screen": 255, "action": 255, "purpose": 255,
          "operator": 128, "result": 255, "terminal": 128}


def build_row(line: int, values: dict[str, str], zone: ZoneInfo) -> ParsedRow:
    """Redact, normalise and validate one row; ``ValueError`` names the column, not the value."""
    clean: dict[str, str] = {}
    redacted: list[str] = []
    for f in FIELDS:
        raw = values.get(f) or ""
        r = redact(raw)
        if r.count:
            redacted.append(f)
        clean[f] = unicodedata.normalize("NFKC", r.text).strip()
    found = tuple(redacted)
    for f in REQUIRED:
        if not clean[f]:
            raise RowError(f"column {f} is empty", found)
    for f, limit in LIMITS.items():
        if len(clean[f]) > limit:
            raise RowError(f"column {f} is longer than {limit} characters", found)
    try:
        ts = parse_ts(clean["ts"], zone)
    except ValueError as exc:
        raise RowError(f"column ts: {exc}", found) from None
    return ParsedRow(line=line, no=clean["no"], office=clean["office"], ts=ts,
                     screen=clean["screen"], action=clean["action"], purpose=clean["purpose"],
                     operator=clean["operator"], result=clean["result"],
                     terminal=clean["terminal"], redacted_fields=tuple(redacted))


def parse_csv(data: bytes, zone: ZoneInfo, *, preset: str | None = None,
              mapping: ColumnMapping | None = None, max_rows: int = 2_000_000) -> ParseResult:
    enc = detect_encoding(data)
    text = data.decode(enc)
    sample = text[:4096]
    delimiter = "\t" if sample.count("\t") > sample.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise NumlogError("the file is empty") from None
    except csv.Error as exc:
        raise NumlogError(f"line 1: {exc}") from exc
    name, m = pick_mapping(header, preset, mapping)
    index = {_norm_header(h): i for i, h in enumerate(header)}
    cols = {f: index.get(_norm_header(h)) for f, h in m.columns().items()}
    result = ParseResult(encoding=enc, preset=name)
    while True:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            result.total += 1
            result.errors.append({"line": reader.line_num, "error": f"unreadable: {exc}"})
            break
        line = reader.line_num
        if not any(c.strip() for c in record):
            continue
        result.total += 1
        if result.total > max_rows:
            raise NumlogError(f"more than {max_rows} rows; split the file")
        if len(record) > len(header):
            result.errors.append({"line": line, "error":
                                  f"{len(record)} columns but the header has {len(header)}"})
            continue
        values = {f: (record[i] if i is not None and i < len(record) else "")
                  for f, i in cols.items()}
        try:
            result.rows.append(build_row(line, values, zone))
        except RowError as exc:
            result.errors.append({"line": line, "error": str(exc),
                                  "redacted": list(exc.redacted)})
    return result


def parse_json_rows(items: list[Any], zone: ZoneInfo) -> ParseResult:
    """JSON rows (``JsonRow``); ``line`` is the 1-based position in the list."""
    result = ParseResult(encoding="json", preset="json")
    for pos, item in enumerate(items, start=1):
        result.total += 1
        try:
            row = JsonRow.model_validate(item)
            result.rows.append(build_row(pos, row.model_dump(), zone))
        except RowError as exc:
            result.errors.append({"line": pos, "error": str(exc),
                                  "redacted": list(exc.redacted)})
        except ValueError as exc:  # pydantic.ValidationError: the input is not echoed
            found = sorted({
                str(k) if k in FIELDS else "unknown_field"  # a key may hold a number too
                for k, v in item.items()
                if contains_my_number(str(k)) or (isinstance(v, str) and contains_my_number(v))
            }) if isinstance(item, dict) else []
            result.errors.append({"line": pos, "error": _safe_error(exc), "redacted": found})
    return result


def _safe_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):  # pydantic: name the fields, never echo the input
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'row'}: {e['msg']}" for e in errors()
        )
    return str(exc)


def load_json(data: bytes) -> list[Any]:
    try:
        body = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise NumlogError("the body is not valid JSON") from exc
    rows = body.get("rows") if isinstance(body, dict) else body
    if not isinstance(rows, list):
        raise NumlogError('expected a list of rows or {"rows": [...]}')
    return rows
