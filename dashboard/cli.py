"""`secroom db upgrade`, `secroom user add`, `secroom dashboard run` (wired in by controller.cli).

Each handler takes the parsed arguments and returns the process exit code.
"""

from __future__ import annotations

import argparse
import getpass
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.envelope import now_utc
from dashboard.settings import DashboardSettings, SettingsError, load_settings


def _settings(args: argparse.Namespace) -> DashboardSettings:
    if getattr(args, "config", None):
        return load_settings(Path(args.config))
    return DashboardSettings()


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="dashboard TOML config ([dashboard] table)")


def add_subcommands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    db = sub.add_parser("db", help="dashboard database")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    up = db_sub.add_parser("upgrade", help="create or migrate the dashboard database")
    _add_config(up)
    up.add_argument("--database-url", help="overrides the config's database_url")
    up.set_defaults(handler=db_upgrade)

    user = sub.add_parser("user", help="dashboard users")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    add = user_sub.add_parser("add", help="add a dashboard user (e.g. the first admin)")
    _add_config(add)
    add.add_argument("--username", required=True)
    add.add_argument("--role", required=True,
                     choices=["admin", "security_admin", "backup_operator", "auditor"])
    add.add_argument("--password-file", help="read the password from this file (else prompt)")
    add.add_argument("--display-name", default="")
    add.set_defaults(handler=user_add)

    dash = sub.add_parser("dashboard", help="the dashboard web app and ingest")
    dash_sub = dash.add_subparsers(dest="dashboard_command", required=True)
    run = dash_sub.add_parser("run", help="serve the dashboard (and ingest when MQTT is set)")
    _add_config(run)
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8080)
    run.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    run.add_argument("--tls-key", help="private key of --tls-cert (PEM)")
    run.set_defaults(handler=dashboard_run)


def db_upgrade(args: argparse.Namespace) -> int:
    from dashboard.migrate import MigrationError, upgrade

    try:
        settings = _settings(args)
        url = args.database_url or settings.database_url
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        upgrade(url)
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


def user_add(args: argparse.Namespace) -> int:
    from dashboard.audit import append_audit
    from dashboard.auth.passwords import PasswordPolicyError
    from dashboard.auth.service import AuthError, AuthService
    from dashboard.db import make_engine, make_sessionmaker

    try:
        settings = _settings(args)
        password = _read_password(args)
        sm = make_sessionmaker(make_engine(settings.database_url))
        auth = AuthService(settings, sm)
        now = now_utc()
        with sm.begin() as db:
            user = auth.create_user(db, username=args.username, role=args.role,
                                    password=password, now=now, display_name=args.display_name)
            append_audit(db, actor="cli", action="user.create", target_type="user",
                         target_id=user.username, before=None,
                         after={"username": user.username, "role": user.role}, now=now)
    except (SettingsError, AuthError, PasswordPolicyError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"user {args.username} ({args.role}) created")
    return 0


@dataclass
class DashboardRuntime:
    """The dashboard process: bus, and when MQTT is configured ingest and the policy signer."""

    settings: DashboardSettings
    sessionmaker: Any
    bus: Any
    parts: list[Any] = field(default_factory=list)

    def start(self) -> None:
        from dashboard.ingest.gc_tuning import tune_gc

        self._note_unclean_stop()
        tune_gc()  # the app and libraries are loaded: freeze them, collect less often
        for part in self.parts:
            part.start()

    def stop(self) -> None:
        for part in reversed(self.parts):
            part.stop()
        self._marker.unlink(missing_ok=True)

    @property
    def _marker(self) -> Path:
        return self.settings.data_dir / "dashboard.running"

    def _note_unclean_stop(self) -> None:
        """A marker left by the last run means it ended without shutting down (killed, power
        lost): raised as an anomaly, since the dashboard is the one place nobody else watches."""
        from dashboard.anomalies import raise_anomaly

        marker = self._marker
        if marker.exists():
            since = marker.read_text(encoding="utf-8", errors="replace").strip()[:40]
            with self.sessionmaker.begin() as db:
                raise_anomaly(
                    db,
                    "dashboard_unclean_stop",
                    dedupe_key="dashboard",
                    now=now_utc(),
                    subject="the dashboard stopped without shutting down",
                    detail={"running_since": since},
                    severity="warning",
                )
        marker.write_text(now_utc().isoformat(), encoding="utf-8")


@dataclass
class LoopPart:
    """A ``run(stop)`` loop (the correlation listener, the drop folder) as a runtime part."""

    name: str
    run: Callable[[threading.Event], None]
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, args=(self._stop,), name=self.name,
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)


def build_runtime(settings: DashboardSettings) -> DashboardRuntime:
    from controller import keys
    from dashboard.bus import Bus
    from dashboard.db import WalCheckpointer, make_engine, make_sessionmaker

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    sm = make_sessionmaker(engine)
    runtime = DashboardRuntime(settings, sm, Bus())
    from dashboard.backups.check import BackupWatch
    from dashboard.correlation.engine import Correlator
    from dashboard.correlation.listener import CorrelationListener
    from dashboard.correlation.settings import CorrelationSettings

    correlation = CorrelationSettings(timezone=settings.timezone)
    watch = BackupWatch(sm, settings=correlation, interval_s=300, bus=runtime.bus)
    listener = CorrelationListener(runtime.bus, sm, now_utc, correlator=Correlator(correlation))
    correlate = LoopPart("correlation", listener.run)
    # SQLite only: ingest's page writes off its thread
    checkpointer = LoopPart("wal-checkpoint", WalCheckpointer(engine).run)
    runtime.parts = [checkpointer, watch, correlate]
    if settings.mqtt is None:
        return runtime
    from dashboard.ingest.consumer import IngestConsumer
    from dashboard.ingest.link_process import LinkProcess
    from dashboard.policy_signer import PolicySigner

    assert settings.policy_key_file is not None
    key_file = settings.policy_key_file
    key = keys.load_private(key_file) if key_file.exists() else keys.generate(key_file)
    # the broker link runs in a child process: MQTT parsing and storing overlap on two cores
    link = LinkProcess(settings.mqtt, client_id=f"secroom-dashboard-{settings.site}")
    consumer = IngestConsumer(sm, link, site=settings.site, bus=runtime.bus,
                              gap_timeout_s=settings.gap_timeout_s,
                              verify_mode=settings.ingest_verify)
    signer = PolicySigner(sm, key, site=settings.site,
                          publish=lambda topic, blob, retain: link.publish(topic, blob,
                                                                           retain=retain))
    runtime.parts = [checkpointer, link, consumer, signer, watch, correlate]
    return runtime


def dashboard_run(args: argparse.Namespace) -> int:
    import uvicorn

    from dashboard.app import create_app
    from dashboard.web.serve import Server

    try:
        settings = _settings(args)
        if bool(args.tls_cert) != bool(args.tls_key):
            raise SettingsError("--tls-cert and --tls-key go together")
        if args.tls_cert and not settings.https:
            raise SettingsError("serving HTTPS: set https = true so cookies are marked Secure")
        runtime = build_runtime(settings)
    except (SettingsError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    app = create_app(settings, sessionmaker=runtime.sessionmaker, bus=runtime.bus)
    runtime.start()
    try:
        Server(uvicorn.Config(app, host=args.host, port=args.port, log_level="info",
                              proxy_headers=False, server_header=False,
                              ssl_certfile=args.tls_cert, ssl_keyfile=args.tls_key),
               runtime.bus).run()
    finally:
        runtime.stop()
    return 0
