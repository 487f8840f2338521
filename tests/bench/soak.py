"""Soak and chaos run of a whole room: real processes, real faults, every event accounted for.

    .venv/bin/python tests/bench/soak.py --short        # ~70 s of load, every fault (the default)
    .venv/bin/python tests/bench/soak.py --minutes 10   # release (``make soak``)
    .venv/bin/python tests/bench/soak.py --seconds 45 --store sqlite --faults dashboard,node

``make test`` runs two short ones (tests/bench/test_soak.py): the dashboard on SQLite with some
faults and on PostgreSQL with the others, so every fault is injected against some store.

What runs (each its own OS process unless noted):

* one private Mosquitto (killed and restarted on the same port), one private pcscd with the vpcd
  virtual reader (restarted), a private CUPS when run as root (the printers' hold queue);
* the dashboard, ``secroom dashboard run`` on a private schema of ``--pg-url`` (PostgreSQL; by
  default ``SECROOM_TEST_PG_URL``, else a private cluster: tests/support/postgres.py), or with
  ``--store sqlite`` on an SQLite file in its data folder; its office (doors, groups, 30 staff
  with cards, 12 numbered USB media) entered through the audited services, each node's key
  approved once announced, as an installer does;
* three gateways ``gw1..gw3``: ``secroom gateway run`` through tests/soak/gateway_proc.py, which
  adds in-process readers fed from stdin (vpcd costs ~0.9 s per tap, so 50 taps/s cannot go
  through pcscd) and a relay log. gw1's and gw2's server-room readers are also the two vpcd
  slots of the private pcscd: two threads tap virtual cards there without pause, so some taps
  take the real PC/SC path all the time (the table says how many). gw2's data directory (journal,
  key, stored policy) is a small tmpfs when run as root;
* two USB agents ``pc-01``, ``pc-02``: ``secroom usb agent`` through tests/soak/usb_proc.py on a
  simulated sysfs (the demo's host), sticks plugged and unplugged all the time;
* ``secroom numlog import`` of a CP932 CSV every minute (every 20 s in --short) and
  ``secroom backup run --config gw1.toml`` (the node ``gw1.backup``) every 3 minutes (every 25 s
  in --short), as separate processes.

Load: 50 card taps per second spread over the three gateways' door, rack and printer readers
(staff, IT staff at the two-person rack, visitors and an inactive card that are denied, unknown
cards), a page of the dashboard fetched (logged in as admin) every 0.25 s.

Faults (``--faults``, a subset of FAULTS; all by default), at fixed fractions of a cycle (--short
and --seconds: one cycle over the run; --minutes: a 120 s cycle repeated over the first 80 % of
the run): SIGKILL of the dashboard (restarted after 3 s; in the first cycle only);
SIGKILL of gw3, restarted with its clock 900 s ahead and reporting ``unsynced`` (a Pi without RTC
or NTP: ``SECROOM_SOAK_SKEW_S``, see gateway_proc.py); gw2's journal disk filled (a filler file
on its tmpfs; root only) and every tap sent to gw2 until its health reports journal failures
(SQLite first reuses the pages it has), at most 45 s (90 s), then freed; SIGKILL of a random
node (twice; never gw2 while its disk is full); SIGKILL of the broker, restarted after 3 s on the
same port; pcscd restarted. Killed nodes restart after 2 s.

Checks at the end (all nodes stopped with SIGTERM, the dashboard still running):

* produced = sum over nodes of the journal head seq (each journal verified: contiguous seq,
  prev links, hashes, Ed25519 signatures); stored = distinct (node, seq) rows in the dashboard's
  events table; lost = journal seqs with no row; duplicated = rows beyond one per (node, seq)
  plus rows whose hash differs from the journal's (a fork). Chains: every stored row has
  chain_ok, links to the previous row's hash, and its hash equals the journal's.
* denied_but_opened: the gateway decides a tap under its lock and holds that lock from the
  door.access emit to the relay, so each relay energising (extensions included) is caused by the
  last door.access of that door. gateway_proc.py logs every energising with that event's seq; the
  check looks each one up *in the dashboard's events table* and counts it when the stored event
  is not a granted door.access of that door (or when the event could not be journaled and the
  decision was a denial). Nothing else energises a relay here (no REX button, no fail-safe door).
  A denied tap while the door is already unlocked by an earlier grant does not energise anything
  and is not an opening. Energisings whose door.access could not be journaled (disk full) are
  counted apart: the gateway opens for a granted card even then, by design (controller/gateway.py).
* every fault seen (where, printed per fault): node kills by an unclean restart in the stored
  events (node.started with no node.stopped before it); broker kill by the gateways' stored
  health counting an MQTT disconnect, and every running node re-announcing itself online after
  the restart; pcscd restart by stored reader.disconnected and reader.connected events of the
  vpcd readers; disk full by ``journal_failures`` in gw2's stored health; clock skew by gw3's
  clock state ``unsynced`` on the nodes page (its events' offset is printed; the dashboard does
  not measure it); the dashboard's own kill only by the page poller (it keeps no trace of its own
  crash). The stored node health is on no page and raises no anomaly: said as such.
* p95 page latency (overview, door log, presence, anomalies, nodes; errors while the dashboard is
  down are counted, not timed) and /health as the anchor; VmRSS of every process once warm in
  its last life (max(15 s, 20 % of the run) after it was ready: caches, pools, the first pages)
  and at the end: rss_growth_mb is the largest growth, bound RSS_BOUND_MB.

Start-up: a node's events sent before its key was approved are refused, and the dashboard asks
for them again only when a later event reveals the gap; idle nodes are nudged (a tap, a stick)
until every node's policy.applied is stored.

Prints a table and last ``RESULT {json}``. Exit 0 when every check holds, 1 when one fails, 3 when
a service (Mosquitto, pcscd with vpcd, PostgreSQL) is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import tomli_w

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from controller.keys import generate, load_private, public_b64  # noqa: E402
from controller.localbroker import BrokerUnavailable, LocalBroker, free_port  # noqa: E402
from controller.policy_slice import card_key_for  # noqa: E402
from dashboard.demo import seed  # noqa: E402

PY = sys.executable
# every fault by name, in the order (and at the fraction of a cycle) it is injected
FAULTS = {
    "dashboard": 0.08,
    "clock_skew": 0.14,
    "disk_full": 0.20,
    "node": 0.30,
    "broker": 0.40,
    "pcscd": 0.50,
    "node_again": 0.62,
}
PASSWORD = "soak password 1 for the admin"  # noqa: S105 - a throwaway user in a temp schema
RSS_BOUND_MB = 40.0
SKEW_S = 900.0
TAPS_PER_S = 50.0
GATEWAYS = ("gw1", "gw2", "gw3")
HOSTS = ("pc-01", "pc-02")
PAGES = ("/", "/door-log", "/presence", "/anomalies", "/nodes")
RELAY, CONTACT, REX, GREEN, RED = 17, 27, 22, 5, 6
RACK_RELAY, RACK_CONTACT = 23, 24
INJECTED_DOOR = ("Soak_door_in", "Soak_door_out")
INJECTED_RACK = ("Soak_rack_A", "Soak_rack_B")
INJECTED_PRINTER = "Soak_printer"


class Unavailable(RuntimeError):
    """A service the soak needs is missing (exit 3)."""


def log(text: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {text}", flush=True)


def rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def group_pids(pgid: int) -> list[int]:
    """Live processes of process group ``pgid`` (read from /proc)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            pids.append(int(stat.parent.name))
    return pids


