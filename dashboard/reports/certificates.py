"""Deletion certificates (削除証明書) generated from the record that proves the deletion: a
deletion in the number system's log, a purge of a path from every backup snapshot
(``backup.pruned`` with mode purge), a wipe or disposal of a medium.

The record gives the date, the method, the result and (where it names one) the person in charge;
the admin chooses the client and the person from lists and states the reason and the subject
(対象者, e.g. "従業員 山田太郎"). No field may hold an individual number. A certificate is issued
once per record, kept as issued (PDF and CSV, hashes in the audit chain) and listed in the
monthly report of the month it was issued in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.audit import append_audit
from dashboard.models.correlation import DeletionCertificate
from dashboard.models.events import StoredEvent
from dashboard.models.media import MediumRecord
from dashboard.models.numlog import NumberAccess
from dashboard.models.people import Person
from dashboard.models.reports import Client
from dashboard.reports import dates
from dashboard.reports.clients import office_map, office_profile
from dashboard.reports.csvout import write_rows
from dashboard.reports.data import ReportError
from dashboard.reports.document import issuer_block
from dashboard.reports.guard import scrub
from dashboard.reports.inputs import GuardedIn, parse
from dashboard.reports.labels import Lang, label
from dashboard.reports.monthly import next_number, store_files
from dashboard.reports.names import Names
from dashboard.reports.pdf import Doc

SourceKind = Literal["numlog", "backup_purge", "media"]
METHODS: dict[str, tuple[str, str]] = {
    "numlog": ("データ削除(番号システム)", "data deletion (number system)"),
    "backup_purge": ("データ削除(バックアップ全世代からの消去)",
                     "data deletion (purged from every backup snapshot)"),
    "Clear": ("データ削除(上書き消去)", "data deletion (overwrite)"),
    "Purge": ("データ削除(暗号消去・ブロック消去)", "data deletion (crypto or block erase)"),
    "Destroy": ("物理的破壊", "physical destruction"),
}


@dataclass(frozen=True)
class Basis:
    """A record that proves a deletion, as the picker lists it."""

    kind: SourceKind
    ref: str
    at: datetime
    person_id: str | None
    person: str
    method: str  # key of METHODS
    result_ja: str
    result_en: str
    what_ja: str
    what_en: str
    client_id: int | None = None

    def what(self, lang: str) -> str:
        return self.what_ja if lang == "ja" else self.what_en


class CertificateIn(GuardedIn):
    model_config = ConfigDict(frozen=True)
    kind: SourceKind
    ref: str = Field(min_length=1, max_length=255)
    client_id: int
    person_id: str = Field(min_length=1, max_length=128)
    reason: str = Field(min_length=1, max_length=500)
    subject: str = Field(min_length=1, max_length=500)
    lang: Literal["ja", "en"] = "ja"

def parse_certificate(data: dict[str, object]) -> CertificateIn:
    return parse(CertificateIn, data)


def _numlog(session: Session, names: Names, zone: ZoneInfo, ref: str | None,
            since: datetime) -> list[Basis]:
    offices = office_map(session)
    q = select(NumberAccess).where(NumberAccess.category == "delete", NumberAccess.ok.is_(True))
    q = q.where(NumberAccess.row_key == ref) if ref else q.where(NumberAccess.ts >= since)
    out = []
    for r in session.scalars(q.order_by(NumberAccess.ts)):
        who = names.person(r.person_id, r.operator)
        when = dates.moment(r.ts, zone, "ja")
        out.append(Basis("numlog", r.row_key, r.ts, r.person_id, who, "numlog",
                         scrub(r.result or "削除完了"), scrub(r.result or "deleted"),
                         scrub(f"番号システムの操作記録 {when} {r.office} {r.screen} {r.action}"),
                         scrub(f"number-system log {dates.moment(r.ts, zone, 'en')} {r.office} "
                               f"{r.screen} {r.action}"), offices.get(r.office)))
    return out


def _purges(session: Session, zone: ZoneInfo, ref: str | None, since: datetime) -> list[Basis]:
    q = select(StoredEvent).where(StoredEvent.kind == "backup.pruned")
    if ref:
        node, _, seq = ref.partition(":")
        q = q.where(StoredEvent.node == node, StoredEvent.seq == (int(seq) if seq.isdigit()
                                                                   else -1))
    else:
        q = q.where(StoredEvent.ts >= since)
    out = []
    for e in session.scalars(q.order_by(StoredEvent.ts)):
        data = e.data if isinstance(e.data, dict) else {}
        if data.get("mode") != "purge":
            continue
        n = len(data.get("snapshots_changed") or [])
        out.append(Basis("backup_purge", f"{e.node}:{e.seq}", e.ts, None, "", "backup_purge",
                         f"削除完了({n} 世代から消去)", f"deleted (from {n} snapshots)",
                         f"バックアップからの消去 {dates.moment(e.ts, zone, 'ja')}",
                         f"purge from the backups {dates.moment(e.ts, zone, 'en')}"))
    return out


def _media(session: Session, names: Names, zone: ZoneInfo, ref: str | None,
           since: datetime) -> list[Basis]:
    q = select(MediumRecord).where(MediumRecord.action.in_(("wipe", "dispose")))
    q = q.where(MediumRecord.id == int(ref)) if ref and ref.isdigit() else (
        q.where(MediumRecord.id == -1) if ref else q.where(MediumRecord.at >= since))
    out = []
    for r in session.scalars(q.order_by(MediumRecord.at)):
        method = r.method if r.method in METHODS else ("Destroy" if r.action == "dispose"
                                                        else "Clear")
        ja_what = "消去" if r.action == "wipe" else "廃棄"
        en_what = "wipe" if r.action == "wipe" else "disposal"
        out.append(Basis("media", str(r.id), r.at, r.actor if r.actor in names.people else None,
                         names.user(r.actor), method, f"{ja_what}完了", f"{en_what} completed",
                         f"媒体 {r.control_number} の{ja_what} {dates.moment(r.at, zone, 'ja')}",
                         f"{en_what} of medium {r.control_number} "
                         f"{dates.moment(r.at, zone, 'en')}"))
    return out


def candidates(session: Session, zone: ZoneInfo, now: datetime, *, days: int = 400
               ) -> list[Basis]:
    """Records of the last ``days`` that prove a deletion and have no certificate yet."""
    names = Names(session)
    since = now - timedelta(days=days)
    done = set(session.scalars(select(DeletionCertificate.source_ref)))
    found = (_numlog(session, names, zone, None, since) + _purges(session, zone, None, since)
             + _media(session, names, zone, None, since))
    return sorted((b for b in found if b.ref not in done), key=lambda b: b.at, reverse=True)


def basis_of(session: Session, kind: str, ref: str, zone: ZoneInfo) -> Basis:
    names = Names(session)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    found = {"numlog": lambda: _numlog(session, names, zone, ref, epoch),
             "backup_purge": lambda: _purges(session, zone, ref, epoch),
             "media": lambda: _media(session, names, zone, ref, epoch)}.get(kind)
    got = found() if found else []
    if not got:
        raise ReportError(f"no {kind} record {ref[:40]!r} that proves a deletion")
    return got[0]


def issue_certificate(session: Session, data: CertificateIn, *, zone: ZoneInfo, now: datetime,
                      actor: str) -> tuple[DeletionCertificate, dict[str, bytes]]:
    """Issue the certificate for one record; the caller commits."""
    basis = basis_of(session, data.kind, data.ref, zone)
    if session.scalars(select(DeletionCertificate).where(
            DeletionCertificate.source_ref == basis.ref)).first() is not None:
        raise ReportError("a certificate for this record was issued already")
    client = session.get(Client, data.client_id)
    if client is None:
        raise ReportError(f"client: no client {data.client_id}")
    person = session.get(Person, data.person_id)
    if person is None:
        raise ReportError(f"person_id: no person {data.person_id!r}")
    lang: Lang = data.lang
    ja = lang == "ja"
    row = DeletionCertificate(
        number=next_number(session, now, zone, certificate=True), org=client.name,
        processed_on=basis.at.astimezone(zone).date(), person_in_charge=person.name,
        reason=data.reason, subject=data.subject,
        result=basis.result_ja if ja else basis.result_en,
        method=METHODS[basis.method][0 if ja else 1], issued_at=now, issued_by=actor,
        client_id=client.id, source_kind=basis.kind, source_ref=basis.ref, lang=lang)
    session.add(row)
    session.flush()
    files = {"pdf": certificate_pdf(session, row, basis.what(lang), zone),
             "csv": certificate_csv(row, basis.what(lang), zone)}
    hashes = store_files(session, files, certificate_id=row.id)
    append_audit(session, actor=actor, action="certificate.issue", target_type="certificate",
                 target_id=str(row.id), before=None,
                 after={"number": row.number, "client_id": client.id, "source": basis.kind,
                        "ref": basis.ref, "person": person.id, "files": hashes}, now=now)
    return row, files


FIELDS = ("processed_on", "person_in_charge", "cert_reason", "cert_subject", "cert_result",
          "method")


def _values(c: DeletionCertificate, lang: str, style: dates.DateStyle) -> list[str]:
    return [dates.day(c.processed_on, lang, style),  # type: ignore[arg-type]
            c.person_in_charge, c.reason, c.subject, c.result, c.method]


def certificate_pdf(session: Session, c: DeletionCertificate, basis: str, zone: ZoneInfo
                    ) -> bytes:
    lang: Lang = "en" if c.lang == "en" else "ja"
    profile = office_profile(session)
    style: dates.DateStyle = "era" if profile.date_style == "era" else "western"
    L = lambda key_, **f: label(key_, lang, **f)  # noqa: E731
    issued: date = c.issued_at.astimezone(zone).date()
    doc = Doc()
    doc.letterhead(L("to_org", org=scrub(c.org)), L("number", n=c.number),
                   dates.day(issued, lang, style), issuer_block(profile, lang), L("seal"))
    doc.title(L("cert_title"))
    doc.text(L("cert_body"))
    doc.table([], [[L(k), scrub(v)] for k, v in zip(FIELDS, _values(c, lang, style),
                                                     strict=True)],
              [40, 140], header_row=False)
    doc.text(f"{L('record_basis')}: {scrub(basis)}")
    doc.text(L("times_in", zone=dates.zone_name(zone, lang)))
    return doc.render(title=L("cert_title"), footer=scrub(f"{L('number', n=c.number)} "
                                                          f"{c.org}"),
                      page_label=lambda n, total: L("page", page=n, pages=total))


def certificate_csv(c: DeletionCertificate, basis: str, zone: ZoneInfo) -> bytes:
    lang = "en" if c.lang == "en" else "ja"
    header = [label("cert_number", lang), label("org", lang)]
    header += [label(k, lang) for k in FIELDS] + [label("record_basis", lang)]
    return write_rows([header, [c.number, c.org, *_values(c, lang, "western"), basis]])
