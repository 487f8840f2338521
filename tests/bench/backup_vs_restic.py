"""Benchmark: secroom backup vs restic on the same generated vault, side by side.

    .venv/bin/python tests/bench/backup_vs_restic.py [--quick] [--keep DIR]

First backup, incremental and restore run --repeat times per tool (default 3, alternating
which tool goes first, medians reported): on a shared machine single runs swing by 2x.

Generates a vault (about 1 GB: 20,000 small compressible files, 300 incompressible 2 MB files,
four 50 MB semi-compressible dumps; --quick: about 50 MB), then for restic (/usr/bin/restic,
RESTIC_PASSWORD, a temp repository and cache) and secroom (python -m backup) times: first
backup, an incremental after changing about 1 % of the data, a full restore, verify (structure)
and verify with read-data; the repository size; and each tool's peak RSS (ru_maxrss of the
child from wait4). Prints a table; the last line is `RESULT {json}`.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
RESTIC = shutil.which("restic") or "/usr/bin/restic"
WORDS = (
    "mynumber", "employee", "株式会社", "山田", "太郎", "payroll", "2024", "tax", "insurance",
    "東京都", "address", "department", "salary", "bonus", "withholding", "源泉徴収", "dependents",
    "spouse", "bank", "account", "filing", "period", "status", "ok", "pending", "承認", "record",
    "id", "date", "amount", "yen",
)


def text_pool(rng: random.Random, size: int) -> bytes:
    out = bytearray()
    while len(out) < size:
        out += (",".join(rng.choice(WORDS) for _ in range(8)) + f",{rng.randrange(10**9)}\n"
                ).encode()
    return bytes(out[:size])


def generate(vault: Path, quick: bool, rng: random.Random) -> int:
    n_small, n_rand, n_dump, dump_mb = (1000, 15, 1, 10) if quick else (20000, 300, 4, 50)
    pool = text_pool(rng, 4 << 20)
    total = 0
    for i in range(n_small):
        d = vault / "records" / f"{i // 500:03d}"
        d.mkdir(parents=True, exist_ok=True)
        size = rng.randrange(1000, 20000)
        start = rng.randrange(0, len(pool) - size)
        data = f"record {i} {rng.random()}\n".encode() + pool[start:start + size]
        (d / f"社員_{i:05d}.csv").write_bytes(data)
        total += len(data)
    media = vault / "scans"
    media.mkdir()
    for i in range(n_rand):
        (media / f"scan_{i:04d}.jpg").write_bytes(rng.randbytes(2 << 20))
        total += 2 << 20
    dumps = vault / "dumps"
    dumps.mkdir()
    for i in range(n_dump):
        with open(dumps / f"db_{i}.dump", "wb") as fh:
            written = 0
            while written < dump_mb << 20:
                block = 64 << 10
                if rng.random() < 0.5:
                    s = rng.randrange(0, len(pool) - block)
                    fh.write(pool[s:s + block])
                else:
                    fh.write(rng.randbytes(block))
                written += block
            total += written
    return total


def change_one_percent(vault: Path, total: int, rng: random.Random, tag: int = 0) -> int:
    budget = total // 100
    changed = 0
    smalls = sorted((vault / "records").rglob("*.csv"))
    for p in rng.sample(smalls, max(1, len(smalls) // 100)):
        p.write_bytes(p.read_bytes() + f"edited {rng.random()}\n".encode())
        changed += p.stat().st_size
    for i in range(max(1, (budget - changed) // 3 // (2 << 20))):
        data = rng.randbytes(2 << 20)
        (vault / "scans" / f"new_{tag}_{i:03d}.jpg").write_bytes(data)
        changed += len(data)
    dump = sorted((vault / "dumps").iterdir())[0]
    with open(dump, "r+b") as fh:
        size = dump.stat().st_size
        while changed < budget:
            fh.seek(rng.randrange(0, size - (256 << 10)))
            fh.write(rng.randbytes(256 << 10))
            changed += 256 << 10
    return changed


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, float]:
    """(wall seconds, peak RSS MB, CPU seconds user+system of the child)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err.decode()[-2000:]}")
    return seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def same_tree(a: Path, b: Path) -> bool:
    cmp = filecmp.dircmp(a, b)
    if cmp.left_only or cmp.right_only or cmp.funny_files:
        return False
    _match, mismatch, errors = filecmp.cmpfiles(a, b, cmp.common_files, shallow=False)
    if mismatch or errors:
        return False
    return all(same_tree(a / d, b / d) for d in cmp.common_dirs)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--keep", type=Path, help="keep the work folder here")
    ap.add_argument("--seed", type=int, default=20261122)
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs of first backup, incremental and restore per tool (medians)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="bench-backup-", dir=args.keep))
    try:
        vault = work / "vault"
        t0 = time.perf_counter()
        total = generate(vault, args.quick, rng)
        print(f"vault: {total / 1e6:.0f} MB generated in {time.perf_counter() - t0:.1f}s")
        env_r = {**os.environ, "RESTIC_PASSWORD": "bench-password",
                 "RESTIC_REPOSITORY": str(work / "restic-repo"),
                 "RESTIC_CACHE_DIR": str(work / "restic-cache")}
        keys = work / "keys"
        pw = work / "pass"
        pw.write_text("bench-passphrase\n")
        cfg = work / "secroom.toml"
        cfg.write_text(
            "[backup]\n"
            f'repository = "{work / "secroom-repo"}"\n'
            f'vault_paths = ["{vault}"]\n'
            f'public_key_file = "{keys / "backup.pub"}"\n'
            f'dedup_key_file = "{work / "gw" / "dedup.key"}"\n'
            f'cache_dir = "{work / "gw" / "cache"}"\n')
        env_s = {**os.environ, "PYTHONPATH": str(ROOT)}
        sec = [PY, "-m", "backup"]
        keyargs = ["--key", str(keys / "backup.key"), "--passphrase-file", str(pw)]
        subprocess.run(sec + ["keygen", "--out", str(keys), "--passphrase-file", str(pw)],
                       env=env_s, check=True, stdout=subprocess.DEVNULL)
        subprocess.run([RESTIC, "init"], env=env_r, check=True, stdout=subprocess.DEVNULL)
        os.sync()
        r: dict[str, Any] = {}
        s: dict[str, Any] = {}
        rss_r: list[float] = []
        rss_s: list[float] = []

        def both(name: str, rcmd: list[str], scmd: list[str], *, repeat: int = 1,
                 before: Callable[[int], None] | None = None) -> None:
            """Run both tools ``repeat`` times, alternating which goes first; keep medians."""
            times: dict[str, list[tuple[float, float]]] = {"r": [], "s": []}
            for i in range(repeat):
                if before is not None:
                    before(i)
                order = [("s", scmd, env_s), ("r", [RESTIC, *rcmd], env_r)]
                for tool, cmd, env in order if i % 2 == 0 else order[::-1]:
                    # flush earlier writes (vault changes, the other tool's repository)
                    # first, so neither tool's fsyncs pay for someone else's dirty pages
                    os.sync()
                    wall, rss, cpu = timed(cmd, env)
                    times[tool].append((wall, cpu))
                    (rss_s if tool == "s" else rss_r).append(rss)
            for tool, out in (("r", r), ("s", s)):
                out[name] = round(statistics.median(w for w, _ in times[tool]), 3)
                out[name + "_cpu"] = round(statistics.median(c for _, c in times[tool]), 3)
                if repeat > 1:
                    out[name + "_runs"] = [round(w, 3) for w, _ in times[tool]]
            print(f"  {name:<18} restic {r[name]:7.2f}s ({r[name + '_cpu']:6.2f} cpu)   "
                  f"secroom {s[name]:7.2f}s ({s[name + '_cpu']:6.2f} cpu)"
                  + (f"   median of {repeat}" if repeat > 1 else ""))

        def fresh_repositories(i: int) -> None:
            if i == 0:
                return
            for d in ("restic-repo", "restic-cache", "secroom-repo", "gw"):
                shutil.rmtree(work / d, ignore_errors=True)
            subprocess.run([RESTIC, "init"], env=env_r, check=True, stdout=subprocess.DEVNULL)

        both("first", ["backup", "--host", "bench", str(vault)],
             sec + ["run", "--config", str(cfg)], repeat=args.repeat, before=fresh_repositories)
        changes: list[int] = []

        def change(i: int) -> None:
            changes.append(change_one_percent(vault, total, rng, tag=i))

        both("incremental", ["backup", "--host", "bench", str(vault)],
             sec + ["run", "--config", str(cfg)], repeat=args.repeat, before=change)
        changed = int(statistics.mean(changes))
        print(f"  (each incremental after changing {changed / 1e6:.1f} MB, "
              f"{100 * changed / total:.2f} % of the vault)")

        def clear_targets(_i: int) -> None:
            for d in ("restic-out", "secroom-out"):
                shutil.rmtree(work / d, ignore_errors=True)

        both("restore", ["restore", "latest", "--target", str(work / "restic-out")],
             sec + ["restore", "latest", "--target", str(work / "secroom-out"),
                    "--config", str(cfg), *keyargs], repeat=args.repeat, before=clear_targets)
        both("verify", ["check"], sec + ["verify", "--config", str(cfg)])
        both("verify_read_data", ["check", "--read-data"],
             sec + ["verify", "--config", str(cfg), "--read-data", *keyargs])
        restored = work / "secroom-out" / str(vault).lstrip("/")
        identical = same_tree(vault, restored)
        r_size, s_size = du(work / "restic-repo"), du(work / "secroom-repo")
        r["repo_bytes"], s["repo_bytes"] = r_size, s_size
        r["peak_rss_mb"], s["peak_rss_mb"] = round(max(rss_r), 1), round(max(rss_s), 1)
        print(f"  {'peak RSS':<18} restic {r['peak_rss_mb']:7.1f} MB{'':>23}"
              f"secroom {s['peak_rss_mb']:7.1f} MB")
        print(f"  {'repository':<18} restic {r_size / 1e6:7.1f} MB{'':>23}"
              f"secroom {s_size / 1e6:7.1f} MB")
        load = os.getloadavg()[0]
        print(f"  load average {load:.1f} on {os.cpu_count()} CPUs (wall times are shared-machine "
              "figures; the cpu columns are each tool's own user+system seconds)")
        print(f"  secroom restore byte-identical to the vault: {identical}")
        result = {
            "first_ratio": round(s["first"] / r["first"], 3),
            "incremental_ratio": round(s["incremental"] / r["incremental"], 3),
            "restore_ratio": round(s["restore"] / r["restore"], 3),
            "verify_ratio": round(s["verify"] / r["verify"], 3),
            "size_ratio": round(s_size / r_size, 4),
            "peak_rss_mb": s["peak_rss_mb"],
            "vault_bytes": total, "changed_bytes": changed, "quick": args.quick,
            "restore_identical": identical, "load_average": round(os.getloadavg()[0], 2),
            "restic": r, "secroom": s,
        }
        print("RESULT " + json.dumps(result, sort_keys=True))
        return 0 if identical else 1
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
