"""The node runtime under faults: broker crashes, a SIGKILLed node, a full disk, bad input."""

from __future__ import annotations

import queue
import signal
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controller.envelope import verify_chain
from controller.events import DoorOpened, DoorRex, PolicyApplied
from controller.journal import EventRejected, JournalError, JournalFull, verify_journal
from controller.mqtt import MqttError, MqttSettings
from controller.runtime import NodeRuntime, RuntimeSettings
from tests.controller.conftest import Collector
from tests.support import free_port
from tests.support.mosquitto import Broker

PRODUCER = Path(__file__).with_name("producer_proc.py")
REX = DoorRex(door="d1")
PADDED = DoorOpened(door="d1", via="grant", reason="x" * 4000)
Key = tuple[Path, Ed25519PrivateKey]


@pytest.fixture
def runtime_at(
    make_settings: Callable[..., RuntimeSettings],
) -> Iterator[Callable[..., NodeRuntime]]:
    made: list[NodeRuntime] = []

    def start(port: int, **overrides: object) -> NodeRuntime:
        rt = NodeRuntime(make_settings(port, **overrides))
        rt.start()
        made.append(rt)
        return rt

    yield start
    for rt in made:
        rt.stop()


def assert_exactly_once(col: Collector, last: int, key: Ed25519PrivateKey) -> None:
    assert col.complete(last, 30), f"still missing {col.missing(last)[:10]}"
    assert sorted(col.events) == list(range(1, last + 1))
    assert col.forks == 0 and col.bad == 0
    assert col.wire_count >= last
    verify_chain(col.ordered(), key.public_key())  # the de-duplicated stream is one clean chain


@pytest.mark.integration
def test_broker_killed_and_restarted_while_5000_events_are_produced(
    broker: Broker, runtime_at: Callable[..., NodeRuntime],
    collector_factory: Callable[[int], Collector], node_key: Key,
) -> None:
    rt = runtime_at(broker.port)
    with collector_factory(broker.port) as col:
        stop = threading.Event()
        singles: list[int] = []

        def single_emitter() -> None:  # a second producer: one event per emit (group commit)
            while not stop.is_set():
                singles.append(rt.emit("door.rex", DoorRex(door="single")).seq)

        other = threading.Thread(target=single_emitter)
        other.start()
        kill_marks, down_since, kills = [700, 1700, 2700, 3700], 0, 0
        head = 0
        try:
            while head < 5000:
                head = rt.emit_many([("door.rex", REX)] * 25)[-1].seq
                if not down_since and kills < len(kill_marks) and head >= kill_marks[kills]:
                    broker.kill()
                    down_since, kills = head, kills + 1
                elif down_since and head >= down_since + 300:  # 300 events produced while down
                    broker.start()
                    down_since = 0
                    # so that the next crash hits a live connection with messages in flight
                    assert rt.link.connected.wait(10)
        finally:
            stop.set()
            other.join()
        assert kills == 4 and singles
        assert rt.link.stats["disconnects"] >= 4
        head = rt.journal.head()[0]
        assert rt.wait_delivered(head, 30)
        assert_exactly_once(col, head, node_key[1])
    journal = rt.settings.journal
    rt.stop()
    report = verify_journal(journal, node_key[1].public_key())
    assert report.ok, report.problems
    assert report.last >= 5000


