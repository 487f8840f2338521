"""The dashboard's commands of the `secroom` CLI: `db`, `user`, `dashboard`, `numlog`,
`report`, `nodes` and `demo`.

controller.cli (a floor below) finds them through the ``secroom.commands`` entry-point group
(pyproject.toml), so a gateway-only Pi never loads this package to start. Every command sets
``func(args) -> int``, the process exit code.
"""

from __future__ import annotations

import argparse
import getpass
import signal
import sys
from pathlib import Path
from typing import Any

from controller.envelope import now_utc
from dashboard.cli_support import settings_of
from dashboard.settings import SettingsError


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="dashboard TOML config ([dashboard] table)")


def add_subcommands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The ``secroom.commands`` entry point: add every dashboard command to ``sub``."""
    from dashboard.numlog.cli import add_subcommands as add_numlog_subcommands
    from dashboard.reports.cli import add_subcommands as add_report_subcommands

    db = sub.add_parser("db", help="dashboard database")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    up = db_sub.add_parser("upgrade", help="create or migrate the dashboard database")
    _add_config(up)
    up.add_argument("--database-url", help="overrides the config's database_url")
    up.set_defaults(func=db_upgrade)

    user = sub.add_parser("user", help="dashboard users")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    add = user_sub.add_parser("add", help="add a dashboard user (e.g. the first admin)")
    _add_config(add)
    add.add_argument("--username", required=True)
    add.add_argument("--role", required=True,
                     choices=["admin", "security_admin", "backup_operator", "auditor"])
    add.add_argument("--password-file", help="read the password from this file (else prompt)")
    add.add_argument("--display-name", default="")
    scope = add.add_mutually_exclusive_group()
    scope.add_argument("--site", help="many sites: limit the account to this site (a site's "
                                      "security admin or auditor)")
    scope.add_argument("--client", help="limit an auditor to this client company's records and "
                                        "reports (its name as on the clients page)")
    add.set_defaults(func=user_add)

    dash = sub.add_parser("dashboard", help="the dashboard web app and ingest")
    dash_sub = dash.add_subparsers(dest="dashboard_command", required=True)
    run = dash_sub.add_parser("run", help="serve the dashboard (and ingest when MQTT is set)")
    _add_config(run)
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8080)
    run.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    run.add_argument("--tls-key", help="private key of --tls-cert (PEM)")
    run.set_defaults(func=dashboard_run)

    from dashboard.recovery.cli import add_backup_subcommand, add_recover_command

    add_backup_subcommand(dash_sub)
    add_recover_command(sub)

    broker = sub.add_parser("broker", help="the room broker's configuration")
    broker_sub = broker.add_subparsers(dest="broker_command", required=True)
    cfg = broker_sub.add_parser(
        "config", help="write the broker's password file and ACL from the node registry")
    _add_config(cfg)
    cfg.add_argument("--out", type=Path, required=True, help="folder for the generated files")
    cfg.add_argument("--add", action="append", default=[], metavar="NODE",
                     help="register a node about to be installed (repeatable)")
    cfg.add_argument("--tls-dir", type=Path, default=Path("/etc/mosquitto/certs"),
                     help="where ca.crt, broker.crt and broker.key live on the broker host")
    cfg.add_argument("--port", type=int, default=8883, help="the TLS listener's port")
    cfg.add_argument("--bridge", action="store_true",
                     help="many sites: write the central broker's CA, certificates, config and "
                          "ACL, and each --site's bridge (see hardware/central/)")
    cfg.add_argument("--site", action="append", default=[], dest="bridge_sites",
                     metavar="SITE", help="the site whose room broker to configure (default: "
                                          "the config's site); with --bridge: a site to add "
                                          "(repeatable)")
    cfg.add_argument("--central", action="append", default=[], metavar="HOST:PORT",
                     help="with --bridge: the address sites dial (repeatable: tried in turn)")
    cfg.set_defaults(func=broker_config)

    add_numlog_subcommands(sub)
    add_report_subcommands(sub)
    from dashboard.nodes_cli import add_subcommands as add_nodes_subcommands

    add_nodes_subcommands(sub)
    from dashboard.cardkeys_cli import add_subcommands as add_card_key_subcommands

    add_card_key_subcommands(sub)

    demo = sub.add_parser("demo", help="run the whole room on this machine, simulated hardware")
    demo.add_argument("--workdir", type=Path, default=Path(".demo"))
    demo.add_argument("--no-input", action="store_true", help="do not read taps from stdin")
    demo.set_defaults(func=_demo)


def bridge_config(args: argparse.Namespace) -> int:
    from dashboard.bridge_config import write_bridge_config
    from dashboard.broker_config import BrokerConfigError

    try:
        settings = settings_of(args)
        if not args.central:
            raise BrokerConfigError("--bridge needs --central HOST:PORT (the address sites dial)")
        names = sorted({c.rpartition(":")[0] or c for c in args.central})
        written = write_bridge_config(args.out, sites=args.bridge_sites or [settings.site],
                                      central=args.central, central_names=names,
                                      port=args.port)
    except (SettingsError, BrokerConfigError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{written.central_conf} and {written.central_acl.name}: the central broker, "
          f"{len(written.sites)} site(s): {', '.join(written.sites)}")
    for site, conf in written.site_confs.items():
        print(f"  {site}: copy {conf.parent} to the site's Pi ({conf.name} into "
              "/etc/mosquitto/conf.d/, certs/ into /etc/mosquitto/secroom-bridge/), then "
              "restart mosquitto there")
    print(f"{written.dashboard_dir}/certs: the dashboards' client certificate ([mqtt.tls])")
    print(f"{args.out / 'ca' / 'ca.key'}: the central CA's key; keep it here, offline if you "
          "can, and never copy it to a site")
    return 0


def broker_config(args: argparse.Namespace) -> int:
    if args.bridge:
        return bridge_config(args)
    from dashboard.broker_config import BrokerConfigError, preregister, write_config
    from dashboard.db import make_engine, make_sessionmaker

    try:
        settings = settings_of(args)
        if len(args.bridge_sites) > 1:
            raise BrokerConfigError("one --site at a time: each site's broker has its own files")
        # a central dashboard's registry holds every site: --site picks the room broker's
        site = args.bridge_sites[0] if args.bridge_sites else settings.site
        sm = make_sessionmaker(make_engine(settings.database_url))
        with sm.begin() as db:
            added = preregister(db, args.add, site, now_utc())
            written = write_config(db, args.out, site=site, tls_dir=args.tls_dir,
                                   port=args.port)
    except (SettingsError, BrokerConfigError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{written.acl}: {len(written.users)} node user(s) and the dashboard")
    print(f"{written.passwd}: kept {len(written.changes.kept)}, added "
          f"{len(written.changes.added)}, removed {len(written.changes.removed)}"
          + (f" ({', '.join(written.changes.removed)})" if written.changes.removed else ""))
    for user in written.changes.added:
        print(f"  new password for {user}: {written.secrets_dir / (user + '.pw')} "
              "(copy it to that node's [mqtt] password_file, then delete it here)")
    if added:
        print(f"registered as pending: {', '.join(added)} (approve each on the nodes page once "
              "it announces its key)")
    print(f"{written.conf}: include it from /etc/mosquitto/conf.d/, make the files readable "
          "by the mosquitto user, then reload mosquitto (systemctl reload mosquitto)")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from dashboard.demo import run

    return run(args)


def db_upgrade(args: argparse.Namespace) -> int:
    from dashboard.migrate import MigrationError, upgrade

    try:
        settings = settings_of(args)
        url = args.database_url or settings.database_url
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        upgrade(url, site=settings.site)
    except (SettingsError, MigrationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("dashboard database is up to date")
    return 0


def _read_password(args: argparse.Namespace) -> str:
    if args.password_file:
        text = Path(args.password_file).read_text(encoding="utf-8")
        return text.rstrip("\r\n")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise ValueError("the two passwords differ")
    return first


def _client_id(db: Any, name: str) -> int:
    from sqlalchemy import select

    from dashboard.auth.service import AuthError
    from dashboard.models.reports import Client

    found = db.scalar(select(Client.id).where(Client.name == name))
    if found is None:
        raise AuthError(f"no client company named {name!r}: add it on the clients page first")
    return int(found)


def user_add(args: argparse.Namespace) -> int:
    from dashboard.audit import append_audit
    from dashboard.auth.passwords import PasswordPolicyError
    from dashboard.auth.service import AuthError, AuthService
    from dashboard.db import make_engine, make_sessionmaker

    try:
        settings = settings_of(args)
        password = _read_password(args)
        sm = make_sessionmaker(make_engine(settings.database_url))
        auth = AuthService(settings, sm)
        now = now_utc()
        with sm.begin() as db:
            client_id = _client_id(db, args.client) if args.client else None
            user = auth.create_user(db, username=args.username, role=args.role,
                                    password=password, now=now, display_name=args.display_name,
                                    site=args.site, client_id=client_id)
            append_audit(db, actor="cli", action="user.create", target_type="user",
                         target_id=user.username, before=None,
                         after={"username": user.username, "role": user.role,
                                "site": user.site, "client_id": user.client_id}, now=now)
    except (SettingsError, AuthError, PasswordPolicyError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    where = (f", site {args.site}" if args.site else "") + (
        f", client {args.client}" if args.client else "")
    print(f"user {args.username} ({args.role}{where}) created")
    return 0


def dashboard_run(args: argparse.Namespace) -> int:

    from dashboard.app import create_app
    from dashboard.migrate import MigrationError, check_current
    from dashboard.web.serve import Server

    try:
        settings = settings_of(args)
        if bool(args.tls_cert) != bool(args.tls_key):
            raise SettingsError("--tls-cert and --tls-key go together")
        if args.tls_cert and not settings.https:
            raise SettingsError("serving HTTPS: set https = true so cookies are marked Secure")
        check_current(settings.database_url)  # never run on a schema it was not written for
        from dashboard.runtime import build_runtime

        runtime = build_runtime(settings, config_path=Path(args.config) if args.config else None)
    except MigrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        print("the dashboard did not start; `secroom db upgrade --config ...` brings an older "
              "database to this release's schema", file=sys.stderr)
        return 2
    except (SettingsError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    app = create_app(settings, sessionmaker=runtime.sessionmaker, bus=runtime.bus)
    from dashboard.metrics import for_runtime

    app.state.metrics = for_runtime(runtime)  # GET /api/v1/metrics: ingest, link, decisions
    # uvicorn stops gracefully on SIGTERM, then raises the signal again under the handler that
    # was there before it: with the default one the process died before the runtime stopped
    # (ingest link and audit processes left running, the WAL not checkpointed, the marker left
    # behind as an unclean stop). Here it ends the run like Ctrl-C does.
    previous = signal.signal(signal.SIGTERM, _terminated)
    runtime.start()
    try:
        Server(server_config(app, settings, args), runtime.bus).run()
    except _Terminated:
        pass
    finally:
        runtime.stop()
        signal.signal(signal.SIGTERM, previous)
    return 0


def server_config(app: Any, settings: Any, args: argparse.Namespace) -> Any:
    """uvicorn's config for `secroom dashboard run`: X-Forwarded-For is believed only from the
    configured load balancers (``trusted_proxies``), never from anyone when there are none."""
    import uvicorn

    trusted = list(settings.trusted_proxies)
    return uvicorn.Config(app, host=args.host, port=args.port, log_level="info",
                          proxy_headers=bool(trusted), forwarded_allow_ips=trusted or None,
                          server_header=False, ssl_certfile=args.tls_cert,
                          ssl_keyfile=args.tls_key)


class _Terminated(Exception):
    """SIGTERM reached the dashboard after uvicorn stopped serving."""


def _terminated(_sig: int, _frame: object) -> None:
    raise _Terminated
