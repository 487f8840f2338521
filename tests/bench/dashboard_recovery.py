"""Benchmark: the dashboard's nightly database backup and `secroom recover`, beside restic.

    .venv/bin/python tests/bench/dashboard_recovery.py [--events N] [--quick]

Builds a dashboard database at the current schema (SQLite) holding N signed-event rows
(default 400,000: a busy room's year) with their door-access projections and an audit chain,
then times, in the same run and on the same copy of the database:

* night 1 and night 2 (after a day's worth of new events, 1 %): `secroom dashboard backup`
  (the consistent copy, the sealed bundle, the snapshot) and the bytes it added to the
  repository; the anchor: `restic backup` of a `sqlite3 .backup` copy of the same database
  (the copy's time included), and the bytes restic added;
* `secroom recover` onto a fresh folder (restore, database, migrations, secrets); the anchor:
  `restic restore` of its latest snapshot.

Prints a table; the last line is `RESULT {json}`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
SECROOM = [sys.executable, "-m", "controller.cli"]
RESTIC = shutil.which("restic") or "/usr/bin/restic"
PASSPHRASE = "bench passphrase"  # noqa: S105 - a throwaway key


def fill(url: str, start: int, count: int, rng: random.Random) -> None:
    from sqlalchemy import insert

    from dashboard.audit import append_audit
    from dashboard.db import make_engine, make_sessionmaker
    from dashboard.models.events import DoorAccess, StoredEvent

    engine = make_engine(url)
    t0 = datetime(2026, 1, 5, tzinfo=UTC)
    people = [f"p{i:03d}" for i in range(60)]
    with engine.begin() as conn:
        for base in range(start, start + count, 5000):
            events, access = [], []
            for seq in range(base, min(base + 5000, start + count)):
                ts = t0 + timedelta(seconds=seq * 79)
                who = rng.choice(people)
                granted = rng.random() > 0.03
                data = {"door": "server-room", "reader": "server-room-in", "direction":
                        rng.choice(("in", "out")), "granted": granted, "person_id": who,
                        "reason": None if granted else "outside_schedule",
                        "card": f"{rng.getrandbits(32):08X}", "policy_version": 41}
                events.append({"node": "gw1", "seq": seq, "kind": "door.access", "ts": ts,
                               "received_at": ts, "boot": "b1", "clock": "synced",
                               "person_id": who, "door": "server-room", "data": data,
                               "prev": f"{rng.getrandbits(256):064x}",
                               "hash": f"{rng.getrandbits(256):064x}",
                               "sig": f"{rng.getrandbits(512):0128x}"[:86], "chain_ok": True})
                access.append({"node": "gw1", "seq": seq, "ts": ts, "door": "server-room",
                               "direction": data["direction"], "granted": granted,
                               "person_id": who, "uid": data["card"],
                               "reader": "server-room-in"})
            conn.execute(insert(StoredEvent), events)
            conn.execute(insert(DoorAccess), access)
    sm = make_sessionmaker(engine)
    with sm.begin() as db:
        for i in range(count // 200):
            append_audit(db, actor="admin", action="person.update", target_type="person",
                         target_id=rng.choice(people), before={"n": i}, after={"n": i + 1},
                         now=datetime.now(UTC))
    engine.dispose()


def run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    took = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{cmd[:5]} failed: {done.stderr[-2000:]}")
    return took, done.stdout


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=400_000)
    ap.add_argument("--quick", action="store_true", help="20,000 events")
    args = ap.parse_args()
    events = 20_000 if args.quick else args.events
    rng = random.Random(7)
    from backup import crypto
    from controller.keys import generate
    from dashboard.migrate import upgrade

    work = Path(tempfile.mkdtemp(prefix="secroom-bench-dr-"))
    try:
        ops, data = work / "ops", work / "data"
        ops.mkdir()
        data.mkdir()
        key = crypto.generate_keypair()
        (ops / "backup.key").write_bytes(crypto.private_key_file(key, PASSPHRASE.encode()))
        (ops / "backup.pub").write_text(crypto.public_key_text(key.public))
        (ops / "pass").write_text(PASSPHRASE + "\n")
        url = f"sqlite:///{data / 'dashboard.sqlite3'}"
        config = work / "dashboard.toml"
        config.write_text(f'[dashboard]\ndata_dir = "{data}"\nsite = "s1"\n'
                          f'[dashboard.backup]\nrepository = "{work / "repo"}"\n'
                          f'public_key_file = "{ops / "backup.pub"}"\n'
                          f'dedup_key_file = "{work / "dedup.key"}"\n')
        upgrade(url)
        generate(data / "policy.key")
        fill(url, 1, events, rng)
        db_bytes = (data / "dashboard.sqlite3").stat().st_size
        env = {**os.environ, "RESTIC_PASSWORD": PASSPHRASE, "RESTIC_REPOSITORY":
               str(work / "restic"), "RESTIC_CACHE_DIR": str(work / "restic-cache")}
        run([RESTIC, "init"], env)
        copy = work / "restic-src" / "dashboard.sqlite3"
        copy.parent.mkdir()

        def restic_night() -> tuple[float, int]:
            before = size(work / "restic")
            t0 = time.perf_counter()
            copy.unlink(missing_ok=True)
            src = sqlite3.connect(data / "dashboard.sqlite3")
            dst = sqlite3.connect(copy)
            src.backup(dst)
            dst.close()
            src.close()
            run([RESTIC, "backup", "--quiet", str(copy.parent)], env)
            return time.perf_counter() - t0, size(work / "restic") - before

        nights = []
        for night in (1, 2):
            if night == 2:
                fill(url, events + 1, max(1, events // 100), rng)
            before = size(work / "repo") if (work / "repo").exists() else 0
            took, _ = run([*SECROOM, "dashboard", "backup", "--config", str(config)])
            added = size(work / "repo") - before
            r_took, r_added = restic_night()
            nights.append((took, added, r_took, r_added))
        shutil.rmtree(data)
        t_rec, out = run([*SECROOM, "recover", "--repo", str(work / "repo"), "--key",
                          str(ops / "backup.key"), "--passphrase-file", str(ops / "pass"),
                          "--config-out", str(work / "new" / "dashboard.toml"),
                          "--data-dir", str(work / "new" / "data")])
        r_rest, _ = run([RESTIC, "restore", "latest", "--target", str(work / "restic-out")],
                        env)
        mb = 1 << 20
        rows = [("database", f"{db_bytes / mb:.1f} MB", f"{events} events"),
                ("night 1 backup", f"{nights[0][0]:.2f} s, +{nights[0][1] / mb:.1f} MB",
                 f"restic {nights[0][2]:.2f} s, +{nights[0][3] / mb:.1f} MB"),
                ("night 2 backup (+1 %)", f"{nights[1][0]:.2f} s, +{nights[1][1] / mb:.2f} MB",
                 f"restic {nights[1][2]:.2f} s, +{nights[1][3] / mb:.2f} MB"),
                ("recover", f"{t_rec:.2f} s", f"restic restore {r_rest:.2f} s")]
        for name, ours, anchor in rows:
            print(f"{name:24} {ours:28} {anchor}")
        print(out.strip().splitlines()[0])
        result = {
            "events": events, "db_mb": round(db_bytes / mb, 1),
            "backup_s": round(nights[0][0], 2), "backup_added_mb": round(nights[0][1] / mb, 2),
            "incr_s": round(nights[1][0], 2), "incr_added_mb": round(nights[1][1] / mb, 2),
            "recover_s": round(t_rec, 2),
            "restic_backup_s": round(nights[0][2], 2),
            "restic_added_mb": round(nights[0][3] / mb, 2),
            "restic_incr_s": round(nights[1][2], 2),
            "restic_incr_added_mb": round(nights[1][3] / mb, 2),
            "restic_restore_s": round(r_rest, 2)}
        print("RESULT " + json.dumps(result))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
