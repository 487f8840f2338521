"""The recovery drill (README, Operations, "Recovering the dashboard"): a dashboard with two
nodes, its nightly database backup, the nodes producing and applying a new policy after the
backup, the dashboard killed and its data folder destroyed, more events meanwhile, then
`secroom recover` onto a fresh folder and `secroom dashboard run` on what it wrote.

It checks what a real loss needs: every event the nodes produced is stored exactly once (the
ones the old dashboard had acknowledged after the backup come back from the node journals),
no gap, fork or refused-receipt item appears, the nodes accept the recovered dashboard's
receipts (their counters, from a database older than the node's last receipt, still rise:
``next_counter``) and its next policy (its version rises above the one the nodes applied after
the backup: a version the restored database never issued)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from backup import crypto
from controller.events import DoorRex
from controller.keys import generate, load_public
from controller.policy import Policy
from controller.policy_slice import NodeScope
from controller.policy_store import PolicyStore
from controller.runtime import NodeRuntime, RuntimeSettings
from dashboard.db import make_engine, make_sessionmaker
from dashboard.models.anomalies import Anomaly
from dashboard.models.events import StoredEvent
from dashboard.models.nodes import Node
from dashboard.services.doors import create_door
from dashboard.services.groups import create_group
from dashboard.services.nodes import approve_node
from dashboard.services.people import create_person
from tests.controller.conftest import fast_mqtt
from tests.support import free_port, wait_until
from tests.support.mosquitto import Broker
from tests.support.processes import descendants

pytestmark = pytest.mark.integration

SITE = "s1"
NODES = ("gw1", "pc-01")
SCOPES = {"gw1": NodeScope(doors=frozenset({"d1"})), "pc-01": NodeScope(hosts=frozenset({"pc-01"}))}
PASSPHRASE = "drill passphrase"  # noqa: S105 - a test key
SECROOM = [sys.executable, "-m", "controller.cli"]
FALSE_ALARMS = {"gap", "fork", "chain", "bad_signature", "receipt_refused", "policy_rejected",
                "rejected_payload", "unknown_node", "node_key_mismatch"}


class RoomNode:
    """A node of the room: its runtime (journal, signing, delivery) and its policy store."""

    def __init__(self, name: str, root: Path, port: int, trusted: Path) -> None:
        self.name = name
        self.applied = threading.Condition()
        generate(root / name / "node.key")
        self.runtime = NodeRuntime(RuntimeSettings(
            node=name, site=SITE, journal=root / name / "journal.sqlite",
            key_file=root / name / "node.key", mqtt=fast_mqtt(port), trusted_keys=[trusted]))
        self.store = PolicyStore(root / name / "policy.json", [load_public(trusted)], site=SITE,
                                 emit=self.runtime.emit, on_change=self._changed, node=name,
                                 scope=SCOPES[name].as_dict())
        self.runtime.follow_policy(self.store.status)  # declares its scope: it gets its slice
        self.store.on_status = self.runtime.refresh_state
        self.n = 0

    def _changed(self, _policy: Policy) -> None:
        with self.applied:
            self.applied.notify_all()

    def start(self) -> None:
        self.runtime.start()
        self.store.follow(self.runtime.subscribe)

    def produce(self, count: int) -> int:
        for _ in range(count):
            self.n += 1
            self.runtime.emit("door.rex", DoorRex(door=f"door-{self.n}"))
        return self.runtime.journal.head()[0]

    def wait_policy(self, version: int, timeout: float = 30) -> Policy:
        with self.applied:
            ok = self.applied.wait_for(lambda: self.store.current is not None
                                       and self.store.current.version >= version, timeout)
        assert ok, f"{self.name} did not apply policy {version} ({self.store.current})"
        assert self.store.current is not None
        return self.store.current

    def wait_person(self, person: str, timeout: float = 30) -> Policy:
        """The first applied policy (slice) that names ``person``."""
        with self.applied:
            ok = self.applied.wait_for(lambda: self.store.current is not None
                                       and self.store.current.person(person) is not None,
                                       timeout)
        assert ok, f"{self.name} never got {person} ({self.store.current})"
        assert self.store.current is not None
        return self.store.current

    def acked(self, timeout: float = 60) -> None:
        head = self.runtime.journal.head()[0]
        assert self.runtime.wait_acked(head, timeout), (
            f"{self.name}: ack {self.runtime.journal.ack} of {head}, "
            f"{dict(self.runtime.publisher.stats)}, {self.runtime.publisher.last_refusal}")


@contextmanager
def dashboard(config: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`secroom dashboard run` as systemd runs it; killed (SIGKILL, helpers too) at the end
    unless the test already did."""
    port = free_port()
    log = (config.parent / f"dashboard-{port}.log").open("wb")
    proc = subprocess.Popen([*SECROOM, "dashboard", "run", "--config", str(config), "--port",
                             str(port)], stdout=log, stderr=subprocess.STDOUT)
    try:
        def up() -> bool:
            assert proc.poll() is None, (config.parent / log.name).read_text()[-3000:]
            try:
                return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).is_success
            except httpx.HTTPError:
                return False

        wait_until(up, 90, "the dashboard to serve")  # an external process: polled
        yield proc
    finally:
        kill(proc)
        log.close()


