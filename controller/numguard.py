"""The one guard against individual numbers (My Number) in text: normalise, then search.

Every path that handles text uses it: the node journal (every string of every event, before it
is sealed), the dashboard's inputs (forms, API bodies, the number system's CSV and JSON), its
error pages and every log record of the process (``install_log_guard``). python-stdnum is
imported here and nowhere else, on the first 12-digit candidate (it brings pydoc and ssl: a
node that never meets one does not carry them).

The search reads the text as a person would. Each character is NFKC-normalised on its own, so a
position in the normalised text always maps back to the character it came from, and the
redaction replaces exactly the characters that made up the number:

- a *digit* is any decimal digit of any script (ASCII, full-width, Arabic-Indic, mathematical
  bold...), anything NFKC turns into digits (circled ①, superscript ², ⒈, ⑫ = two digits),
  anything Unicode gives a digit value (❶, ⓵), the negative circled numbers ⓫..⓴ and ❿, and
  the kanji digits 〇一二三四五六七八九 (and 零) written one per digit (positional kanji
  numerals with 十百千万 are not read: see SECURITY.md);
- a *separator* is any white space (after NFKC: U+2002..U+200A, U+3000, U+00A0, line breaks)
  or a dash (``-`` and anything NFKC turns into it: U+FE63, U+FF0D; U+2010..U+2015, U+2212,
  ``ー`` U+30FC and its half-width form, ``・``, U+2043, U+2E3A/B, box-drawing ─ and ━);
- invisible characters (format Cf such as U+200B or the soft hyphen, combining marks Mn/Me
  such as a keycap or a variation selector) are transparent: dropped before the search;
- slashes, dots, colons and commas are not separators, so dates, times and amounts never join
  into a candidate.

Then, as before: digit groups joined by at most ``MAX_SEP_RUN`` separator characters form a
chain; every run of consecutive groups of a chain holding exactly 12 digits (so bounded by
non-digits) whose check digit passes (``stdnum.jp.in_``) is an individual number. A single group
of more than 12 digits is another identifier (the 13-digit corporate number, a timestamp) and
is left; so is a near-miss (wrong check digit), exactly as typed.

Cheap when there is nothing to find (the journal runs it on every event): text is searched
only where its UTF-8 bytes, mapped by ``bytes.translate``, hold a run of digits and separators
(and, in non-ASCII text, other characters' bytes) with 12 or more digits, or when a non-ASCII
character may read as a digit (``_NONASCII_DIGITLIKE``, checked against the whole code space by
tests/controller/test_numguard.py). ``json_may_hold_number`` does the same over an event's
canonical JSON, so an event without a candidate costs one translate and one or two searches.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import unquote_plus

REDACTED = "[個人番号削除]"
MAX_SEP_RUN = 3
LENGTH = 12

_ASCII_SEPS = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f-"
_DASHES = frozenset("-\u2010\u2011\u2012\u2013\u2014\u2015\u2043\u2212\u2500\u2501\u2e3a\u2e3b"
                    "\u30fb\u30fc")
_KANJI = {c: str(i) for i, c in enumerate("〇一二三四五六七八九")} | {"零": "0"}
_TRANSPARENT = frozenset(("Cf", "Mn", "Me"))

# Non-ASCII characters that may read as a digit: every one of the basic plane, written out (the
# test suite maps the whole code space and fails if a Unicode update adds one that is missing),
# and every character beyond it (new scripts' digits land there; such text is rare and simply
# takes the full search).
_NONASCII_DIGITLIKE = re.compile(
    "["
    "\u00b2\u00b3\u00b9\u00bc-\u00be\u0660-\u0669\u06f0-\u06f9\u07c0-\u07c9\u0966-\u096f"
    "\u09e6-\u09ef\u0a66-\u0a6f\u0ae6-\u0aef\u0b66-\u0b6f\u0be6-\u0bef\u0c66-\u0c6f"
    "\u0ce6-\u0cef\u0d66-\u0d6f\u0de6-\u0def\u0e50-\u0e59\u0ed0-\u0ed9\u0f20-\u0f29"
    "\u1040-\u1049\u1090-\u1099\u1369-\u1371\u17e0-\u17e9\u1810-\u1819\u1946-\u194f"
    "\u19d0-\u19da\u1a80-\u1a89\u1a90-\u1a99\u1b50-\u1b59\u1bb0-\u1bb9\u1c40-\u1c49"
    "\u1c50-\u1c59\u2070\u2074-\u2079\u2080-\u2089\u2150-\u215f\u2189\u2460-\u249b"
    "\u24ea-\u24ff\u2776-\u2793\u2f00\u2f06\u2f0b\u3007\u3192-\u3195\u3220-\u3228"
    "\u3251-\u325f\u3280-\u3288\u32b1-\u32cb\u3358-\u3370\u3378\u3379\u339f-\u33a6\u33a8"
    "\u33af\u33e0-\u33fe\u4e00\u4e03\u4e09\u4e5d\u4e8c\u4e94\u516b\u516d\u56db\u96f6"
    "\ua620-\ua629\ua8d0-\ua8d9\ua900-\ua909\ua9d0-\ua9d9\ua9f0-\ua9f9\uaa50-\uaa59"
    "\uabf0-\uabf9\uf9b2\uf9d1\uff10-\uff19"
    "\U00010000-\U0010ffff]"
)
_SEP = re.escape(_ASCII_SEPS)
# The quick tests. A number leaves, in the UTF-8 bytes of the text, a run of its 12 digits
# ("1"), separators ("0") and, when the text is not ASCII, any bytes of other characters ("0":
# a separator such as U+3000 or an invisible character may be among them). bytes.translate and
# a substring search or a simple scan: no backtracking regex. Used only when every digit-like
# character of the text is an ASCII digit (the others are rare: then the full search runs).
_QUICK = bytes(49 if 48 <= b <= 57 else 48 if chr(b) in _ASCII_SEPS or b >= 128 else 120
               for b in range(256))
_RUN = re.compile(b"[01]{%d,}" % LENGTH)
_QUICK_ASCII = bytes(48 if chr(b) in f"0123456789{_ASCII_SEPS}" else 120 for b in range(256))
_TWELVE = b"0" * LENGTH
_RUN_ASCII = re.compile(b"0{%d,}" % LENGTH)
# Canonical JSON text may escape a separator (\t, \n, \u001c...), which no run survives: such a
# text (rare in events) is tested by this scan instead (12 digits, at most 3 separators between
# neighbours, any run of non-ASCII characters let through; the character before the first
# digit may be an escape that ends in a digit).
_NA = r"[^\x00-\x7f]*+"
_JSON_SEP = r"(?:[ \-]|\\[tnrf]|\\u00(?:0[bB]|1[c-fC-F]))"
_JSON_CANDIDATE = re.compile(
    r"[0-9](?:(?<![0-9]{2})|(?<=\\u00[01][0-9a-fA-F][0-9]))"
    f"(?:{_NA}(?:{_JSON_SEP}{_NA}){{0,{MAX_SEP_RUN}}}[0-9]){{{LENGTH - 1}}}(?![0-9])")
_CHAIN = re.compile(f"[0-9]+(?:[{_SEP}]{{1,{MAX_SEP_RUN}}}[0-9]+)*")
_GROUP = re.compile("[0-9]+")


@dataclass(frozen=True, slots=True)
class Redaction:
    text: str
    count: int


@lru_cache(maxsize=1)
def _stdnum() -> tuple[Any, type[Exception]]:
    from stdnum.exceptions import ValidationError
    from stdnum.jp import in_

    return in_, ValidationError


def is_my_number(digits: str) -> bool:
    """12 ASCII digits passing the check digit."""
    if len(digits) != LENGTH or not digits.isascii() or not digits.isdigit():
        return False
    my_number, error = _stdnum()
    try:
        return bool(my_number.is_valid(digits))
    except error:  # pragma: no cover - is_valid does not raise, kept for safety
        return False


def check_digit(first11: str) -> str:
    """The check digit of 11 ASCII digits (for tests and tools that make example numbers)."""
    return str(_stdnum()[0].calc_check_digit(first11))


@lru_cache(maxsize=16384)
def _map_char(ch: str) -> str:
    """What one non-ASCII character reads as: ASCII digits, " " for a separator, "" when
    invisible, "x" for anything else (one "x" per other character NFKC produces)."""
    out: list[str] = []
    for c in unicodedata.normalize("NFKC", ch):
        if "0" <= c <= "9":
            out.append(c)
        elif (d := unicodedata.decimal(c, None)) is not None:
            out.append(str(d))
        elif c in _KANJI:
            out.append(_KANJI[c])
        elif c.isspace() or c in _DASHES:
            out.append(" ")
        elif unicodedata.category(c) in _TRANSPARENT:
            continue
        else:
            out.append("x")
    text = "".join(out)
    if not any("0" <= c <= "9" for c in text):
        if (d := unicodedata.digit(ch, None)) is not None:
            return str(d)
        if 0x2460 <= ord(ch) <= 0x27BF:  # ⓫..⓴, ❿, ➉, ➓: no decomposition, a numeric value
            value = unicodedata.numeric(ch, -1.0)
            if value >= 0 and value == int(value):
                return str(int(value))
    return text


def _normalise(text: str) -> tuple[str, list[int] | None]:
    """The text as digits, spaces and anything else, and for each of its positions the index
    of the original character it came from (None: one to one)."""
    if text.isascii():
        return text, None
    parts = [c if c < "\x80" else _map_char(c) for c in text]
    norm = "".join(parts)
    if len(norm) == len(text) and all(len(p) == 1 for p in parts):
        return norm, None
    origin = [i for i, p in enumerate(parts) for _ in p]
    return norm, origin


def _candidate(text: str, *, json: bool = False) -> bool:
    """For non-ASCII ``text``: False only when it cannot hold an individual number."""
    if _NONASCII_DIGITLIKE.search(text):
        return True  # a digit in another form: the full search decides
    marks = text.encode().translate(_QUICK)
    if marks.count(b"1") < LENGTH:
        return False
    if json and "\\" in text:
        return _JSON_CANDIDATE.search(text) is not None
    return any(run.group().count(b"1") >= LENGTH for run in _RUN.finditer(marks))


def _ascii_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every individual number in ASCII ``text``: the full search runs only
    over the runs of at least 12 digits and separators."""
    if len(text) < LENGTH:
        return []
    marks = text.encode().translate(_QUICK_ASCII)
    if _TWELVE not in marks:
        return []
    out: list[tuple[int, int]] = []
    for run in _RUN_ASCII.finditer(marks):
        at, chunk = run.start(), text[run.start() : run.end()]
        if chunk.isdigit():  # one group: a number only if exactly 12 digits
            if len(chunk) == LENGTH and is_my_number(chunk):
                out.append((at, run.end()))
            continue
        out.extend((at + a, at + b) for a, b in _spans(chunk))
    return out


