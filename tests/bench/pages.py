"""Benchmark: p95 latency of the overview, door log (filtered), presence, the review queue,
an item's evidence page and a person's day with 1,000,000 events stored (SQLite, and
PostgreSQL with --pg-url), through a real uvicorn over loopback.

Anchor: /health (no database, no template) measured in the same run. Target: <= 200 ms.
Usage: .venv/bin/python tests/bench/pages.py [--quick] [--events N] [--requests N]
       [--pg-url postgresql+psycopg://...]   (an empty database: it is migrated and filled)
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import uvicorn
from sqlalchemy import insert, select

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from controller.envelope import now_utc  # noqa: E402
from dashboard.app import create_app  # noqa: E402
from dashboard.auth.service import AuthService  # noqa: E402
from dashboard.db import make_engine, make_sessionmaker  # noqa: E402
from dashboard.migrate import upgrade  # noqa: E402
from dashboard.models import Anomaly, DoorAccess, Person, Presence, StoredEvent  # noqa: E402
from dashboard.models.correlation import Finding  # noqa: E402
from dashboard.models.numlog import NumberAccess  # noqa: E402
from dashboard.settings import DashboardSettings  # noqa: E402

PASSWORD = "benchmark password 1"  # noqa: S105 - a throwaway user in a temp database
DOORS = ("server-room", "rack", "vault")
PEOPLE = 300
BATCH = 20_000


def populate(sm, events: int, now: datetime, days: int = 365) -> None:  # type: ignore[no-untyped-def]
    """``events`` door.access events over ``days`` (with their projections), in bulk."""
    rng = random.Random(7)
    start = now - timedelta(days=days)
    step = (now - start) / events
    with sm.begin() as db:
        db.execute(insert(Person), [
            {"id": f"p{i:04d}", "name": f"社員 {i:04d}", "active": True, "operator_ids": [],
             "cups_users": [], "created_at": start} for i in range(PEOPLE)])
    open_stays: dict[tuple[str, str], datetime] = {}
    ev_rows: list[dict[str, object]] = []
    na_rows: list[dict[str, object]] = []
    da_rows: list[dict[str, object]] = []
    pr_rows: list[dict[str, object]] = []

    def flush() -> None:
        with sm.begin() as db:
            for model, rows in ((StoredEvent, ev_rows), (DoorAccess, da_rows),
                                (Presence, pr_rows), (NumberAccess, na_rows)):
                if rows:  # an empty executemany would insert one row of defaults
                    db.execute(insert(model), rows)
        ev_rows.clear()
        da_rows.clear()
        pr_rows.clear()
        na_rows.clear()

    for seq in range(1, events + 1):
        ts = start + step * seq
        person = f"p{rng.randrange(PEOPLE):04d}"
        door = DOORS[rng.randrange(3)]
        key = (person, door)
        direction = "out" if key in open_stays else "in"
        granted = rng.random() > 0.05
        reason = None if granted else "not_permitted"
        data = {"door": door, "direction": direction, "granted": granted, "reason": reason,
                "person_id": person, "uid": f"{seq:016X}", "reader": f"{door}-{direction}"}
        ev_rows.append({"node": "gw1", "seq": seq, "kind": "door.access", "ts": ts,
                        "received_at": ts, "boot": "b1", "clock": "synced",
                        "person_id": person, "door": door, "data": data, "prev": "0" * 64,
                        "hash": f"{seq:064x}", "sig": "s" * 86, "chain_ok": True})
        da_rows.append({"node": "gw1", "seq": seq, "ts": ts, "door": door,
                        "direction": direction, "granted": granted, "reason": reason,
                        "person_id": person, "uid": data["uid"], "reader": data["reader"]})
        if granted and direction == "in":
            open_stays[key] = ts
        elif granted:
            pr_rows.append({"person_id": person, "door": door,
                            "entered_at": open_stays.pop(key), "left_at": ts})
        if len(ev_rows) >= BATCH:
            flush()
        if granted and direction == "in" and seq % 10 == 0:  # a number access once inside
            na_rows.append({"row_key": f"{seq:064x}", "source": "bench", "line": seq,
                            "no": str(seq), "office": "株式会社 ベンチ", "ts": ts + step / 2,
                            "screen": "個人番号照会", "action": "閲覧", "purpose": "年末調整",
                            "operator": f"OP{person}", "result": "成功", "terminal": "",
                            "category": "access", "ok": True, "person_id": person,
                            "host": "pc-01", "redacted_fields": []})
        if len(ev_rows) >= BATCH:
            flush()
    pr_rows.extend({"person_id": p, "door": d, "entered_at": t, "left_at": None}
                   for (p, d), t in open_stays.items())
    flush()
    review_items(sm, now, start, rng)


KINDS = (("corr.access_not_in_room", "critical"), ("corr.usb_blocked", "warning"),
         ("corr.door_held_open", "warning"), ("corr.access_outside_hours", "warning"))


def review_items(sm, now: datetime, start: datetime, rng: random.Random,  # type: ignore[no-untyped-def]
                 count: int = 3000) -> None:
    """``count`` review items over the period (a quarter still open), each from a finding
    pointing at a stored number access, as the correlation leaves them."""
    with sm() as db:
        rows = db.execute(select(NumberAccess.row_key, NumberAccess.ts, NumberAccess.person_id)
                          .order_by(NumberAccess.id).limit(count)).all()
    items, findings = [], []
    for i, (row_key, ts, person) in enumerate(rows):
        kind, severity = KINDS[i % len(KINDS)]
        state = "open" if i % 4 == 0 else "acknowledged" if i % 4 == 1 else "resolved"
        key = f"{kind[5:]}:{row_key}"
        items.append({"kind": kind, "severity": severity, "node": None, "subject": key,
                      "detail": {}, "dedupe_key": f"{kind}:{key}", "count": 1, "state": state,
                      "first_seen_at": ts, "last_seen_at": ts, "at": ts, "person_id": person,
                      "place": "server-room" if "door" in kind else None,
                      "host": "pc-01" if "usb" in kind else None})
        findings.append({"dedupe_key": key, "rule": kind[5:], "severity": severity, "at": ts,
                         "person_id": person, "node": None, "subject": key,
                         "explanation_ja": "", "explanation_en": "",
                         "evidence": {"row": row_key, "ts": ts.isoformat()},
                         "found_at": ts, "withdrawn": False})
    with sm.begin() as db:
        ids = db.execute(insert(Anomaly).returning(Anomaly.id, Anomaly.dedupe_key), items).all()
        by_key = {k: i for i, k in ids}
        for f in findings:
            f["anomaly_id"] = by_key[f"corr.{f['rule']}:{f['dedupe_key']}"]
        db.execute(insert(Finding), findings)


def serve(app) -> tuple[uvicorn.Server, threading.Thread, str]:  # type: ignore[no-untyped-def]
    from tests.support import free_port, wait_until

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 20, "uvicorn")
    return server, thread, f"http://127.0.0.1:{port}"


def measure(client: httpx.Client, path: str, n: int, warmup: int = 5) -> dict[str, float]:
    for _ in range(warmup):
        client.get(path).raise_for_status()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = client.get(path)
        times.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
    times.sort()
    return {"p50": statistics.median(times), "p95": times[int(0.95 * (len(times) - 1))],
            "max": times[-1]}


def run(settings: DashboardSettings, events: int, n: int) -> tuple[dict[str, dict[str, float]],
                                                                 float]:
    upgrade(settings.database_url)
    sm = make_sessionmaker(make_engine(settings.database_url))
    now = now_utc()
    t0 = time.perf_counter()
    populate(sm, events, now)
    load_s = time.perf_counter() - t0
    auth = AuthService(settings, sm)
    with sm.begin() as db:
        auth.create_user(db, username="bench", role="admin", password=PASSWORD, now=now)
        item = db.scalar(select(Anomaly).where(Anomaly.kind == "corr.access_not_in_room")
                         .order_by(Anomaly.id.desc()))
        assert item is not None and item.at is not None and item.person_id
        item_id, person = item.id, item.person_id
        day = item.at.astimezone(settings.zone).date().isoformat()
    app = create_app(settings, sessionmaker=sm)
    server, thread, base = serve(app)
    try:
        with httpx.Client(base_url=base, timeout=30, follow_redirects=True) as client:
            page = client.get("/login").text
            token = re.search(r'name="csrf_token" value="([^"]+)"', page)
            assert token
            client.post("/login", data={"username": "bench", "password": PASSWORD,
                                        "csrf_token": token.group(1)}).raise_for_status()
            week_ago = (now - timedelta(days=7)).astimezone(settings.zone)
            door_log = ("/door-log?door=server-room&result=denied&start="
                        + week_ago.strftime("%Y-%m-%dT%H:%M"))
            results = {
                "health (anchor)": measure(client, "/health", n),
                "overview": measure(client, "/", n),
                "door log (filtered)": measure(client, door_log, n),
                "door log (person)": measure(client, "/door-log?person=p0042", n),
                "presence": measure(client, "/presence", n),
                "review queue": measure(client, "/review", n),
                "review queue (person)": measure(client, "/review?person=社員%200042&state=all",
                                                 n),
                "item evidence": measure(client, f"/review/{item_id}", n),
                "person day": measure(client, f"/people/{person}/timeline?day={day}", n),
            }
    finally:
        server.should_exit = True
        thread.join(10)
    return results, load_s


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="50,000 events, 30 requests per page")
    ap.add_argument("--events", type=int)
    ap.add_argument("--requests", type=int)
    ap.add_argument("--pg-url", help="also measure on this (empty) PostgreSQL database")
    args = ap.parse_args()
    events = args.events or (50_000 if args.quick else 1_000_000)
    n = args.requests or (30 if args.quick else 200)

    stores: dict[str, tuple[dict[str, dict[str, float]], float]] = {}
    with tempfile.TemporaryDirectory(prefix="secroom-bench-pages-") as tmp:
        stores["sqlite"] = run(DashboardSettings(data_dir=Path(tmp), site="bench"), events, n)
        if args.pg_url:
            stores["postgres"] = run(DashboardSettings(data_dir=Path(tmp) / "pg", site="bench",
                                                       database_url=args.pg_url), events, n)

    out: dict[str, object] = {"events_stored": events, "requests_per_page": n}
    for store, (results, load_s) in stores.items():
        print(f"[{store}] events stored: {events:,} (loaded in {load_s:.1f} s), "
              f"{n} requests per page")
        print(f"{'page':<24}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}")
        for name, r in results.items():
            print(f"{name:<24}{r['p50']:>10.1f}{r['p95']:>10.1f}{r['max']:>10.1f}")
        suffix = "" if store == "sqlite" else "_pg"
        p95 = {k: round(v["p95"], 1) for k, v in results.items()}
        out.update({
            f"overview_p95_ms{suffix}": p95["overview"],
            f"door_log_p95_ms{suffix}": p95["door log (filtered)"],
            f"presence_p95_ms{suffix}": p95["presence"],
            f"health_p95_ms{suffix}": p95["health (anchor)"],
            f"door_log_person_p95_ms{suffix}": p95["door log (person)"],
            f"queue_p95_ms{suffix}": max(p95["review queue"], p95["review queue (person)"]),
            f"evidence_p95_ms{suffix}": p95["item evidence"],
            f"person_day_p95_ms{suffix}": p95["person day"],
        })
    print("target: p95 <= 200 ms")
    print("RESULT " + json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
