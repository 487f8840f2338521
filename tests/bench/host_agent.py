"""Benchmark: the host agent of a room PC.

Two processes, as on a room PC. The agent process (this script with ``--child``, pinned to one
core) runs a node runtime (journal, signing; no broker, events wait in the journal), the host
agent with a card lying on its reader, a signed policy and a fresh signed presence, and its
PAM socket. The driver process:

1. **log-on**: runs ``pamtester ... authenticate`` (under pam_wrapper, with pam_matrix for the
   password) against the card stack of hardware/host-agent (the password, then the real
   pam_exec starting the real helper once, the agent answering over its socket and journaling
   the grant, fsync included), ``--logons`` times; the time of each whole PAM call to its
   answer. Anchor, same run: pamtester with ``auth required pam_permit.so`` (the cost of
   starting pamtester and PAM itself), and the helper's interpreter starting alone
   (``python3 -IS -c pass``).
2. **operations log**: a real journal file (systemd-journal-remote) of ``--entries`` entries
   that each become an event (sessions opened and closed, sudo with distinct commands); the
   agent reads it with python-systemd, classifies, signs and journals every event (group
   commits of up to 1,000); entries per second from start to the last commit. Anchor, same
   run: ``journalctl --file ... -o json`` reading the same entries (to /dev/null).
3. **memory**: the agent process's peak RSS (VmHWM) after both (and after the log-ons alone).

    .venv/bin/python tests/bench/host_agent.py [--quick] [--logons 300] [--entries 20000]

Targets (issue 22): logon_p99_ms <= 50, oplog_entries_per_s >= 2000, peak_rss_mb <= 60.
The last line is ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

SITE, HOST, HANA = "bench", "pc-01", "0102030405060708"
TARGETS = {"logon_p99_ms": 50.0, "oplog_entries_per_s": 2000.0, "peak_rss_mb": 60.0}


def _status_kb(field: str, pid: int | str = "self") -> int:
    return next(int(ln.split()[1]) for ln in Path(f"/proc/{pid}/status").read_text().splitlines()
                if ln.startswith(f"{field}:"))


# -- the agent process ---------------------------------------------------------------------------


class NoLogind:
    def sessions(self, account: str) -> list[Any]:
        return []

    def lock(self, session_id: str) -> None:  # pragma: no cover - nothing to lock here
        pass

    def terminate(self, session_id: str) -> None:  # pragma: no cover
        pass


def _free_port() -> int:
    """A free local port (not tests.support's: that imports pytest, which is no part of the
    agent and would count in its memory)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child(workdir: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from controller.envelope import now_utc
    from controller.host.agent import HostAgent
    from controller.host.config import HostAgentConfig
    from controller.host.oplog import OperationsLog
    from controller.host.presence import PresenceStatement, sign_presence
    from controller.keys import generate
    from controller.mqtt import MqttSettings
    from controller.policy import Policy
    from controller.runtime import NodeRuntime, RuntimeSettings
    from readers.fake import FakeReader

    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    imported_kb = _status_kb("VmRSS")
    generate(workdir / "node.key")
    rt = NodeRuntime(RuntimeSettings(node="bench-pc", site=SITE, journal=workdir / "node.db",
                                     key_file=workdir / "node.key",
                                     mqtt=MqttSettings(port=_free_port())))
    rt.start()
    dashboard = Ed25519PrivateKey.generate()
    policy = Policy.model_validate({
        "version": 1, "issued_at": "2026-12-01T00:00:00Z", "site": SITE, "doors": [],
        "people": [{"id": "hana", "name": "中村 花", "cards": [HANA], "groups": ["pc"],
                    "host_accounts": ["hana"]}],
        "groups": [{"id": "pc", "name": "PC users", "hosts": [HOST]}]})
    config = HostAgentConfig.model_validate({
        "host": HOST, "socket": str(workdir / "agent.sock"), "audit": {"enabled": False},
        "journal": {"directory": str(workdir / "journal")}, "caller_rate_per_min": 100000})
    agent = HostAgent(config, site=SITE, emit=rt.emit, policy=lambda: policy,
                      logind=NoLogind(), trusted=[dashboard.public_key()], clock=now_utc,
                      state_dir=workdir)
    agent.start()
    reader = FakeReader(("Bench Reader 00 00",))
    reader.start(agent)
    reader.present(HANA)
    agent.on_presence_message("", sign_presence(PresenceStatement(
        site=SITE, serial=1, issued_at=now_utc(), present=["hana"]), dashboard))
    print(f"READY {imported_kb} {_status_kb('VmRSS')}", flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if cmd[0] == "OPLOG":
            want = int(cmd[1])
            done = threading.Event()
            count = [0]

            def emit_many(items: Any, want: int = want, done: threading.Event = done,
                          count: list[int] = count) -> Any:
                out = rt.emit_many(items)
                count[0] += len(items)
                if count[0] >= want:
                    done.set()
                return out

            oplog = OperationsLog(config, emit_many=emit_many, resolve=agent.resolve,
                                  journal=rt.journal, state_dir=workdir, clock=now_utc,
                                  quiet_s=0.05)
            stop = threading.Event()
            start = time.perf_counter()
            t = threading.Thread(target=oplog.run_journal, args=(stop,))
            t.start()
            ok = done.wait(600)
            elapsed = time.perf_counter() - start
            stop.set()
            t.join(60)
            print(f"OPLOG {count[0]} {elapsed:.6f} {int(ok)}", flush=True)
        elif cmd[0] == "EXIT":
            agent.stop()
            rt.stop()
            print(f"RSS {_status_kb('VmHWM')}", flush=True)
            return


# -- the driver ----------------------------------------------------------------------------------


def pam_times(service_dir: Path, name: str, n: int) -> list[float]:
    from tests.support.pam import _find

    env = {**os.environ, "LD_PRELOAD": _find("libpam_wrapper.so"), "PAM_WRAPPER": "1",
           "PAM_WRAPPER_SERVICE_DIR": str(service_dir)}
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        done = subprocess.run(["pamtester", "-I", "tty=tty1", name, "hana", "authenticate"],
                              input="hana-pw\n", capture_output=True, text=True, env=env,
                              check=False)
        out.append((time.perf_counter() - t0) * 1000)
        if done.returncode != 0:
            raise SystemExit(f"pamtester {name} failed: {done.stdout}{done.stderr}")
    return out


def journal_entries(n: int, start: datetime) -> list[dict[str, str]]:
    from tests.support import journal_files as jf

    out = []
    for i in range(n):
        at = start + timedelta(milliseconds=i)
        if i % 3 == 2:
            out.append(jf.sudo(at, "hana", f"/usr/bin/systemctl status unit-{i}"))
        elif i % 3 == 1:
            out.append(jf.session_stop(at, str(i - 1), "hana"))
        else:
            out.append(jf.session_start(at, str(i), "hana"))
    return out


def p99(values: list[float]) -> float:
    import statistics

    return statistics.quantiles(values, n=100)[98] if len(values) > 1 else values[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--logons", type=int, default=300)
    ap.add_argument("--entries", type=int, default=20000)
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        child(args.child)
        return 0
    if args.quick:
        args.logons, args.entries = 40, 5000
    # the driver's tools, not imported by the agent process (its memory is measured)
    import statistics
    import tempfile

    from tests.support import journal_files as jf
    from tests.support.pam import HELPER, SYSTEM_PYTHON, c_helper, card_stack

    load0 = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="secroom-bench-host-"))
    jf.write_journal(work / "journal", journal_entries(
        args.entries, datetime.now(UTC) - timedelta(hours=2)))
    proc = subprocess.Popen([sys.executable, __file__, "--child", str(work)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    ready = proc.stdout.readline().split()
    if not ready or ready[0] != "READY":
        raise SystemExit("the agent process did not start")
    imported_kb, started_kb = int(ready[1]), int(ready[2])
    pam = work / "pam.d"
    pam.mkdir()
    matrix = Path(__import__("tests.support.pam", fromlist=["_find"])._find(
        "pam_matrix.so", "pam_wrapper"))
    (work / "passdb").write_text("hana:hana-pw:secroom-login\nhana:hana-pw:python-helper\n")
    passdb = f"{matrix} passdb={work / 'passdb'}"
    (pam / "secroom-login").write_text(card_stack(c_helper()[0], work / "agent.sock", passdb))
    (pam / "python-helper").write_text(card_stack(f"{SYSTEM_PYTHON} -IS {HELPER}",
                                                  work / "agent.sock", passdb))
    (pam / "permit").write_text("auth required pam_permit.so\n")
    (pam / "other").write_text("auth required pam_deny.so\n")
    pam_times(pam, "secroom-login", 3)  # warm caches
    card = pam_times(pam, "secroom-login", args.logons)
    permit = pam_times(pam, "permit", args.logons)
    pam_times(pam, "python-helper", 3)
    python_helper = pam_times(pam, "python-helper", args.logons)
    logons_hwm_kb = _status_kb("VmHWM", proc.pid)
    bare = []
    for _ in range(args.logons):
        t0 = time.perf_counter()
        subprocess.run([SYSTEM_PYTHON, "-IS", "-c", "pass"], check=True)
        bare.append((time.perf_counter() - t0) * 1000)

    proc.stdin.write(f"OPLOG {args.entries}\n")
    proc.stdin.flush()
    _, events, seconds, ok = proc.stdout.readline().split()
    if ok != "1":
        raise SystemExit(f"only {events} of {args.entries} entries were journaled")
    t0 = time.perf_counter()
    jctl = subprocess.Popen(["journalctl", "--file",
                             str(next((work / "journal").glob("*.journal"))), "-o", "json",
                             "--no-pager"], stdout=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(jctl.pid, 0)
    anchor_s = time.perf_counter() - t0
    if status != 0:
        raise SystemExit("journalctl failed")
    proc.stdin.write("EXIT\n")
    proc.stdin.flush()
    rss_kb = int(proc.stdout.readline().split()[1])
    proc.wait(60)

    result = {
        "logon_p99_ms": round(p99(card), 2),
        "logon_p50_ms": round(statistics.median(card), 2),
        "anchor_pam_permit_p99_ms": round(p99(permit), 2),
        "anchor_pam_permit_p50_ms": round(statistics.median(permit), 2),
        "anchor_python_helper_logon_p99_ms": round(p99(python_helper), 2),
        "anchor_python_helper_logon_p50_ms": round(statistics.median(python_helper), 2),
        "anchor_python_start_p50_ms": round(statistics.median(bare), 2),
        "oplog_entries_per_s": round(int(events) / float(seconds), 1),
        "anchor_journalctl_json_entries_per_s": round(args.entries / anchor_s, 1),
        "peak_rss_mb": round(rss_kb / 1024, 1),
        "rss_agent_ready_mb": round(started_kb / 1024, 1),
        "peak_rss_after_logons_mb": round(logons_hwm_kb / 1024, 1),
        "anchor_imports_only_rss_mb": round(imported_kb / 1024, 1),
        "anchor_journalctl_peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "logons": args.logons, "entries": args.entries, "quick": args.quick,
        "load_start": [round(x, 2) for x in load0],
        "load_end": [round(x, 2) for x in os.getloadavg()],
    }
    print(f"{'figure':40} {'value':>12} {'target':>10}")
    for k in ("logon_p99_ms", "logon_p50_ms", "anchor_pam_permit_p99_ms",
              "anchor_pam_permit_p50_ms", "anchor_python_helper_logon_p99_ms",
              "anchor_python_helper_logon_p50_ms", "anchor_python_start_p50_ms",
              "oplog_entries_per_s",
              "anchor_journalctl_json_entries_per_s", "peak_rss_mb", "anchor_imports_only_rss_mb",
              "rss_agent_ready_mb", "peak_rss_after_logons_mb",
              "anchor_journalctl_peak_rss_mb"):
        target = TARGETS.get(k)
        print(f"{k:40} {result[k]:>12} {'' if target is None else target:>10}")
    print("RESULT " + json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
