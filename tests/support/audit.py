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
def live_auditd(watch: Path, key: str, workdir: Path) -> Iterator[Path | None]:
    """Yield the file auditd writes its records to while ``watch`` is watched, or None."""
    auditd = shutil.which("auditd") or "/usr/sbin/auditd"
    status = _status()
    if status is None or not Path(auditd).exists() or status.get("pid", "0") != "0":
        yield None
        return
    was_enabled = status.get("enabled", "0")
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
        added = subprocess.run(["auditctl", "-w", str(watch), "-p", "rwxa", "-k", key],
                               capture_output=True, check=False)
        if added.returncode != 0:
            yield None
            return
        try:
            yield records
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
        subprocess.run(["auditctl", "-e", was_enabled], capture_output=True, check=False)


def records_only(path: Path, target: Path) -> Path:
    """auditd -f prints its own start-up chatter too: keep the records (type=... lines)."""
    lines = [ln for ln in path.read_bytes().splitlines(keepends=True)
             if ln.startswith((b"type=", b"node="))]
    target.write_bytes(b"".join(lines))
    return target