def kill(proc: subprocess.Popen[bytes]) -> None:
    """The machine dies: the dashboard and its helper processes, without a clean stop."""
    if proc.poll() is not None:
        return
    helpers = descendants(proc.pid)
    proc.kill()
    for pid in helpers:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait(10)


def write_config(path: Path, data: Path, port: int, keys: Path) -> None:
    path.write_text(f"""# the dashboard of the drill
[dashboard]
data_dir = "{data}"
site = "{SITE}"
gap_timeout_s = 20.0

[dashboard.mqtt]
port = {port}
backoff_min_s = 0.05
backoff_max_s = 0.5

[dashboard.backup]
repository = "{keys.parent / 'repo'}"
public_key_file = "{keys / 'backup.pub'}"
dedup_key_file = "{keys.parent / 'gateway' / 'dedup.key'}"
cache_dir = "{data / 'backup-cache'}"
""")


def counts(url: str) -> dict[str, tuple[int, int, int]]:
    """Per node: stored events, distinct seqs, highest seq."""
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as db:
            rows = db.execute(select(StoredEvent.node, func.count(), func.count(
                StoredEvent.seq.distinct()), func.max(StoredEvent.seq)).group_by(
                StoredEvent.node)).all()
            return {r[0]: (r[1], r[2], r[3]) for r in rows}
    finally:
        engine.dispose()


def test_recovery_drill(tmp_path: Path, broker: Broker) -> None:
    keys = tmp_path / "operators"
    key = crypto.generate_keypair()
    keys.mkdir()
    (keys / "backup.key").write_bytes(crypto.private_key_file(key, PASSPHRASE.encode(),
                                                              n=2**12))
    (keys / "backup.pub").write_text(crypto.public_key_text(key.public))
    (keys / "passphrase").write_text(PASSPHRASE + "\n")
    old = tmp_path / "old"
    config = old / "dashboard.toml"
    old.mkdir()
    write_config(config, old / "data", broker.port, keys)
    subprocess.run([*SECROOM, "db", "upgrade", "--config", str(config)], check=True,
                   timeout=120, capture_output=True)
    generate(old / "data" / "policy.key")  # the key the installer pins on every node
    trusted = tmp_path / "dashboard-policy.pub"
    shutil.copy(old / "data" / "policy.key.pub", trusted)
    url = f"sqlite:///{old / 'data' / 'dashboard.sqlite3'}"
    seeder = make_sessionmaker(make_engine(url))
    with seeder.begin() as db:  # a door and a PC the staff may use: each node's slice has them
        create_door(db, "admin", {"id": "d1", "name": "サーバールーム"})
        create_group(db, "admin", {"id": "staff", "name": "職員", "doors": ["d1"],
                                   "hosts": ["pc-01"]})
    seeder.kw["bind"].dispose()
    nodes = [RoomNode(n, tmp_path / "nodes", broker.port, trusted) for n in NODES]
    try:
        recover_s = drill(tmp_path, keys, config, old, url, trusted, nodes)
    finally:
        for node in nodes:
            node.runtime.stop()
    print(f"recover took {recover_s:.2f}s")


