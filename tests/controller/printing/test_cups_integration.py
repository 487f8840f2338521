"""The release service and the pycups adapter against a real, private cupsd.

Each test gets its own hold/release queue pair on the session's cupsd. Waiting for CUPS to finish
printing polls CUPS (an external process we cannot subscribe to) through ``wait_until``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.printing import JobState, PrintRelease, PrintSettings
from controller.printing.cups_adapter import CupsAdapter
from controller.printing.events import PRINT_DENIED, PRINT_EXPIRED, PRINT_RELEASE
from controller.printing.types import (
    RELEASED_STATES,
    WAITING_STATES,
    CupsUnavailable,
    HeldJob,
    JobLocation,
    PrintError,
)
from tests.controller.printing.conftest import Events
from tests.support import free_port, unavailable, wait_until
from tests.support.cupsd import Cupsd

pytestmark = pytest.mark.integration

_names = itertools.count(1)

#: A released job is on its release queue. When cupsd is SIGKILLed just as one finishes printing,
#: CUPS' crash recovery may show it aborted ("data files have gone away": it printed, and the
#: completion was not yet saved). It left the hold queue because of a recorded release: neither
#: lost nor back on hold.
AFTER_RELEASE = RELEASED_STATES | {JobState.ABORTED}


@pytest.fixture(scope="module", autouse=True)
def _root_only() -> None:
    if os.geteuid() != 0:
        unavailable("the private cupsd and libcups' Local root certificate need root")


@pytest.fixture
def room(cupsd: Cupsd) -> tuple[str, str]:
    """A fresh hold queue and its release queue, set up as in production."""
    return cupsd.add_room_printer(f"room{next(_names)}")


@pytest.fixture
def adapter(cupsd: Cupsd) -> CupsAdapter:
    return CupsAdapter(cupsd.host, cupsd.port, state_dir=cupsd.state)


def service(
    adapter: object, events: Events, printers: Sequence[str], **settings: object
) -> PrintRelease:
    s = PrintSettings(printers=list(printers), **settings)  # type: ignore[arg-type]
    return PrintRelease(s, cups=adapter, emit=events)  # type: ignore[arg-type]


def where(adapter: CupsAdapter, ids: Sequence[int]) -> dict[int, JobLocation]:
    found = adapter.locate(ids)
    assert set(found) == set(ids), f"jobs lost: {set(ids) - set(found)}"
    return found


def wait_done(adapter: CupsAdapter, ids: Sequence[int], queue: str) -> None:
    def done() -> bool:
        locs = adapter.locate(ids)
        return all(locs[i].queue == queue and locs[i].state == JobState.COMPLETED for i in ids)

    wait_until(done, 20, f"jobs {list(ids)} to print on {queue}", step=0.05)


# -- the hold -------------------------------------------------------------------------------


def test_a_no_hold_client_is_still_held(
    cupsd: Cupsd, room: tuple[str, str], adapter: CupsAdapter
) -> None:
    hold, _ = room
    # The two CUPS mechanisms that look right but do not hold a no-hold client (CUPS 2.4):
    default_q = cupsd.add_printer(f"{hold}-default", hold_default=True)
    hnj_q = cupsd.add_printer(f"{hold}-hnj")
    subprocess.run(
        ["cupsdisable", "-h", cupsd.server, "--hold", hnj_q],
        check=True,
        env=cupsd.env(),
        capture_output=True,
    )
    held = [
        cupsd.submit("alice", hold, hold="no-hold"),
        cupsd.submit("bob", hold, hold="immediate"),
        cupsd.submit("carol", hold),
        cupsd.submit("dave", hold, hold="indefinite"),
    ]
    leaked = [cupsd.submit("alice", default_q, hold="no-hold"), cupsd.submit("bob", hnj_q)]

    # Both look-alikes print at once...
    wait_done(adapter, leaked[:1], default_q)
    wait_done(adapter, leaked[1:], hnj_q)
    # ...while every job on the stopped hold queue still waits, whatever its client asked.
    locs = where(adapter, held)
    assert all(locs[i].queue == hold and locs[i].state in WAITING_STATES for i in held)
    waiting = {j.job_id: j.owner for j in adapter.waiting_jobs(hold)}
    assert waiting == dict(zip(held, ["alice", "bob", "carol", "dave"], strict=True))


def test_the_hold_survives_a_cupsd_crash_and_restart(
    cupsd: Cupsd, room: tuple[str, str], adapter: CupsAdapter
) -> None:
    hold, _ = room
    before = cupsd.submit("alice", hold, hold="no-hold")
    cupsd.restart()
    after = cupsd.submit("alice", hold, hold="no-hold")
    control = cupsd.add_printer(f"{hold}-control")
    printed = cupsd.submit("alice", control)
    wait_done(adapter, [printed], control)
    assert adapter.queue_status(hold).stopped
    locs = where(adapter, [before, after])
    assert all(loc.queue == hold and loc.state == JobState.PENDING for loc in locs.values())


def test_clients_cannot_print_to_the_release_queue_directly(
    cupsd: Cupsd, room: tuple[str, str]
) -> None:
    _, release = room
    with pytest.raises(RuntimeError, match="Not allowed"):
        cupsd.submit("alice", release)


def test_a_job_owner_cannot_bypass_the_hold(
    cupsd: Cupsd, room: tuple[str, str], adapter: CupsAdapter, tmp_path: Path
) -> None:
    """Moving one's job to the release queue, resuming it or starting the hold queue needs the
    system group: alice (no root certificate, no password) is refused and her job stays held."""
    hold, release = room
    jid = cupsd.submit("alice", hold)
    env = cupsd.env() | {"CUPS_STATEDIR": str(tmp_path), "CUPS_USER": "alice"}
    attempts = [
        ["lpmove", "-h", cupsd.server, str(jid), release],  # lpmove takes the user from CUPS_USER
        ["lp", "-h", cupsd.server, "-U", "alice", "-i", str(jid), "-H", "resume"],
        ["cupsenable", "-h", cupsd.server, "-U", "alice", hold],
    ]
    for cmd in attempts:
        done = subprocess.run(
            cmd,
            env=env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # no controlling tty: libcups cannot prompt for a password
            timeout=20,
        )
        assert done.returncode != 0, f"{cmd[0]} as alice was allowed: {done.stdout}"
    assert adapter.queue_status(hold).stopped
    loc = where(adapter, [jid])[jid]
    assert loc.queue == hold and loc.state in WAITING_STATES


# -- release --------------------------------------------------------------------------------


def test_release_for_alice_releases_only_alices_jobs_on_that_printer(
    cupsd: Cupsd, room: tuple[str, str], adapter: CupsAdapter, events: Events
) -> None:
    hold, release = room
    other_hold, _ = cupsd.add_room_printer(f"{hold}-other")
    mine = [
        cupsd.submit("alice", hold, title="給与明細 2026-11", copies=2),
        cupsd.submit("alice", hold, hold="indefinite"),
        cupsd.submit("a.suzuki", hold),
    ]
    bobs = cupsd.submit("bob", hold)
    elsewhere = cupsd.submit("alice", other_hold)
    svc = service(adapter, events, [hold, other_hold])

    out = svc.release_for("p-alice", ["alice", "a.suzuki"], hold)

    assert out.ok and sorted(out.released) == sorted(mine)
    wait_done(adapter, mine, release)
    locs = where(adapter, [bobs, elsewhere])
    assert locs[bobs].queue == hold and locs[bobs].state in WAITING_STATES
    assert locs[elsewhere].queue == other_hold and locs[elsewhere].state in WAITING_STATES
    (rel,) = events.of(PRINT_RELEASE)
    assert rel["person_id"] == "p-alice" and rel["printer"] == hold
    assert sorted(rel["job_ids"]) == sorted(mine)
    assert rel["copies"] == 4
    assert {j["cups_user"] for j in rel["jobs"]} == {"alice", "a.suzuki"}
    assert all(j["title"] is None and len(j["title_hmac"]) == 16 for j in rel["jobs"])


def test_release_newest_only(
    cupsd: Cupsd, room: tuple[str, str], adapter: CupsAdapter, events: Events
) -> None:
    hold, release = room
    first, second = cupsd.submit("alice", hold), cupsd.submit("alice", hold)
    out = service(adapter, events, [hold], release_mode="newest").release_for("p", ["alice"], hold)
    assert out.released == (second,)
    assert where(adapter, [first])[first].queue == hold


def test_unknown_card_and_no_jobs_are_denied(
    cupsd: Cupsd, room: tuple[str, str], adapter: CupsAdapter, events: Events
) -> None:
    hold, _ = room
    jid = cupsd.submit("bob", hold)
    svc = service(adapter, events, [hold])
    assert svc.release_for(None, [], hold).denial == "unknown_card"
    assert svc.release_for("p-alice", ["alice"], hold).denial == "no_jobs"
    assert [d["reason"] for d in events.of(PRINT_DENIED)] == ["unknown_card", "no_jobs"]
    assert where(adapter, [jid])[jid].queue == hold


def test_stopped_printer_denies_and_keeps_jobs_held(
    cupsd: Cupsd, room: tuple[str, str], adapter: CupsAdapter, events: Events
) -> None:
    hold, release = room
    jid = cupsd.submit("alice", hold)
    adapter.pause(release)
    out = service(adapter, events, [hold]).release_for("p", ["alice"], hold)
    assert out.denial == "printer_stopped" and out.still_held == (jid,)
    loc = where(adapter, [jid])[jid]
    assert loc.queue == hold and loc.state in WAITING_STATES
    assert events.of(PRINT_DENIED)[0]["job_ids"] == [jid]


# -- expiry ---------------------------------------------------------------------------------


def test_expiry_cancels_and_reports(
    cupsd: Cupsd, room: tuple[str, str], adapter: CupsAdapter, events: Events
) -> None:
    hold, _ = room
    jobs = [cupsd.submit("alice", hold), cupsd.submit("bob", hold, hold="indefinite")]
    svc = PrintRelease(
        PrintSettings(printers=[hold], hold_hours=4),
        cups=adapter,
        emit=events,
        person_for_user={"alice": "p-alice"}.get,
    )
    now = datetime.now(UTC)
    assert svc.expire(now + timedelta(hours=3)) == []
    assert sorted(svc.expire(now + timedelta(hours=4, minutes=1))) == sorted(jobs)
    locs = where(adapter, jobs)
    assert all(loc.state == JobState.CANCELED for loc in locs.values())
    (exp,) = events.of(PRINT_EXPIRED)
    assert sorted(exp["job_ids"]) == sorted(jobs)
    owners = {j["cups_user"]: j["person_id"] for j in exp["jobs"]}
    assert owners == {"alice": "p-alice", "bob": None}


def test_expire_restops_a_hold_queue_that_was_started(
    cupsd: Cupsd, room: tuple[str, str], adapter: CupsAdapter, events: Events
) -> None:
    hold, _ = room
    subprocess.run(
        ["cupsenable", "-h", cupsd.server, hold], check=True, env=cupsd.env(), capture_output=True
    )
    assert not adapter.queue_status(hold).stopped
    service(adapter, events, [hold]).expire(datetime.now(UTC))
    assert adapter.queue_status(hold).stopped


# -- CUPS failures --------------------------------------------------------------------------


class KillAfter:
    """The real adapter, with cupsd SIGKILLed right after the n-th successful release."""

    def __init__(self, inner: CupsAdapter, cupsd: Cupsd, n: int) -> None:
        self.inner, self.cupsd, self.left = inner, cupsd, n

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def release(self, job: HeldJob, to_queue: str) -> None:
        self.inner.release(job, to_queue)
        self.left -= 1
        if self.left == 0:
            self.cupsd.kill()


@pytest.fixture
def revive(cupsd: Cupsd) -> Iterator[None]:
    """Whatever happens in the test, leave cupsd running for the next one."""
    yield
    if cupsd.proc is None or cupsd.proc.poll() is not None:
        cupsd.start()


def test_cups_down_is_a_denial_and_loses_nothing(
    cupsd: Cupsd, room: tuple[str, str], adapter: CupsAdapter, events: Events, revive: None
) -> None:
    hold, release = room
    ids = [cupsd.submit("alice", hold) for _ in range(3)]
    cupsd.kill()
    out = service(adapter, events, [hold]).release_for("p", ["alice"], hold)
    assert out.denial == "cups_unavailable"
    (denied,) = events.of(PRINT_DENIED)
    assert denied["reason"] == "cups_unavailable" and "jobs stay held" in denied["detail"]
    cupsd.start()
    locs = where(adapter, ids)
    assert all(loc.queue == hold and loc.state in WAITING_STATES for loc in locs.values())
    assert sorted(service(adapter, events, [hold]).release_for("p", ["alice"], hold).released) == (
        sorted(ids)
    )


@pytest.mark.parametrize("staging", [True, False], ids=["staging", "one-by-one"])
def test_cupsd_killed_mid_release_loses_nothing(
    cupsd: Cupsd, adapter: CupsAdapter, events: Events, revive: None, staging: bool
) -> None:
    """Killed after the fourth move: with a staging queue the first job is on the release queue
    and three wait on the stopped staging queue (still held); without, four were released."""
    hold, release = cupsd.add_room_printer(f"room{next(_names)}", staging=staging)
    ids = [cupsd.submit("alice", hold) for _ in range(10)]
    svc = service(KillAfter(adapter, cupsd, 4), events, [hold])

    out = svc.release_for("p", ["alice"], hold)

    assert out.denial == "cups_unavailable"
    released = 1 if staging else 4
    assert out.released == tuple(ids[:released]) and out.still_held == tuple(ids[released:])
    assert events.kinds == [PRINT_RELEASE, PRINT_DENIED]
    assert events.of(PRINT_DENIED)[0]["job_ids"] == list(out.still_held)
    cupsd.start()
    locs = where(adapter, ids)
    assert {i for i in ids if locs[i].queue == release} == set(out.released)
    assert all(locs[i].state in AFTER_RELEASE for i in out.released), locs
    held_on = {hold, f"{hold}-staging"} if staging else {hold}
    assert all(locs[i].queue in held_on and locs[i].state in WAITING_STATES
               for i in out.still_held)
    if staging:
        assert {i for i in ids if locs[i].queue == f"{hold}-staging"} == set(ids[1:4])
    again = service(adapter, events, [hold]).release_for("p", ["alice"], hold)
    assert again.released == out.still_held
    locs = where(adapter, ids)
    assert all(locs[i].queue == release for i in ids), locs


def test_jobs_left_on_staging_go_back_on_hold_not_to_the_next_person(
    cupsd: Cupsd, room: tuple[str, str], adapter: CupsAdapter, events: Events, revive: None
) -> None:
    """cupsd dies between staging alice's jobs and moving them on: they wait on the stopped
    staging queue. Bob's tap then moves them back to the hold queue and releases only his."""
    hold, release = room
    alices = [cupsd.submit("alice", hold) for _ in range(5)]
    bobs = [cupsd.submit("bob", hold) for _ in range(4)]

    class KillBeforeBulk:
        def __getattr__(self, name: str) -> object:
            return getattr(adapter, name)

        def move_all(self, from_queue: str, to_queue: str) -> None:
            cupsd.kill()
            adapter.move_all(from_queue, to_queue)

    out = service(KillBeforeBulk(), events, [hold]).release_for("p-alice", ["alice"], hold)
    assert out.released == (alices[0],) and out.still_held == tuple(alices[1:])
    cupsd.start()
    locs = where(adapter, alices)
    assert all(locs[i].queue == f"{hold}-staging" for i in alices[1:]), locs

    svc = service(adapter, events, [hold])
    bob = svc.release_for("p-bob", ["bob"], hold)

    assert bob.ok and bob.released == tuple(bobs)
    locs = where(adapter, alices + bobs)
    assert all(locs[i].queue == hold and locs[i].state in WAITING_STATES for i in alices[1:])
    assert all(locs[i].queue == release for i in bobs)
    assert svc.release_for("p-alice", ["alice"], hold).released == tuple(alices[1:])


