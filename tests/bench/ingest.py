"""Benchmark: events per second from MQTT into the dashboard's database (SQLite and PostgreSQL),
and the time to drain a large backlog after an outage.

    .venv/bin/python tests/bench/ingest.py [--quick] [--events N] [--backlog N] [--pg-url URL]

Signed, chained door.access events of 8 nodes are generated beforehand (cached under
/tmp/secroom-bench-ingest/, in files of 50,000 lines) and published through a private Mosquitto
by one ``mosquitto_pub -q 1 -l`` per node and file, each reading its file itself (C clients: no
Python of this process, which hosts the consumer, in between). Measured in the same run:
- anchor: raw broker throughput, the same files into a plain MqttLink subscriber that only
  counts messages (the ceiling for any Python consumer on one paho connection);
- sqlite / postgres: an IngestConsumer (verify, store, project, ack) from the first publish
  until every event is stored, on a fresh database; ``--events`` (default 200,000);
- backlog: the nodes' journals hold ``--backlog`` events (default 1,000,000) when the
  dashboard comes back; they replay them all at once; time until all stored (SQLite);
- cost of the pieces: parse + hash check, and Ed25519 verification (in process).
The last line is ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from sqlalchemy import text  # noqa: E402

import dashboard.models  # noqa: E402, F401
from controller.envelope import GENESIS, parse, seal  # noqa: E402
from controller.keys import public_b64  # noqa: E402
from controller.mqtt import MqttLink, MqttSettings  # noqa: E402
from dashboard.bus import Bus  # noqa: E402
from dashboard.db import Base, WalCheckpointer, make_engine, make_sessionmaker  # noqa: E402
from dashboard.ingest.consumer import IngestConsumer  # noqa: E402
from dashboard.ingest.gc_tuning import tune_gc  # noqa: E402
from dashboard.ingest.link_process import LinkProcess  # noqa: E402
from dashboard.ingest.verify import SignatureVerifier  # noqa: E402
from dashboard.models import Node  # noqa: E402
from dashboard.runtime import LoopPart  # noqa: E402
from tests.support import require_binary  # noqa: E402
from tests.support.mosquitto import Broker  # noqa: E402

SITE = "bench"
NODES = 8
CACHE = Path(tempfile.gettempdir()) / "secroom-bench-ingest"
T0 = datetime(2026, 11, 1, tzinfo=UTC)
VERIFY_MODE = "chain"
AUDIT_PROCS: int | None = None  # the consumer's default


# -- event files ---------------------------------------------------------------------------------


CHUNK = 50_000  # mosquitto_pub -l -q 1 stalls after ~60,000 messages (16-bit packet ids)


def chunk_files(path: Path) -> list[Path]:
    """One node's event lines, in order, in files of at most CHUNK lines (one mosquitto_pub
    each, reading the file itself: no Python in between)."""
    return sorted(path.parent.glob(f"{path.name}.[0-9][0-9][0-9][0-9]"))


def _gen_node(args: tuple[str, bytes, int, Path]) -> None:
    name, raw_key, count, path = args
    key = Ed25519PrivateKey.from_private_bytes(raw_key)
    prev, ts = GENESIS, T0
    lines: list[bytes] = []
    for seq in range(1, count + 1):
        ts += timedelta(milliseconds=250)
        person = f"p{seq % 40}"
        ev = seal(
            key,
            node=name,
            site=SITE,
            seq=seq,
            ts=ts,
            boot="b1",
            clock="synced",
            kind="door.access",
            data={
                "door": f"door-{name}",
                "reader": "r-in",
                "direction": "in" if (seq // 40) % 2 == 0 else "out",
                "granted": seq % 17 != 0,
                "reason": None if seq % 17 else "not_permitted",
                "person_id": person if seq % 17 else None,
                "card": "0102030405060708",
            },
            prev=prev,
        )
        prev = ev.hash
        lines.append(ev.to_bytes() + b"\n")
    for k, first in enumerate(range(0, count, CHUNK)):
        tmp = path.with_name(f"{path.name}.tmp")
        tmp.write_bytes(b"".join(lines[first : first + CHUNK]))
        tmp.replace(path.with_name(f"{path.name}.{k:04d}"))


def event_files(total: int) -> tuple[Path, dict[str, str]]:
    """``NODES`` files of total/NODES events each (cached); returns (dir, node -> public key)."""
    per = total // NODES
    folder = CACHE / f"{per}x{NODES}-{CHUNK}"
    manifest = folder / "keys.json"
    if manifest.exists():
        return folder, json.loads(manifest.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    keys = {f"n{i}": Ed25519PrivateKey.generate() for i in range(NODES)}
    jobs = [
        (
            name,
            k.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            ),
            per,
            folder / f"{name}.lines",
        )
        for name, k in keys.items()
    ]
    start = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(os.cpu_count() or 2) as pool:
        pool.map(_gen_node, jobs)
    print(f"  generated {per * NODES:,} signed events in {time.perf_counter() - start:.1f} s")
    pubs = {name: public_b64(k.public_key()) for name, k in keys.items()}
    manifest.write_text(json.dumps(pubs))
    return folder, pubs


class _NodePublisher(threading.Thread):
    """Publishes one node's file in order, one ``mosquitto_pub -l`` per chunk of lines."""

    def __init__(self, binary: str, path: Path, port: int, name: str) -> None:
        super().__init__(daemon=True)
        self.cmd = [
            binary,
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-q",
            "1",
            "-M",
            "1000",
            "-t",
            f"secroom/v1/{SITE}/{name}/events/door.access",
            "-l",
        ]
        self.path, self.name = path, name
        self.failed: str | None = None

    def run(self) -> None:
        for path in chunk_files(self.path):
            with path.open("rb") as fh:
                proc = subprocess.run(
                    [*self.cmd, "-i", f"pub-{self.name}-{uuid.uuid4().hex[:6]}"],
                    stdin=fh,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    check=False,
                )
            if proc.returncode:
                self.failed = proc.stderr.decode(errors="replace")[:200]
                return

    def wait(self, timeout: float) -> None:
        self.join(timeout)


