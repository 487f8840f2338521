"""What the crawl test counts on a page a person reads in Japanese: raw identifiers (dotted
kinds, slugs, key=value, JSON, known ids, staff numbers without their name) and English words
outside a short allow-list. Pure functions over the page's text, so they are tested alone."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

# Words a Japanese page may show in Latin letters: the product, file formats and hardware
# acronyms that Japanese offices write this way, and the name of the other UI language.
ALLOWED_WORDS = frozenset({
    "secroom", "English", "CSV", "PDF", "USB", "USBGuard", "IC", "ID", "UID", "PC", "API",
    "CUPS", "NAS", "OS", "UTF", "BOM", "JIS", "KB", "MB", "GB", "XLSX", "sudo",
    "FeliCa", "DESFire",  # the card families, written so on Japanese cards and manuals
})

DOTTED = re.compile(r"(?<![\w./-])[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+(?![\w/-])")
SLUG = re.compile(r"(?<![\w/-])[A-Za-z0-9]*[a-z][A-Za-z0-9]*(?:[-_][A-Za-z0-9]+)+(?![\w/-])")
KEY_VALUE = re.compile(r"(?<![\w])[A-Za-z_][\w.]*=[^\s]")
JSON = re.compile(r"[{\[]\s*\"[^\"]*\"\s*:")
STAFF = re.compile(r"(?<![A-Za-z0-9])s\d{3}(?![0-9])")
WORD = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2,}(?![A-Za-z0-9])")


@dataclass
class Findings:
    identifiers: Counter[str] = field(default_factory=Counter)
    english: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def add(self, other: Findings) -> None:
        self.identifiers.update(other.identifiers)
        self.english.update(other.english)
        self.examples.extend(other.examples[: max(0, 40 - len(self.examples))])


def analyse(text: str, known_ids: Iterable[str], people: Mapping[str, str]) -> Findings:
    """Count what a person should not have to read in ``text`` (a page's innerText)."""
    out = Findings()
    ids = sorted({i for i in known_ids if len(i) >= 3}, key=len, reverse=True)
    known = re.compile("|".join(rf"(?<![\w-]){re.escape(i)}(?![\w-])" for i in ids)) if ids \
        else None
    for line in text.splitlines():
        rest = line
        for category, pattern in (("json", JSON), ("key=value", KEY_VALUE), ("dotted", DOTTED),
                                  ("known id", known), ("slug", SLUG)):
            if pattern is None:
                continue
            for m in pattern.finditer(rest):
                out.identifiers[category] += 1
                if len(out.examples) < 40:
                    out.examples.append(f"{category}: {m.group(0)!r} in {line.strip()[:90]!r}")
            rest = pattern.sub(" ", rest)
        for m in STAFF.finditer(rest):
            name = people.get(m.group(0))
            if name is None or name not in line:
                out.identifiers["staff number without name"] += 1
                if len(out.examples) < 40:
                    out.examples.append(f"staff: {m.group(0)!r} in {line.strip()[:90]!r}")
        rest = STAFF.sub(" ", rest)
        for m in WORD.finditer(rest):
            if m.group(0) not in ALLOWED_WORDS:
                out.english[m.group(0)] += 1
                if out.english[m.group(0)] == 1 and len(out.examples) < 40:
                    out.examples.append(f"english: {m.group(0)!r} in {line.strip()[:90]!r}")
    return out


def route_shape(url: str) -> tuple[str, int, tuple[str, ...]]:
    """Pages of one shape (e.g. every person's page): first path segment, depth, query keys."""
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    keys = tuple(sorted({kv.split("=")[0] for kv in parts.query.split("&") if kv}))
    return (segments[0] if segments else "", len(segments), keys)


SKIP = re.compile(r"^/(logout|lang/|static/|api/)|\.(csv|pdf|conf|js|png)(\?|$)|/live(\?|$)")


def followable(href: str, base: str) -> str | None:
    """The same-site page ``href`` points to (path and query), or None for downloads,
    log-out, language switches, the API and other sites."""
    parts = urlsplit(href)
    if parts.scheme and not href.startswith(base):
        return None
    path = parts.path or "/"
    if not path.startswith("/") or SKIP.search(path + ("?" + parts.query if parts.query else "")):
        return None
    return path + ("?" + parts.query if parts.query else "")