def test_a_batch_is_released_in_order_and_only_the_tappers(
    cupsd: Cupsd, adapter: CupsAdapter, events: Events, tmp_path: Path
) -> None:
    """30 of alice's jobs among bob's: the first prints at once, the rest go through the
    staging queue in one move, and the printer receives them in submission order."""
    fifo = Path(tempfile.mkdtemp(prefix="secroom-printer-")) / "printer"
    os.mkfifo(fifo, 0o600)
    fd = os.open(fifo, os.O_RDWR)  # never end-of-file; cupsd's open never waits
    printed = bytearray()

    def drain() -> None:  # the printer: reads whatever cupsd sends
        with contextlib.suppress(OSError):
            while chunk := os.read(fd, 1 << 16):
                printed.extend(chunk)

    threading.Thread(target=drain, daemon=True).start()
    try:
        hold, release = cupsd.add_room_printer(f"room{next(_names)}", device=f"file://{fifo}")
        alices, bobs = [], []
        for n in range(30):
            alices.append(cupsd.submit("alice", hold, title=f"alice-{n:02d}"))
            if n % 3 == 0:
                bobs.append(cupsd.submit("bob", hold, title=f"bob-{n:02d}"))

        out = service(adapter, events, [hold]).release_for("p-alice", ["alice"], hold)

        assert out.ok and out.released == tuple(alices)
        assert events.of(PRINT_RELEASE)[0]["job_ids"] == alices
        wait_done(adapter, alices, release)
        locs = where(adapter, bobs)
        assert all(loc.queue == hold and loc.state in WAITING_STATES for loc in locs.values())
        def titles() -> list[bytes]:
            return re.findall(rb"%%Title: \(?([a-z]+-[0-9]+)", bytes(printed))

        wait_until(lambda: len(titles()) >= 30, 10, "the printer to receive 30 jobs", step=0.05)
        assert [t.decode() for t in titles()] == [f"alice-{n:02d}" for n in range(30)]
    finally:
        os.close(fd)
        shutil.rmtree(fifo.parent, ignore_errors=True)


