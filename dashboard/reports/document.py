"""The monthly handling report as a document: letter, 記, sections 1-4, 以上, annexes, the
integrity annex last. One model, rendered as PDF, CSV and XLSX.

Every count the document states is ``Table.count`` of the annex that lists the rows: the body's
figures are computed from the annex tables, never kept apart from them. Every cell passes the
number guard.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from dashboard.models.reports import MEASURE_KINDS, Client, OfficeProfile
from dashboard.reports import dates
from dashboard.reports.data import MonthData, UseRow
from dashboard.reports.guard import scrub
from dashboard.reports.labels import Lang, denial_label, kind_label, label, logon_denial_label, pick
from dashboard.reports.seal import seal_sha256


@dataclass
class Table:
    """An annex: its rows (cells as printed) and each row's tags (what the figures count)."""

    n: int
    title: str
    header: list[str]
    widths: list[float]
    rows: list[list[str]] = field(default_factory=list)
    tags: list[frozenset[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, cells: Sequence[Any], *tags: str) -> None:
        self.rows.append([scrub("" if c is None else str(c)) for c in cells])
        self.tags.append(frozenset(tags))

    def count(self, tag: str | None = None) -> int:
        return len(self.rows) if tag is None else sum(1 for t in self.tags if tag in t)


@dataclass
class Issue:
    """What the issue adds: its number, date, and the issue it corrects (if any)."""

    number: str
    issued_at: datetime
    corrects: tuple[str, date, str] | None = None  # number, issued on, reason


@dataclass
class Document:
    lang: Lang
    number: str
    issued_on: str
    addressee: str
    issuer: list[tuple[str, str]]
    title: str
    subtitle: str
    letter: list[str]
    measures: list[tuple[str, list[str], list[str]]]
    sections: list[tuple[str, list[str]]]
    annexes: list[Table]
    seal: dict[str, Any]
    footer: str


def _use_cells(r: UseRow, d: MonthData, lang: Lang) -> list[str]:
    who = r.operator_name or label("unmapped_op", lang, op=r.operator)
    return [r.no or "-", r.office, dates.moment(r.ts, d.zone, lang), r.screen, r.action,
            r.purpose, who, r.result]


def _annexes(d: MonthData, lang: Lang, style: dates.DateStyle, seal: dict[str, Any],
             names: Callable[[str], str]) -> list[Table]:
    L = lambda key_, **f: label(key_, lang, **f)  # noqa: E731
    when = lambda ts: dates.moment(ts, d.zone, lang)  # noqa: E731
    use_head = [L(k) for k in ("c_no", "c_office", "c_at", "c_screen", "c_action", "c_purpose",
                               "c_operator", "c_result")]
    use_w: list[float] = [10, 28, 31, 22, 25, 26, 23, 15]
    uses = Table(1, L("a_uses"), use_head, use_w)
    for r in d.uses:
        uses.add(_use_cells(r, d, lang), "ok" if r.ok else "failed", r.category)
    logins = Table(2, L("a_logins"), use_head, use_w)
    for r in d.logins:
        logins.add(_use_cells(r, d, lang), "ok" if r.ok else "failed")
    entries = Table(3, L("a_entries"), [L(k) for k in ("c_at", "c_name", "c_door",
                                                       "c_direction", "c_result", "c_reason")],
                    [32, 35, 35, 18, 18, 42],
                    notes=[L("a_entries_note_all" if d.client is None else "a_entries_note")])
    for e in d.entries:
        entries.add([when(e.ts), e.person or L("unknown_card"), e.door, L(e.direction),
                     L("granted" if e.granted else "denied"),
                     "" if e.granted else denial_label(e.reason, lang)],
                    e.direction, "granted" if e.granted else "denied")
    prints = Table(4, L("a_prints"), [L(k) for k in ("c_at", "c_name", "c_printer", "c_pages",
                                                     "c_after")], [35, 40, 40, 20, 45])
    if d.client is not None:
        prints.notes.append(L("a_prints_note"))
    for p in d.prints:
        prints.add([when(p.ts), p.person, p.printer, "" if p.pages is None else p.pages,
                    when(p.after) if p.after else "-"])
    media = Table(5, L("a_media"), [L(k) for k in ("c_at", "c_control", "c_kind", "c_person",
                                                   "c_purpose")], [35, 30, 25, 40, 50])
    for m in d.media:
        media.add([when(m.ts), m.control_number, L(m.action), m.person, m.purpose], m.action)
    deletions = Table(6, L("a_deletions"), [L(k) for k in ("c_cert", "c_processed", "c_method",
                                                           "c_subject", "c_result",
                                                           "c_issued")],
                      [25, 28, 35, 42, 25, 25])
    for c in d.deletions:
        deletions.add([c.number, dates.day(c.processed_on, lang, style), c.method, c.subject,
                       c.result, dates.day(c.issued_at.astimezone(d.zone).date(), lang,
                                           style)])
    backups = Table(7, L("a_backups"), [L("c_day"), L("c_kind"), L("c_detail")], [45, 45, 90])
    ok = sum(1 for n in d.nights if n.status == "ok")
    if d.nights:
        backups.notes.append(L("a_backups_note", first=dates.day(d.nights[0].day, lang, style),
                               last=dates.day(d.nights[-1].day, lang, style),
                               n=len(d.nights), ok=ok))
    else:
        backups.notes.append(L("a_backups_none"))
    for n in d.nights:
        if n.status != "ok":
            backups.add([dates.day(n.day, lang, style), L("night_" + n.status), n.detail],
                        n.status)
    for v in d.verifies:
        if not v.ok:
            backups.add([when(v.ts), L("verify_failed"), v.mode], "verify_failed")
    reviews = Table(8, L("a_reviews"), [L(k) for k in ("c_at", "c_kind", "c_severity",
                                                       "c_detail", "c_state", "c_resolution",
                                                       "c_incident")],
                    [27, 30, 13, 35, 17, 41, 17])
    sep = "、" if lang == "ja" else ", "
    for item in d.reviews:
        resolution = pick(item.reason, lang)
        if item.by and item.state != "open":
            resolution = f"{item.by}: {resolution}" if resolution else item.by
        incident = "incident_none" if item.incident is None else (
            "incident_yes" if item.incident else "incident_no")
        reviews.add([when(item.at), kind_label(item.kind, lang), L(item.severity),
                     sep.join(item.subject), L(item.state), resolution, L(incident)],
                    "open" if item.state == "open" else "closed", incident)
    return [uses, logins, entries, prints, media, deletions, backups, reviews,
            _pcs(d, lang), integrity(seal, lang, names)]


def _pcs(d: MonthData, lang: Lang) -> Table:
    """Annex 9: log-ons at the room's PCs and operations on the number data folders."""
    L = lambda key_, **f: label(key_, lang, **f)  # noqa: E731
    t = Table(9, L("a_pcs"), [L(k) for k in ("c_at", "c_name", "c_host", "c_kind", "c_result",
                                             "c_detail")], [32, 32, 32, 28, 18, 38],
              notes=[L("a_pcs_note_all" if d.client is None else "a_pcs_note")])
    for r in d.pcs:
        if r.what == "logon":
            detail = "" if r.ok else logon_denial_label(r.code, lang)
            t.add([dates.moment(r.ts, d.zone, lang), r.person or L("pc_unknown"), r.host,
                   L("pc_logon"), L("granted" if r.ok else "denied"), detail],
                  "logon", "logon_ok" if r.ok else "logon_denied")
        else:
            t.add([dates.moment(r.ts, d.zone, lang), r.person or L("pc_unknown"), r.host,
                   L("pc_file_op"), L("pc_ok" if r.ok else "pc_failed"),
                   L("pc_op", op=L("op_" + r.code), n=r.files)], "file_op")
    return t


def grouped(digest: str) -> str:
    """A hex digest in groups of eight joined by colons: no run of twelve digits can form
    (a hash would otherwise now and then hold a string the number guard must refuse)."""
    return ":".join(digest[i:i + 8] for i in range(0, len(digest), 8))


def integrity(seal: dict[str, Any], lang: Lang, names: Callable[[str], str]) -> Table:
    L = lambda key_, **f: label(key_, lang, **f)  # noqa: E731
    t = Table(10, L("a_integrity"), [L("c_item"), L("c_value")], [45, 135])
    for node, info in seal.get("nodes", {}).items():
        t.add([L("i_node", name=names(node)),
               L("i_events", n=info["events"], seq=info["head_seq"],
                 hash=grouped(info["head_hash"]))])
    audit = seal.get("audit", {})
    t.add([L("i_audit"), f"{audit.get('head_seq')}: {grouped(str(audit.get('head_hash')))}"])
    rows = seal.get("number_access", {})
    t.add([L("i_rows"), f"{rows.get('rows')}: {grouped(str(rows.get('digest')))}"])
    t.add([L("i_seal"), grouped(seal_sha256(seal))])
    t.add([L("i_how"), L("i_how_text")])
    return t


def issuer_block(profile: OfficeProfile, lang: Lang) -> list[tuple[str, str]]:
    return [(label(k, lang), scrub(v)) for k, v in (
        ("addr", profile.address), ("phone", profile.phone), ("office_name", profile.name),
        ("representative", profile.representative)) if v]


def build(d: MonthData, profile: OfficeProfile, measures: dict[str, list[str]], lang: Lang,
          seal: dict[str, Any], issue: Issue, names: Callable[[str], str]) -> Document:
    L = lambda key_, **f: label(key_, lang, **f)  # noqa: E731
    style: dates.DateStyle = "era" if profile.date_style == "era" else "western"
    first, last = dates.local_days(d.since, d.until, d.zone)
    period = dates.period(first, last, lang, style)
    annexes = _annexes(d, lang, style, seal, names)
    uses, logins, entries, prints, media, deletions, backups, reviews, pcs, _ = annexes
    ref = lambda t: L("annex_ref", n=t.n)  # noqa: E731
    client: Client | None = d.client
    letter = [L("greeting"), L("letter" if client else "letter_all", period=period),
              L("times_in", zone=dates.zone_name(d.zone, lang))]
    if issue.corrects:
        n, on, reason = issue.corrects
        letter.append(L("corrects", n=n, date=dates.day(on, lang, style), reason=scrub(reason)))
    letter.append(L("closing"))
    sep = "、" if lang == "ja" else ", "
    figures = {
        "organizational": [
            L("f_uses", n=uses.count(), f=uses.count("failed"), annex=ref(uses)),
            L("f_reviews", n=reviews.count(), m=reviews.count("closed"),
              k=reviews.count("open"), annex=ref(reviews)),
            L("f_deletions", n=deletions.count(), annex=ref(deletions))],
        "human": [L("f_handlers", n=len(d.handlers), names=sep.join(d.handlers) or "-")],
        "physical": [
            L("f_entries", i=entries.count("in"), o=entries.count("out"),
              k=entries.count("denied"), annex=ref(entries)),
            L("f_prints", n=prints.count(), annex=ref(prints)),
            L("f_media", c=media.count("check_out"), r=media.count("return"),
              w=media.count("wipe"), d=media.count("dispose"), annex=ref(media))],
        "technical": [
            L("f_logins", n=logins.count(), f=logins.count("failed"), annex=ref(logins)),
            L("f_pcs", n=pcs.count("logon"), k=pcs.count("logon_denied"),
              o=pcs.count("file_op"), annex=ref(pcs)),
            L("f_backups", ok=len(d.nights) - backups.count("failed") - backups.count("missing"),
              failed=backups.count("failed"), missing=backups.count("missing"),
              v=len(d.verifies) - backups.count("verify_failed"), annex=ref(backups)),
            L("f_seal", annex=L("annex_ref", n=annexes[-1].n))],
    }
    incidents, open_ = reviews.count("incident_yes"), reviews.count("open")
    leak = L("leak_yes", n=incidents) if incidents else L("leak_none")
    if open_ and not incidents:
        leak += " " + L("leak_open", n=open_)
    sections = [
        (L("s2"), [L("s2_text", n=uses.count(), m=media.count("check_out"),
                     k=deletions.count())]),
        (L("s3"), [scrub(profile.subcontracting or "無し")]),
        (L("s4"), [leak]),
    ]
    issued_on = dates.day(issue.issued_at.astimezone(d.zone).date(), lang, style)
    return Document(
        lang=lang, number=L("number", n=issue.number), issued_on=issued_on,
        addressee=L("to_org", org=scrub(client.name)) if client else L("to_all"),
        issuer=issuer_block(profile, lang),
        title=L("title") if client else L("title_all"),
        subtitle=f"{dates.month_name(first, lang, style)} {period}",
        letter=letter,
        measures=[(L(k), [scrub(x) for x in measures[k]], figures[k]) for k in MEASURE_KINDS],
        sections=sections, annexes=annexes, seal=seal,
        footer=scrub(f"{L('number', n=issue.number)} {client.name if client else L('to_all')}"))
