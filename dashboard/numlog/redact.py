"""Find and replace individual numbers (My Number) in free text, before anything is stored.

An operator may type a number in many shapes: ``123456789018``, ``1234-5678-9018``,
``1234 5678 9018``, full-width digits and dashes, a katakana long-vowel mark or a dash as
separator, or an ideographic space (slashes, dots and colons are not separators: dates and
times must not join into a candidate). We map every character to its decimal value
(``unicodedata.decimal``: full-width and other scripts' digits too), join digit groups separated by
at most three separator characters, and test every run of consecutive groups holding exactly 12
digits (bounded by non-digits) with python-stdnum's check-digit validation. A single group of more
than 12 digits is some other identifier (the 13-digit corporate number, a timestamp) and is left.

stdnum is imported here and nowhere else.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from stdnum.exceptions import ValidationError as _StdnumError
from stdnum.jp import in_ as _my_number

REDACTED = "[個人番号削除]"
SEPARATORS = frozenset(
    " \t\u00a0\u3000-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u30fc\uff0d\uff70\u30fb"
)
MAX_SEP_RUN = 3


@dataclass(frozen=True)
class Redaction:
    text: str
    count: int


def _digit(ch: str) -> str | None:
    if "0" <= ch <= "9":
        return ch
    value = unicodedata.decimal(ch, None)
    return None if value is None else str(value)


def is_my_number(digits: str) -> bool:
    """12 ASCII digits passing the check digit."""
    if len(digits) != 12 or not digits.isascii() or not digits.isdigit():
        return False
    try:
        return bool(_my_number.is_valid(digits))
    except _StdnumError:  # pragma: no cover - is_valid does not raise, kept for safety
        return False


def _groups(text: str) -> list[tuple[int, int, str]]:
    """Maximal digit groups: (start, end, ascii digits)."""
    out: list[tuple[int, int, str]] = []
    i, n = 0, len(text)
    while i < n:
        d = _digit(text[i])
        if d is None:
            i += 1
            continue
        start, digits = i, [d]
        i += 1
        while i < n and (d := _digit(text[i])) is not None:
            digits.append(d)
            i += 1
        out.append((start, i, "".join(digits)))
    return out


def _spans(text: str) -> list[tuple[int, int]]:
    groups = _groups(text)
    spans: list[tuple[int, int]] = []
    # chains of groups joined by short separator runs
    chains: list[list[tuple[int, int, str]]] = []
    for g in groups:
        if chains:
            prev = chains[-1][-1]
            gap = text[prev[1] : g[0]]
            if 0 < len(gap) <= MAX_SEP_RUN and all(c in SEPARATORS for c in gap):
                chains[-1].append(g)
                continue
        chains.append([g])
    for chain in chains:
        taken_until = -1
        for i in range(len(chain)):
            total = 0
            for j in range(i, len(chain)):
                total += len(chain[j][2])
                if total > 12:
                    break
                if total == 12 and chain[i][0] >= taken_until:
                    digits = "".join(g[2] for g in chain[i : j + 1])
                    if is_my_number(digits):
                        spans.append((chain[i][0], chain[j][1]))
                        taken_until = chain[j][1]
                    break
    return spans


def redact(text: str) -> Redaction:
    """``text`` with every individual number replaced by ``REDACTED``, and how many there were."""
    if not text:
        return Redaction(text, 0)
    spans = _spans(text)
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


def contains_my_number(text: str) -> bool:
    return bool(text) and bool(_spans(text))
