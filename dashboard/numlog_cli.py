"""`secroom numlog ...` and `secroom report ...`: import number-access logs, re-run the
correlation, issue and verify the monthly report, issue deletion certificates.

The lead registers these with ``numlog_cli.add_subcommands(sub)`` next to dashboard.cli's.
Exit codes: 0 ok, 1 verification failed, 2 bad input or configuration.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

from controller.envelope import now_utc
from dashboard.settings import DashboardSettings, SettingsError, load_settings

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def _settings(args: argparse.Namespace) -> DashboardSettings:
    if getattr(args, "config", None):
        return load_settings(Path(args.config))
    return DashboardSettings()


def _sessionmaker(args: argparse.Namespace) -> tuple[DashboardSettings, Any]:
    from dashboard.db import make_engine, make_sessionmaker

    settings = _settings(args)
    url = getattr(args, "database_url", None) or settings.database_url
    return settings, make_sessionmaker(make_engine(url))


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="dashboard TOML config ([dashboard] table)")
    p.add_argument("--database-url", help="override the configured database URL")


def add_subcommands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    numlog = sub.add_parser("numlog", help="number-system access logs")
    ns = numlog.add_subparsers(dest="numlog_cmd", required=True)
    p = ns.add_parser("import", help="import a CSV access log (UTF-8, UTF-8 BOM or CP932)")
    p.add_argument("file", type=Path)
    p.add_argument("--source", required=True, help="name of the number system (e.g. cells)")
    p.add_argument("--preset", help="column preset (ja-standard, en-standard); default: detect")
    p.add_argument("--map", action="append", default=[], metavar="FIELD=HEADER",
                   help="column mapping for other layouts (fields: no office ts screen action "
                        "purpose operator result terminal)")
    _common(p)
    p.set_defaults(func=numlog_import)
    p = ns.add_parser("correlate", help="re-run the correlation over a period")
    p.add_argument("--since", required=True, type=date.fromisoformat, help="YYYY-MM-DD (local)")
    p.add_argument("--until", required=True, type=date.fromisoformat, help="YYYY-MM-DD, exclusive")
    _common(p)
    p.set_defaults(func=numlog_correlate)
    p = ns.add_parser("map-operator", help="map a number-system operator to a person")
    p.add_argument("operator")
    p.add_argument("person")
    p.add_argument("--source", default="", help="only for this source")
    p.add_argument("--host", help="the host this operator works on (for the USB join)")
    _common(p)
    p.set_defaults(func=numlog_map_operator)
    p = ns.add_parser("map-terminal", help="map a terminal name to a host")
    p.add_argument("terminal")
    p.add_argument("host")
    _common(p)
    p.set_defaults(func=numlog_map_terminal)

    report = sub.add_parser("report", help="monthly handling report and certificates")
    rs = report.add_subparsers(dest="report_cmd", required=True)
    p = rs.add_parser("monthly", help="issue the monthly handling report (PDF or CSV)")
    p.add_argument("--month", required=True, help="YYYY-MM")
    p.add_argument("--org", required=True, help="organisation (事業所名); '' for all")
    p.add_argument("--lang", choices=("ja", "en"), default="ja")
    p.add_argument("--out", required=True, type=Path, help="FILE.pdf or FILE.csv")
    _common(p)
    p.set_defaults(func=report_monthly)
    p = rs.add_parser("verify", help="check that the records a report sealed are unchanged")
    p.add_argument("file", type=Path)
    _common(p)
    p.set_defaults(func=report_verify)
    p = rs.add_parser("certificate", help="issue a deletion certificate (削除証明書)")
    for name in ("number", "org", "processed-on", "person-in-charge", "reason", "subject",
                 "result", "method"):
        p.add_argument(f"--{name}", required=True)
    p.add_argument("--lang", choices=("ja", "en"), default="ja")
    p.add_argument("--out", required=True, type=Path, help="FILE.pdf or FILE.csv")
    _common(p)
    p.set_defaults(func=report_certificate)


def _fail(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return EXIT_USAGE


def numlog_import(args: argparse.Namespace) -> int:
    from dashboard.numlog.parse import ColumnMapping, NumlogError
    from dashboard.numlog.service import import_csv

    try:
        settings, sm = _sessionmaker(args)
        mapping = None
        if args.map:
            pairs = dict(m.split("=", 1) for m in args.map if "=" in m)
            if len(pairs) != len(args.map):
                return _fail("--map takes FIELD=HEADER")
            mapping = ColumnMapping.model_validate(pairs)
        data = args.file.read_bytes()
        with sm() as session:
            report = import_csv(session, data, source=args.source, now=now_utc(),
                                zone=settings.zone, actor="cli", filename=args.file.name,
                                preset=args.preset, mapping=mapping)
            session.commit()
    except (SettingsError, NumlogError, OSError) as exc:
        return _fail(str(exc))
    except ValueError as exc:  # a mapping that does not validate
        return _fail(f"bad --map: {str(exc).splitlines()[0]}")
    out = report.as_dict()
    print(f"{args.file.name}: {out['stored']} stored, {out['duplicate']} already stored, "
          f"{out['bad']} bad, {out['redacted']} with a number redacted "
          f"({out['encoding']}, {out['preset']}); {out['new_findings']} new finding(s)")
    for err in report.errors[:50]:
        print(f"  line {err['line']}: {err['error']}")
    return EXIT_OK


def _local_day(d: date, settings: DashboardSettings) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=settings.zone)


def numlog_correlate(args: argparse.Namespace) -> int:
    from dashboard.correlation.rerun import rerun
    from dashboard.reports.media_source import loans

    try:
        settings, sm = _sessionmaker(args)
    except SettingsError as exc:
        return _fail(str(exc))
    with sm() as session:
        res = rerun(session, _local_day(args.since, settings), _local_day(args.until, settings),
                    now_utc(), loans=loans(session))
        session.commit()
    p = res.persisted
    print(f"{res.rows} row(s), {len(res.findings)} finding(s): "
          f"{len(p.new) if p else 0} new, {len(p.withdrawn) if p else 0} withdrawn")
    return EXIT_OK


def numlog_map_operator(args: argparse.Namespace) -> int:
    from dashboard.numlog.mapping import set_operator

    try:
        _, sm = _sessionmaker(args)
        with sm() as session:
            set_operator(session, args.operator, args.person, source=args.source,
                         host=args.host, actor="cli", now=now_utc())
            session.commit()
    except (SettingsError, ValueError) as exc:
        return _fail(str(exc))
    return EXIT_OK


def numlog_map_terminal(args: argparse.Namespace) -> int:
    from dashboard.numlog.mapping import set_terminal

    try:
        _, sm = _sessionmaker(args)
        with sm() as session:
            set_terminal(session, args.terminal, args.host, actor="cli", now=now_utc())
            session.commit()
    except (SettingsError, ValueError) as exc:
        return _fail(str(exc))
    return EXIT_OK


def report_monthly(args: argparse.Namespace) -> int:
    from dashboard.reports.data import ReportError
    from dashboard.reports.monthly import issue

    fmt: Literal["pdf", "csv"] = "csv" if args.out.suffix.lower() == ".csv" else "pdf"
    try:
        settings, sm = _sessionmaker(args)
        with sm() as session:
            issued = issue(session, month=args.month, org=args.org, lang=args.lang, fmt=fmt,
                           zone=settings.zone, now=now_utc(), actor="cli")
            args.out.write_bytes(issued.content)
            session.commit()
    except (SettingsError, ReportError, OSError) as exc:
        return _fail(str(exc))
    print(f"{args.out}: {args.month} {args.org or '(all)'} ({args.lang}, {fmt}), "
          f"{issued.data.accesses_total} number access(es), {len(issued.data.anomalies)} "
          f"anomal(ies); report id {issued.record_id}")
    return EXIT_OK


def report_verify(args: argparse.Namespace) -> int:
    from dashboard.reports.data import ReportError
    from dashboard.reports.monthly import verify_file

    try:
        _, sm = _sessionmaker(args)
        content = args.file.read_bytes()
        with sm() as session:
            res = verify_file(session, content)
    except (SettingsError, ReportError, OSError) as exc:
        return _fail(str(exc))
    print(json.dumps({"ok": res.ok, "events": res.checked_events, "rows": res.checked_rows,
                      "problems": res.problems}, ensure_ascii=False))
    return EXIT_OK if res.ok else EXIT_FAIL


def report_certificate(args: argparse.Namespace) -> int:
    from dashboard.reports.certificates import (
        CertificateError,
        certificate_csv,
        certificate_pdf,
        parse_certificate,
        record,
    )

    try:
        cert = parse_certificate({
            "number": args.number, "org": args.org, "processed_on": args.processed_on,
            "person_in_charge": args.person_in_charge, "reason": args.reason,
            "subject": args.subject, "result": args.result, "method": args.method})
        _, sm = _sessionmaker(args)
        with sm() as session:
            record(session, cert, actor="cli", now=now_utc())
            csv_out = args.out.suffix.lower() == ".csv"
            args.out.write_bytes(certificate_csv([cert], args.lang) if csv_out
                                 else certificate_pdf([cert], args.lang))
            session.commit()
    except (SettingsError, CertificateError, OSError) as exc:
        return _fail(str(exc))
    print(f"{args.out}: certificate {cert.number}")
    return EXIT_OK
