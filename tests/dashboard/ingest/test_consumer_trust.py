"""Findings 4 and 7 across a real Mosquitto: a host agent's door.access, signed with its own
valid key, is stored nowhere, counted and raised; a real node runtime rotates its key
(`secroom keys rotate`, then a restart) and keeps being stored, and its old key, revoked,
is refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select

from controller.cli import main as secroom
from controller.events import NodeStarted
from controller.keys import generate, load_private, previous_path, public_b64
from controller.mqtt import MqttSettings
from controller.runtime import NodeRuntime, RuntimeSettings
from dashboard import services
from dashboard.bus import Bus
from dashboard.ingest.consumer import IngestConsumer
from dashboard.models import Anomaly, Node, StoredEvent
from tests.dashboard.conftest import SITE, FakeNode
from tests.dashboard.ingest.test_consumer import NodeSide, connect

pytestmark = pytest.mark.integration


@pytest.fixture
def receipt_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def consumer(broker, sm, receipt_key) -> Iterator[IngestConsumer]:
    link = connect(broker, "dashboard")
    c = IngestConsumer(sm, link, site=SITE, bus=Bus(), gap_timeout_s=5, tick_s=0.05,
                       resend_interval_s=0.2, receipt_key=receipt_key)
    c.start()
    assert link.wait_subscribed(30), link.last_error  # events sent before would be lost
    yield c
    c.stop()
    link.stop()


def _anomalies(sm, kind: str) -> list[Anomaly]:
    with sm() as s:
        return list(s.scalars(select(Anomaly).where(Anomaly.kind == kind)))


def test_host_agent_door_access_is_refused_counted_and_raised(broker, consumer, sm) -> None:
    pc = FakeNode("pc-01")
    with sm.begin() as s:
        pc.enrol(s, roles={"host_agent"})
    side = NodeSide(broker, pc)
    sub = consumer.bus.subscribe(("anomaly",))
    try:
        side.send(pc.event("node.started"), pc.access("alice"))  # its own key, a valid chain
        assert consumer.wait_processed(2, 30)
        assert side.ack_reaching(1) == 1  # node.started is the host agent's to report
        assert consumer.counters["kind_not_allowed"] == 1
        with sm() as s:
            assert s.scalar(select(func.count()).select_from(StoredEvent)) == 1
            assert s.scalars(select(StoredEvent.kind)).all() == ["node.started"]
            assert s.get(Node, "pc-01").contiguous_seq == 1  # seq 2 never acked
        raised = _anomalies(sm, "kind_not_allowed")
        assert len(raised) == 1 and raised[0].detail["kind"] == "door.access"
        seen = sub.get(timeout=30)
        assert seen is not None and (seen.topic, seen.data["kind"]) == ("anomaly",
                                                                        "kind_not_allowed")
    finally:
        consumer.bus.unsubscribe(sub)
        side.link.stop()


def _runtime(tmp_path: Path, broker, trusted: Path) -> NodeRuntime:
    return NodeRuntime(RuntimeSettings(
        node="gw1", site=SITE, journal=tmp_path / "journal.sqlite", key_file=tmp_path / "node.key",
        mqtt=MqttSettings(host=broker.host, port=broker.port, backoff_min_s=0.05,
                          backoff_max_s=0.5, keepalive_s=5),
        trusted_keys=[trusted]))


def _emit(runtime: NodeRuntime, n: int) -> int:
    seq = 0
    for _ in range(n):
        seq = runtime.emit("node.started", NodeStarted(boot=runtime.boot, resumed_after=0)).seq
    return seq


def _wait(predicate, timeout: float = 30) -> None:
    import time
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_rotation_end_to_end(tmp_path: Path, broker, consumer, sm, receipt_key) -> None:
    trusted = tmp_path / "dashboard.pub"
    trusted.write_text(public_b64(receipt_key.public_key()) + "\n")
    old = generate(tmp_path / "node.key")
    old_pub = public_b64(old.public_key())
    (tmp_path / "node.toml").write_text(
        f'[node]\nname = "gw1"\nsite = "{SITE}"\ndata_dir = "{tmp_path}"\n'
        f'[policy]\ntrusted_keys = ["{trusted}"]\n')
    runtime = _runtime(tmp_path, broker, trusted)
    runtime.start()
    try:
        def announced() -> bool:
            with sm() as s:
                return s.get(Node, "gw1") is not None
        _wait(announced)
        with sm.begin() as s:
            services.approve_node(s, "admin", "gw1", roles=["door_gateway"], public_key=old_pub)
        assert runtime.wait_acked(_emit(runtime, 3), 30)
    finally:
        runtime.stop()
    # the admin runs `secroom keys rotate` on the node, then restarts it
    assert secroom(["keys", "rotate", "--config", str(tmp_path / "node.toml")]) == 0
    new_pub = public_b64(load_private(tmp_path / "node.key").public_key())
    assert new_pub != old_pub and previous_path(tmp_path / "node.key").exists()
    runtime = _runtime(tmp_path, broker, trusted)
    runtime.start()
    try:
        last = _emit(runtime, 3)
        assert runtime.wait_acked(last, 30)  # stored and acked under the new key
        with sm() as s:
            node = s.get(Node, "gw1")
            assert (node.public_key, node.contiguous_seq) == (new_pub, last)
            from_seq = node.key_since_seq
            assert 1 < from_seq <= last
        assert _anomalies(sm, "node_key_rotated") and not _anomalies(sm, "bad_signature")
    finally:
        runtime.stop()
    # the admin revokes the old key: a forged history signed by it is refused and raised
    with sm.begin() as s:
        services.revoke_key(s, "admin", "gw1", old_pub)
    thief = FakeNode("gw1", key=old)
    side = NodeSide(broker, thief)
    try:
        forged = thief.event()
        side.send(forged)  # seq 1, signed by the revoked key
        _wait(lambda: consumer.counters.get("key_revoked", 0) >= 1)
    finally:
        side.link.stop()
    assert _anomalies(sm, "key_revoked") and not _anomalies(sm, "fork")
    with sm() as s:
        assert s.scalar(select(StoredEvent.hash).where(StoredEvent.seq == 1)) != forged.hash