def _spans(norm: str) -> list[tuple[int, int]]:
    """(start, end) in ``norm`` of every individual number."""
    spans: list[tuple[int, int]] = []
    for chain in _CHAIN.finditer(norm):
        if chain.end() - chain.start() < LENGTH:
            continue
        groups = [(m.start(), m.end()) for m in _GROUP.finditer(norm, chain.start(), chain.end())]
        taken_until = -1
        for i in range(len(groups)):
            total = 0
            for j in range(i, len(groups)):
                total += groups[j][1] - groups[j][0]
                if total > LENGTH:
                    break
                if total == LENGTH:
                    if groups[i][0] >= taken_until:
                        digits = "".join(norm[a:b] for a, b in groups[i : j + 1])
                        if is_my_number(digits):
                            spans.append((groups[i][0], groups[j][1]))
                            taken_until = groups[j][1]
                    break
    return spans


def _find(text: str) -> list[tuple[int, int]]:
    """(start, end) in ``text`` of every individual number, in order."""
    if text.isascii():
        return _ascii_spans(text)
    if len(text) < 4 or not _candidate(text):  # no character reads as more than 3 digits
        return []
    norm, origin = _normalise(text)
    spans = _spans(norm)
    if origin is None or not spans:
        return spans
    return [(origin[a], origin[b - 1] + 1) for a, b in spans]


