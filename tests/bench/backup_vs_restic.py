"""Benchmark: secroom backup vs restic on the same generated vault, side by side.

    .venv/bin/python tests/bench/backup_vs_restic.py [--quick] [--keep DIR]

First backup, incremental and restore run --repeat times per tool (default 3, alternating
which tool goes first, medians reported): on a shared machine single runs swing by 2x.

Generates a vault (about 1 GB: 20,000 small compressible files, 300 incompressible 2 MB files,
four 50 MB semi-compressible dumps; --quick: about 50 MB), then for restic (/usr/bin/restic,
RESTIC_PASSWORD, a temp repository and cache) and secroom (python -m backup) times: first
backup, an incremental after changing about 1 % of the data, a full restore, verify (structure)
and verify with read-data; the repository size; and each tool's peak RSS (ru_maxrss of the
child from wait4).

Then a second vault of many small files (--small-files, default 60,000, all under 8 KiB, about
1 % sparse and 1 % hard links; --quick: 5,000), generated into the same temp folder: first
backup, an incremental after touching 1 % of the files, and a restore, once per tool in fresh
repositories; small_files_peak_rss_mb is the peak RSS of secroom's backup runs on it (restic's
in small_files_restic_peak_rss_mb), the restore's peak is reported on its own. ru_maxrss of
a process tree is its largest member's peak; secroom's small-chunk worker is a second process,
so small_files_tree_peak_rss_mb is the peak of the summed Pss of all the tool's processes
(sampled every 20 ms; shared library pages counted once).
Prints a table; the last line is `RESULT {json}`.
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
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
RESTIC = shutil.which("restic") or "/usr/bin/restic"
EXTRA_CONFIG = ""  # more [backup] settings for secroom's runs (--small-file-workers)
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


def generate_small(vault: Path, n: int, rng: random.Random) -> int:
    """``n`` files under 8 KiB in folders of 500 (two levels): about 1 in 100 sparse (its first
    4 KiB a hole), about 1 in 100 a hard link to an earlier file, a few empty."""
    pool = text_pool(rng, 1 << 20)
    total = 0
    made: list[Path] = []
    for i in range(n):
        d = vault / f"{i // 10000:02d}" / f"{i // 500 % 20:02d}"
        if i % 500 == 0:
            d.mkdir(parents=True, exist_ok=True)
        p = d / f"申告_{i:06d}.txt"
        kind = rng.random()
        if kind < 0.01 and made:
            os.link(rng.choice(made), p)
            continue
        if kind < 0.02:  # sparse: a hole, then data, still under 8 KiB
            tail = rng.randrange(100, 3000)
            with open(p, "wb") as fh:
                fh.seek(4096)
                fh.write(rng.randbytes(tail))
            total += tail
        else:
            size = 0 if kind < 0.021 else rng.randrange(100, 8000)
            start = rng.randrange(0, len(pool) - size)
            p.write_bytes(f"{i} {rng.random()}\n".encode()[:size] + pool[start:start + size][
                :max(0, size - 20)])
            total += p.stat().st_size
        made.append(p)
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


#: the peak, over samples every 20 ms, of the summed proportional set size (Pss) of the tool's
#: processes: ru_maxrss of a process tree is only its largest member's peak, and adding up
#: each member's peak RSS would count the shared libraries they map once per process
TREE_PEAKS: list[float] = []


def _tree_peaks(pid: int, stop: threading.Event) -> None:
    peak = 0
    while True:
        todo, seen, total = [pid], set(), 0
        while todo:
            p = todo.pop()
            seen.add(p)
            try:
                rollup = Path(f"/proc/{p}/smaps_rollup").read_text()
                kids = Path(f"/proc/{p}/task/{p}/children").read_text().split()
            except OSError:
                continue
            for line in rollup.splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
            todo += [int(k) for k in kids if int(k) not in seen]
        peak = max(peak, total)
        if stop.wait(0.02):
            break
    TREE_PEAKS.append(peak / 1024)


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, float]:
    """(wall seconds, peak RSS MB, CPU seconds user+system of the child and its children);
    the tree's summed peak goes to TREE_PEAKS."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stop = threading.Event()
    sampler = threading.Thread(target=_tree_peaks, args=(proc.pid, stop))
    sampler.start()
    assert proc.stderr is not None
    err = proc.stderr.read()
    stop.set()  # (stderr closes when the tool exits; the last sample is taken before reaping)
    sampler.join()
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