def publishers(folder: Path, port: int, names: list[str]) -> list[_NodePublisher]:
    binary = require_binary("mosquitto_pub")
    pubs = [_NodePublisher(binary, folder / f"{name}.lines", port, name) for name in names]
    for p in pubs:
        p.start()
    return pubs


def wait_all(procs: list[_NodePublisher]) -> None:
    for p in procs:
        p.wait(3600)
        if p.failed:
            raise SystemExit(f"mosquitto_pub failed for {p.name}: {p.failed}")


def link(port: int, client_id: str) -> MqttLink:
    lk = MqttLink(MqttSettings(host="127.0.0.1", port=port, max_inflight=1000), client_id=client_id)
    lk.start()
    if not lk.connected.wait(10):
        raise SystemExit(f"cannot connect to the private broker: {lk.last_error}")
    return lk


# -- measurements --------------------------------------------------------------------------------


def anchor(folder: Path, port: int, names: list[str], total: int) -> float:
    count = 0
    done = threading.Event()
    lock = threading.Lock()

    def handler(topic: str, payload: bytes) -> None:
        nonlocal count
        with lock:
            count += 1
            if count >= total:
                done.set()

    lk = link(port, "anchor")
    lk.subscribe(f"secroom/v1/{SITE}/+/events/#", handler)
    time.sleep(0.3)  # let the SUBACK land before the first publish
    start = time.perf_counter()
    procs = publishers(folder, port, names)
    ok = done.wait(3600)
    elapsed = time.perf_counter() - start
    wait_all(procs)
    lk.stop()
    if not ok:
        raise SystemExit("anchor subscriber did not receive every message")
    return total / elapsed


def cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of a process so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_s() -> float:
    """User + system CPU seconds of every PostgreSQL server process on this machine so far."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.find("(") + 1 : text.rfind(")")]
        if name.startswith("postgres"):
            total += cpu_s(int(stat.parent.name))
    return total


def children_cpu_s() -> float:
    """User + system CPU seconds of this process's reaped children (the publishers)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def ingest_run(
    url: str,
    folder: Path,
    pubs: dict[str, str],
    port: int,
    total: int,
    label: str,
    broker_pid: int | None = None,
) -> tuple[float, dict[str, float]]:
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    sm = make_sessionmaker(engine)
    checkpointer = LoopPart("wal-checkpoint", WalCheckpointer(engine).run)  # as build_runtime
    checkpointer.start()
    with sm() as s:
        for name, pub in pubs.items():
            s.add(
                Node(
                    name=name,
                    site=SITE,
                    public_key=pub,
                    key_status="approved",
                    roles="door_gateway",
                    first_seen_at=T0,
                    contiguous_seq=0,
                    max_seq=0,
                    events_stored=0,
                    state="unknown",
                    health={},
                )
            )
        s.commit()
    lk = LinkProcess(MqttSettings(host="127.0.0.1", port=port, max_inflight=1000), client_id=label)
    lk.start()
    if not lk.wait_subscribed(10):
        raise SystemExit(f"cannot connect to the private broker: {lk.last_error}")
    consumer = IngestConsumer(
        sm, lk, site=SITE, bus=Bus(), audit_processes=AUDIT_PROCS, verify_mode=VERIFY_MODE
    )
    tune_gc()  # as DashboardRuntime.start does
    consumer.start()
    if not lk.wait_subscribed(10):
        raise SystemExit(f"{label}: the consumer's subscriptions were not acknowledged")
    start = time.perf_counter()
    cpu0 = time.process_time()
    link0, broker0 = cpu_s(lk.pid), cpu_s(broker_pid)
    pub0, pg0 = children_cpu_s(), postgres_cpu_s()
    procs = publishers(folder, port, list(pubs))
    ok = False
    while not ok:
        ok = consumer.wait_processed(total, 10)
        if lk.stats["disconnects"]:
            print(f"  {label}: the link dropped ({lk.last_error}); messages in flight were lost")
            break
        print(
            f"  {label}: {consumer.processed:,}/{total:,} after "
            f"{time.perf_counter() - start:.0f} s",
            flush=True,
        )
    elapsed = time.perf_counter() - start
    cpu_us = (time.process_time() - cpu0) / total * 1e6
    link_us = (cpu_s(lk.pid) - link0) / total * 1e6
    pg_us = (postgres_cpu_s() - pg0) / total * 1e6  # exited backends are not counted
    broker_us = (cpu_s(broker_pid) - broker0) / total * 1e6
    if ok:
        wait_all(procs)
    pub_us = (children_cpu_s() - pub0) / total * 1e6  # the mosquitto_pub clients, reaped
    # chain mode: every signature not checked before storing is checked after; how far behind
    audit_start = time.perf_counter()
    while consumer.audit.pending and time.perf_counter() - audit_start < 900:
        time.sleep(0.05)
    extra = {
        "audit_lag_s": round(time.perf_counter() - audit_start, 1),
        "audited": consumer.audit.checked,
        "cpu_us_per_event": round(cpu_us, 1),
        "link_cpu_us_per_event": round(link_us, 1),
        "broker_cpu_us_per_event": round(broker_us, 1),
        "publishers_cpu_us_per_event": round(pub_us, 1),
        "postgres_server_cpu_us_per_event": round(pg_us, 1),
    }
    counters = consumer.counters
    consumer.stop()
    lk.stop()
    checkpointer.stop()
    with sm() as s:
        acked = sum(n.contiguous_seq for n in s.query(Node))
    engine.dispose()
    if not ok or counters.get("stored") != total or acked != total:
        raise SystemExit(f"{label}: not everything stored: {counters}, acked {acked}")
    if counters.get("bad_signature_stored"):
        raise SystemExit(f"{label}: the audit found bad signatures: {counters}")
    print(f"  {label}: {extra}")
    return total / elapsed, extra


def piece_costs(folder: Path, pubs: dict[str, str], n: int = 5000) -> dict[str, float]:
    name = next(iter(pubs))
    with chunk_files(folder / f"{name}.lines")[0].open("rb") as fh:
        lines = [line.rstrip(b"\n") for line in fh][:n]
    n = len(lines)
    start = time.perf_counter()
    events = [parse(b) for b in lines]
    parse_us = (time.perf_counter() - start) / n * 1e6
    verifier = SignatureVerifier()
    key = verifier.key(pubs[name])
    assert key is not None
    pairs = [(key, e) for e in events]
    start = time.perf_counter()
    assert all(verifier.verify_many(pairs))
    v1 = (time.perf_counter() - start) / n * 1e6
    return {"parse_us": parse_us, "verify_inproc_us": v1}


def pg_schema_url(pg_url: str) -> tuple[str, str]:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    sep = "&" if "?" in pg_url else "?"
    return schema, f"{pg_url}{sep}options=-csearch_path%3D{schema}"