def redact(text: str) -> Redaction:
    """``text`` with every individual number replaced by ``REDACTED``, and how many there were."""
    spans = _find(text)
    if not spans:
        return Redaction(text, 0)
    parts: list[str] = []
    pos = 0
    for start, end in spans:
        parts.append(text[pos:start])
        parts.append(REDACTED)
        pos = end
    parts.append(text[pos:])
    return Redaction("".join(parts), len(spans))


def scrub(text: str) -> str:
    """``text`` with every individual number replaced by ``REDACTED``."""
    return redact(text).text


def contains_my_number(text: str) -> bool:
    return bool(_find(text))


def _holds_number(data: Any) -> bool:
    """Does any string (or key) in JSON-like ``data`` hold an individual number?"""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if len(item) >= 4 and _find(item):  # fewer than 4 characters make < 12 digits
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return False


def redact_data(data: Any) -> tuple[Any, int]:
    """``data`` (JSON-like: dicts, lists, strings...) with every string and key redacted, and
    the count. Numbers stay numbers (a 12-digit byte count is not a person's number). Returns
    ``data`` itself when nothing was found."""
    if not _holds_number(data):
        return data, 0
    return _redact_data(data)


def _redact_data(data: Any) -> tuple[Any, int]:
    if isinstance(data, str):
        r = redact(data)
        return (r.text, r.count) if r.count else (data, 0)
    if isinstance(data, dict):
        total, out = 0, {}
        for k, v in data.items():
            k2, n1 = _redact_data(k) if isinstance(k, str) else (k, 0)
            v2, n2 = _redact_data(v)
            total += n1 + n2
            out[k2] = v2
        return (out, total) if total else (data, 0)
    if isinstance(data, (list, tuple)):
        items = [_redact_data(v) for v in data]
        total = sum(n for _, n in items)
        return ([v for v, _ in items], total) if total else (data, 0)
    return data, 0