# -- processes ------------------------------------------------------------------------------
@dataclass
class Proc:
    """A child process the soak starts, kills and restarts; stdin is a pipe for commands."""

    name: str
    argv: list[str]
    logfile: Path
    env: dict[str, str] = field(default_factory=dict)
    ready_marker: str | None = None
    popen: subprocess.Popen[bytes] | None = None
    ready_at: float = 0.0
    lives: int = 0
    rss_start: float | None = None
    sent: int = 0
    dropped: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _offset: int = 0
    leftovers: int = 0

    def start(self, timeout: float = 60.0, extra_env: dict[str, str] | None = None) -> None:
        self.spawn(extra_env)
        self.wait_ready(timeout)

    def spawn(self, extra_env: dict[str, str] | None = None) -> None:
        self._offset = self.logfile.stat().st_size if self.logfile.exists() else 0
        self.ready_at = float("inf")
        self.rss_start = None
        with self._lock, self.logfile.open("ab") as out:
            self.popen = subprocess.Popen(
                self.argv,
                env={**os.environ, **self.env, **(extra_env or {}), "PYTHONPATH": str(ROOT)},
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.logfile.parent,
                start_new_session=True,  # its own process group: kill() takes its children too
            )
        self.lives += 1

    def wait_ready(self, timeout: float = 60.0) -> None:
        assert self.popen is not None
        deadline = time.monotonic() + timeout
        while self.ready_marker is not None:
            text = self.logfile.read_bytes()[self._offset :].decode(errors="replace")
            if self.ready_marker in text:
                break
            if self.popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start:\n{text[-2000:]}")
            time.sleep(0.05)
        self.ready_at = time.monotonic()

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None and self.popen.poll() is None else None

    def send(self, line: str) -> bool:
        with self._lock:
            proc = self.popen
            if proc is None or proc.poll() is not None or proc.stdin is None:
                self.dropped += 1
                return False
            try:
                proc.stdin.write(line.encode() + b"\n")
                proc.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                self.dropped += 1
                return False
            self.sent += 1
            return True

    def kill(self) -> None:
        """SIGKILL the process and everything it started (its own process group): a power cut."""
        with self._lock:
            if self.popen is not None and self.popen.poll() is None:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)
            self._reap_group()
            self._close_stdin()

    def term(self, timeout: float = 30.0) -> None:
        """SIGTERM; what the process leaves running in its group afterwards is counted, then
        killed (``leftovers``)."""
        with self._lock:
            if self.popen is not None and self.popen.poll() is None:
                self.popen.send_signal(signal.SIGTERM)
                try:
                    self.popen.wait(timeout)
                except subprocess.TimeoutExpired:
                    os.killpg(self.popen.pid, signal.SIGKILL)
                    self.popen.wait(10)
            if self.popen is not None:
                self.leftovers += len(group_pids(self.popen.pid))
            self._reap_group()
            self._close_stdin()

    def _reap_group(self) -> None:
        if self.popen is not None:
            for pid in group_pids(self.popen.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def _close_stdin(self) -> None:
        if self.popen is not None and self.popen.stdin is not None:
            with contextlib.suppress(OSError):
                self.popen.stdin.close()


# -- the room -------------------------------------------------------------------------------
class Room:
    def __init__(
        self,
        workdir: Path,
        *,
        pg_url: str | None,
        duration_s: float,
        seed_: int,
        faults: tuple[str, ...] = tuple(FAULTS),
    ) -> None:
        self.work = workdir
        self.pg_url = pg_url  # None: the dashboard stores on SQLite
        self.fault_plan = faults
        self.duration = duration_s
        self.rng = random.Random(seed_)
        self.stop_load = threading.Event()
        self.closing = threading.Event()  # set once the checks are done: the approver stops
        self.broker: LocalBroker | None = None
        self.pcscd: Any = None
        self.cups: Any = None
        self._cups_cm: Any = None
        self.schema = ""
        self.db_url = ""
        self.sm: Any = None
        self.procs: dict[str, Proc] = {}
        self.configs: dict[str, Path] = {}
        self.keys: dict[str, str] = {}
        self.journals: dict[str, Path] = {}
        self.relay_logs: dict[str, Path] = {}
        self.tmpfs: Path | None = None
        self.faults: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.page_ms: list[float] = []
        self.health_ms: list[float] = []
        self.page_errors = 0
        self.pcsc_taps = 0
        self.pcsc_failures = 0
        self.usb_commands = 0
        self.print_jobs = 0
        self.imports: list[tuple[int, int]] = []  # (rows, exit code)
        self.backups: list[int] = []
        self.dashboard_url = ""
        self.staff = seed.staff()
        self.skewed = False
        self.rss: dict[str, float | None] = {}  # "name:pid" -> VmRSS once warm
        self.warm_s = max(15.0, 0.2 * duration_s)
        self.disk_full_window: tuple[float, float] | None = None
        self.policy_pub = Path()
        self.focus: str | None = None  # a gateway that takes every tap for a while
        self.background: list[threading.Thread] = []

    # -- set-up -----------------------------------------------------------------------------
    def start(self) -> None:
        self.t0 = time.monotonic()
        self._start_services()
        log(f"services up ({time.monotonic() - self.t0:.1f} s)")
        self._start_dashboard()
        log(f"dashboard up ({time.monotonic() - self.t0:.1f} s)")
        self._write_node_configs()
        threading.Thread(target=self._approver, name="approver", daemon=True).start()
        for name in (*GATEWAYS, *HOSTS):
            self.procs[name].spawn()
        for name in (*GATEWAYS, *HOSTS):
            self.procs[name].wait_ready()
        log(f"nodes ready ({time.monotonic() - self.t0:.1f} s)")
        self._wait_policy(timeout=60)
        log(f"every node runs the signed policy ({time.monotonic() - self.t0:.1f} s)")

    def _start_services(self) -> None:
        from readers.base import ReaderError
        from readers.pcscd_host import PcscdHost, find_pcscd, find_vpcd_driver, free_port_pair

        try:
            self.broker = LocalBroker(self.work / "mosquitto")
            self.broker.start()
        except BrokerUnavailable as exc:
            raise Unavailable(str(exc)) from exc
        if find_pcscd() is None or find_vpcd_driver() is None or not shutil.which("unshare"):
            raise Unavailable("pcscd, the vpcd driver or unshare is not installed")
        try:
            self.pcscd = PcscdHost(self.work / "pcscd", port=free_port_pair())
            self.pcscd.start()
        except ReaderError as exc:
            raise Unavailable(f"private pcscd would not start: {exc}") from exc
        if os.geteuid() == 0 and shutil.which("cupsd") and shutil.which("lpadmin"):
            try:
                from tests.support.cupsd import Cupsd

                self._cups_cm = Cupsd.private()
                self.cups = self._cups_cm.__enter__()
                self.cups.add_room_printer(seed.PRINTER)
            except BaseException as exc:  # noqa: BLE001 - pytest.skip() is a BaseException
                if isinstance(exc, KeyboardInterrupt):
                    raise
                self.notes.append(f"printing without CUPS: {exc}")
                self.cups = None
        else:
            self.notes.append("no CUPS (needs root and cupsd): printer readers not bound")

    def _database(self) -> None:
        """The dashboard's database: a new schema on PostgreSQL, or an SQLite file."""
        if self.pg_url is None:
            self.db_url = f"sqlite:///{self.work / 'dashboard' / 'dashboard.sqlite3'}"
            return
        from tests.support.postgres import create_schema, schema_url

        try:
            self.schema = create_schema(self.pg_url, "soak")
        except Exception as exc:  # noqa: BLE001 - any driver error means no PostgreSQL
            raise Unavailable(f"PostgreSQL at {self.pg_url} unavailable: {exc}") from exc
        self.db_url = schema_url(self.pg_url, self.schema)

    def drop_schema(self) -> None:
        if self.sm is not None:
            self.sm.kw["bind"].dispose()
        if not self.schema or self.pg_url is None:
            return
        from tests.support.postgres import drop_schema

        drop_schema(self.pg_url, self.schema)

    def _start_dashboard(self) -> None:
        from dashboard.auth.service import AuthService
        from dashboard.db import make_engine, make_sessionmaker
        from dashboard.demo.dashboard import enter_office
        from dashboard.demo.usb import seed_media
        from dashboard.migrate import upgrade
        from dashboard.settings import load_settings

        data = self.work / "dashboard"
        data.mkdir()
        self._database()
        assert self.broker is not None
        config = self.work / "dashboard.toml"
        config.write_text(
            tomli_w.dumps(
                {
                    "dashboard": {
                        "data_dir": str(data),
                        "database_url": self.db_url,
                        "site": seed.SITE,
                        "gap_timeout_s": 15.0,
                        "mqtt": {
                            "host": "127.0.0.1",
                            "port": self.broker.port,
                            "backoff_min_s": 0.05,
                            "backoff_max_s": 0.5,
                        },
                    }
                }
            )
        )
        self.configs["dashboard"] = config
        settings = load_settings(config)
        assert settings.policy_key_file is not None
        generate(settings.policy_key_file)
        self.policy_key = settings.policy_key_file
        self.policy_pub = settings.policy_key_file.with_name(settings.policy_key_file.name + ".pub")
        upgrade(self.db_url)
        self.sm = make_sessionmaker(make_engine(self.db_url))
        now = datetime.now(UTC)
        with self.sm.begin() as db:
            AuthService(settings, self.sm).create_user(
                db, username="admin", role="admin", password=PASSWORD, now=now
            )
        enter_office(self.sm, seed.policy(), now)
        seed_media(self.sm, now)
        port = free_port()
        self.dashboard_url = f"http://127.0.0.1:{port}"
        self.procs["dashboard"] = Proc(
            "dashboard",
            [
                PY,
                "-m",
                "controller.cli",
                "dashboard",
                "run",
                "--config",
                str(config),
                "--port",
                str(port),
            ],
            self.work / "dashboard.log",
            ready_marker="Uvicorn running",
        )
        self.procs["dashboard"].start()

    def _mount_tmpfs(self, path: Path) -> bool:
        path.mkdir(parents=True)
        if os.geteuid() != 0:
            self.notes.append("journal disk full skipped: mounting a tmpfs needs root")
            return False
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64m,mode=0700", "tmpfs", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            self.notes.append(f"journal disk full skipped: mount failed ({done.stderr.strip()})")
            return False
        self.tmpfs = path
        return True

    def _write_node_configs(self) -> None:
        from backup import crypto

        assert self.broker is not None and self.pcscd is not None
        vpcd = self.pcscd.expected_reader_names()
        mqtt = {
            "host": "127.0.0.1",
            "port": self.broker.port,
            "backoff_min_s": 0.05,
            "backoff_max_s": 0.5,
        }
        policy = {"trusted_keys": [str(self.policy_pub)]}
        for i, name in enumerate(GATEWAYS):
            d = self.work / name
            if name == "gw2":
                self._mount_tmpfs(d)
            else:
                d.mkdir()
            key = generate(d / "node.key")
            self.keys[name] = public_b64(key.public_key())
            # its card key, as `secroom policy card-key` hands it to the installer
            card_key = card_key_for(load_private(self.policy_key), seed.SITE, name)
            (d / "card.key").write_text(card_key.hex() + "\n")
            bindings: list[dict[str, Any]] = [
                {"name": INJECTED_DOOR[0].replace("_", " "), "role": "door_in", "door": seed.DOOR},
                {"name": INJECTED_DOOR[1].replace("_", " "), "role": "door_out", "door": seed.DOOR},
                {"name": INJECTED_RACK[0].replace("_", " "), "role": "rack_a", "door": seed.RACK},
                {"name": INJECTED_RACK[1].replace("_", " "), "role": "rack_b", "door": seed.RACK},
            ]
            if i < 2:  # gw1: vpcd slot 0 at the entry; gw2: slot 1 at the exit
                bindings.append(
                    {
                        "name": vpcd[i],
                        "role": "door_in" if i == 0 else "door_out",
                        "door": seed.DOOR,
                    }
                )
            config: dict[str, Any] = {
                "node": {
                    "name": name,
                    "site": seed.SITE,
                    "data_dir": str(d),
                    "clock": "synced",
                    "run_backups": False,
                },
                "mqtt": mqtt,
                "gpio": {"backend": "mock"},
                "readers": {"backend": "pcsc", "bindings": bindings},
                "doors": [
                    {
                        "id": seed.DOOR,
                        "relay_pin": RELAY,
                        "contact_pin": CONTACT,
                        "rex_pin": REX,
                        "led_green_pin": GREEN,
                        "led_red_pin": RED,
                        "unlock_s": 3.0,
                        "held_open_s": 30.0,
                    },
                    {
                        "id": seed.RACK,
                        "relay_pin": RACK_RELAY,
                        "contact_pin": RACK_CONTACT,
                        "unlock_s": 3.0,
                        "held_open_s": 300.0,
                    },
                ],
                "policy": policy,
            }
            if self.cups is not None:
                config["printing"] = {
                    "printers": [seed.PRINTER],
                    "cups_host": "127.0.0.1",
                    "cups_port": self.cups.port,
                    "cups_state_dir": str(self.cups.state),
                }
                bindings.append(
                    {
                        "name": INJECTED_PRINTER.replace("_", " "),
                        "role": "printer",
                        "printer": seed.PRINTER,
                    }
                )
            if name == "gw1":
                vault = d / "vault"
                (vault / "payroll").mkdir(parents=True)
                for j in range(20):
                    (vault / "payroll" / f"file{j}.txt").write_bytes(os.urandom(4096))
                bk = crypto.generate_keypair()
                (d / "backup.pub").write_text(crypto.public_key_text(bk.public), encoding="ascii")
                config["backup"] = {
                    "repository": str(self.work / "backup-repo"),
                    "vault_paths": [str(vault)],
                    "public_key_file": str(d / "backup.pub"),
                    "dedup_key_file": str(d / "dedup.key"),
                    "cache_dir": str(d / "backup-cache"),
                    "threads": 1,
                }
                self.journals["gw1.backup"] = d / "journal-backup.sqlite"
                self.keys["gw1.backup"] = self.keys[name]
            path = d / "gateway.toml"
            path.write_text(tomli_w.dumps(config))
            self.configs[name] = path
            self.journals[name] = d / "journal.sqlite"
            self.relay_logs[name] = self.work / f"{name}-relay.log"
            self.procs[name] = Proc(
                name,
                [
                    PY,
                    str(ROOT / "tests/soak/gateway_proc.py"),
                    "--config",
                    str(path),
                    "--relay-log",
                    str(self.relay_logs[name]),
                ],
                self.work / f"{name}.log",
                env=dict(self.pcscd.env),
                ready_marker="soak-gateway ready",
            )
        for name in HOSTS:
            d = self.work / name
            d.mkdir()
            key = generate(d / "node.key")
            self.keys[name] = public_b64(key.public_key())
            card_key = card_key_for(load_private(self.policy_key), seed.SITE, name)
            (d / "card.key").write_text(card_key.hex() + "\n")
            path = d / "usb-agent.toml"
            path.write_text(
                tomli_w.dumps(
                    {
                        "node": {
                            "name": name,
                            "site": seed.SITE,
                            "data_dir": str(d),
                            "clock": "synced",
                        },
                        "mqtt": mqtt,
                        "policy": policy,
                        "usb": {"host": name},
                    }
                )
            )
            self.configs[name] = path
            self.journals[name] = d / "journal.sqlite"
            self.procs[name] = UsbProc(
                name,
                [
                    PY,
                    str(ROOT / "tests/soak/usb_proc.py"),
                    "--config",
                    str(path),
                    "--host-dir",
                    "HOSTDIR",
                ],
                self.work / f"{name}.log",
                ready_marker="soak-usb ready",
            )

    def _approver(self) -> None:
        """Approve each node once it announced exactly the key it was given (an installer);
        until the end, not only while the load runs: a backup run may start at its last second."""
        from dashboard.models import Node
        from dashboard.services import approve_node

        done: set[str] = set()
        while not self.closing.wait(0.3):
            try:
                with self.sm.begin() as db:
                    for name, key in self.keys.items():
                        if name in done:
                            continue
                        row = db.get(Node, name)
                        if row is None or row.public_key != key:
                            continue
                        if row.key_status == "pending":
                            roles = (("backup_job",) if name.endswith(".backup") else
                                     ("host_agent",) if name in HOSTS else
                                     ("door_gateway", "print_station"))
                            approve_node(db, "soak-setup", name, roles=roles, public_key=key)
                        done.add(name)
            except Exception as exc:  # noqa: BLE001 - retried; a race with the ingest
                log(f"approver: {exc}")

    def _wait_policy(self, timeout: float) -> None:
        """Every node approved and running the signed policy. Events a node sent before its
        key was approved were refused; the dashboard asks for them again only when a later
        event reveals the gap, so an idle node is nudged (a tap, a stick) until they are in."""
        from dashboard.models import Node

        names = [*GATEWAYS, *HOSTS]
        deadline = time.monotonic() + timeout
        nudged = 0.0
        while time.monotonic() < deadline:
            with self.sm() as db:
                rows = {n: db.get(Node, n) for n in names}
            missing = [n for n, r in rows.items() if r is None or r.policy_version is None]
            if not missing:
                return
            if time.monotonic() > nudged + 2.0:
                nudged = time.monotonic()
                for n in missing:
                    row = rows[n]
                    if row is None or row.key_status != "approved":
                        continue
                    if n in HOSTS:
                        self.procs[n].send("plug private")
                        self.procs[n].send("unplug")
                    else:
                        self.procs[n].send(f"tap {INJECTED_DOOR[0]} {os.urandom(7).hex()}")
            time.sleep(0.2)
        raise RuntimeError(f"nodes without the signed policy after {timeout}s: {missing}")

    # -- load -------------------------------------------------------------------------------
    def _uid(self, pool: list[Any]) -> str:
        if self.rng.random() < 0.05:
            return os.urandom(7).hex().upper()  # an unknown card
        return str(self.rng.choice(pool).uid)

    def tapper(self) -> None:
        it_staff = self.staff[20:26]
        interval = 1.0 / TAPS_PER_S
        nxt = time.monotonic()
        i = 0
        while not self.stop_load.is_set():
            nxt += interval
            delay = nxt - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            gw = self.procs[self.focus or GATEWAYS[i % 3]]
            i += 1
            r = self.rng.random()
            if r < 0.6:
                reader, uid = self.rng.choice(INJECTED_DOOR), self._uid(self.staff)
            elif r < 0.85 or self.cups is None:
                pool = it_staff if self.rng.random() < 0.8 else self.staff
                reader, uid = self.rng.choice(INJECTED_RACK), self._uid(pool)
            else:
                reader, uid = INJECTED_PRINTER, self._uid(self.staff)
            gw.send(f"tap {reader} {uid}")

    def pcsc_tapper(self, slot: int) -> None:
        from readers.base import ReaderError
        from readers.virtual import VirtualCard

        while not self.stop_load.is_set():
            uid = bytes.fromhex(self._uid(self.staff))
            try:
                VirtualCard(port=self.pcscd.port + slot, uid=uid).tap(timeout=5)
                self.pcsc_taps += 1
            except (ReaderError, OSError):
                self.pcsc_failures += 1
                self.stop_load.wait(0.5)

    def usb_load(self) -> None:
        plugged = {h: 0 for h in HOSTS}
        while not self.stop_load.wait(1.0):
            host = self.rng.choice(HOSTS)
            if plugged[host] >= 2:
                ok = self.procs[host].send("unplug")
                plugged[host] -= 1 if ok else 0
            else:
                stick = self.rng.choice(["0", "1", "2", "11", "private"])
                if self.procs[host].send(f"plug {stick}"):
                    plugged[host] += 1
            self.usb_commands += 1
            if self.procs[host].pid is None:
                plugged[host] = 0  # a restarted agent starts with an empty simulated host

    def print_load(self) -> None:
        if self.cups is None:
            return
        payroll = self.staff[:16]
        while not self.stop_load.wait(3.0):
            with contextlib.suppress(Exception):
                self.cups.submit(self.rng.choice(payroll).cups_user, seed.PRINTER, title="給与明細")
                self.print_jobs += 1

    def numlog_load(self, every: float) -> None:
        from dashboard.demo.history import CSV_HEADER, ORG, ZONE

        n = 0
        while not self.stop_load.wait(every if n else 5.0):
            n += 1
            now = datetime.now(UTC).astimezone(ZONE)
            rows = [",".join(CSV_HEADER)]
            for j in range(10):
                who = self.rng.choice(self.staff[:16])
                at = now - timedelta(seconds=j)
                rows.append(
                    ",".join(
                        [
                            str(n * 100 + j),
                            ORG,
                            f"{at:%Y/%m/%d %H:%M:%S}",
                            "個人番号照会",
                            "閲覧",
                            "給与計算",
                            who.operator_id,
                            "成功",
                        ]
                    )
                )
            path = self.work / f"numlog-{n}.csv"
            path.write_bytes(("\r\n".join(rows) + "\r\n").encode("cp932"))
            done = subprocess.run(
                [
                    PY,
                    "-m",
                    "controller.cli",
                    "numlog",
                    "import",
                    str(path),
                    "--source",
                    "soak-number-system",
                    "--config",
                    str(self.configs["dashboard"]),
                ],
                capture_output=True,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                check=False,
                timeout=120,
            )
            self.imports.append((10, done.returncode))

    def backup_load(self, every: float) -> None:
        n = 0
        while not self.stop_load.wait(every if n else 8.0):
            n += 1
            (self.work / "gw1/vault/payroll" / f"new{n}.txt").write_bytes(os.urandom(8192))
            done = subprocess.run(
                [PY, "-m", "controller.cli", "backup", "run", "--config", str(self.configs["gw1"])],
                capture_output=True,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                check=False,
                timeout=300,
            )
            self.backups.append(done.returncode)
            if done.returncode != 0:
                log(f"backup run exit {done.returncode}: {done.stderr.decode()[-300:]}")

    def page_poller(self) -> None:
        client = httpx.Client(base_url=self.dashboard_url, timeout=30, follow_redirects=True)
        logged_in = False
        i = 0
        while not self.stop_load.wait(0.25):
            try:
                if not logged_in:
                    page = client.get("/login").text
                    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
                    assert token is not None
                    client.post(
                        "/login",
                        data={
                            "username": "admin",
                            "password": PASSWORD,
                            "csrf_token": token.group(1),
                        },
                    )
                    logged_in = True
                path = "/health" if i % 6 == 5 else PAGES[i % 6 % len(PAGES)]
                i += 1
                t0 = time.perf_counter()
                r = client.get(path)
                ms = (time.perf_counter() - t0) * 1000
                if r.url.path == "/login":
                    logged_in = False
                    continue
                r.raise_for_status()
                (self.health_ms if path == "/health" else self.page_ms).append(ms)
            except (httpx.HTTPError, AssertionError):
                self.page_errors += 1
                logged_in = False
                self.stop_load.wait(0.5)
        client.close()

    def rss_sampler(self) -> None:
        """VmRSS of each process life once warm (caches, pools, first pages): ``warm_s`` after
        it was ready. The services (Mosquitto, pcscd) are sampled per pid too."""
        warm = self.warm_s
        first: dict[str, float] = {}
        while not self.stop_load.wait(0.5):
            now = time.monotonic()
            for proc in self.procs.values():
                if proc.rss_start is None and proc.pid and now > proc.ready_at + warm:
                    proc.rss_start = rss_mb(proc.pid)
            for name, pid in (("mosquitto", self._broker_pid()), ("pcscd", self.pcscd.pid)):
                if pid is None:
                    continue
                key = f"{name}:{pid}"
                first.setdefault(key, now)
                if key not in self.rss and now > first[key] + warm:
                    self.rss[key] = rss_mb(pid)

    def _broker_pid(self) -> int | None:
        proc = self.broker.proc if self.broker else None
        return proc.pid if proc is not None and proc.poll() is None else None

    # -- faults -----------------------------------------------------------------------------
    def fault(self, kind: str, **detail: Any) -> dict[str, Any]:
        entry = {"fault": kind, "at": time.monotonic(), "wall": datetime.now(UTC), **detail}
        self.faults.append(entry)
        log(f"FAULT {kind} {detail or ''}")
        return entry

    def kill_node(self, name: str, down_s: float = 2.0) -> None:
        proc = self.procs[name]
        self.fault("sigkill", node=name)
        proc.kill()
        self.stop_load.wait(down_s)
        extra = None
        if name == "gw3":
            extra = {"SECROOM_SOAK_SKEW_S": str(SKEW_S)}
            if not self.skewed:
                self.skewed = True
                config = self.configs["gw3"]
                config.write_text(
                    config.read_text().replace('clock = "synced"', 'clock = "unsynced"')
                )
                self.fault("clock_skew", node="gw3", skew_s=SKEW_S)
        proc.start(extra_env=extra)

    def kill_broker(self) -> None:
        assert self.broker is not None
        before = {g: self._health(g).get("mqtt", {}).get("disconnects", 0) for g in GATEWAYS}
        entry = self.fault("broker_kill")
        self.broker.kill()
        self.stop_load.wait(3.0)
        self.broker.start()
        entry["restarted"] = datetime.now(UTC)

        def watch() -> None:  # gateways publish health every 15 s
            deadline = time.monotonic() + 25.0
            while time.monotonic() < deadline:
                now = {g: self._health(g).get("mqtt", {}).get("disconnects", 0) for g in GATEWAYS}
                entry["gateways_reporting"] = [g for g in GATEWAYS if now[g] > before[g]]
                if entry["gateways_reporting"]:
                    return
                time.sleep(1.0)

        self._background(watch)

    def _health(self, node: str) -> dict[str, Any]:
        """The health a node last published (its retained state), as the dashboard keeps it."""
        from dashboard.models import Node

        with self.sm() as db:
            row = db.get(Node, node)
            return dict((row.health or {}).get("health", {}) or {}) if row else {}

    def restart_pcscd(self) -> None:
        self.fault("pcscd_restart")
        self.pcscd.restart()

    def disk_full(self, hold_s: float) -> None:
        if self.tmpfs is None:
            return
        # gw2 is no SIGKILL victim from now on (it could not journal its restart), and takes
        # every tap meanwhile: the journal needs new pages sooner
        self.focus = "gw2"
        entry = self.fault("journal_disk_full", node="gw2")
        filler = self.tmpfs / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for size in (1 << 20, 4096, 64):  # unbuffered: fill to the last few bytes
                with contextlib.suppress(OSError):
                    while True:
                        os.write(fd, b"\0" * size)
        finally:
            os.close(fd)
        baseline, lives = self._journal_failures("gw2"), self.procs["gw2"].lives
        seen = 0
        deadline = time.monotonic() + hold_s
        try:
            # held until gw2's health (published every 15 s) counts journal failures: SQLite
            # first reuses the pages it has (WAL, freelist left by pruning acked rows)
            while time.monotonic() < deadline:
                time.sleep(1.0)
                if self.procs["gw2"].lives != lives:  # restarted: its counters start at 0
                    baseline, lives = 0, self.procs["gw2"].lives
                seen = max(seen, self._journal_failures("gw2") - baseline)
                if seen:
                    break
        finally:
            self.focus = None
            entry["journal_failures"] = seen
            entry["held_s"] = round(time.monotonic() - entry["at"], 1)
            filler.unlink()
            log(f"gw2 journal disk freed after {entry['held_s']} s ({seen} journal failures)")

    def _journal_failures(self, node: str) -> int:
        return int(self._health(node).get("counters", {}).get("journal_failures", 0) or 0)

    def chaos(self, short: bool) -> None:
        """One cycle of every fault, at fixed fractions; repeated in longer runs."""
        cycle = self.duration if short else 120.0
        start = time.monotonic()
        disk = self.disk_full_short if short else self.disk_full_long

        def victim() -> str:  # a random node, not the one whose disk is full
            return self.rng.choice(
                [n for n in ("gw1", "gw2", "gw3", "pc-01", "pc-02") if n != self.focus]
            )

        actions = {
            # the dashboard once: its last life is then long enough to tell growth from warm-up
            "dashboard": lambda: self.kill_node("dashboard", 3.0) if base == 0.0 else None,
            "clock_skew": lambda: self.kill_node("gw3"),
            "disk_full": lambda: self._background(disk),
            "node": lambda: self.kill_node(victim()),
            "broker": self.kill_broker,
            "pcscd": self.restart_pcscd,
            "node_again": lambda: self.kill_node(victim()),
        }
        plan = [(FAULTS[name], actions[name]) for name in FAULTS if name in self.fault_plan]
        base = 0.0
        while base == 0.0 or base + cycle <= self.duration * 0.8:
            for frac, action in plan:
                at = start + base + frac * cycle
                if self.stop_load.wait(max(0.0, at - time.monotonic())):
                    return
                action()
            base += cycle
            if short:
                return

    def _background(self, fn: Any) -> None:
        thread = threading.Thread(target=fn, daemon=True)
        self.background.append(thread)
        thread.start()

    def disk_full_short(self) -> None:
        self.disk_full(45.0)

    def disk_full_long(self) -> None:
        self.disk_full(90.0)

    # -- the end ----------------------------------------------------------------------------
    def stop_nodes(self) -> None:
        for name in (*GATEWAYS, *HOSTS):
            self.procs[name].term()

    def live_head(self, node: str) -> int:
        path = self.journals[node]
        if not path.exists():
            return 0
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            return int(db.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])
        finally:
            db.close()

    def stored_counts(self) -> dict[str, int]:
        from sqlalchemy import func, select

        from dashboard.models import StoredEvent

        with self.sm() as db:
            return dict(
                db.execute(select(StoredEvent.node, func.count()).group_by(StoredEvent.node)).all()
            )

    def wait_stored(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            heads = {n: self.live_head(n) for n in self.journals}
            counts = self.stored_counts()
            if all(counts.get(n, 0) >= h for n, h in heads.items()):
                return True
            time.sleep(0.5)
        return False

    def stop(self) -> None:
        self.closing.set()
        for proc in self.procs.values():
            with contextlib.suppress(Exception):
                proc.term(10)
        if self.pcscd is not None:
            self.pcscd.stop()
        if self.broker is not None:
            self.broker.stop()
        if self._cups_cm is not None:
            with contextlib.suppress(Exception):
                self._cups_cm.__exit__(None, None, None)
        if self.tmpfs is not None:
            subprocess.run(["umount", "-l", str(self.tmpfs)], check=False, capture_output=True)


class UsbProc(Proc):
    """A USB agent: a fresh simulated host directory each life (the old one is the old boot)."""

    def spawn(self, extra_env: dict[str, str] | None = None) -> None:
        host_dir = self.logfile.parent / self.name / f"host-{self.lives}"
        self.argv = [*self.argv[:-1], str(host_dir)]
        super().spawn(extra_env)


# -- accounting -----------------------------------------------------------------------------
def account(room: Room) -> dict[str, Any]:
    from sqlalchemy import select

    from controller.journal import verify_journal
    from dashboard.models import StoredEvent

    out: dict[str, Any] = {
        "produced": 0,
        "stored": 0,
        "lost": 0,
        "duplicated": 0,
        "chain_breaks": 0,
        "journal_problems": 0,
        "per_node": {},
    }
    stored_by_node: dict[str, dict[int, Any]] = {}
    for node, path in room.journals.items():
        if not path.exists():
            continue
        key_file = path.parent / "node.key"
        report = verify_journal(path, load_private(key_file).public_key())
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        hashes = dict(db.execute("SELECT seq, hash FROM events").fetchall())
        db.close()
        head = report.last
        with room.sm() as s:
            rows = s.execute(
                select(
                    StoredEvent.seq,
                    StoredEvent.hash,
                    StoredEvent.prev,
                    StoredEvent.chain_ok,
                    StoredEvent.kind,
                    StoredEvent.data,
                )
                .where(StoredEvent.node == node)
                .order_by(StoredEvent.seq)
            ).all()
        seqs = [r.seq for r in rows]
        distinct = set(seqs)
        lost = len(set(range(1, head + 1)) - distinct)
        dup = (
            len(seqs)
            - len(distinct)
            + sum(1 for r in rows if r.seq in hashes and hashes[r.seq] != r.hash)
        )
        breaks = 0
        prev_hash = None
        for r in rows:
            if not r.chain_ok or (prev_hash is not None and r.prev != prev_hash):
                breaks += 1
            prev_hash = r.hash
        stored_by_node[node] = {r.seq: r for r in rows}
        out["produced"] += head
        out["stored"] += len(distinct)
        out["lost"] += lost
        out["duplicated"] += dup
        out["chain_breaks"] += breaks
        out["journal_problems"] += len(report.problems) + (0 if report.ok else 1)
        out["per_node"][node] = {
            "head": head,
            "stored": len(distinct),
            "lost": lost,
            "dup": dup,
            "chain_breaks": breaks,
            "journal_ok": report.ok,
        }
    out["stored_by_node"] = stored_by_node
    return out


def relay_check(room: Room, stored: dict[str, dict[int, Any]]) -> dict[str, int]:
    """Each relay energising against the stored door.access that caused it (see the docstring)."""
    res = {"energised": 0, "denied_but_opened": 0, "opened_unjournaled": 0, "unverifiable": 0}
    for node, path in room.relay_logs.items():
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) < 4 or parts[0] != "relay":
                continue
            res["energised"] += 1
            door, seq, granted = parts[1], parts[2], parts[3] == "1"
            if seq == "-":
                res["opened_unjournaled" if granted else "denied_but_opened"] += 1
                continue
            row = stored.get(node, {}).get(int(seq))
            if row is None:
                res["unverifiable"] += 1
                continue
            data = row.data or {}
            if (
                row.kind != "door.access"
                or data.get("door") != door
                or data.get("granted") is not True
            ):
                res["denied_but_opened"] += 1
    return res


