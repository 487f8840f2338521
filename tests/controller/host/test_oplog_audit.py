"""File access in the watched folders: auditd's records, read by the real laurel, become
host.file_access events in a real node journal (a copy of a folder is one event)."""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller.host.audit_rules import audit_rules
from controller.host.audit_source import LaurelTail
from controller.host.config import HostAgentConfig
from controller.host.oplog import OperationsLog
from controller.runtime import NodeRuntime
from tests.controller.host.fixtures import HOST
from tests.controller.host.test_oplog_journal import Committed, resolve
from tests.support import audit, free_port, wait_until

pytestmark = pytest.mark.integration
RECORDED_ROOT = "/tmp/host-audit/vault/mynumber"  # noqa: S108 - the folder the recording watched


@pytest.fixture
def runtime(make_settings) -> Iterator[NodeRuntime]:
    rt = NodeRuntime(make_settings(free_port()))
    rt.start()
    yield rt
    rt.stop()


def host_config(laurel_log: Path, root: str) -> HostAgentConfig:
    return HostAgentConfig.model_validate({
        "host": HOST, "journal": {"enabled": False}, "audit": {"laurel_log": laurel_log},
        "watches": [{"path": root, "path_class": "number_data"},
                    {"path": "/srv/vault", "path_class": "vault"}]})


def run_audit(config: HostAgentConfig, runtime: NodeRuntime, state: Path, n: int
              ) -> list[tuple[str, object]]:
    committed = Committed(runtime)
    oplog = OperationsLog(config, emit_many=committed, resolve=resolve, journal=runtime.journal,
                          state_dir=state, clock=lambda: datetime.now(UTC), quiet_s=0.2)
    stop = threading.Event()
    t = threading.Thread(target=oplog.run_audit, args=(stop,))
    t.start()
    try:
        return committed.wait(n)
    finally:
        stop.set()
        t.join(30)


def test_recorded_auditd_log_through_laurel(tmp_path, runtime) -> None:
    laurel_log = audit.laurel(audit.RECORDING, tmp_path)
    items = run_audit(host_config(laurel_log, RECORDED_ROOT), runtime, tmp_path / "state", 6)
    got = [(m.op, m.names[:2], m.count, m.program, m.account, m.success) for _, m in items]
    assert got == [
        ("read", ["employees-2026.csv"], 1, "/usr/bin/cat", "hana", True),
        ("write", ["employees-2026.csv"], 1, "/usr/bin/dash", "hana", True),
        # cp of the file, then cp -r of the whole folder: one copy event for the burst
        ("copy", ["employees-2026.csv", "."], 42, "/usr/bin/cp", "hana", True),
        ("rename", ["slip-1.pdf -> slip-01.pdf"], 1, "/usr/bin/mv", "hana", True),
        ("delete", ["slip-2.pdf"], 1, "/usr/bin/rm", "hana", True),
        ("read", ["employees-2026.csv"], 1, "/usr/bin/cat", "hana", False),  # EACCES
    ]
    copy = items[2][1]
    assert len(copy.names) == 41 and copy.names_omitted == 0  # the 40 slips, the csv, "."
    assert all(m.path_class == "number_data" and m.person_id == "hana" for _, m in items)
    # journaled and signed; the last one carries laurel's file position
    stored = [e for e in runtime.journal.events(1) if e.kind == "host.file_access"]
    assert len(stored) == 6 and stored[-1].data["position"].endswith(
        f":{laurel_log.stat().st_size}")


def test_live_auditd_when_the_kernel_allows(tmp_path, runtime) -> None:
    folder = tmp_path / "mynumber"
    folder.mkdir()
    for i in range(150):
        (folder / f"slip-{i:03}.pdf").write_text(str(i))
    with audit.live_auditd(folder, "secroom-number_data", tmp_path) as auditd:
        if auditd is None:
            pytest.skip("this kernel does not let a test run auditd (the recorded log test "
                        "covers the format)")
        subprocess.run(["cp", "-r", str(folder), str(tmp_path / "copy")], check=True)
        # from a new process, like the copy: the kernel gives a process an audit context at
        # fork only if audit was ever enabled since boot, so on the first run after a boot this
        # test's own (older) process unlinked unaudited (seen: no record and no serial for it,
        # none lost); auditd writes from its own process, so wait for the record
        subprocess.run(["rm", str(folder / "slip-000.pdf")], check=True)
        wait_until(lambda: auditd.recorded(b"nametype=DELETE"), 30,
                   "auditd to record the unlink")
    log_lines = audit.records_only(auditd.records, tmp_path / "audit.log")
    laurel_log = audit.laurel(log_lines, tmp_path)
    items = run_audit(host_config(laurel_log, str(folder)), runtime, tmp_path / "state", 2)
    copy, delete = (m for _, m in items[:2])
    # the folder and its 150 files, read by cp: one event, 100 names, the rest counted
    assert (copy.op, copy.count, len(copy.names), copy.names_omitted) == ("copy", 151, 100, 51)
    assert delete.op == "delete" and delete.names == ["slip-000.pdf"]


def test_laurel_tail_follows_a_rotation_without_losing_a_line(tmp_path) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(b"one\ntwo\n")
    tail = LaurelTail(log, None)
    assert [line for line, _ in tail.read_lines()] == [b"one\n", b"two\n"]
    position = tail.position
    tail.close()
    with log.open("ab") as fh:
        fh.write(b"three\npart")  # an unfinished line is not read yet
    log.rename(tmp_path / "audit.log.1")
    log.write_bytes(b"four\n")
    tail = LaurelTail(log, position)
    assert tail.gap is None
    assert [line for line, _ in tail.read_lines()] == [b"three\n"]
    assert [line for line, _ in tail.read_lines()] == [b"four\n"]


def test_laurel_tail_reports_a_position_it_cannot_find(tmp_path) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(b"one\n")
    tail = LaurelTail(log, "999999:4")
    assert tail.gap is not None and "rotated" in tail.gap
    assert [line for line, _ in tail.read_lines()] == [b"one\n"]


def test_the_rules_the_agent_installs() -> None:
    config = host_config(Path("/var/log/laurel/audit.log"), "/srv/mynumber")
    text = audit_rules(config.watches)
    assert "-w /srv/mynumber -p rwxa -k secroom-number_data" in text
    assert "-w /srv/vault -p rwxa -k secroom-vault" in text
    if shutil.which("auditctl") is None:
        return
    for line in text.splitlines()[1:]:  # each key fits auditctl's 31 bytes
        assert len(line.rsplit(" ", 1)[1]) <= 31
