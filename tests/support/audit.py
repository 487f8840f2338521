"""auditd and laurel for tests: a real auditd when the kernel lets this test run one, and
laurel (the auditd plugin) turning audit.log lines into its JSON lines.

``live_auditd`` starts ``auditd -f`` with a private configuration (events go to its stdout,
kept in a file), adds one watch rule and removes exactly that rule when done, stops auditd and
puts the kernel's audit switch back as it found it. It refuses (returns None) when auditd is
not installed, another audit daemon is running, or the kernel does not allow it (most
containers): the tests then read the recording of a real auditd in
tests/controller/host/data.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tests.support import require_binary, wait_until

RECORDING = Path(__file__).parents[1] / "controller" / "host" / "data" / \
    "auditd-3.0.9-watch.log"

_AUDITD_CONF = """local_events = yes
write_logs = no
log_format = ENRICHED
flush = INCREMENTAL_ASYNC
freq = 50
name_format = NONE
max_restarts = 10
plugin_dir = {plugins}
end_of_event_timeout = 2
q_depth = 1200
overflow_action = SYSLOG
space_left = 75
space_left_action = SYSLOG
admin_space_left = 50
admin_space_left_action = SUSPEND
disk_full_action = SUSPEND
disk_error_action = SUSPEND
"""


def laurel(log_lines: Path, workdir: Path) -> Path:
    """Run the real laurel over recorded audit.log lines; return its JSON lines file."""
    binary = require_binary("laurel", "/usr/sbin/laurel")
    out = workdir / "laurel"
    out.mkdir(parents=True, exist_ok=True)
    conf = workdir / "laurel.toml"
    conf.write_text(f'directory = "{out}"\n[auditlog]\nfile = "audit.log"\n'
                    "[translate]\nuniversal = true\nuser-db = false\n", encoding="utf-8")
    with log_lines.open("rb") as stdin:
        done = subprocess.run([binary, "-c", str(conf)], stdin=stdin, capture_output=True,
                              timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"laurel failed: {done.stderr.decode(errors='replace')}")
    return out / "audit.log"


def _status() -> dict[str, str] | None:
    auditctl = shutil.which("auditctl")
    if auditctl is None:
        return None
    done = subprocess.run([auditctl, "-s"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return None
    return dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)


@contextlib.contextmanager
def live_auditd(watch: Path, key: str, workdir: Path) -> Iterator[Watching | None]:
    """Yield the running auditd (its records' file) while ``watch`` is watched, or None."""
    auditd = shutil.which("auditd") or "/usr/sbin/auditd"
    status = _status()
    if status is None or not Path(auditd).exists() or status.get("pid", "0") != "0":
        yield None
        return
    was_enabled = status.get("enabled", "0")
    was_backlog = status.get("backlog_limit", "64")
    conf = workdir / "auditd-conf"
    (conf / "plugins.d").mkdir(parents=True, exist_ok=True)
    (conf / "auditd.conf").write_text(_AUDITD_CONF.format(plugins=conf / "plugins.d"))
    records = workdir / "auditd.out"
    out = records.open("wb")
    proc = subprocess.Popen([auditd, "-f", "-n", "-c", str(conf)], stdout=out,
                            stderr=subprocess.STDOUT)
    try:
        try:
            wait_until(lambda: (_status() or {}).get("pid") == str(proc.pid), 10, "auditd")
        except TimeoutError:
            yield None
            return
        # the kernel queues 64 records by default and drops the rest while auditd is slow to
        # read them (a loaded machine, the copy of 150 files): room for the test's burst
        subprocess.run(["auditctl", "-b", "8192"], capture_output=True, check=False)
        added = subprocess.run(["auditctl", "-w", str(watch), "-p", "rwxa", "-k", key],
                               capture_output=True, check=False)
        if added.returncode != 0:
            yield None
            return
        try:
            yield Watching(records, proc.pid, int((_status() or {}).get("lost", "0")))
        finally:
            subprocess.run(["auditctl", "-W", str(watch), "-p", "rwxa", "-k", key],
                           capture_output=True, check=False)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        out.close()
        subprocess.run(["auditctl", "-b", was_backlog], capture_output=True, check=False)
        subprocess.run(["auditctl", "-e", was_enabled], capture_output=True, check=False)


@dataclasses.dataclass
class Watching:
    """The running test auditd: where its records go, its pid, the kernel's lost count then."""

    records: Path
    pid: int
    lost_before: int

    def recorded(self, needle: bytes) -> bool:
        """``needle`` is in auditd's output yet. An AssertionError that says why it never will
        be: the kernel sends to another audit daemon now, or lost records meanwhile."""
        if needle in self.records.read_bytes():
            return True
        status = _status() or {}
        assert status.get("pid") == str(self.pid), (
            f"the kernel's audit records go to pid {status.get('pid')}, not to this test's "
            f"auditd {self.pid}: another audit daemon started meanwhile")
        lost = int(status.get("lost", "0"))
        assert lost == self.lost_before, (
            f"the kernel lost {lost - self.lost_before} audit records (backlog "
            f"{status.get('backlog')} of {status.get('backlog_limit')})")
        return False


def records_only(path: Path, target: Path) -> Path:
    """auditd -f prints its own start-up chatter too: keep the records (type=... lines)."""
    lines = [ln for ln in path.read_bytes().splitlines(keepends=True)
             if ln.startswith((b"type=", b"node="))]
    target.write_bytes(b"".join(lines))
    return target