def json_may_hold_number(doc: str) -> bool:
    """A quick test over canonical JSON text (``ensure_ascii=False``): False only when no
    string in it can hold an individual number (then ``redact_data`` would find nothing)."""
    if not doc.isascii():
        return _candidate(doc, json=True)
    if "\\" in doc:  # an escaped separator (\t, \u001c...) would break a run: the long way
        return _JSON_CANDIDATE.search(doc) is not None
    return bool(_ascii_spans(doc))


# -- logs --------------------------------------------------------------------------------------


def _log_text(text: str) -> str:
    """``text`` without individual numbers, also when URL-encoded (an access log line holds
    the path and query as sent: ``4021+2345+6786``, ``4021%202345%206786``): then the decoded
    text, redacted, replaces it."""
    out = scrub(text)
    if "%" in out or "+" in out:
        decoded = unquote_plus(out)
        if decoded != out and contains_my_number(decoded):
            return scrub(decoded)
    return out


def _scrub_arg(arg: Any) -> Any:
    if isinstance(arg, (int, float)) or arg is None:
        return arg  # an integer that passes is caught in the formatted message below
    text = arg if isinstance(arg, str) else str(arg)
    cleaned = _log_text(text)
    return arg if cleaned == text else cleaned


def scrub_record(record: logging.LogRecord) -> logging.LogRecord:
    """Remove individual numbers from a log record's message, arguments and traceback text,
    keeping the record's shape (uvicorn's access formatter unpacks ``args``)."""
    try:
        record.msg = _log_text(str(record.msg))
        if isinstance(record.args, tuple):
            record.args = tuple(_scrub_arg(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _scrub_arg(v) for k, v in record.args.items()}
        if record.args:
            try:
                message = record.getMessage()
            except (TypeError, ValueError):  # the handler reports it; without any number
                message = ""
            cleaned = _log_text(message)
            if cleaned != message:  # split over arguments, or an integer argument
                record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            text = logging.Formatter().formatException(record.exc_info)
            cleaned = _log_text(text)
            if cleaned != text:
                record.exc_text = cleaned
        if record.stack_info:
            record.stack_info = _log_text(record.stack_info)
    except Exception:  # noqa: BLE001 - a log call must never fail because of the guard
        record.msg, record.args, record.exc_info, record.exc_text = (
            "(log record withheld: it could not be checked for individual numbers)", None,
            None, None)
    return record


def install_log_guard() -> None:
    """Scrub every log record this process creates, whatever logger or handler it goes to.

    A filter on the root logger would not do: Python consults a logger's filters only for
    records logged on that very logger, not for those propagated from ``secroom.*`` or
    ``uvicorn.*``; and filters on handlers are lost when uvicorn (or anyone) re-configures
    logging. The record factory sees every record, so it is installed there. Idempotent."""
    current = logging.getLogRecordFactory()
    if getattr(current, "_secroom_numguard", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return scrub_record(current(*args, **kwargs))

    factory._secroom_numguard = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