def drill(tmp_path: Path, keys: Path, config: Path, old: Path, url: str, trusted: Path,
          nodes: list[RoomNode]) -> float:
    with dashboard(config) as first:
        for node in nodes:
            node.start()
        sm = make_sessionmaker(make_engine(url))

        def announced() -> bool:
            with sm() as db:
                return db.scalar(select(func.count()).select_from(Node)) == len(NODES)

        wait_until(announced, 30, "the nodes to announce their keys")
        with sm.begin() as db:
            for node in nodes:
                # both produce door.rex (RoomNode.produce): door gateways for the drill
                approve_node(db, "installer", node.name, roles=("door_gateway",))
        for node in nodes:
            # the approval re-signs the policy: each node's slice names its own roles and key
            with node.applied:
                assert node.applied.wait_for(lambda n=node: n.store.current is not None and [
                    g.name for g in n.store.current.nodes] == [n.name], 30), node.name
            node.produce(40)
            node.acked()
        done = subprocess.run([*SECROOM, "dashboard", "backup", "--config", str(config)],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        # after the backup: a rights change (policy 2, applied by the nodes) and more events,
        # all acknowledged by this dashboard, so the nodes' receipt counters move on
        with sm.begin() as db:
            create_person(db, "admin", {"id": "p-after", "name": "後藤 誠", "groups": ["staff"]})
        for node in nodes:  # (version 2 or 3: the nodes' scopes, once approved, made one)
            node.wait_person("p-after")
            node.produce(40)
            node.acked()
        counters = {n.name: n.runtime.journal.receipt_counter("ack") for n in nodes}
        applied = max(n.store.current.version for n in nodes if n.store.current)
        sm.kw["bind"].dispose()
        kill(first)
    shutil.rmtree(old / "data")  # the SD card is gone
    for node in nodes:
        node.produce(25)  # the room goes on while nobody is there to store it

    new = tmp_path / "new"
    t0 = time.monotonic()
    done = subprocess.run(
        [*SECROOM, "recover", "--repo", str(keys.parent / "repo"), "--key",
         str(keys / "backup.key"), "--passphrase-file", str(keys / "passphrase"),
         "--config-out", str(new / "dashboard.toml"), "--data-dir", str(new / "data")],
        capture_output=True, text=True, timeout=300)
    recover_s = time.monotonic() - t0
    assert done.returncode == 0, done.stderr + done.stdout
    assert "THE POLICY KEY IS NEW" not in done.stdout  # sealed in the backup, restored
    new_url = f"sqlite:///{new / 'data' / 'dashboard.sqlite3'}"
    assert (new / "data" / "policy.key").read_bytes() and \
        (new / "data" / "policy.key.pub").read_text() == trusted.read_text()
    before = counts(new_url)
    assert all(before[n.name][2] < n.runtime.journal.head()[0] for n in nodes)
    sm = make_sessionmaker(make_engine(new_url))
    with sm() as db:  # the restored receipt counters are older than what the nodes took
        stored = {n.name: n.ack_counter for n in db.scalars(select(Node))}
    assert all(stored[n] < counters[n] for n in counters)

    with dashboard(new / "dashboard.toml"):
        for node in nodes:
            node.produce(5)  # the next events reveal the gap since the backup
        for node in nodes:
            node.acked()
        after = counts(new_url)
        for node in nodes:
            head = node.runtime.journal.head()[0]
            assert after[node.name] == (head, head, head), node.name
            # (once seen equal, on a run where every event was stored and acked: what the
            # node had then is printed, for whoever meets it again)
            assert node.runtime.journal.receipt_counter("ack") > counters[node.name], (
                node.name, counters, head, node.runtime.journal.ack,
                dict(node.runtime.publisher.stats), node.runtime.publisher.last_refusal)
            stats = node.runtime.publisher.stats
            assert stats["acks_refused"] == 0 and stats["resends_refused"] == 0
        # the next rights change reaches the nodes: above the version they applied after the
        # backup, which the restored database never issued
        with sm.begin() as db:
            create_person(db, "admin", {"id": "p-recovered", "name": "復旧 花子",
                                        "groups": ["staff"]})
        for node in nodes:
            assert node.wait_person("p-recovered").version > applied
        with sm() as db:
            kinds = {a.kind for a in db.scalars(select(Anomaly))}
            rejected = [(a.node, a.detail, a.subject) for a in db.scalars(select(Anomaly))
                   if a.kind == "policy_rejected"]
        assert not kinds & FALSE_ALARMS, (kinds, rejected)
        assert "dashboard_recovered" in kinds
    sm.kw["bind"].dispose()
    return recover_s
