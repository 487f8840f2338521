"""The dashboard process: its parts (ingest, policy signer, correlation, backup watch, the
nightly database backup) built from the settings and started and stopped together. Used by
``secroom dashboard run`` and by the demo; the web app itself comes from
:func:`dashboard.app.create_app`."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.envelope import now_utc
from dashboard.settings import DashboardSettings


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
        _stop_resource_tracker()
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


def build_runtime(settings: DashboardSettings, *,
                  config_path: Path | None = None) -> DashboardRuntime:
    from controller import keys
    from controller.numguard import install_log_guard
    from dashboard.bus import Bus
    from dashboard.db import WalCheckpointer, make_engine, make_sessionmaker

    install_log_guard()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    sm = make_sessionmaker(engine)
    replica = settings.replica
    if replica is not None:  # the bus reaches the other replicas (PostgreSQL NOTIFY)
        from dashboard.replicas.pgbus import SharedBus

        runtime = DashboardRuntime(settings, sm, SharedBus(settings.database_url,
                                                           replica=replica.name))
    else:
        runtime = DashboardRuntime(settings, sm, Bus())
    from dashboard.backups.check import BackupWatch
    from dashboard.correlation.engine import Correlator
    from dashboard.correlation.listener import CorrelationListener, publish_new_items
    from dashboard.correlation.settings import CorrelationSettings

    correlation = CorrelationSettings(timezone=settings.timezone)

    def scheduled() -> list[Any]:
        """The scheduled work: on one replica only (the leader) when there are several."""
        watch = BackupWatch(sm, settings=correlation, interval_s=300, bus=runtime.bus)
        listener = CorrelationListener(runtime.bus, sm, now_utc,
                                       correlator=Correlator(correlation))
        publish_new_items(listener, runtime.bus)
        nightly: list[Any] = []  # the database backup needs the config file it copies
        if settings.backup is not None and config_path is not None:
            from dashboard.recovery.job import NightlyDatabaseBackup

            nightly.append(NightlyDatabaseBackup(config_path, settings.backup,
                                                 settings.timezone, clock=now_utc))
        from dashboard.camera.store import RetentionLoop

        stills = LoopPart("camera-retention", RetentionLoop(sm, settings.camera.retention_days,
                                                            now_utc).run)
        return [watch, LoopPart("correlation", listener.run), stills, *nightly]

    # SQLite only: ingest's page writes off its thread
    checkpointer = LoopPart("wal-checkpoint", WalCheckpointer(engine).run)
    if settings.mqtt is None and replica is not None:  # a web-only replica: still one leader
        from dashboard.replicas.leader import Leader

        runtime.parts = [runtime.bus, Leader(engine, scheduled, replica=replica.name,
                                             site=settings.site, retry_s=replica.renew_s)]
        return runtime
    if settings.mqtt is None:
        runtime.parts = [checkpointer, *scheduled()]
        return runtime
    from dashboard.ingest.consumer import IngestConsumer
    from dashboard.ingest.link_process import LinkProcess
    from dashboard.policy_signer import PolicySigner

    assert settings.policy_key_file is not None
    key_file = settings.policy_key_file
    key = keys.load_private(key_file) if key_file.exists() else keys.generate(key_file)
    # the broker link runs in a child process: MQTT parsing and storing overlap on two cores
    client_id = f"secroom-dashboard-{settings.site}"
    leases = None
    from dashboard.sites_runtime import other_sites, site_ingest, site_publishers

    if replica is not None:  # the leases cover every site's nodes
        from dashboard.replicas.leases import IngestLeases

        client_id += f"-{replica.name}"
        leases = IngestLeases(sm, replica=replica.name,
                              sites=[settings.site, *other_sites(settings)],
                              lease_s=replica.lease_s, renew_s=replica.renew_s)
    link = LinkProcess(settings.mqtt, client_id=client_id)
    consumer = IngestConsumer(sm, link, site=settings.site, bus=runtime.bus,
                              gap_timeout_s=settings.gap_timeout_s,
                              verify_mode=settings.ingest_verify, receipt_key=key,
                              leases=leases)
    consumer.core.state.clock_skew_s = settings.clock_skew_s
    # a central dashboard's other sites (on every replica: each stores the nodes it leases)
    sites = site_ingest(settings, sm, runtime.bus, key, leases,
                        replica.name if replica else None)
    site_parts = [p for one in sites for p in (one.link, one.consumer)]

    def publish(topic: str, blob: bytes, retain: bool) -> Any:
        return link.publish(topic, blob, retain=retain)

    def singletons() -> list[Any]:
        from dashboard.hosts.presence import PresencePublisher

        signer = PolicySigner(sm, key, site=settings.site, ttl_s=settings.policy_ttl_s,
                              publish=publish, replica=replica.name if replica else None)
        presence = PresencePublisher(sm, key, site=settings.site,
                                     room_doors=correlation.room_doors, publish=publish,
                                     bus=runtime.bus)
        from dashboard.card_enrol import EnrolSender

        enrol = EnrolSender(sm, key, site=settings.site, publish=publish, clock=now_utc)
        parts = [signer, presence, enrol]
        # a central dashboard: the other sites' policy, presence and card enrolment commands
        # (their bridges carry them)
        parts += site_publishers(settings, sm, runtime.bus, key, correlation.room_doors,
                                 sites, replica.name if replica else None)
        parts += scheduled()
        if settings.home_assistant.enabled:  # opt-in: doors, nodes, lockdown; no person
            from dashboard.hass import HassBridge

            parts.append(HassBridge(
                sm, runtime.bus, lambda topic, payload: link.publish(topic, payload, retain=True),
                site=settings.site, prefix=settings.home_assistant.discovery_prefix,
                language=settings.default_language))
        return parts

    if replica is None:
        runtime.parts = [checkpointer, link, consumer, *site_parts, *singletons()]
        return runtime
    from dashboard.replicas.leader import Leader

    assert leases is not None
    leader = Leader(engine, singletons, replica=replica.name, site=settings.site,
                    retry_s=replica.renew_s)
    runtime.parts = [runtime.bus, leases, link, consumer, *site_parts, leader]
    return runtime


def _stop_resource_tracker() -> None:
    """End multiprocessing's resource tracker once the helper processes (ingest link, signature
    audit) are stopped: left alone it outlives the dashboard until it notices, and a stop must
    leave no process behind (systemd would have to kill it). It is started again if needed."""
    from multiprocessing import resource_tracker

    tracker = resource_tracker._resource_tracker
    if getattr(tracker, "_pid", None) is not None:
        with contextlib.suppress(AttributeError, OSError, ChildProcessError):
            tracker._stop()