def test_cupsd_killed_during_a_request_leaves_every_job_released_or_held(
    cupsd: Cupsd, room: tuple[str, str], adapter: CupsAdapter, events: Events, revive: None
) -> None:
    """The kill lands while a release request is in flight, from another thread."""
    hold, release = room
    ids = [cupsd.submit("alice", hold) for _ in range(20)]
    third = threading.Event()

    class Signal:
        count = 0

        def __getattr__(self, name: str) -> object:
            return getattr(adapter, name)

        def release(self, job: HeldJob, to_queue: str) -> None:
            adapter.release(job, to_queue)
            Signal.count += 1
            if Signal.count == 3:
                third.set()

    def kill_on_third() -> None:
        third.wait(10)
        cupsd.kill()

    killer = threading.Thread(target=kill_on_third)
    killer.start()
    out = service(Signal(), events, [hold]).release_for("p", ["alice"], hold)
    killer.join(10)
    cupsd.start()

    locs = where(adapter, ids)
    on_release = {i for i in ids if locs[i].queue == release}
    assert set(out.released) <= on_release
    assert len(on_release - set(out.released)) <= 1  # at most the request cut in flight
    assert all(locs[i].state in AFTER_RELEASE for i in on_release), locs
    assert all(locs[i].state in WAITING_STATES for i in set(ids) - on_release), locs
    if out.denial is not None:
        assert out.denial == "cups_unavailable"
        assert set(out.still_held) == set(ids) - set(out.released)


# -- adapter errors -------------------------------------------------------------------------


def test_adapter_translates_errors(cupsd: Cupsd, adapter: CupsAdapter) -> None:
    with pytest.raises(PrintError, match="no queue 'nope'"):
        adapter.queue_status("nope")
    nobody = CupsAdapter("127.0.0.1", free_port())
    with pytest.raises(CupsUnavailable, match="cannot connect"):
        nobody.waiting_jobs("room")