def faults_seen(room: Room, stored: dict[str, dict[int, Any]]) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from dashboard.models import Anomaly, Node

    with room.sm() as db:
        nodes = {n: db.get(Node, n) for n in (*GATEWAYS, *HOSTS)}
        raised = {(a.kind, a.node) for a in db.scalars(select(Anomaly))}
    unclean: dict[str, int] = {}
    for node, rows in stored.items():
        last_kind = None
        for seq in sorted(rows):
            kind = rows[seq].kind
            if kind == "node.started" and seq > 1 and last_kind != "node.stopped":
                unclean[node] = unclean.get(node, 0) + 1
            last_kind = kind
    kills: dict[str, int] = {}
    out = []
    for f in room.faults:
        kind = f["fault"]
        seen, where = False, ""
        if kind == "sigkill" and f["node"] == "dashboard":
            anomaly = ("dashboard_unclean_stop", None) in raised
            seen = anomaly and room.page_errors > 0
            where = f"dashboard_unclean_stop anomaly: {anomaly}; page poller errors"
        elif kind == "sigkill":
            kills[f["node"]] = kills.get(f["node"], 0) + 1
            seen = unclean.get(f["node"], 0) >= kills[f["node"]]
            where = "stored events: node.started without node.stopped before it"
        elif kind == "broker_kill":
            restarted = f.get("restarted")
            reannounced = restarted is not None and all(
                n.state_at is not None and n.state_at >= restarted - timedelta(seconds=1)
                for n in nodes.values()
                if n is not None
            )
            links = sorted(n for k, n in raised if k == "broker_link")
            seen = bool(f.get("gateways_reporting")) and reannounced and bool(links)
            where = (
                f"broker_link anomalies of {links}; nodes page: mqtt.disconnects of "
                f"{f.get('gateways_reporting')}; every node re-announced online: {reannounced}"
            )
        elif kind == "pcscd_restart":
            kinds = {
                (node, r.kind)
                for node in ("gw1", "gw2")
                for r in stored.get(node, {}).values()
                if r.kind.startswith("reader.")
                and r.data.get("reader", "").startswith("Virtual PCD")
            }
            seen = ("gw1", "reader.disconnected") in kinds and ("gw1", "reader.connected") in kinds
            where = "stored events: reader.disconnected / reader.connected (vpcd readers)"
        elif kind == "journal_disk_full":
            anomaly = ("journal_failure", f.get("node") or "gw2") in raised
            seen = (f.get("journal_failures") or 0) > 0 and anomaly
            where = (
                f"journal_failure anomaly: {anomaly}; nodes page: journal failures "
                f"+{f.get('journal_failures')} after {f.get('held_s')} s"
            )
        elif kind == "clock_skew":
            gw3 = nodes.get("gw3")
            offset = getattr(gw3, "clock_offset_s", None)
            anomaly = ("clock_skew", "gw3") in raised
            measured = isinstance(offset, float) and abs(offset) > 120
            seen = gw3 is not None and (anomaly or measured)
            where = (
                f"clock_skew anomaly: {anomaly}; nodes page: gw3 clock "
                f"{getattr(gw3, 'clock_state', None)}, offset {offset} s"
            )
        out.append({"fault": kind, "node": f.get("node"), "seen": seen, "where": where})
    return out


