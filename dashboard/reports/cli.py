"""`secroom report ...`: issue and verify the monthly report, issue deletion certificates.

dashboard.cli.add_subcommands registers these next to its own.
Exit codes: 0 ok, 1 verification failed, 2 bad input or configuration.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Literal

from controller.envelope import now_utc
from dashboard.cli_support import EXIT_FAIL, EXIT_OK, add_db_options, fail, sessionmaker_of
from dashboard.settings import SettingsError


def add_subcommands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    report = sub.add_parser("report", help="monthly handling report and certificates")
    rs = report.add_subparsers(dest="report_cmd", required=True)
    p = rs.add_parser("monthly", help="issue the monthly handling report (PDF or CSV)")
    p.add_argument("--month", required=True, help="YYYY-MM")
    p.add_argument("--org", required=True, help="organisation (事業所名); '' for all")
    p.add_argument("--lang", choices=("ja", "en"), default="ja")
    p.add_argument("--out", required=True, type=Path, help="FILE.pdf or FILE.csv")
    add_db_options(p)
    p.set_defaults(func=report_monthly)
    p = rs.add_parser("verify", help="check that the records a report sealed are unchanged")
    p.add_argument("file", type=Path)
    add_db_options(p)
    p.set_defaults(func=report_verify)
    p = rs.add_parser("certificate", help="issue a deletion certificate (削除証明書)")
    for name in ("number", "org", "processed-on", "person-in-charge", "reason", "subject",
                 "result", "method"):
        p.add_argument(f"--{name}", required=True)
    p.add_argument("--lang", choices=("ja", "en"), default="ja")
    p.add_argument("--out", required=True, type=Path, help="FILE.pdf or FILE.csv")
    add_db_options(p)
    p.set_defaults(func=report_certificate)


def report_monthly(args: argparse.Namespace) -> int:
    from dashboard.reports.data import ReportError
    from dashboard.reports.monthly import issue

    fmt: Literal["pdf", "csv"] = "csv" if args.out.suffix.lower() == ".csv" else "pdf"
    try:
        settings, sm = sessionmaker_of(args)
        with sm() as session:
            issued = issue(session, month=args.month, org=args.org, lang=args.lang, fmt=fmt,
                           zone=settings.zone, now=now_utc(), actor="cli")
            args.out.write_bytes(issued.content)
            session.commit()
    except (SettingsError, ReportError, OSError) as exc:
        return fail(str(exc))
    print(f"{args.out}: {args.month} {args.org or '(all)'} ({args.lang}, {fmt}), "
          f"{issued.data.accesses_total} number access(es), {len(issued.data.anomalies)} "
          f"anomal(ies); report id {issued.record_id}")
    return EXIT_OK


def report_verify(args: argparse.Namespace) -> int:
    from dashboard.reports.data import ReportError
    from dashboard.reports.monthly import verify_file

    try:
        _, sm = sessionmaker_of(args)
        content = args.file.read_bytes()
        with sm() as session:
            res = verify_file(session, content)
    except (SettingsError, ReportError, OSError) as exc:
        return fail(str(exc))
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
        _, sm = sessionmaker_of(args)
        with sm() as session:
            record(session, cert, actor="cli", now=now_utc())
            csv_out = args.out.suffix.lower() == ".csv"
            args.out.write_bytes(certificate_csv([cert], args.lang) if csv_out
                                 else certificate_pdf([cert], args.lang))
            session.commit()
    except (SettingsError, CertificateError, OSError) as exc:
        return fail(str(exc))
    print(f"{args.out}: certificate {cert.number}")
    return EXIT_OK