def small_files(work: Path, n: int, rng: random.Random, both: Callable[..., None],
                sec: list[str], keyargs: list[str], env_r: dict[str, str],
                keys: Path) -> dict[str, Any]:
    """The many-small-files vault: first backup, incremental, restore; fresh repositories."""
    small = work / "small"
    t0 = time.perf_counter()
    total = generate_small(small, n, rng)
    print(f"small-files vault: {n} files, {total / 1e6:.0f} MB generated in "
          f"{time.perf_counter() - t0:.1f}s")
    renv = {**env_r, "RESTIC_REPOSITORY": str(work / "small-restic"),
            "RESTIC_CACHE_DIR": str(work / "small-restic-cache")}
    cfg = work / "small.toml"
    cfg.write_text(
        "[backup]\n"
        f'repository = "{work / "small-secroom"}"\n'
        f'vault_paths = ["{small}"]\n'
        f'public_key_file = "{keys / "backup.pub"}"\n'
        f'dedup_key_file = "{work / "small-gw" / "dedup.key"}"\n'
        f'cache_dir = "{work / "small-gw" / "cache"}"\n' + EXTRA_CONFIG)
    subprocess.run([RESTIC, "init"], env=renv, check=True, stdout=subprocess.DEVNULL)
    r: dict[str, Any] = {}
    s: dict[str, Any] = {}
    backup_r: list[float] = []
    backup_s: list[float] = []
    restore_r: list[float] = []
    restore_s: list[float] = []
    run = sec + ["run", "--config", str(cfg)]
    rbackup = ["backup", "--host", "bench", str(small)]
    both("first", rbackup, run, into=(r, s, backup_r, backup_s), renv=renv)
    files = sorted(p for p in small.rglob("*") if p.is_file())

    def touch(_i: int) -> None:
        for p in rng.sample(files, max(1, len(files) // 100)):
            p.write_bytes(rng.randbytes(rng.randrange(100, 8000)))

    both("incremental", rbackup, run, before=touch, into=(r, s, backup_r, backup_s), renv=renv)
    both("restore", ["restore", "latest", "--target", str(work / "small-restic-out")],
         sec + ["restore", "latest", "--target", str(work / "small-secroom-out"),
                "--config", str(cfg), *keyargs], into=(r, s, restore_r, restore_s), renv=renv)
    identical = same_tree(small, work / "small-secroom-out" / str(small).lstrip("/"))
    r_size, s_size = du(work / "small-restic"), du(work / "small-secroom")
    out = {
        "small_files": n, "small_files_bytes": total,
        "small_files_peak_rss_mb": round(max(backup_s), 1),
        "small_files_restic_peak_rss_mb": round(max(backup_r), 1),
        # secroom's small-chunk worker is a second process: the peak of both together (Pss)
        "small_files_tree_peak_rss_mb": max(s["first_tree_peak_rss_mb"],
                                            s["incremental_tree_peak_rss_mb"]),
        "small_files_restic_tree_peak_rss_mb": max(r["first_tree_peak_rss_mb"],
                                                   r["incremental_tree_peak_rss_mb"]),
        "small_files_restore_peak_rss_mb": round(max(restore_s), 1),
        "small_files_restic_restore_peak_rss_mb": round(max(restore_r), 1),
        "small_files_first_ratio": round(s["first"] / r["first"], 3),
        "small_files_incremental_ratio": round(s["incremental"] / r["incremental"], 3),
        "small_files_restore_ratio": round(s["restore"] / r["restore"], 3),
        "small_files_size_ratio": round(s_size / r_size, 4),
        "small_files_restore_identical": identical,
        "small_files_restic": r, "small_files_secroom": s,
    }
    print(f"  small files: backup peak RSS restic {out['small_files_restic_peak_rss_mb']} MB, "
          f"secroom {out['small_files_peak_rss_mb']} MB; restore restic "
          f"{out['small_files_restic_restore_peak_rss_mb']} MB, secroom "
          f"{out['small_files_restore_peak_rss_mb']} MB; repository restic "
          f"{r_size / 1e6:.1f} MB, secroom {s_size / 1e6:.1f} MB; restore identical: {identical}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--keep", type=Path, help="keep the work folder here")
    ap.add_argument("--seed", type=int, default=20261122)
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs of first backup, incremental and restore per tool (medians)")
    ap.add_argument("--small-files", type=int, default=None,
                    help="files in the many-small-files vault (default 60000, --quick 5000; "
                         "0: skip it)")
    ap.add_argument("--only-small", action="store_true", help="run the small-files part only")
    ap.add_argument("--small-file-workers", type=int, default=None,
                    help="[backup] small_file_workers for secroom (default: its own default)")
    args = ap.parse_args()
    if args.small_file_workers is not None:
        global EXTRA_CONFIG
        EXTRA_CONFIG = f"small_file_workers = {args.small_file_workers}\n"
    if args.small_files is None:
        args.small_files = 5000 if args.quick else 60000
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="bench-backup-", dir=args.keep))
    try:
        vault = work / "vault"
        total = 0
        if not args.only_small:
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
            f'cache_dir = "{work / "gw" / "cache"}"\n' + EXTRA_CONFIG)
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
                 before: Callable[[int], None] | None = None,
                 into: tuple[dict[str, Any], dict[str, Any], list[float], list[float]]
                 | None = None, renv: dict[str, str] | None = None) -> None:
            """Run both tools ``repeat`` times, alternating which goes first; keep medians."""
            r_, s_, rss_r_, rss_s_ = into or (r, s, rss_r, rss_s)
            times: dict[str, list[tuple[float, float]]] = {"r": [], "s": []}
            trees: dict[str, list[float]] = {"r": [], "s": []}
            for i in range(repeat):
                if before is not None:
                    before(i)
                order = [("s", scmd, env_s), ("r", [RESTIC, *rcmd], renv or env_r)]
                for tool, cmd, env in order if i % 2 == 0 else order[::-1]:
                    # flush earlier writes (vault changes, the other tool's repository)
                    # first, so neither tool's fsyncs pay for someone else's dirty pages
                    os.sync()
                    wall, rss, cpu = timed(cmd, env)
                    times[tool].append((wall, cpu))
                    (rss_s_ if tool == "s" else rss_r_).append(rss)
                    trees[tool].append(TREE_PEAKS[-1])
                    print(f"    {name} {'secroom' if tool == 's' else 'restic '}: "
                          f"{wall:.2f}s, {cpu:.2f}s cpu, peak RSS {rss:.1f} MB "
                          f"(all its processes: Pss {TREE_PEAKS[-1]:.1f} MB)", flush=True)
            for tool, out in (("r", r_), ("s", s_)):
                out[name] = round(statistics.median(w for w, _ in times[tool]), 3)
                out[name + "_cpu"] = round(statistics.median(c for _, c in times[tool]), 3)
                out[name + "_tree_peak_rss_mb"] = round(max(trees[tool]), 1)
                if repeat > 1:
                    out[name + "_runs"] = [round(w, 3) for w, _ in times[tool]]
            print(f"  {name:<18} restic {r_[name]:7.2f}s ({r_[name + '_cpu']:6.2f} cpu)   "
                  f"secroom {s_[name]:7.2f}s ({s_[name + '_cpu']:6.2f} cpu)"
                  + (f"   median of {repeat}" if repeat > 1 else ""))

        def fresh_repositories(i: int) -> None:
            if i == 0:
                return
            for d in ("restic-repo", "restic-cache", "secroom-repo", "gw"):
                shutil.rmtree(work / d, ignore_errors=True)
            subprocess.run([RESTIC, "init"], env=env_r, check=True, stdout=subprocess.DEVNULL)

        identical = True
        result: dict[str, Any] = {"quick": args.quick}
        if not args.only_small:
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
            print(f"  load average {load:.1f} on {os.cpu_count()} CPUs (wall times are "
                  "shared-machine figures; the cpu columns are each tool's own user+system "
                  "seconds)")
            print(f"  secroom restore byte-identical to the vault: {identical}")
            result.update({
                "first_ratio": round(s["first"] / r["first"], 3),
                "incremental_ratio": round(s["incremental"] / r["incremental"], 3),
                "restore_ratio": round(s["restore"] / r["restore"], 3),
                "verify_ratio": round(s["verify"] / r["verify"], 3),
                "size_ratio": round(s_size / r_size, 4),
                "peak_rss_mb": s["peak_rss_mb"],
                "vault_bytes": total, "changed_bytes": changed, "quick": args.quick,
                "restore_identical": identical, "load_average": round(os.getloadavg()[0], 2),
                "restic": r, "secroom": s,
            })
        if args.small_files:
            small = small_files(work, args.small_files, rng, both, sec, keyargs, env_r, keys)
            identical = identical and small["small_files_restore_identical"]
            result.update(small, load_average=round(os.getloadavg()[0], 2))
        print("RESULT " + json.dumps(result, sort_keys=True))
        return 0 if identical else 1
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