class LineReader:
    """Lines of a child's stdout, readable with a timeout."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        assert proc.stdout is not None
        out = proc.stdout

        def pump() -> None:
            for line in out:
                self.lines.put(line.strip())

        threading.Thread(target=pump, daemon=True).start()

    def until(self, predicate: Callable[[str], bool], timeout: float = 30) -> str:
        while True:
            line = self.lines.get(timeout=timeout)
            if predicate(line):
                return line


def spawn(settings: Path, until: int) -> tuple[subprocess.Popen[str], LineReader]:
    with (settings.parent / "producer.stderr").open("a") as err:  # read it when a test fails
        proc = subprocess.Popen(
            [sys.executable, str(PRODUCER), str(settings), "--until", str(until), "--chunk", "10"],
            stdout=subprocess.PIPE, stderr=err, text=True,
        )
    return proc, LineReader(proc)


def head_at_least(n: int) -> Callable[[str], bool]:
    return lambda line: line.startswith("head ") and int(line.split()[1]) >= n


@pytest.mark.integration
def test_node_sigkilled_mid_stream_then_restarted(
    broker: Broker, make_settings: Callable[..., RuntimeSettings], tmp_path: Path,
    collector_factory: Callable[[int], Collector], node_key: Key,
) -> None:
    settings = make_settings(broker.port)
    settings_file = tmp_path / "node.json"
    settings_file.write_text(settings.model_dump_json())
    with collector_factory(broker.port) as col:
        proc, out = spawn(settings_file, 3000)
        try:
            out.until(head_at_least(1200))
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(10) == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                proc.kill()
        # The broker saw the connection die without DISCONNECT: it publishes the last will.
        assert col.wait_state(lambda s: s == {"state": "offline"}, 10)
        before = verify_journal(settings.journal, node_key[1].public_key())
        assert before.ok, before.problems  # a SIGKILL mid-commit leaves a valid journal
        proc, out = spawn(settings_file, 3000)
        try:
            assert out.until(lambda x: x.startswith("delivered")).split()[1] != "-1"
            assert proc.wait(30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
        # Everything reached the collector from the journal, through the broker.
        report = verify_journal(settings.journal, node_key[1].public_key())
        assert report.ok, report.problems
        assert report.first == 1 and report.last > 3000
        assert_exactly_once(col, report.last, node_key[1])
        kinds = Counter(e.kind for e in col.ordered())
        assert kinds["node.started"] == 2 and kinds["node.stopped"] == 1
        assert col.wait_state(lambda s: s == {"state": "offline"}, 5)


@pytest.mark.integration
def test_concurrent_emits_are_durable_when_they_return(
    runtime_at: Callable[..., NodeRuntime],
) -> None:
    rt = runtime_at(free_port())  # no broker: emitting must not depend on it
    seqs: list[int] = []
    not_visible: list[int] = []

    def worker(n: int) -> None:
        reader = sqlite3.connect(rt.settings.journal)  # another connection sees only commits
        for i in range(n):
            seq = rt.emit("door.rex", DoorRex(door=f"d{i}")).seq
            seqs.append(seq)
            if reader.execute("SELECT 1 FROM events WHERE seq = ?", (seq,)).fetchone() is None:
                not_visible.append(seq)
        reader.close()

    threads = [threading.Thread(target=worker, args=(40,)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not not_visible
    assert sorted(seqs) == list(range(2, 2 + 240))  # seq 1 is node.started


class WiderRex(DoorRex):
    pass


@pytest.mark.integration
def test_bad_input_is_refused_alone_and_models_are_dumped_as_json(
    runtime_at: Callable[..., NodeRuntime],
) -> None:
    rt = runtime_at(free_port())
    applied = PolicyApplied(version=3, issued_at=datetime(2026, 1, 2, tzinfo=UTC), key_id="k1",
                            digest="ab", source="file", persisted=True)
    e = rt.emit("policy.applied", applied)
    assert e.data["issued_at"] == "2026-01-02T00:00:00Z" and e.data["version"] == 3
    with pytest.raises(EventRejected, match="not registered"):
        rt.emit("Bad Kind", REX)
    with pytest.raises(EventRejected, match="'door.knock' is not registered"):
        rt.emit("door.knock", REX)
    with pytest.raises(EventRejected, match="must be a DoorRex model, not dict"):
        rt.emit("door.rex", {"door": "d1", "lockdown": False})  # type: ignore[arg-type]
    with pytest.raises(EventRejected, match="must be a DoorOpened model, not DoorRex"):
        rt.emit("door.opened", REX)
    with pytest.raises(EventRejected, match="not WiderRex"):
        rt.emit("door.rex", WiderRex(door="d1"))
    with pytest.raises(EventRejected, match="must be a DoorClosed model, not list"):
        rt.emit_many([("door.rex", REX), ("door.closed", [1, 2])])  # type: ignore[list-item]
    assert rt.emit("door.rex", REX).seq == e.seq + 1  # nothing of the bad calls was stored


@pytest.mark.integration
def test_disk_full_raises_journal_full_and_loses_nothing(
    runtime_at: Callable[..., NodeRuntime], node_key: Key,
) -> None:
    rt = runtime_at(free_port())
    rt.emit_many([("door.rex", DoorRex(door=f"d{i}")) for i in range(20)])
    head = rt.journal.head()
    db = rt.journal._db
    db.execute(f"PRAGMA max_page_count={db.execute('PRAGMA page_count').fetchone()[0]}")
    with pytest.raises(JournalFull, match="no space left"):
        rt.emit_many([("door.opened", PADDED) for _ in range(40)])
    assert rt.journal.head() == head
    db.execute("PRAGMA max_page_count=1073741823")
    assert rt.emit("door.rex", REX).seq == head[0] + 1
    journal = rt.settings.journal
    rt.stop()
    assert verify_journal(journal, node_key[1].public_key()).ok
    with pytest.raises(JournalError, match="not running"):
        rt.emit("door.rex", REX)


@pytest.mark.integration
def test_state_online_with_health_then_offline_on_stop(
    broker: Broker, runtime_at: Callable[..., NodeRuntime],
    collector_factory: Callable[[int], Collector],
) -> None:
    with collector_factory(broker.port) as col:
        rt = runtime_at(broker.port)
        assert col.wait_state(lambda s: s.get("state") == "online", 10)
        rt.publish_state({"doors": 2})
        assert col.wait_state(lambda s: s.get("health") == {"doors": 2}, 10)
        rt.stop()
        assert col.wait_state(lambda s: s == {"state": "offline"}, 10)
    assert rt.link.stats["handler_errors"] == 0


def test_bad_mqtt_credentials_file_fails_start_cleanly(
    make_settings: Callable[..., RuntimeSettings], tmp_path: Path
) -> None:
    mqtt = MqttSettings(port=free_port(), username="gw1", password_file=tmp_path / "absent")
    settings = make_settings(0, mqtt=mqtt)
    rt = NodeRuntime(settings)
    with pytest.raises(MqttError, match="password file"):
        rt.start()
    with pytest.raises(JournalError, match="not running"):
        rt.emit("door.rex", REX)
    again = NodeRuntime(settings.model_copy(update={"mqtt": MqttSettings(port=free_port())}))
    again.start()  # the journal was released and holds node.started from the first attempt
    try:
        assert again.journal.head()[0] == 2
    finally:
        again.stop()
