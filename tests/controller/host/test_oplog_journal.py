"""The operations log from real journal files (systemd-journal-remote) into a real node journal:
what each entry becomes, bursts summarised, and a persisted cursor across restarts (nothing
read twice, nothing skipped)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.host.classify import AuthFailOp, SessionOp, SudoOp, classify
from controller.host.config import HostAgentConfig
from controller.host.journal_source import JournalSource
from controller.host.oplog import OperationsLog
from controller.runtime import NodeRuntime
from tests.controller.host.fixtures import HOST, make_policy
from tests.support import free_port
from tests.support import journal_files as jf

pytestmark = pytest.mark.integration
T = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)


def at(seconds: float) -> datetime:
    return T + timedelta(seconds=seconds)


class Committed:
    """emit_many that journals through the runtime and lets a test await a number of events."""

    def __init__(self, runtime: NodeRuntime) -> None:
        self.runtime = runtime
        self.items: list[tuple[str, Any]] = []
        self.cond = threading.Condition()

    def __call__(self, items: Any) -> Any:
        out = self.runtime.emit_many(items)
        with self.cond:
            self.items.extend(items)
            self.cond.notify_all()
        return out

    def wait(self, n: int, timeout: float = 60) -> list[tuple[str, Any]]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.items) >= n, timeout), self.items
            return list(self.items)


@pytest.fixture
def runtime(make_settings) -> Iterator[NodeRuntime]:
    rt = NodeRuntime(make_settings(free_port()))  # no broker: events wait in the journal
    rt.start()
    yield rt
    rt.stop()


def resolve(account: str | None) -> tuple[str | None, bool | None]:
    from controller.host.logon import is_admin

    policy = make_policy()
    person = policy.person_for_account(account or "")
    return (person.id if person else None), is_admin(policy, person, HOST)


class Loop:
    def __init__(self, config: HostAgentConfig, runtime: NodeRuntime, state: Path) -> None:
        self.committed = Committed(runtime)
        self.oplog = OperationsLog(config, emit_many=self.committed, resolve=resolve,
                                   journal=runtime.journal, state_dir=state,
                                   clock=lambda: datetime.now(UTC), quiet_s=0.2)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.oplog.run_journal, args=(self.stop,))

    def __enter__(self) -> Loop:
        self.thread.start()
        assert self.oplog.ready["journal"].wait(30)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)
        assert not self.thread.is_alive()


def config(journal_dir: Path) -> HostAgentConfig:
    return HostAgentConfig.model_validate({"host": HOST, "journal": {"directory": journal_dir},
                                           "audit": {"enabled": False}})


def test_every_kind_of_entry_is_classified_from_a_real_journal_file(tmp_path) -> None:
    jdir = tmp_path / "journal"
    jf.write_journal(jdir, [
        jf.session_start(at(1), "7", "hana"),
        *jf.noise(at(2), 3),
        jf.sudo(at(3), "kenji", "/usr/bin/apt update"),
        jf.sudo(at(4), "hana", "/usr/bin/ls /root", refused="user NOT in sudoers"),
        jf.su(at(5), "kenji"),
        jf.su(at(6), "hana", failed=True),
        jf.sshd_failed(at(7), "hana", "10.0.0.5"),
        jf.sshd_failed(at(8), "ghost", "10.0.0.6", invalid=True),
        jf.pam_failure(at(9), "login", "hana"),
        jf.pam_failure(at(10), "sshd", "hana", rhost="10.0.0.5"),  # counted by sshd's own line
        jf.polkit(at(11), "kenji", "org.freedesktop.systemd1.manage-units",
                  "/usr/bin/systemctl restart cups"),
        jf.session_stop(at(12), "7", "hana"),
    ])
    src = JournalSource(jdir, None, now=at(20), first_lookback=timedelta(hours=1))
    ops = [op for e in src.read() if (op := classify(e)) is not None]
    src.close()
    assert ops == [
        SessionOp("opened", "7", "hana", at(1)),
        SudoOp("sudo", "kenji", "root", "/usr/bin/apt update", "pts/0", True, at(3)),
        SudoOp("sudo", "hana", "root", "/usr/bin/ls /root", "pts/0", False, at(4)),
        SudoOp("su", "kenji", "root", "", "pts/1", True, at(5)),
        SudoOp("su", "hana", "root", "", "pts/1", False, at(6)),
        AuthFailOp("sshd", "hana", "10.0.0.5", at(7)),
        AuthFailOp("sshd", "ghost", "10.0.0.6", at(8)),
        AuthFailOp("login", "hana", "", at(9)),
        SudoOp("polkit", "kenji", "kenji", "/usr/bin/systemctl restart cups", "", True, at(11)),
        SessionOp("closed", "7", "hana", at(12)),
    ]


def test_events_are_journaled_with_people_and_admin_right(tmp_path, runtime) -> None:
    jdir = tmp_path / "journal"
    jf.write_journal(jdir, [jf.session_start(at(1), "3", "hana"),
                            jf.sudo(at(2), "kenji-adm", "/usr/bin/apt upgrade"),
                            jf.sudo(at(3), "hana", "/usr/bin/id")])
    with Loop(config(jdir), runtime, tmp_path / "state") as loop:
        items = loop.committed.wait(3)
    kinds = [k for k, _ in items]
    assert kinds == ["host.session", "host.sudo", "host.sudo"]
    session, admin_sudo, staff_sudo = (m for _, m in items)
    assert session.person_id == "hana" and session.action == "opened" and session.at == at(1)
    assert admin_sudo.person_id == "kenji" and admin_sudo.admin_right is True
    assert staff_sudo.person_id == "hana" and staff_sudo.admin_right is False
    # the same events are in the node's signed journal, the last one with the cursor
    stored = runtime.journal.events(1)
    assert [e.kind for e in stored if e.kind.startswith("host.")] == kinds
    assert stored[-1].data["position"].startswith("s=")


def test_a_burst_is_one_event_with_the_count(tmp_path, runtime) -> None:
    jdir = tmp_path / "journal"
    jf.write_journal(jdir, [jf.sshd_failed(at(i / 100), "hana", "10.0.0.5")
                            for i in range(500)] + [jf.sshd_failed(at(6), "kenji", "10.0.0.9")])
    with Loop(config(jdir), runtime, tmp_path / "state") as loop:
        items = loop.committed.wait(2)
    assert len(items) == 2
    hana, kenji = (m for _, m in items)
    assert (hana.account, hana.count, hana.at, hana.last_at) == ("hana", 500, at(0), at(4.99))
    assert (kenji.account, kenji.count, kenji.last_at) == ("kenji", 1, None)


def test_restart_resumes_after_the_last_entry_nothing_twice_nothing_skipped(
        tmp_path, runtime) -> None:
    jdir = tmp_path / "journal"
    jf.write_journal(jdir, [jf.session_start(at(i), str(i), "hana") for i in range(5)],
                     name="a.journal")
    state = tmp_path / "state"
    with Loop(config(jdir), runtime, state) as loop:
        assert len(loop.committed.wait(5)) == 5
    # more entries arrive while the agent is down, in a second journal file
    jf.write_journal(jdir, [jf.session_start(at(10 + i), str(10 + i), "hana") for i in range(3)],
                     name="b.journal")
    with Loop(config(jdir), runtime, state) as loop:
        again = loop.committed.wait(3)
    assert [m.session_id for _, m in again] == ["10", "11", "12"]
    sessions = [e.data["session_id"] for e in runtime.journal.events(1)
                if e.kind == "host.session"]
    assert sessions == ["0", "1", "2", "3", "4", "10", "11", "12"]


def test_the_journal_position_wins_over_a_stale_file(tmp_path, runtime) -> None:
    """A crash after the commit and before the position file: the journal knows better."""
    jdir = tmp_path / "journal"
    jf.write_journal(jdir, [jf.session_start(at(i), str(i), "hana") for i in range(4)],
                     name="a.journal")
    state = tmp_path / "state"
    with Loop(config(jdir), runtime, state) as loop:
        loop.committed.wait(4)
    (state / "oplog-journal.pos").unlink()  # as if the process died before writing it
    jf.write_journal(jdir, [jf.session_start(at(9), "9", "hana")], name="b.journal")
    with Loop(config(jdir), runtime, state) as loop:
        again = loop.committed.wait(1)
    assert [m.session_id for _, m in again] == ["9"]  # not 0..3 again
    sessions = [e.data["session_id"] for e in runtime.journal.events(1)
                if e.kind == "host.session"]
    assert sessions == ["0", "1", "2", "3", "9"]


def test_a_cursor_no_longer_in_the_journal_is_journaled_as_a_gap(tmp_path, runtime) -> None:
    old = tmp_path / "old"
    jf.write_journal(old, [jf.session_start(at(1), "1", "hana")])
    src = JournalSource(old, None, now=at(5), first_lookback=timedelta(hours=1))
    cursor = src.read()[0].cursor
    src.close()
    state = tmp_path / "state"
    state.mkdir()
    (state / "oplog-journal.pos").write_text(cursor)
    jdir = tmp_path / "journal"  # the old file is gone (vacuumed); a newer one is there
    jf.write_journal(jdir, [jf.session_start(at(30), "2", "hana")])
    with Loop(config(jdir), runtime, state) as loop:
        items = loop.committed.wait(2)
    assert items[0][0] == "host.oplog_gap" and items[0][1].source == "journal"
    assert items[1][1].session_id == "2"


def test_an_individual_number_in_an_entry_never_reaches_the_journal(tmp_path, runtime) -> None:
    from controller.numguard import REDACTED, check_digit

    number = "12345678901" + check_digit("12345678901")
    spaced = f"{number[:4]} {number[4:8]} {number[8:]}"
    jdir = tmp_path / "journal"
    jf.write_journal(jdir, [jf.sudo(at(1), "hana", f"/usr/bin/grep {spaced} /srv/mynumber/a")])
    with Loop(config(jdir), runtime, tmp_path / "state") as loop:
        loop.committed.wait(1)
    [raw] = [body for _seq, kind, body in runtime.journal.raw(1, 100) if kind == "host.sudo"]
    text = raw.decode()
    assert REDACTED in text
    assert number not in text.replace(" ", "") and number[:4] + " " not in text


def test_reading_through_reopens_hands_out_every_entry_once(tmp_path, monkeypatch) -> None:
    """The reader is reopened at its cursor every REOPEN_AFTER entries (to let the mapped
    journal windows go): across the reopens, nothing twice, nothing skipped."""
    import controller.host.journal_source as js

    monkeypatch.setattr(js, "REOPEN_AFTER", 7)
    jdir = tmp_path / "journal"
    jf.write_journal(jdir, [jf.sudo(at(i), "kenji", f"/usr/bin/cmd {i}") for i in range(1, 51)])
    src = JournalSource(jdir, None, now=at(60), first_lookback=timedelta(hours=1))
    opened = [src._reader]
    seen: list[str] = []
    while batch := src.read(limit=5):
        seen += [op.command for e in batch if isinstance(op := classify(e), SudoOp)]
        if src._reader is not opened[-1]:
            opened.append(src._reader)
    src.close()
    assert seen == [f"/usr/bin/cmd {i}" for i in range(1, 51)]
    assert len(opened) >= 6 and src.gap is None  # it did reopen, and lost no position
