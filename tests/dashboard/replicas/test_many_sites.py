"""Issue 24's whole shape with real parts: three site Mosquittos bridged over TLS (the
configuration `secroom broker config --bridge` writes) to a central Mosquitto; door gateway
node runtimes publishing at each site; two `secroom dashboard run` replicas on one PostgreSQL,
connected to the centre with the dashboard's certificate, each storing the nodes (of every
site) it holds the lease of. During the stream: the replica that leads (policy signer) and
holds some nodes is SIGKILLed; one site's WAN line is cut and restored; the central broker
restarts; the killed replica comes back. At the end: every event stored exactly once, in order
per node, chains whole, no false gap or fork anomaly; one policy signer at every moment; both
replicas' pages give the same answers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import sessionmaker

from controller.runtime import NodeRuntime
from dashboard import services
from dashboard.auth.service import AuthService
from dashboard.models import Node
from dashboard.settings import load_settings
from tests.dashboard.replicas.kit import (
    emit,
    engine_of,
    false_anomalies,
    holders,
    one_signer_at_a_time,
    start_nodes,
    stored_once_in_order,
)
from tests.dashboard.replicas.kit import wait_for as _wait_for
from tests.support.bridges import BridgedSites
from tests.support.replicas import ReplicaSet, login

pytestmark = pytest.mark.integration

SITES = ["osaka", "nagoya", "fukuoka"]
PASSWORD = "many-sites-pw"  # noqa: S105 - a throwaway account of this test
WAIT = 60.0


def wait_for(predicate, what: str, timeout: float = WAIT) -> None:  # type: ignore[no-untyped-def]
    _wait_for(predicate, what, timeout)


@pytest.fixture
def bridged() -> Iterator[BridgedSites]:
    sites = BridgedSites(SITES)
    sites.start()
    yield sites
    sites.stop()


@pytest.fixture
def replicas(tmp_path: Path, pg_url: str, bridged: BridgedSites) -> Iterator[ReplicaSet]:
    centre = SimpleNamespace(host=bridged.host, port=bridged.central_port)
    with ReplicaSet(tmp_path / "central", pg_url, centre, site=SITES[0], sites=SITES[1:],
                    mqtt=bridged.central_settings()) as rs:
        yield rs




def flowing(nodes: dict[str, NodeRuntime], names: list[str], what: str) -> None:
    """Each of ``names`` has an event acked beyond the head it has now."""
    heads = {n: nodes[n].journal.head()[0] for n in names}
    wait_for(lambda: all(nodes[n].journal.ack > heads[n] for n in names), what)


def test_many_sites_two_replicas_a_kill_a_cut_and_a_broker_restart(
        tmp_path: Path, replicas: ReplicaSet, bridged: BridgedSites) -> None:
    engine = engine_of(replicas.database_url)
    sm = sessionmaker(engine)
    with sm.begin() as s:
        AuthService(load_settings(replicas.config("r1")), sm).create_user(
            s, username="hq", role="admin", password=PASSWORD, now=datetime.now(UTC))
    replicas.start("r1")  # first: it takes the leader's lock
    replicas.start("r2")
    nodes: dict[str, NodeRuntime] = {}
    for site in SITES:
        at = SimpleNamespace(host=bridged.host, port=bridged.site_brokers[site].port)
        nodes |= start_nodes(tmp_path / "nodes", sm, at, site, replicas.policy_pub,
                             [f"{site}-gw1", f"{site}-gw2"])
    names = sorted(nodes)
    killed: dict[str, datetime] = {}
    stop = threading.Event()
    errors: list[BaseException] = []

    def stream(rt: NodeRuntime) -> None:
        try:
            while not stop.is_set():
                emit(rt, 1)
                stop.wait(0.04)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)

    threads = [threading.Thread(target=stream, args=(rt,)) for rt in nodes.values()]
    try:
        # every site's nodes are leased, and both replicas hold some
        wait_for(lambda: set(holders(sm)) == set(names)
                 and set(holders(sm).values()) == {"r1", "r2"}, "leases over every site")
        with sm.begin() as s:  # a policy change: the leader (r1) signs each site's version
            services.create_door(s, "admin", {"id": "d1", "name": "サーバー室", "site": SITES[0]})
        for t in threads:
            t.start()
        flowing(nodes, names, "every site's events stored")

        # the leader, holding some nodes, is killed: r2 leads and stores every node
        r1_nodes = [n for n, h in holders(sm).items() if h == "r1"]
        with sm() as s:
            killed["r1"] = s.scalar(text("SELECT clock_timestamp()"))
        replicas.kill("r1")
        flowing(nodes, r1_nodes, "r1's nodes flowing again through r2")
        assert set(holders(sm).values()) == {"r2"}

        # one site's WAN line goes down: the others go on; it catches up when it is back
        cut = [n for n in names if n.startswith("nagoya")]
        bridged.links["nagoya"].cut()
        flowing(nodes, [n for n in names if n not in cut], "the other sites during the cut")
        assert all(nodes[n].journal.head()[0] > nodes[n].journal.ack for n in cut)  # held up
        bridged.links["nagoya"].restore()
        flowing(nodes, cut, "the cut site's events after the line is back")

        # the central broker restarts under the stream
        bridged.central.restart()
        flowing(nodes, names, "every site after the central broker's restart")

        # r1 comes back: it takes its share of every site again; r2 goes on leading
        replicas.start("r1")
        wait_for(lambda: set(holders(sm).values()) == {"r1", "r2"}, "r1 back with leases")
        with sm.begin() as s:
            services.create_door(s, "admin", {"id": "d2", "name": "書庫", "site": SITES[1]})
        flowing(nodes, names, "every node after r1's return")
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    try:
        assert not errors, errors
        for name, rt in nodes.items():
            assert rt.wait_acked(rt.journal.head()[0], WAIT), name
        stored_once_in_order(sm, nodes)
        assert false_anomalies(sm) == []
        order = one_signer_at_a_time(sm, killed)
        assert order[:2] == ["r1", "r2"], order
        with sm() as s:
            assert set(s.scalars(select(Node.site))) == set(SITES)

        # one session, both replicas: the same answers
        with httpx.Client(base_url=replicas.url("r2"), timeout=30) as c2:
            login(c2, "hq", PASSWORD)
            with httpx.Client(base_url=replicas.url("r1"), cookies=c2.cookies,
                              timeout=30) as c1:
                for path in ("/api/v1/nodes", "/api/v1/anomalies", "/api/v1/events/door",
                             "/api/v1/doors"):
                    a, b = c1.get(path), c2.get(path)
                    assert a.status_code == b.status_code == 200, (path, a.text[-300:])
                    assert a.json() == b.json(), path
                listed = {n["name"] for n in c1.get("/api/v1/nodes").json()}
                assert set(names) <= listed
    finally:
        for rt in nodes.values():
            rt.stop()
        engine.dispose()
