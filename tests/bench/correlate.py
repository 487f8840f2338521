"""Benchmark: the full correlation re-run over 1,000,000 number-access rows and 2,000,000 door
events (stored events, door_access rows and the presence intervals they make), on SQLite and on
PostgreSQL (SECROOM_TEST_PG_URL, a private schema), and the per-event incremental correlation
latency (p99). Anchor, measured in the same run on the same tables: a bare scan that reads what
the re-run reads (``SELECT count(*)`` over number_access ordered by person and time, plus
presence), i.e. the floor any set-based re-run pays.

    .venv/bin/python tests/bench/correlate.py [--quick] [--no-postgres]

Prints a table and, last, ``RESULT {json}`` (with the load average at the start and the end).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import Engine, text  # noqa: E402

import dashboard.models  # noqa: E402,F401
import dashboard.models.correlation  # noqa: E402,F401
import dashboard.models.numlog  # noqa: E402,F401
from dashboard.correlation.engine import Correlator  # noqa: E402
from dashboard.correlation.rerun import rerun  # noqa: E402
from dashboard.db import Base, make_engine, make_sessionmaker  # noqa: E402
from dashboard.models.numlog import NumberAccess  # noqa: E402

ZONE = ZoneInfo("Asia/Tokyo")
CHUNK = 50_000


def workdays(n: int) -> list[date]:
    from dashboard.correlation.calendar import is_jp_holiday

    out, d = [], date(2025, 1, 6)
    while len(out) < n:
        if d.weekday() < 5 and not is_jp_holiday(d):
            out.append(d)
        d += timedelta(days=1)
    return out


def generate(staff: int, days: int, seed: int = 1) -> dict[str, Any]:
    """Per staff-day: 8 stays in the room (16 door events), 8 number accesses inside them;
    0.1 % of the accesses are planted outside any stay. Yields rows in chunks."""
    return {"staff": staff, "days": workdays(days), "seed": seed}


def _fmt(ts: datetime, sqlite: bool) -> Any:
    return ts.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds") \
        if sqlite else ts


def rows(spec: dict[str, Any], sqlite: bool):  # type: ignore[no-untyped-def]
    rnd = random.Random(spec["seed"])
    seq = 0
    ev, da, pr, na = [], [], [], []
    for d in spec["days"]:
        base = datetime(d.year, d.month, d.day, 8, 30, tzinfo=ZONE)
        for i in range(spec["staff"]):
            p = f"S{i:04d}"
            t = base + timedelta(minutes=rnd.randrange(0, 20))
            for _stay in range(8):
                enter = t
                leave = enter + timedelta(minutes=50 + rnd.randrange(0, 10))
                for direction, ts in (("in", enter), ("out", leave)):
                    seq += 1
                    data = {"door": "room", "direction": direction, "granted": True,
                            "person_id": p}
                    ev.append(("gw1", seq, "door.access", _fmt(ts, sqlite), _fmt(ts, sqlite),
                               "b1", "synced", p, "room", json.dumps(data), "0" * 64,
                               hashlib.sha256(str(seq).encode()).hexdigest(), "s" * 86, True))
                    da.append(("gw1", seq, _fmt(ts, sqlite), "room", direction, True, p))
                pr.append((p, "room", _fmt(enter, sqlite), _fmt(leave, sqlite), f"gw1:{seq - 1}",
                           f"gw1:{seq}"))
                at = enter + timedelta(minutes=5 + rnd.randrange(0, 40))
                if rnd.random() < 0.001:
                    at = leave + timedelta(minutes=10)  # planted: after leaving
                key = hashlib.sha256(f"{p}{seq}".encode()).hexdigest()
                na.append((key, "bench", 0, len(na) + 1, str(seq), "org", _fmt(at, sqlite), "個人情報",  # noqa: E501
                           "マイナンバー閲覧", "年末調整", f"op-{p}", "閲覧", f"T-{p}", "access", True,  # noqa: E501
                           p, f"pc-{p}", "[]"))
                t = leave + timedelta(minutes=rnd.randrange(1, 5))
            if len(ev) >= CHUNK:
                yield ev, da, pr, na
                ev, da, pr, na = [], [], [], []
    bk = []
    first, last = spec["days"][0], spec["days"][-1]
    nights = [first + timedelta(days=i) for i in range((last - first).days + 2)]
    for n, d in enumerate(nights, start=1):  # the nightly backup, so none is "missing"
        ts = datetime(d.year, d.month, d.day, 2, 0, tzinfo=ZONE)
        bk.append(("bk1", n, "backup.snapshot", _fmt(ts, sqlite), _fmt(ts, sqlite), "b1",
                   "synced", None, None, json.dumps({"result": "ok", "snapshot_id": str(n)}),
                   "0" * 64, hashlib.sha256(f"bk{n}".encode()).hexdigest(), "s" * 86, True))
    yield ev + bk, da, pr, na


INSERTS = {
    "events": "node, seq, kind, ts, received_at, boot, clock, person_id, door, data, prev, hash, "
              "sig, chain_ok",
    "door_access": "node, seq, ts, door, direction, granted, person_id",
    "presence": "person_id, door, entered_at, left_at, enter_ref, leave_ref",
    "number_access": "row_key, source, batch_id, line, no, office, ts, screen, action, purpose, "
                     "operator, result, terminal, category, ok, person_id, host, redacted_fields",
}


def load(engine: Engine, spec: dict[str, Any]) -> tuple[int, int]:
    sqlite = engine.dialect.name == "sqlite"
    raw = engine.raw_connection()
    n_ev = n_na = 0
    try:
        cur = raw.cursor()
        for chunk in rows(spec, sqlite):
            for table, batch in zip(INSERTS, chunk, strict=True):
                cols = INSERTS[table]
                if sqlite:
                    marks = ", ".join("?" * len(cols.split(",")))
                    cur.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", batch)  # noqa: S608
                else:
                    with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as cp:
                        for r in batch:
                            cp.write_row(r)
            n_ev += len(chunk[0])
            n_na += len(chunk[3])
        first, last = spec["days"][0], spec["days"][-1]
        n_bk = (last - first).days + 2
        n_ev -= n_bk
        for name, n in (("gw1", n_ev), ("bk1", n_bk)):
            cur.execute("INSERT INTO nodes (name, site, public_key, key_status, first_seen_at, "  # noqa: S608
                        "contiguous_seq, max_seq, events_stored, state, health) VALUES "
                        f"('{name}', 'site1', NULL, 'approved', '2025-01-01 00:00:00.000000', "
                        f"{n}, {n}, {n}, 'unknown', '{{}}')")
        raw.commit()
    finally:
        raw.close()
    if not sqlite:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    else:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    return n_ev, n_na


def anchor(engine: Engine) -> float:
    t0 = time.perf_counter()
    with engine.connect() as conn:
        conn.execute(text("SELECT count(*) FROM (SELECT row_key, ts, person_id FROM number_access "
                          "ORDER BY person_id, ts) q")).scalar()
        conn.execute(text("SELECT count(*) FROM (SELECT person_id, entered_at, left_at FROM "
                          "presence ORDER BY person_id, entered_at) q")).scalar()
    return time.perf_counter() - t0


def full(engine: Engine, spec: dict[str, Any]) -> tuple[float, int, int]:
    sm = make_sessionmaker(engine)
    since = datetime.combine(spec["days"][0], datetime.min.time(), ZONE)
    until = datetime.combine(spec["days"][-1] + timedelta(days=1), datetime.min.time(), ZONE)
    now = until + timedelta(days=1)
    with sm() as s:
        t0 = time.perf_counter()
        res = rerun(s, since, until, now)
        s.commit()
        took = time.perf_counter() - t0
    return took, res.rows, len(res.findings)


def point_query_anchor(engine: Engine, spec: dict[str, Any], n: int) -> list[float]:
    """The floor of any per-event work on this machine now: one indexed point query, timed."""
    rnd = random.Random(9)
    lat = []
    with engine.connect() as conn:
        for _ in range(n):
            p = f"S{rnd.randrange(spec['staff']):04d}"
            t0 = time.perf_counter()
            conn.execute(text("SELECT entered_at, left_at FROM presence WHERE person_id = :p "
                              "ORDER BY entered_at DESC LIMIT 1"), {"p": p}).all()
            lat.append((time.perf_counter() - t0) * 1000)
    return lat


def incremental(engine: Engine, spec: dict[str, Any], n: int) -> list[float]:
    """Per new row: insert it, then time Correlator.on_rows([row]) (queries + persist)."""
    sm = make_sessionmaker(engine)
    c = Correlator()
    rnd = random.Random(5)
    lat = []
    days = spec["days"]
    with sm() as s:
        for i in range(n):
            d = days[rnd.randrange(len(days))]
            p = f"S{rnd.randrange(spec['staff']):04d}"
            ts = datetime(d.year, d.month, d.day, 8 + rnd.randrange(0, 12), rnd.randrange(60),
                          tzinfo=ZONE).astimezone(UTC)
            row = NumberAccess(row_key=uuid.uuid4().hex * 2, source="inc", line=i, no=str(i),
                               office="org", ts=ts, screen="個人情報", action="マイナンバー閲覧",
                               purpose="年末調整", operator=f"op-{p}", result="閲覧",
                               terminal=f"T-{p}", category="access" if i % 4 else "login",
                               ok=True, person_id=p, host=f"pc-{p}", redacted_fields=[])
            s.add(row)
            s.flush()
            t0 = time.perf_counter()
            c.on_rows(s, [row], datetime.now(UTC))
            lat.append((time.perf_counter() - t0) * 1000)
            if i % 50 == 0:
                s.commit()
        s.rollback()
    return lat


def pg_engine() -> tuple[Engine, str] | None:
    url = os.environ.get("SECROOM_TEST_PG_URL", "")
    if not url:
        return None
    schema = f"bench_{os.getpid()}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    sep = "&" if "?" in url else "?"
    return make_engine(f"{url}{sep}options=-csearch_path%3D{schema}"), schema


def drop_pg(schema: str) -> None:
    admin = make_engine(os.environ["SECROOM_TEST_PG_URL"])
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="1/20th of the data")
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--incremental", type=int, default=1000, help="rows timed one by one")
    args = ap.parse_args()
    staff = 25 if args.quick else 500
    spec = generate(staff, 250)
    result: dict[str, Any] = {"quick": args.quick,
                              "load_start": [round(x, 2) for x in os.getloadavg()]}
    table = []
    with tempfile.TemporaryDirectory() as tmp:
        eng = make_engine(f"sqlite:///{Path(tmp) / 'bench.sqlite3'}")
        Base.metadata.create_all(eng)
        t0 = time.perf_counter()
        n_ev, n_na = load(eng, spec)
        table.append(("sqlite load", time.perf_counter() - t0, ""))
        result["door_events"], result["number_access_rows"] = n_ev, n_na
        result["sqlite_anchor_scan_s"] = round(anchor(eng), 3)
        took, nrows, nfind = full(eng, spec)
        assert nrows == n_na, (nrows, n_na)
        result["sqlite_full_s"] = round(took, 3)
        result["sqlite_findings"] = nfind
        table += [("sqlite anchor scan", result["sqlite_anchor_scan_s"], ""),
                  ("sqlite full re-run", took, f"{nrows} rows, {nfind} findings")]
        floor = point_query_anchor(eng, spec, 300)
        result["anchor_point_query_p99_ms"] = round(statistics.quantiles(floor, n=100)[98], 3)
        table.append(("sqlite point query p99 ms", result["anchor_point_query_p99_ms"], "anchor"))
        lat = incremental(eng, spec, args.incremental if not args.quick else 300)
        p99 = statistics.quantiles(lat, n=100)[98]
        result["incremental_p99_ms"] = round(p99, 3)
        result["incremental_p50_ms"] = round(statistics.median(lat), 3)
        table.append(("sqlite incremental p50/p99 ms",
                      result["incremental_p50_ms"], f"p99 {p99:.2f} ms over {len(lat)}"))
        eng.dispose()
    pg = None if args.no_postgres else pg_engine()
    if pg is None:
        result["postgres_full_s"] = None
    else:
        eng, schema = pg
        try:
            Base.metadata.create_all(eng)
            t0 = time.perf_counter()
            load(eng, spec)
            table.append(("postgres load", time.perf_counter() - t0, ""))
            result["postgres_anchor_scan_s"] = round(anchor(eng), 3)
            took, nrows, nfind = full(eng, spec)
            result["postgres_full_s"] = round(took, 3)
            result["postgres_findings"] = nfind
            table += [("postgres anchor scan", result["postgres_anchor_scan_s"], ""),
                      ("postgres full re-run", took, f"{nrows} rows, {nfind} findings")]
            lat = incremental(eng, spec, 300)
            result["postgres_incremental_p99_ms"] = round(statistics.quantiles(lat, n=100)[98], 3)
            table.append(("postgres incremental p99 ms", result["postgres_incremental_p99_ms"],
                          ""))
        finally:
            eng.dispose()
            drop_pg(schema)
    result["load_end"] = [round(x, 2) for x in os.getloadavg()]  # 1, 5, 15 min: shared machine
    print(f"{'measure':32} {'value':>10}  note")
    for name, value, note in table:
        print(f"{name:32} {value:10.3f}  {note}")
    print("RESULT " + json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
