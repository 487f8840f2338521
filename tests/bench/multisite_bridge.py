"""Benchmark (issue 24, the bridge part): one dashboard's ingest through a site bridge vs on a
direct broker, raw Mosquitto throughput through the same bridge, broker CPU per event.

    .venv/bin/python tests/bench/multisite_bridge.py [--quick] [--events N]

The signed, chained door.access events of tests/bench/ingest.py (8 nodes, cached under /tmp)
are published by one ``mosquitto_pub -q 1 -l`` per node and file. Measured in the same run:
- bridge raw: published at a site Mosquitto bridged over TLS (the configuration `secroom broker
  config --bridge` writes, tests/support/bridges.py) to a central Mosquitto, received by a
  counting subscriber on the centre with the dashboard's certificate (no Python in between);
- direct: an IngestConsumer (verify, store, project, ack; PostgreSQL, as at the centre, or
  ``--store sqlite``) on a plain loopback broker, from the first publish until every event is
  stored;
- bridged: the same consumer at the centre (TLS, certificate), the events published at the site;
- broker CPU per event: every Mosquitto process of the run (site + centre when bridged).
Target: bridged >= 80 % of direct. The last line is ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from controller.mqtt import MqttLink, MqttSettings  # noqa: E402
from dashboard.bus import Bus  # noqa: E402
from dashboard.db import Base, WalCheckpointer, make_engine, make_sessionmaker  # noqa: E402
from dashboard.ingest.consumer import IngestConsumer  # noqa: E402
from dashboard.ingest.gc_tuning import tune_gc  # noqa: E402
from dashboard.ingest.link_process import LinkProcess  # noqa: E402
from dashboard.models import Node  # noqa: E402
from dashboard.runtime import LoopPart  # noqa: E402
from tests.bench.ingest import (  # noqa: E402
    NODES,
    SITE,
    T0,
    cpu_s,
    event_files,
    piece_costs,
    postgres_cpu_s,
    publishers,
    wait_all,
)
from tests.support.bridges import BridgedSites  # noqa: E402
from tests.support.mosquitto import Broker  # noqa: E402
from tests.support.postgres import create_schema, postgres_url, schema_url  # noqa: E402

STORED_BYTES: dict[str, float] = {}  # label -> PostgreSQL bytes per stored event (last run)


def journal_bytes_per_event(folder: Path, n: int) -> float:
    """Disk bytes a node's journal takes per door.access event while nothing is acked (a site
    offline): a real NodeRuntime, no broker, ``n`` events, the SQLite files measured after a
    clean stop."""
    from controller.events import DoorAccess
    from controller.keys import generate
    from controller.runtime import NodeRuntime, RuntimeSettings
    from tests.support import free_port

    folder.mkdir(parents=True, exist_ok=True)
    generate(folder / "node.key")
    rt = NodeRuntime(RuntimeSettings(
        node="osaka-gw1", site=SITE, journal=folder / "journal.sqlite",
        key_file=folder / "node.key", mqtt=MqttSettings(port=free_port())))
    rt.start()
    for first in range(0, n, 100):
        rt.emit_many([("door.access", DoorAccess(
            door="server-room", reader="in", direction="in" if i % 2 else "out", granted=True,
            person_id=f"p{i % 40:04d}", card="0123456789ABCDEF", policy_version=12))
            for i in range(first, first + 100)])
    rt.stop()
    size = sum(p.stat().st_size for p in folder.glob("journal.sqlite*"))
    return size / n


def brokers_cpu(pids: list[int]) -> float:
    return sum(cpu_s(p) for p in pids)


def raw_through_bridge(bridged: BridgedSites, folder: Path, names: list[str],
                       total: int) -> tuple[float, float]:
    """(messages/s, broker CPU µs per message) site -> bridge -> centre -> counting subscriber."""
    count = 0
    done = threading.Event()
    lock = threading.Lock()

    def handler(topic: str, payload: bytes) -> None:
        nonlocal count
        with lock:
            count += 1
            if count >= total:
                done.set()

    settings = bridged.central_settings().model_copy(update={"max_inflight": 1000})
    lk = MqttLink(settings, client_id="raw-counter")
    lk.start()
    if not lk.connected.wait(30):
        raise SystemExit(f"cannot reach the central broker: {lk.last_error}")
    lk.subscribe(f"secroom/v1/{SITE}/+/events/#", handler)
    if not lk.wait_subscribed(30):
        raise SystemExit("the central broker did not acknowledge the subscription")
    pids = [b.proc.pid for b in (bridged.central, *bridged.site_brokers.values())
            if b.proc is not None]
    cpu0, start = brokers_cpu(pids), time.perf_counter()
    procs = publishers(folder, bridged.site_brokers[SITE].port, names)
    ok = done.wait(3600)
    elapsed = time.perf_counter() - start
    cpu = brokers_cpu(pids) - cpu0
    wait_all(procs)
    lk.stop()
    if not ok:
        raise SystemExit(f"raw run: only {count:,} of {total:,} arrived through the bridge")
    return total / elapsed, cpu / total * 1e6


def ingest(url: str, folder: Path, pubs: dict[str, str], settings: MqttSettings, pub_port: int,
           broker_pids: list[int], total: int, label: str
           ) -> tuple[float, float, float, float, float]:
    """(events/s, consumer CPU µs/event incl. its link process, CPU µs/event of every broker,
    of the first broker alone: the one the consumer reads from, of PostgreSQL's server)."""
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    sm = make_sessionmaker(engine)
    checkpointer = LoopPart("wal-checkpoint", WalCheckpointer(engine).run)
    checkpointer.start()
    with sm.begin() as s:
        for name, pub in pubs.items():
            s.add(Node(name=name, site=SITE, public_key=pub, key_status="approved",
                       roles="door_gateway", first_seen_at=T0, contiguous_seq=0, max_seq=0,
                       events_stored=0, state="unknown", health={}))
    lk = LinkProcess(settings.model_copy(update={"max_inflight": 1000}), client_id=label)
    lk.start()
    consumer = IngestConsumer(sm, lk, site=SITE, bus=Bus())
    tune_gc()
    consumer.start()
    if not lk.wait_subscribed(30):
        raise SystemExit(f"{label}: the consumer's subscriptions were not acknowledged "
                         f"({lk.last_error})")
    start, cpu0 = time.perf_counter(), time.process_time()
    link0, broker0, first0 = cpu_s(lk.pid), brokers_cpu(broker_pids), cpu_s(broker_pids[0])
    db0 = postgres_cpu_s()
    procs = publishers(folder, pub_port, list(pubs))
    lost = False
    while not consumer.wait_processed(total, 10):
        print(f"  {label}: {consumer.processed:,}/{total:,} after "
              f"{time.perf_counter() - start:.0f} s", flush=True)
        if lk.stats.get("disconnects", 0):
            # the publishers here are mosquitto_pub, not nodes with journals: what was in
            # flight on a dropped link is gone for good (a node would re-send it)
            print(f"  {label}: the consumer's link dropped ({lk.last_error}); run discarded")
            lost = True
            break
    elapsed = time.perf_counter() - start
    cpu_us = (time.process_time() - cpu0 + cpu_s(lk.pid) - link0) / total * 1e6
    broker_us = (brokers_cpu(broker_pids) - broker0) / total * 1e6
    first_us = (cpu_s(broker_pids[0]) - first0) / total * 1e6
    db_us = (postgres_cpu_s() - db0) / total * 1e6  # backends that exited are not counted
    wait_all(procs)
    counters = consumer.counters
    consumer.stop()
    lk.stop()
    checkpointer.stop()
    with sm() as s:
        acked = sum(n.contiguous_seq for n in s.query(Node))
        if s.get_bind().dialect.name == "postgresql":  # tables, indexes, TOAST of this schema
            STORED_BYTES[label] = float(s.scalar(text(
                "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n "
                "ON n.oid = c.relnamespace WHERE n.nspname = current_schema() "
                "AND c.relkind = 'r'")) or 0) / total
    engine.dispose()
    if lost:
        return 0.0, 0.0, 0.0, 0.0, 0.0
    if counters.get("stored") != total or acked != total:
        raise SystemExit(f"{label}: not everything stored: {counters}, acked {acked}")
    return total / elapsed, cpu_us, broker_us, first_us, db_us


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small counts for a smoke run")
    ap.add_argument("--events", type=int, default=None)
    ap.add_argument("--store", choices=["postgres", "sqlite"], default="postgres",
                    help="the central's database (default: a private PostgreSQL cluster, or "
                         "SECROOM_TEST_PG_URL)")
    ap.add_argument("--rounds", type=int, default=2,
                    help="direct and bridged runs, alternated; the best of each is reported "
                         "(the machine is shared: the best run is the least disturbed)")
    args = ap.parse_args()
    total = args.events or (16_000 if args.quick else 100_000)
    total -= total % NODES
    print(f"multisite bridge benchmark: {total:,} events, {NODES} nodes, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    folder, pubs = event_files(total)
    names = list(pubs)
    with contextlib.ExitStack() as stack:
        tmpdir = Path(stack.enter_context(
            tempfile.TemporaryDirectory(prefix="secroom-bench-multisite-")))
        pg = stack.enter_context(postgres_url()) if args.store == "postgres" else None

        def store(folder: Path, name: str) -> str:
            if pg is None:
                return f"sqlite:///{folder / (name + '.sqlite3')}"
            return schema_url(pg, create_schema(pg, name))

        direct = Broker(tmpdir / "direct")
        direct.conf.write_text(direct.conf.read_text().replace(
            "max_inflight_messages 0", "max_inflight_messages 1000"))
        bridged = BridgedSites([SITE], site_queue=1_000_000)
        direct.start()
        bridged.start()
        try:
            assert direct.proc is not None
            journal_b = journal_bytes_per_event(tmpdir / "journal", min(total, 20_000))
            costs = piece_costs(folder, pubs, 3000)  # parse + hash, Ed25519 verify, per event
            raw, raw_broker_us = raw_through_bridge(bridged, folder, names, total)
            # the central broker first: ingest() reports it apart
            pids = [b.proc.pid for b in (bridged.central, *bridged.site_brokers.values())
                    if b.proc is not None]
            runs: dict[str, list[tuple[float, float, float, float, float]]] = {
                "direct": [], "bridged": []}
            for r in range(args.rounds):
                runs["direct"].append(ingest(
                    store(tmpdir, f"direct{r}"), folder, pubs,
                    MqttSettings(host="127.0.0.1", port=direct.port), direct.port,
                    [direct.proc.pid], total, "direct"))
                runs["bridged"].append(ingest(
                    store(tmpdir, f"bridged{r}"), folder, pubs,
                    bridged.central_settings(), bridged.site_brokers[SITE].port, pids, total,
                    "bridged"))
                print(f"  round {r + 1}: direct {runs['direct'][-1][0]:,.0f}/s, bridged "
                      f"{runs['bridged'][-1][0]:,.0f}/s, load {os.getloadavg()[0]:.1f}",
                      flush=True)
            if not max(runs["direct"])[0] or not max(runs["bridged"])[0]:
                raise SystemExit("every run of one kind was discarded: see above")
            d_rate, d_cpu, d_broker, _, _ = max(runs["direct"])
            b_rate, b_cpu, b_broker, central_broker, db_us = max(runs["bridged"])
        finally:
            direct.stop()
            bridged.stop()
    ratio = b_rate / d_rate
    print()
    print(f"{'measure':<52}{'value':>14}")
    print(f"{'raw: site -> TLS bridge -> centre -> subscriber':<52}{raw:>12,.0f}/s")
    print(f"{'  both brokers CPU per message':<52}{raw_broker_us:>12,.1f}us")
    print(f"{'direct: loopback broker -> ingest':<52}{d_rate:>12,.0f}/s")
    print(f"{'  ingest CPU per event (consumer + link)':<52}{d_cpu:>12,.1f}us")
    print(f"{'  broker CPU per event':<52}{d_broker:>12,.1f}us")
    print(f"{'bridged: site -> bridge -> centre -> ingest':<52}{b_rate:>12,.0f}/s")
    print(f"{'  ingest CPU per event (consumer + TLS link)':<52}{b_cpu:>12,.1f}us")
    print(f"{'  brokers CPU per event (site + centre)':<52}{b_broker:>12,.1f}us")
    print(f"{'  of which the central broker':<52}{central_broker:>12,.1f}us")
    print(f"{'  PostgreSQL server CPU per event':<52}{db_us:>12,.1f}us")
    print(f"{'bridged / direct (target >= 80 %)':<52}{ratio:>13.0%}")
    print(f"{'node journal on disk per event (offline)':<52}{journal_b:>13,.0f}B")
    db_b = STORED_BYTES.get("bridged")
    if db_b:
        print(f"{'PostgreSQL bytes per stored event':<52}{db_b:>13,.0f}B")
    print(f"{'Ed25519 verify per event (the audit)':<52}{costs['verify_inproc_us']:>12,.1f}us")
    result = {
        "events_per_s_direct": round(d_rate),
        "events_per_s_bridged": round(b_rate),
        "bridged_over_direct": round(ratio, 3),
        "bridge_raw_msgs_per_s": round(raw),
        "broker_cpu_us_per_event": round(b_broker, 1),
        "broker_cpu_us_per_event_direct": round(d_broker, 1),
        "central_broker_cpu_us_per_event": round(central_broker, 1),
        "site_broker_cpu_us_per_event": round(b_broker - central_broker, 1),
        "store": args.store,
        "db_server_cpu_us_per_event": round(db_us, 1),
        "raw_brokers_cpu_us_per_msg": round(raw_broker_us, 1),
        "ingest_cpu_us_per_event": round(b_cpu, 1),
        "ingest_cpu_us_per_event_direct": round(d_cpu, 1),
        "journal_bytes_per_event": round(journal_b),
        "db_bytes_per_event": round(db_b) if db_b else None,
        "verify_us_per_event": round(costs["verify_inproc_us"], 1),
        "parse_us_per_event": round(costs["parse_us"], 1),
        "events": total,
        "rounds": args.rounds,
        # 0: a run discarded (the consumer's link dropped, see the log)
        "events_per_s_direct_runs": [round(x[0]) for x in runs["direct"]],
        "events_per_s_bridged_runs": [round(x[0]) for x in runs["bridged"]],
        "cpus": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 1),
    }
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
