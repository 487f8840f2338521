"""Many sites through real bridges: three site Mosquittos bridged over TLS (the configuration
`secroom broker config --bridge` writes) to a central Mosquitto, real node runtimes publishing at
the sites, one dashboard ingesting every site at the centre on PostgreSQL. During the run one
site's line is cut and restored, the central broker restarts, another site's broker is killed
and restarted. At the end every event is stored exactly once, each node's chain is whole, and no
gap or fork anomaly was raised."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from controller.events import DoorRex
from controller.keys import generate, public_b64
from controller.mqtt import MqttLink, TlsSettings
from controller.runtime import NodeRuntime, RuntimeSettings
from dashboard.ingest.consumer import IngestConsumer
from dashboard.models import Anomaly, Node, StoredEvent
from tests.support.bridges import BridgedSites

pytestmark = pytest.mark.integration

SITES = ["osaka", "nagoya", "fukuoka"]
NODES_PER_SITE = 2
T0 = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def bridged() -> Iterator[BridgedSites]:
    sites = BridgedSites(SITES)
    sites.start()
    yield sites
    sites.stop()


def _centre(tmp_path: Path, bridged: BridgedSites, sm: sessionmaker[Session]):
    """The central dashboard as `secroom dashboard run` builds it: ``site`` and ``sites`` say
    which subtrees it ingests (one consumer per site) and signs the policy for."""
    from dashboard.runtime import build_runtime
    from dashboard.settings import DashboardSettings

    url = sm.kw["bind"].url.render_as_string(hide_password=False)
    settings = DashboardSettings(
        data_dir=tmp_path / "centre", database_url=url, site=SITES[0], sites=SITES[1:],
        mqtt=bridged.central_settings(), policy_key_file=tmp_path / "centre" / "policy.key",
        gap_timeout_s=10)
    return build_runtime(settings)


def _runtimes(tmp_path: Path, bridged: BridgedSites, sm: sessionmaker[Session],
              trusted: Path) -> dict[str, NodeRuntime]:
    out: dict[str, NodeRuntime] = {}
    with sm.begin() as s:
        for site in SITES:
            for i in range(1, NODES_PER_SITE + 1):
                name = f"{site}-gw{i}"
                folder = tmp_path / name
                folder.mkdir()
                key = generate(folder / "node.key")
                s.add(Node(name=name, site=site, public_key=public_b64(key.public_key()),
                           key_status="approved", roles="door_gateway", first_seen_at=T0,
                           contiguous_seq=0, max_seq=0))
                out[name] = NodeRuntime(RuntimeSettings(
                    node=name, site=site, journal=folder / "journal.sqlite",
                    key_file=folder / "node.key", mqtt=bridged.site_settings(site),
                    trusted_keys=[trusted]))
    return out


def _emit(runtimes: dict[str, NodeRuntime], names: list[str], n: int) -> None:
    for name in names:
        rt = runtimes[name]
        rt.emit_many([("door.rex", DoorRex(door=f"{name}-door")) for _ in range(n)])


def _head(rt: NodeRuntime) -> int:
    return rt.journal.head()[0]


def _stored_mark(sm: sessionmaker[Session], name: str) -> int:
    with sm() as s:
        return s.get(Node, name).contiguous_seq  # type: ignore[union-attr]


@pytest.mark.parametrize("engine", ["postgres"], indirect=True)
def test_three_bridged_sites_survive_cuts_and_restarts(
        tmp_path: Path, bridged: BridgedSites, sm: sessionmaker[Session]) -> None:
    key = generate(tmp_path / "centre" / "policy.key")  # the central dashboard's key
    trusted = tmp_path / "dashboard.pub"
    trusted.write_text(public_b64(key.public_key()) + "\n")
    runtimes = _runtimes(tmp_path, bridged, sm, trusted)
    centre = _centre(tmp_path, bridged, sm)
    centre.start()
    names = sorted(runtimes)
    cut_site, killed_site = "osaka", "nagoya"
    at_cut = [n for n in names if n.startswith(cut_site)]
    try:
        for rt in runtimes.values():
            rt.start()
        _emit(runtimes, names, 40)
        for name in names:
            assert runtimes[name].wait_acked(_head(runtimes[name]), 60), (
                f"{name} not acked through its bridge")
        before_cut = {n: _head(runtimes[n]) for n in at_cut}

        # the WAN line of one site goes down: its broker takes the events and queues them
        bridged.links[cut_site].cut()
        _emit(runtimes, names, 30)
        for name in at_cut:  # taken by the site broker (PUBACKed), not by the centre
            assert runtimes[name].wait_delivered(_head(runtimes[name]), 60)
        for name in sorted(set(names) - set(at_cut)):
            assert runtimes[name].wait_acked(_head(runtimes[name]), 60), (
                f"{name} held up by another site's cut")
        marks = {n: _stored_mark(sm, n) for n in at_cut}
        assert marks == before_cut, "events crossed a cut line"
        bridged.links[cut_site].restore()
        for name in at_cut:
            assert runtimes[name].wait_acked(_head(runtimes[name]), 60), (
                f"{name}: the queue did not drain")

        # the central broker restarts while every site keeps publishing
        bridged.central.stop()
        assert (bridged.dir / "central" / "mosquitto.db").exists()  # its queues were saved
        _emit(runtimes, names, 20)
        bridged.central.start()
        _emit(runtimes, names, 10)

        # one site's broker crashes (SIGKILL) and comes back; its nodes keep their journals
        bridged.site_brokers[killed_site].kill()
        _emit(runtimes, names, 20)
        bridged.site_brokers[killed_site].start()
        _emit(runtimes, names, 10)

        # the other way: each site's signed presence statement (retained, from the centre's
        # publisher for that site) reaches its broker through its bridge, naming its doors only
        for site in SITES:
            got: queue.Queue[bytes] = queue.Queue()
            watch = MqttLink(bridged.site_settings(site), client_id=f"watch-{site}")
            watch.start()
            watch.subscribe(f"secroom/v1/{site}/presence", lambda t, p, q=got: q.put(p))
            try:
                statement = got.get(timeout=60)
            finally:
                watch.stop()
            assert f'"site":"{site}"'.encode() in statement and b'"sig":' in statement

        heads = {n: _head(runtimes[n]) for n in names}
        assert min(heads.values()) >= 130
        for name in names:
            assert runtimes[name].wait_acked(heads[name], 120), (
                f"{name}: stored up to {_stored_mark(sm, name)} of {heads[name]}")
    finally:
        for rt in runtimes.values():
            rt.stop()
        centre.stop()

    with sm() as s:
        for name in names:
            rows = s.execute(select(StoredEvent.seq, StoredEvent.prev, StoredEvent.hash)
                             .where(StoredEvent.node == name).order_by(StoredEvent.seq)).all()
            # exactly once, nothing missing (node.stopped, emitted at stop, may follow the head)
            assert [r.seq for r in rows] == list(range(1, len(rows) + 1)), name
            assert len(rows) >= heads[name], name
            for before, after in zip(rows, rows[1:], strict=False):
                assert after.prev == before.hash, f"{name}: chain broken at {after.seq}"
        kinds = sorted(s.scalars(select(Anomaly.kind)))
    assert not {"gap", "fork", "bad_signature", "chain_break"} & set(kinds), kinds


def test_a_site_cannot_publish_into_another_sites_subtree(bridged: BridgedSites) -> None:
    """The central ACL: a site's certificate writes its own subtree and reads only its own."""
    ca, cert, keyfile = bridged.bridge_cert("osaka")
    settings = bridged.central_settings().model_copy(
        update={"tls": TlsSettings(ca_file=ca, cert_file=cert, key_file=keyfile)})
    dash = MqttLink(bridged.central_settings(), client_id="dash-watch")
    dash.start()
    seen: queue.Queue[str] = queue.Queue()
    dash.subscribe("secroom/v1/+/+/events/#", lambda t, p: seen.put(t))
    assert dash.wait_subscribed(30)
    rogue = MqttLink(settings, client_id="site-osaka-rogue")
    rogue.start()
    got: queue.Queue[str] = queue.Queue()
    try:
        assert rogue.connected.wait(30), rogue.last_error
        rogue.subscribe("secroom/v1/nagoya/+/ack", lambda t, p: got.put(t))
        rogue.subscribe("secroom/v1/osaka/+/ack", lambda t, p: got.put(t))
        assert rogue.wait_subscribed(30)
        rogue.publish("secroom/v1/nagoya/nagoya-gw1/events/door.rex", b"{}", qos=1)
        rogue.publish("secroom/v1/osaka/osaka-gw1/events/door.rex", b"{}", qos=1)
        dash.publish("secroom/v1/nagoya/nagoya-gw1/ack", b"x", qos=1)
        dash.publish("secroom/v1/osaka/osaka-gw1/ack", b"x", qos=1)
        # the broker handles one client's messages in order: once the own-site one arrives,
        # the other site's (sent before it) was dropped, not delayed
        assert seen.get(timeout=30) == "secroom/v1/osaka/osaka-gw1/events/door.rex"
        assert seen.empty()
        assert got.get(timeout=30) == "secroom/v1/osaka/osaka-gw1/ack"
        assert got.empty()
    finally:
        rogue.stop()
        dash.stop()


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_a_long_outage_beyond_the_site_queue_catches_up_from_the_journal(
        tmp_path: Path, sm: sessionmaker[Session]) -> None:
    """A site offline longer than its broker's queue holds (here 50 messages): the broker
    drops the rest silently, the node's journal still has them. The bridge announces it is
    back (its notification topic), the dashboard asks the site's nodes at once for what follows
    their acks: everything stored once, no gap anomaly (nothing later came to reveal a gap)."""
    bridged = BridgedSites(["osaka"], site_queue=50)
    bridged.start()
    key = generate(tmp_path / "centre" / "policy.key")
    trusted = tmp_path / "dashboard.pub"
    trusted.write_text(public_b64(key.public_key()) + "\n")
    folder = tmp_path / "osaka-gw1"
    folder.mkdir()
    node_key = generate(folder / "node.key")
    with sm.begin() as s:
        s.add(Node(name="osaka-gw1", site="osaka", public_key=public_b64(node_key.public_key()),
                   key_status="approved", roles="door_gateway", first_seen_at=T0,
                   contiguous_seq=0, max_seq=0))
    rt = NodeRuntime(RuntimeSettings(node="osaka-gw1", site="osaka",
                                     journal=folder / "journal.sqlite",
                                     key_file=folder / "node.key",
                                     mqtt=bridged.site_settings("osaka"), trusted_keys=[trusted]))
    from dashboard.runtime import build_runtime
    from dashboard.settings import DashboardSettings

    url = sm.kw["bind"].url.render_as_string(hide_password=False)
    centre = build_runtime(DashboardSettings(
        data_dir=tmp_path / "centre", database_url=url, site="osaka",
        mqtt=bridged.central_settings(), policy_key_file=tmp_path / "centre" / "policy.key",
        gap_timeout_s=10))
    consumer = next(p for p in centre.parts if isinstance(p, IngestConsumer))
    # the hourly safety net out of reach: the bridge's "I am back" alone must start the catch-up
    consumer.catch_up_interval_s = 3600
    centre.start()
    rt.start()
    try:
        _emit({"osaka-gw1": rt}, ["osaka-gw1"], 20)
        assert rt.wait_acked(_head(rt), 60)
        bridged.links["osaka"].cut()
        for _ in range(10):  # far more than the site broker queues
            _emit({"osaka-gw1": rt}, ["osaka-gw1"], 40)
        assert rt.wait_delivered(_head(rt), 60)  # the site broker took them all
        bridged.links["osaka"].restore()
        _emit({"osaka-gw1": rt}, ["osaka-gw1"], 5)  # the line is back: life goes on
        head = _head(rt)
        assert rt.wait_acked(head, 120), f"stored up to {_stored_mark(sm, 'osaka-gw1')}"
    finally:
        rt.stop()
        centre.stop()
        bridged.stop()
    with sm() as s:
        seqs = list(s.scalars(select(StoredEvent.seq).where(StoredEvent.node == "osaka-gw1")
                              .order_by(StoredEvent.seq)))
        kinds = list(s.scalars(select(Anomaly.kind)))
        requests = s.get(Node, "osaka-gw1")
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= head
    assert "gap" not in kinds and "fork" not in kinds, kinds
    assert requests is not None and consumer.catch_ups >= 2  # the start, the bridge back
