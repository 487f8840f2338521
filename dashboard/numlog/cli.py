"""`secroom numlog ...`: import number-access logs, re-run the correlation, map operators and
terminals.

dashboard.cli.add_subcommands registers these next to its own.
Exit codes: 0 ok, 1 verification failed, 2 bad input or configuration.
"""

from __future__ import annotations

import argparse
from datetime import date, datetime
from pathlib import Path

from controller.envelope import now_utc
from dashboard.cli_support import EXIT_OK, add_db_options, fail, sessionmaker_of
from dashboard.settings import DashboardSettings, SettingsError


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
    add_db_options(p)
    p.set_defaults(func=numlog_import)
    p = ns.add_parser("correlate", help="re-run the correlation over a period")
    p.add_argument("--since", required=True, type=date.fromisoformat, help="YYYY-MM-DD (local)")
    p.add_argument("--until", required=True, type=date.fromisoformat, help="YYYY-MM-DD, exclusive")
    add_db_options(p)
    p.set_defaults(func=numlog_correlate)
    p = ns.add_parser("map-operator", help="map a number-system operator to a person")
    p.add_argument("operator")
    p.add_argument("person")
    p.add_argument("--source", default="", help="only for this source")
    p.add_argument("--host", help="the host this operator works on (for the USB join)")
    add_db_options(p)
    p.set_defaults(func=numlog_map_operator)
    p = ns.add_parser("map-terminal", help="map a terminal name to a host")
    p.add_argument("terminal")
    p.add_argument("host")
    add_db_options(p)
    p.set_defaults(func=numlog_map_terminal)


def numlog_import(args: argparse.Namespace) -> int:
    from dashboard.numlog.parse import ColumnMapping, NumlogError
    from dashboard.numlog.service import import_csv

    try:
        settings, sm = sessionmaker_of(args)
        mapping = None
        if args.map:
            pairs = dict(m.split("=", 1) for m in args.map if "=" in m)
            if len(pairs) != len(args.map):
                return fail("--map takes FIELD=HEADER")
            mapping = ColumnMapping.model_validate(pairs)
        data = args.file.read_bytes()
        with sm() as session:
            report = import_csv(session, data, source=args.source, now=now_utc(),
                                zone=settings.zone, actor="cli", filename=args.file.name,
                                preset=args.preset, mapping=mapping)
            session.commit()
    except (SettingsError, NumlogError, OSError) as exc:
        return fail(str(exc))
    except ValueError as exc:  # a mapping that does not validate
        return fail(f"bad --map: {str(exc).splitlines()[0]}")
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
    from dashboard.correlation.sources import loans

    try:
        settings, sm = sessionmaker_of(args)
    except SettingsError as exc:
        return fail(str(exc))
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
        _, sm = sessionmaker_of(args)
        with sm() as session:
            set_operator(session, args.operator, args.person, source=args.source,
                         host=args.host, actor="cli", now=now_utc())
            session.commit()
    except (SettingsError, ValueError) as exc:
        return fail(str(exc))
    return EXIT_OK


def numlog_map_terminal(args: argparse.Namespace) -> int:
    from dashboard.numlog.mapping import set_terminal

    try:
        _, sm = sessionmaker_of(args)
        with sm() as session:
            set_terminal(session, args.terminal, args.host, actor="cli", now=now_utc())
            session.commit()
    except (SettingsError, ValueError) as exc:
        return fail(str(exc))
    return EXIT_OK
