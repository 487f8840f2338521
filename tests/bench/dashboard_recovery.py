"""Benchmark: the dashboard's nightly database backup and `secroom recover`, beside restic.

    .venv/bin/python tests/bench/dashboard_recovery.py [--events N] [--quick]

Builds a dashboard database at the current schema (SQLite) holding N signed-event rows
(default 200,000: a busy room's half year) with their door-access projections and an audit chain,
then times, in the same run and on the same copy of the database:

* night 1 and night 2 (after a day's worth of new events, 1 %): `secroom dashboard backup`
  (the consistent copy, the sealed bundle, the snapshot) and the bytes it added to the
  repository; the anchor: `restic backup` of a `sqlite3 .backup` copy of the same database
  (the copy's time included), and the bytes restic added;
* `secroom recover` onto a fresh folder (restore, database, migrations, secrets); the anchor:
  `restic restore` of its latest snapshot.

Wall and CPU seconds (user + system of the children; for restic also the copy made here) are
both reported: on a shared machine the wall time swings with the neighbours. Prints a table;
the last line is `RESULT {json}`.
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


CPU = {"s": 0.0}  # CPU seconds of the children run since the last reset


def run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    """Wall seconds and stdout of a child; its CPU seconds (user + system) are added to CPU
    (on a shared machine the wall time swings with the neighbours, the CPU time much less)."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        took = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    CPU["s"] += usage.ru_utime + usage.ru_stime
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:5]} failed: {stderr[-2000:]}")
    return took, stdout


def cpu_since(mark: float) -> float:
    return CPU["s"] - mark


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
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

        def restic_night() -> tuple[float, int, float]:
            before = size(work / "restic")
            t0, c0, self0 = time.perf_counter(), CPU["s"], time.process_time()
            copy.unlink(missing_ok=True)
            src = sqlite3.connect(data / "dashboard.sqlite3")
            dst = sqlite3.connect(copy)
            src.backup(dst)  # the same consistent copy, made here (its CPU counted too)
            dst.close()
            src.close()
            run([RESTIC, "backup", "--quiet", str(copy.parent)], env)
            cpu = cpu_since(c0) + time.process_time() - self0
            return time.perf_counter() - t0, size(work / "restic") - before, cpu

        nights = []
        for night in (1, 2):
            if night == 2:
                fill(url, events + 1, max(1, events // 100), rng)
            before = size(work / "repo") if (work / "repo").exists() else 0
            c0 = CPU["s"]
            took, _ = run([*SECROOM, "dashboard", "backup", "--config", str(config)])
            cpu = cpu_since(c0)
            added = size(work / "repo") - before
            nights.append((took, added, cpu, *restic_night()))
        shutil.rmtree(data)
        c0 = CPU["s"]
        t_rec, out = run([*SECROOM, "recover", "--repo", str(work / "repo"), "--key",
                          str(ops / "backup.key"), "--passphrase-file", str(ops / "pass"),
                          "--config-out", str(work / "new" / "dashboard.toml"),
                          "--data-dir", str(work / "new" / "data")])
        rec_cpu = cpu_since(c0)
        c0 = CPU["s"]
        r_rest, _ = run([RESTIC, "restore", "latest", "--target", str(work / "restic-out")],
                        env)
        r_rest_cpu = cpu_since(c0)
        mb = 1 << 20
        rows = [("database", f"{db_bytes / mb:.1f} MB", f"{events} events")]
        for i, name in enumerate(("night 1 backup", "night 2 backup (+1 %)")):
            took, added, cpu, r_took, r_added, r_cpu = nights[i]
            rows.append((name, f"{took:.2f} s ({cpu:.1f} s CPU), +{added / mb:.2f} MB",
                         f"restic {r_took:.2f} s ({r_cpu:.1f} s CPU), +{r_added / mb:.2f} MB"))
        rows.append(("recover", f"{t_rec:.2f} s ({rec_cpu:.1f} s CPU)",
                     f"restic restore {r_rest:.2f} s ({r_rest_cpu:.1f} s CPU)"))
        for name, ours, anchor in rows:
            print(f"{name:24} {ours:40} {anchor}")
        print(out.strip().splitlines()[0])
        n1, n2 = nights
        result = {
            "events": events, "db_mb": round(db_bytes / mb, 1),
            "backup_s": round(n1[0], 2), "backup_cpu_s": round(n1[2], 2),
            "backup_added_mb": round(n1[1] / mb, 2),
            "incr_s": round(n2[0], 2), "incr_cpu_s": round(n2[2], 2),
            "incr_added_mb": round(n2[1] / mb, 2),
            "recover_s": round(t_rec, 2), "recover_cpu_s": round(rec_cpu, 2),
            "restic_backup_s": round(n1[3], 2), "restic_backup_cpu_s": round(n1[5], 2),
            "restic_added_mb": round(n1[4] / mb, 2),
            "restic_incr_s": round(n2[3], 2), "restic_incr_cpu_s": round(n2[5], 2),
            "restic_incr_added_mb": round(n2[4] / mb, 2),
            "restic_restore_s": round(r_rest, 2), "restic_restore_cpu_s": round(r_rest_cpu, 2)}
        print("RESULT " + json.dumps(result))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
