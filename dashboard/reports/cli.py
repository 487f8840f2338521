"""`secroom report ...`: clients, the monthly handling report (issue, download again, verify,
supersede) and deletion certificates from the records that prove them.

dashboard.cli.add_subcommands registers these next to its own.
Exit codes: 0 ok, 1 verification failed, 2 bad input or configuration.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from controller.envelope import now_utc
from dashboard.cli_support import EXIT_FAIL, EXIT_OK, add_db_options, fail, sessionmaker_of
from dashboard.settings import SettingsError


def _fmt(path: Path) -> str:
    suffix = path.suffix.lower().lstrip(".")
    return suffix if suffix in ("pdf", "csv", "xlsx") else "pdf"


def add_subcommands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    report = sub.add_parser("report", help="handling reports, certificates, clients")
    rs = report.add_subparsers(dest="report_cmd", required=True)
    p = rs.add_parser("monthly", help="issue the monthly handling report (kept as issued)")
    p.add_argument("--month", required=True, help="YYYY-MM")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--client", help="client name or id")
    who.add_argument("--all", action="store_true", help="the internal all-clients report")
    p.add_argument("--lang", choices=("ja", "en"), default="ja")
    p.add_argument("--out", required=True, type=Path, help="FILE.pdf, FILE.csv or FILE.xlsx")
    add_db_options(p)
    p.set_defaults(func=report_monthly)
    p = rs.add_parser("supersede", help="issue a corrected report that replaces an issue")
    p.add_argument("number", help="the number of the issue to replace (2026-0003)")
    p.add_argument("--reason", required=True)
    p.add_argument("--out", required=True, type=Path)
    add_db_options(p)
    p.set_defaults(func=report_supersede)
    p = rs.add_parser("download", help="write an issued report again, as issued")
    p.add_argument("number")
    p.add_argument("--out", required=True, type=Path)
    add_db_options(p)
    p.set_defaults(func=report_download)
    p = rs.add_parser("verify", help="is FILE a document we issued, and are its records intact")
    p.add_argument("file", type=Path)
    add_db_options(p)
    p.set_defaults(func=report_verify)
    p = rs.add_parser("candidates", help="records that prove a deletion, not yet certified")
    add_db_options(p)
    p.set_defaults(func=report_candidates)
    p = rs.add_parser("certificate", help="issue a deletion certificate (削除証明書) from a record")
    p.add_argument("--source", required=True, choices=("numlog", "backup_purge", "media"))
    p.add_argument("--ref", required=True, help="the record (see `report candidates`)")
    p.add_argument("--client", required=True, help="client name or id")
    p.add_argument("--person", required=True, help="id of the person in charge")
    p.add_argument("--reason", required=True)
    p.add_argument("--subject", required=True, help="whose data, by name (対象者)")
    p.add_argument("--lang", choices=("ja", "en"), default="ja")
    p.add_argument("--out", required=True, type=Path, help="FILE.pdf or FILE.csv")
    add_db_options(p)
    p.set_defaults(func=report_certificate)
    p = rs.add_parser("client", help="add a client company, or map a 事業所名 to one")
    p.add_argument("name")
    p.add_argument("--address", default="")
    p.add_argument("--contact", default="")
    p.add_argument("--reporting-day", type=int, default=10)
    p.add_argument("--office", action="append", default=[],
                   help="a 事業所名 of the number-access log that belongs to this client")
    add_db_options(p)
    p.set_defaults(func=report_client)


def _client_id(session: Any, text: str) -> int:
    from sqlalchemy import select

    from dashboard.models.reports import Client
    from dashboard.reports.data import ReportError

    row = session.scalars(select(Client).where(Client.name == text)).first()
    if row is None and text.isdigit():
        row = session.get(Client, int(text))
    if row is None:
        raise ReportError(f"no client {text!r} (see the dashboard's client list)")
    return int(row.id)


def _report_id(session: Any, number: str) -> int:
    from sqlalchemy import select

    from dashboard.models.correlation import IssuedReport
    from dashboard.reports.data import ReportError

    rid = session.scalar(select(IssuedReport.id).where(IssuedReport.number == number))
    if rid is None:
        raise ReportError(f"no issued report {number!r}")
    return int(rid)


def _run(args: argparse.Namespace, body: Any) -> int:
    from dashboard.reports.data import ReportError

    try:
        settings, sm = sessionmaker_of(args)
        with sm() as session:
            code: int = body(settings, session)
            session.commit()
    except (SettingsError, ReportError, OSError) as exc:
        return fail(str(exc))
    return code


def report_monthly(args: argparse.Namespace) -> int:
    from dashboard.reports.monthly import issue

    def body(settings: Any, session: Any) -> int:
        cid = None if args.all else _client_id(session, args.client)
        out = issue(session, month=args.month, client_id=cid, lang=args.lang,
                    zone=settings.zone, now=now_utc(), actor="cli")
        args.out.write_bytes(out.files[_fmt(args.out)])
        print(f"{args.out}: report {out.number}, {args.month}, "
              f"{out.data.client.name if out.data.client else '(all clients)'} ({args.lang}); "
              f"{len(out.data.uses)} use(s), {len(out.data.logins)} log-in(s)")
        return EXIT_OK

    return _run(args, body)


def report_supersede(args: argparse.Namespace) -> int:
    from dashboard.models.correlation import IssuedReport
    from dashboard.reports.monthly import issue

    def body(settings: Any, session: Any) -> int:
        old = session.get(IssuedReport, _report_id(session, args.number))
        out = issue(session, month=old.month, client_id=old.client_id, lang=old.lang,
                    zone=settings.zone, now=now_utc(), actor="cli", supersedes=old.id,
                    reason=args.reason)
        args.out.write_bytes(out.files[_fmt(args.out)])
        print(f"{args.out}: report {out.number} replaces {args.number}")
        return EXIT_OK

    return _run(args, body)


def report_download(args: argparse.Namespace) -> int:
    from dashboard.reports.monthly import stored_file

    def body(settings: Any, session: Any) -> int:
        args.out.write_bytes(stored_file(session, fmt=_fmt(args.out),
                                         report_id=_report_id(session, args.number)))
        print(f"{args.out}: report {args.number} as issued")
        return EXIT_OK

    return _run(args, body)


def report_verify(args: argparse.Namespace) -> int:
    from dashboard.reports.verify import verify_file

    def body(settings: Any, session: Any) -> int:
        res = verify_file(session, args.file.read_bytes())
        print(json.dumps(res.as_dict(), ensure_ascii=False))
        return EXIT_OK if res.ok else EXIT_FAIL

    return _run(args, body)


def report_candidates(args: argparse.Namespace) -> int:
    from dashboard.reports.certificates import candidates

    def body(settings: Any, session: Any) -> int:
        for b in candidates(session, settings.zone, now_utc()):
            print(f"{b.kind}\t{b.ref}\t{b.what('en')}")
        return EXIT_OK

    return _run(args, body)


def report_certificate(args: argparse.Namespace) -> int:
    from dashboard.reports.certificates import issue_certificate, parse_certificate

    def body(settings: Any, session: Any) -> int:
        data = parse_certificate({
            "kind": args.source, "ref": args.ref, "client_id": _client_id(session, args.client),
            "person_id": args.person, "reason": args.reason, "subject": args.subject,
            "lang": args.lang})
        row, files = issue_certificate(session, data, zone=settings.zone, now=now_utc(),
                                       actor="cli")
        args.out.write_bytes(files["csv" if _fmt(args.out) == "csv" else "pdf"])
        print(f"{args.out}: certificate {row.number}")
        return EXIT_OK

    return _run(args, body)


def report_client(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from dashboard.models.reports import Client
    from dashboard.reports.clients import ClientIn, map_office, save_client
    from dashboard.reports.inputs import parse

    def body(settings: Any, session: Any) -> int:
        data = parse(ClientIn, {"name": args.name, "address": args.address,
                                "contact": args.contact, "reporting_day": args.reporting_day})
        existing = session.scalars(select(Client).where(Client.name == data.name)).first()
        row = save_client(session, data, actor="cli", now=now_utc(),
                          client_id=existing.id if existing else None)
        for office in args.office:
            map_office(session, office, row.id, actor="cli", now=now_utc())
        print(f"client {row.id}: {row.name} ({len(args.office)} office name(s) mapped)")
        return EXIT_OK

    return _run(args, body)