def side_checks(room: Room, stored: dict[str, dict[int, Any]]) -> dict[str, int]:
    """Every imported number-log row stored once; one backup.snapshot event per backup run."""
    from sqlalchemy import func, select

    from dashboard.models.numlog import NumberAccess

    with room.sm() as db:
        rows = db.scalar(select(func.count()).select_from(NumberAccess)) or 0
    snapshots = sum(1 for r in stored.get("gw1.backup", {}).values() if r.kind == "backup.snapshot")
    return {
        "numlog_rows": int(rows),
        "numlog_expected": sum(n for n, code in room.imports if code == 0),
        "snapshots": snapshots,
        "backups_ok": sum(1 for code in room.backups if code == 0),
    }


def observed_skew(room: Room) -> float | None:
    from sqlalchemy import select

    from dashboard.models import StoredEvent

    with room.sm() as db:
        rows = db.execute(
            select(StoredEvent.ts, StoredEvent.received_at)
            .where(StoredEvent.node == "gw3", StoredEvent.clock == "unsynced")
            .order_by(StoredEvent.seq.desc())
            .limit(50)
        ).all()
    if not rows:
        return None
    offsets = sorted((r.ts - r.received_at).total_seconds() for r in rows)
    return offsets[len(offsets) // 2]


def p95(values: list[float]) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return round(v[int(0.95 * (len(v) - 1))], 1)


# -- main ------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> int:
    """With ``--store postgres``: on ``--pg-url``, else on the tests' PostgreSQL (the variable
    SECROOM_TEST_PG_URL, else a private cluster for this run)."""
    if args.store == "sqlite" or args.pg_url:
        return run_room(args, args.pg_url if args.store == "postgres" else None)
    from tests.support.postgres import PostgresUnavailable, postgres_url

    with contextlib.ExitStack() as stack:
        try:
            pg_url = stack.enter_context(postgres_url())
        except PostgresUnavailable as exc:
            print(f"UNAVAILABLE: {exc}", flush=True)
            return 3
        return run_room(args, pg_url)


def run_room(args: argparse.Namespace, pg_url: str | None) -> int:
    short = args.minutes is None
    duration = args.minutes * 60.0 if not short else float(args.seconds or 70.0)
    faults = tuple(args.faults.split(",")) if args.faults else tuple(FAULTS)
    mode = f"{duration:g} s" if short else f"{args.minutes:g} min"
    mode += f" on {args.store}, faults {','.join(faults)}"
    workdir = Path(tempfile.mkdtemp(prefix="secroom-soak-"))
    room = Room(workdir, pg_url=pg_url, duration_s=duration, seed_=args.seed, faults=faults)
    started = time.monotonic()
    threads: list[threading.Thread] = []
    try:
        try:
            room.start()
        except Unavailable as exc:
            print(f"UNAVAILABLE: {exc}", flush=True)
            return 3
        log(f"room up in {time.monotonic() - started:.1f} s ({workdir}); load for {duration:g} s")
        loads = [
            room.tapper,
            lambda: room.pcsc_tapper(0),
            lambda: room.pcsc_tapper(1),
            room.usb_load,
            room.print_load,
            room.page_poller,
            room.rss_sampler,
            lambda: room.numlog_load(20.0 if short else 60.0),
            lambda: room.backup_load(25.0 if short else 180.0),
        ]
        threads = [threading.Thread(target=fn, daemon=True) for fn in loads]
        for t in threads:
            t.start()
        t0 = time.monotonic()
        # on this thread: pcscd dies with the thread that (re)started it (PR_SET_PDEATHSIG)
        timer = threading.Timer(duration, room.stop_load.set)
        timer.daemon = True
        timer.start()
        room.chaos(short)
        room.stop_load.wait()
        for t in [*threads, *room.background]:
            t.join(120)
        load_s = time.monotonic() - t0
        # RSS at the end of every process's last life, before anything is stopped
        rss: dict[str, dict[str, Any]] = {}
        for name, proc in room.procs.items():
            rss[name] = {"start": proc.rss_start, "end": rss_mb(proc.pid), "lives": proc.lives}
        for name, pid in (("mosquitto", room._broker_pid()), ("pcscd", room.pcscd.pid)):
            rss[name] = {"start": room.rss.get(f"{name}:{pid}"), "end": rss_mb(pid), "lives": 0}
        caught_up = room.wait_stored(60)
        room.stop_nodes()
        caught_up = room.wait_stored(60) and caught_up
        acc = account(room)
        stored = acc.pop("stored_by_node")
        relay = relay_check(room, stored)
        seen = faults_seen(room, stored)
        skew = observed_skew(room)
        side = side_checks(room, stored)
        room.procs["dashboard"].term()
        leftovers = {n: p.leftovers for n, p in room.procs.items() if p.leftovers}
    finally:
        room.stop_load.set()
        room.stop()
        if args.keep:
            print(f"kept {workdir} and schema {room.schema}", flush=True)
        else:
            with contextlib.suppress(Exception):
                room.drop_schema()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    growth = [
        r["end"] - r["start"]
        for r in rss.values()
        if r["start"] is not None and r["end"] is not None
    ]
    rss_growth = round(max(growth), 1) if growth else None
    taps_sent = sum(room.procs[g].sent for g in GATEWAYS)
    taps_dropped = sum(room.procs[g].dropped for g in GATEWAYS)
    load = os.getloadavg()

    print()
    print(
        f"mode: {mode}, "
        f"load {load_s:.0f} s, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print(
        f"taps: {taps_sent} injected at the reader interface ({taps_dropped} offered to a "
        f"dead gateway), {room.pcsc_taps} through real pcscd/vpcd ({room.pcsc_failures} "
        f"failed, pcscd restarts included); usb commands {room.usb_commands}; print jobs "
        f"{room.print_jobs}; numlog imports {len(room.imports)} (exit codes "
        f"{[c for _, c in room.imports]}); backups {len(room.backups)} (exit codes "
        f"{room.backups})"
    )
    print(f"{'node':<12}{'head':>8}{'stored':>8}{'lost':>6}{'dup':>5}{'breaks':>8}  journal")
    for node, r in acc["per_node"].items():
        print(
            f"{node:<12}{r['head']:>8}{r['stored']:>8}{r['lost']:>6}{r['dup']:>5}"
            f"{r['chain_breaks']:>8}  {'ok' if r['journal_ok'] else 'BROKEN'}"
        )
    print(
        f"relay energisings {relay['energised']}: denied but opened "
        f"{relay['denied_but_opened']}, opened with the journal full (granted) "
        f"{relay['opened_unjournaled']}, not verifiable {relay['unverifiable']}"
    )
    print(f"{'fault':<20}{'node':<10}{'seen':<6}where")
    for f in seen:
        print(
            f"{f['fault']:<20}{str(f['node'] or ''):<10}{'yes' if f['seen'] else 'NO':<6}"
            f"{f['where']}"
        )
    print(f"gw3 events' ts - received_at (median of the last 50 unsynced): {skew}")
    print(
        f"number-log rows stored {side['numlog_rows']} of {side['numlog_expected']} imported; "
        f"backup.snapshot events stored {side['snapshots']} of {side['backups_ok']} runs"
    )
    print(
        f"pages: p95 {p95(room.page_ms)} ms over {len(room.page_ms)} requests, "
        f"{room.page_errors} errors (dashboard down); /health p95 {p95(room.health_ms)} ms"
    )
    print(f"{'process':<12}{'lives':>6}{'rss start':>11}{'rss end':>9}")
    for name, r in rss.items():
        print(f"{name:<12}{r['lives']:>6}{_mb(r['start']):>11}{_mb(r['end']):>9}")
    print(f"processes a node left running after its SIGTERM (then killed): {leftovers or 'none'}")
    for note in room.notes:
        print(f"note: {note}")
    if not caught_up:
        print("note: the dashboard had not stored every journaled event 60 s after the end")
    ok = (
        acc["lost"] == 0
        and acc["duplicated"] == 0
        and acc["chain_breaks"] == 0
        and acc["journal_problems"] == 0
        and relay["denied_but_opened"] == 0
        and all(f["seen"] for f in seen)
        and (rss_growth is None or rss_growth <= RSS_BOUND_MB)
        and side["numlog_rows"] == side["numlog_expected"]
        and side["snapshots"] == side["backups_ok"]
    )
    print(
        "RESULT "
        + json.dumps(
            {
                "mode": "short" if args.minutes is None else f"{args.minutes:g}min",
                "store": args.store,
                "duration_s": duration,
                "fault_plan": list(faults),
                "faults_injected": [f["fault"] for f in seen],
                "produced": acc["produced"],
                "stored": acc["stored"],
                "lost": acc["lost"],
                "duplicated": acc["duplicated"],
                "chain_breaks": acc["chain_breaks"],
                "denied_but_opened": relay["denied_but_opened"],
                "opened_journal_full": relay["opened_unjournaled"],
                "relay_energised": relay["energised"],
                "p95_page_ms": p95(room.page_ms),
                "health_p95_ms": p95(room.health_ms),
                "page_errors": room.page_errors,
                "rss_growth_mb": rss_growth,
                "rss_bound_mb": RSS_BOUND_MB,
                "taps_injected": taps_sent,
                "taps_pcsc": room.pcsc_taps,
                "faults": len(seen),
                "faults_seen": sum(1 for f in seen if f["seen"]),
                "faults_unseen": [f["fault"] for f in seen if not f["seen"]],
                "numlog_rows": side["numlog_rows"],
                "numlog_expected": side["numlog_expected"],
                "backup_snapshots": side["snapshots"],
                "backup_runs_ok": side["backups_ok"],
                "leftover_processes": leftovers,
                "load_s": round(load_s),
                "ok": ok,
                "load_avg": [round(x, 2) for x in load],
            },
            ensure_ascii=False,
        ),
        flush=True,
    )
    return 0 if ok else 1


def _fault_list(text: str) -> str:
    unknown = [name for name in text.split(",") if name not in FAULTS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown faults {unknown}; known: {', '.join(FAULTS)}")
    return text


def _mb(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--short", action="store_true", help="about 70 s of load (the default)")
    mode.add_argument("--seconds", type=float, help="one fault cycle over this many seconds")
    mode.add_argument("--minutes", type=float, help="load for this many minutes (release: 10)")
    ap.add_argument("--store", choices=("postgres", "sqlite"), default="postgres",
                    help="the dashboard's database (default: postgres)")
    ap.add_argument("--pg-url", default=None, help="default: SECROOM_TEST_PG_URL, else a "
                    "private cluster started for the run (tests/support/postgres.py)")
    ap.add_argument("--faults", default=None, type=_fault_list,
                    help=f"comma-separated, of {','.join(FAULTS)} (default: all)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", action="store_true", help="keep the work folder and the schema")
    return run(ap.parse_args())


if __name__ == "__main__":
    sys.exit(main())