def drop_schema(pg_url: str, schema: str) -> None:
    admin = make_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small counts for a smoke run")
    ap.add_argument("--events", type=int, default=None)
    ap.add_argument("--backlog", type=int, default=None)
    ap.add_argument(
        "--pg-url",
        default=os.environ.get(
            "SECROOM_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    ap.add_argument(
        "--verify-mode",
        choices=["every", "chain"],
        default="chain",
        help="signature checks before storing: one per hash-linked run, the rest audited "
        "after the commit (chain, the consumer's default) or every event first (every)",
    )
    args = ap.parse_args()
    global VERIFY_MODE
    VERIFY_MODE = args.verify_mode
    total = args.events or (16_000 if args.quick else 200_000)
    backlog = args.backlog or (40_000 if args.quick else 1_000_000)
    total -= total % NODES
    backlog -= backlog % NODES

    print(
        f"ingest benchmark: {total:,} events sustained, {backlog:,} backlog, {NODES} nodes, "
        f"verify={VERIFY_MODE}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    folder, pubs = event_files(total)
    bfolder, bpubs = event_files(backlog)
    costs = piece_costs(folder, pubs)
    result: dict[str, float | int | None] = {}
    with tempfile.TemporaryDirectory(prefix="secroom-bench-ingest-") as tmp:
        tmpdir = Path(tmp)
        broker = Broker(tmpdir / "mosquitto")
        # bounded in-flight window (as in production; unbounded stalls mosquitto once the 16-bit
        # packet ids of one client are all in flight), unbounded queue for the backlog
        broker.conf.write_text(
            broker.conf.read_text().replace("max_inflight_messages 0", "max_inflight_messages 1000")
        )
        broker.start()
        try:
            raw = anchor(folder, broker.port, list(pubs), total)
            sqlite_rate, sqlite_extra = ingest_run(
                f"sqlite:///{tmpdir / 'a.sqlite3'}",
                folder,
                pubs,
                broker.port,
                total,
                "sqlite",
                broker.proc.pid,
            )
            pg_rate: float | None = None
            pg_extra: dict[str, float] = {}
            try:
                schema, url = pg_schema_url(args.pg_url)
            except Exception as exc:  # no server: reported as null, not a crash
                print(f"  postgres unavailable ({type(exc).__name__}); skipped")
            else:
                try:
                    pg_rate, pg_extra = ingest_run(
                        url, folder, pubs, broker.port, total, "postgres", broker.proc.pid
                    )
                finally:
                    drop_schema(args.pg_url, schema)
            start = time.perf_counter()
            drain_rate, _ = ingest_run(
                f"sqlite:///{tmpdir / 'b.sqlite3'}", bfolder, bpubs, broker.port, backlog, "backlog"
            )
            drain_s = backlog / drain_rate
            del start
        finally:
            broker.stop()
    print()
    print(f"{'measure':<44}{'value':>14}")
    print(f"{'anchor: raw mosquitto -> counting subscriber':<44}{raw:>12,.0f}/s")
    print(f"{'sqlite: MQTT -> verified, stored, acked':<44}{sqlite_rate:>12,.0f}/s")
    pg_text = f"{pg_rate:>12,.0f}/s" if pg_rate else f"{'n/a':>14}"
    print(f"{'postgres: MQTT -> verified, stored, acked':<44}{pg_text}")
    print(f"{f'backlog of {backlog:,} drained (sqlite)':<44}{drain_s:>13,.1f}s")
    print(f"{'parse + hash check per event':<44}{costs['parse_us']:>12,.0f}us")
    print(f"{'Ed25519 verify per event, in process':<44}{costs['verify_inproc_us']:>12,.0f}us")
    print(f"{'target':<44}{'>= 10,000/s':>14}")
    result = {
        "sqlite_events_per_s": round(sqlite_rate),
        "postgres_events_per_s": round(pg_rate) if pg_rate else None,
        # only a measured 1,000,000-event drain is reported under this key (no extrapolation)
        "backlog_1m_drain_s": round(drain_s, 1) if backlog == 1_000_000 else None,
        "backlog_drain_s": round(drain_s, 1),
        "backlog_events": backlog,
        "events": total,
        "anchor_mosquitto_raw_per_s": round(raw),
        "parse_us": round(costs["parse_us"], 1),
        "verify_inproc_us": round(costs["verify_inproc_us"], 1),
        "sqlite_audit_lag_s": sqlite_extra["audit_lag_s"],
        "postgres_audit_lag_s": pg_extra.get("audit_lag_s"),
        "sqlite_cpu_us_per_event": sqlite_extra["cpu_us_per_event"],
        "postgres_cpu_us_per_event": pg_extra.get("cpu_us_per_event"),
        "link_cpu_us_per_event": sqlite_extra["link_cpu_us_per_event"],
        "broker_cpu_us_per_event": sqlite_extra["broker_cpu_us_per_event"],
        "publishers_cpu_us_per_event": sqlite_extra["publishers_cpu_us_per_event"],
        "postgres_server_cpu_us_per_event": pg_extra.get("postgres_server_cpu_us_per_event"),
        "cpus": os.cpu_count(),
        "verify_mode": VERIFY_MODE,
        "load_avg_1m": round(os.getloadavg()[0], 1),
    }
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
