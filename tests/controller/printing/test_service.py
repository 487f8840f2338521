"""PrintRelease against the stateful FakeCups: events, denials, partial failures, expiry."""

from __future__ import annotations

from datetime import timedelta

import pytest

from controller.printing import FakeCups, JobState, PrintRelease, PrintSettings
from controller.printing.events import PRINT_DENIED, PRINT_EXPIRED, PRINT_RELEASE
from controller.printing.types import CupsUnavailable
from tests.controller.printing.conftest import Clock, Events


@pytest.fixture
def fake() -> FakeCups:
    f = FakeCups()
    f.add_queue("room", stopped=True)
    f.add_queue("room-release")
    return f


def make(fake: FakeCups, events: Events, clock: Clock, **settings: object) -> PrintRelease:
    s = PrintSettings(printers=["room"], **settings)  # type: ignore[arg-type]
    return PrintRelease(s, cups=fake, emit=events, clock=clock)


def test_release_moves_only_the_tappers_jobs(fake: FakeCups, events: Events, clock: Clock) -> None:
    a1 = fake.submit("room", "alice", created=clock.now - timedelta(minutes=5), copies=2)
    b1 = fake.submit("room", "bob")
    a2 = fake.submit("room", "alice", hold=True, impressions=3)
    svc = make(fake, events, clock)

    out = svc.release_for("p-alice", ["alice"], "room")

    assert out.ok and out.released == (a1, a2)
    assert fake.jobs[a1].queue == fake.jobs[a2].queue == "room-release"
    assert fake.jobs[b1].queue == "room" and fake.jobs[b1].state == JobState.PENDING
    (rel,) = events.of(PRINT_RELEASE)
    assert rel["person_id"] == "p-alice" and rel["printer"] == "room"
    assert rel["job_ids"] == [a1, a2]
    assert rel["copies"] == 3 and rel["pages"] == 4
    assert all(j["title"] is None and j["title_hmac"] for j in rel["jobs"])


def test_release_modes(fake: FakeCups, events: Events, clock: Clock) -> None:
    ids = [
        fake.submit("room", "alice", created=clock.now - timedelta(minutes=m)) for m in (3, 2, 1)
    ]
    assert make(fake, events, clock, release_mode="newest").release_for(
        "p", ["alice"], "room"
    ).released == (ids[2],)
    assert make(fake, events, clock, release_mode="oldest").release_for(
        "p", ["alice"], "room"
    ).released == (ids[0],)
    assert make(fake, events, clock).release_for("p", ["alice"], "room").released == (ids[1],)


@pytest.mark.parametrize(
    ("person", "kwargs", "reason"),
    [
        (None, {}, "unknown_card"),
        ("p", {"denial": "outside_schedule"}, "no_right"),
    ],
)
def test_person_denials_touch_no_job(
    fake: FakeCups, events: Events, clock: Clock, person: str | None, kwargs: dict, reason: str
) -> None:
    jid = fake.submit("room", "alice")
    out = make(fake, events, clock).release_for(person, ["alice"], "room", **kwargs)
    assert out.denial == reason and out.released == ()
    assert fake.jobs[jid].queue == "room"
    assert events.of(PRINT_DENIED) == [
        {"reason": reason, "printer": "room", "person_id": person, "job_ids": [], "detail": None}
    ]
    assert not [c for c in fake.calls if c[0] == "release"]


def test_right_and_presence_callables(fake: FakeCups, events: Events, clock: Clock) -> None:
    fake.submit("room", "alice")
    s = PrintSettings(printers=["room"], require_presence=True)
    inside: set[str] = set()
    svc = PrintRelease(
        s,
        cups=fake,
        emit=events,
        clock=clock,
        check_right=lambda person, printer, now: None if person == "p" else "not_permitted",
        is_present=lambda person, now: person in inside,
    )
    assert svc.release_for("q", ["alice"], "room").denial == "no_right"
    assert svc.release_for("p", ["alice"], "room").denial == "not_in_room"
    inside.add("p")
    assert svc.release_for("p", ["alice"], "room").ok
    with pytest.raises(ValueError, match="is_present"):
        PrintRelease(s, cups=fake, emit=events)


def test_no_jobs(fake: FakeCups, events: Events, clock: Clock) -> None:
    fake.submit("room", "bob")
    out = make(fake, events, clock).release_for("p", ["alice"], "room")
    assert out.denial == "no_jobs"
    assert events.kinds == [PRINT_DENIED]


def test_stopped_release_queue_keeps_jobs_held(
    fake: FakeCups, events: Events, clock: Clock
) -> None:
    jid = fake.submit("room", "alice")
    fake.add_queue("room-release", stopped=True)
    out = make(fake, events, clock).release_for("p", ["alice"], "room")
    assert out.denial == "printer_stopped" and out.still_held == (jid,)
    assert fake.jobs[jid].queue == "room" and fake.jobs[jid].state == JobState.PENDING
    (denied,) = events.of(PRINT_DENIED)
    assert denied["job_ids"] == [jid] and "room-release" in denied["detail"]


def test_cups_down_is_a_clear_denial(fake: FakeCups, events: Events, clock: Clock) -> None:
    jid = fake.submit("room", "alice")
    fake.down = True
    out = make(fake, events, clock).release_for("p", ["alice"], "room")
    assert out.denial == "cups_unavailable"
    (denied,) = events.of(PRINT_DENIED)
    assert denied["reason"] == "cups_unavailable" and "down" in denied["detail"]
    fake.down = False
    assert fake.jobs[jid].state == JobState.PENDING and fake.jobs[jid].queue == "room"


def test_cups_failing_mid_release_reports_both_halves(
    fake: FakeCups, events: Events, clock: Clock
) -> None:
    ids = [
        fake.submit("room", "alice", created=clock.now - timedelta(seconds=10 - i))
        for i in range(10)
    ]
    fake.fail_after_releases = 4
    svc = make(fake, events, clock)
    out = svc.release_for("p", ["alice"], "room")
    assert svc.counters["released_jobs"] == 4
    assert svc.counters["denied.cups_unavailable"] == svc.counters["cups_errors"] == 1
    assert out.released == tuple(ids[:4]) and out.still_held == tuple(ids[4:])
    assert out.denial == "cups_unavailable"
    assert events.kinds == [PRINT_RELEASE, PRINT_DENIED]
    assert events.of(PRINT_RELEASE)[0]["job_ids"] == ids[:4]
    assert events.of(PRINT_DENIED)[0]["job_ids"] == ids[4:]
    fake.down = False
    fake.fail_after_releases = None
    assert all(fake.jobs[i].queue == "room" for i in ids[4:])
    again = make(fake, events, clock).release_for("p", ["alice"], "room")
    assert again.released == tuple(ids[4:])


def test_job_cancelled_between_listing_and_release_is_skipped(
    fake: FakeCups, events: Events, clock: Clock
) -> None:
    a, b = fake.submit("room", "alice"), fake.submit("room", "alice")
    real_release = fake.release

    def release(job, to_queue):  # type: ignore[no-untyped-def]
        if job.job_id == a:
            fake.cancel(a)  # the owner cancelled it a moment ago
        real_release(job, to_queue)

    fake.release = release  # type: ignore[method-assign]
    out = make(fake, events, clock).release_for("p", ["alice"], "room")
    assert out.released == (b,) and out.gone == (a,) and out.ok


def test_unknown_printer_is_a_configuration_error(
    fake: FakeCups, events: Events, clock: Clock
) -> None:
    with pytest.raises(ValueError, match="not one of this node"):
        make(fake, events, clock).release_for("p", ["alice"], "lobby")


def test_expire_cancels_old_jobs_and_reports_owners(
    fake: FakeCups, events: Events, clock: Clock
) -> None:
    old = fake.submit("room", "alice", created=clock.now - timedelta(hours=5))
    young = fake.submit("room", "bob", created=clock.now - timedelta(hours=1))
    stranger = fake.submit("room", "mallory", created=clock.now - timedelta(hours=6))
    s = PrintSettings(printers=["room"])
    svc = PrintRelease(
        s, cups=fake, emit=events, clock=clock, person_for_user={"alice": "p-alice"}.get
    )
    assert svc.expire(clock.now) == [stranger, old]
    assert fake.jobs[old].state == JobState.CANCELED
    assert fake.jobs[young].state == JobState.PENDING
    (exp,) = events.of(PRINT_EXPIRED)
    assert exp["job_ids"] == [stranger, old] and exp["hold_hours"] == 4
    assert [(j["cups_user"], j["person_id"]) for j in exp["jobs"]] == [
        ("mallory", None),
        ("alice", "p-alice"),
    ]
    assert exp["jobs"][1]["held_hours"] == 5
    assert svc.expire(clock.now + timedelta(hours=3, minutes=1)) == [young]


def test_expire_restops_a_hold_queue_someone_started(
    fake: FakeCups, events: Events, clock: Clock
) -> None:
    fake.add_queue("room", stopped=False)
    svc = make(fake, events, clock)
    svc.expire(clock.now)
    assert fake.queues["room"].stopped


def test_expire_with_cups_down_raises_and_cancels_nothing(
    fake: FakeCups, events: Events, clock: Clock
) -> None:
    jid = fake.submit("room", "alice", created=clock.now - timedelta(hours=9))
    fake.down = True
    with pytest.raises(CupsUnavailable):
        make(fake, events, clock).expire(clock.now)
    fake.down = False
    assert fake.jobs[jid].state == JobState.PENDING
    assert events.items == []


# -- the staging queue ---------------------------------------------------------------------


@pytest.fixture
def staged(fake: FakeCups) -> FakeCups:
    fake.add_queue("room-staging", stopped=True)
    return fake


def test_a_batch_goes_first_job_alone_then_one_bulk_move(
    staged: FakeCups, events: Events, clock: Clock
) -> None:
    alices = []
    for m in range(6, 0, -1):
        alices.append(staged.submit("room", "alice", created=clock.now - timedelta(minutes=m)))
        staged.submit("room", "bob")
    svc = make(staged, events, clock)

    out = svc.release_for("p-alice", ["alice"], "room")

    assert out.ok and out.released == tuple(alices)
    assert events.of(PRINT_RELEASE)[0]["job_ids"] == alices
    moves = [c for c in staged.calls if c[0] in ("release", "move_all")]
    assert moves == [("release", alices[0])] + [("release", j) for j in alices[1:]] + [
        ("move_all", ("room-staging", "room-release"))
    ]
    assert all(staged.jobs[j].queue == "room-release" for j in alices)
    bobs = [j for j in staged.jobs.values() if j.owner == "bob"]
    assert len(bobs) == 6 and all(j.queue == "room" for j in bobs)


def test_bulk_move_failing_reports_the_staged_jobs_held(
    staged: FakeCups, events: Events, clock: Clock
) -> None:
    ids = [staged.submit("room", "alice") for _ in range(5)]
    staged.fail_move_all = True

    out = make(staged, events, clock).release_for("p", ["alice"], "room")

    assert out.denial == "cups_unavailable"
    assert out.released == (ids[0],) and out.still_held == tuple(ids[1:])
    assert events.kinds == [PRINT_RELEASE, PRINT_DENIED]
    assert events.of(PRINT_DENIED)[0]["job_ids"] == ids[1:]
    assert all(staged.jobs[j].queue == "room-staging" for j in ids[1:])  # stopped: not printing

    staged.down, staged.fail_move_all = False, False
    again = make(staged, events, clock).release_for("p", ["alice"], "room")
    assert again.released == tuple(ids[1:])
    assert all(staged.jobs[j].queue == "room-release" for j in ids)


def test_leftovers_on_staging_go_back_on_hold_before_anyone_is_served(
    staged: FakeCups, events: Events, clock: Clock
) -> None:
    alice = staged.submit("room", "alice")
    staged.release(staged.jobs[alice], "room-staging")  # a crash left it there
    bob = staged.submit("room", "bob")

    out = make(staged, events, clock).release_for("p-bob", ["bob"], "room")

    assert out.released == (bob,)
    assert staged.jobs[alice].queue == "room" and staged.jobs[alice].state == JobState.PENDING


def test_expire_sees_jobs_left_on_staging(staged: FakeCups, events: Events, clock: Clock) -> None:
    old = staged.submit("room", "alice", created=clock.now - timedelta(hours=5))
    staged.release(staged.jobs[old], "room-staging")

    assert make(staged, events, clock).expire(clock.now) == [old]
    assert staged.jobs[old].state == JobState.CANCELED


def test_without_a_staging_queue_or_for_two_jobs_each_job_moves_alone(
    fake: FakeCups, staged: FakeCups, events: Events, clock: Clock
) -> None:
    ids = [fake.submit("room", "alice") for _ in range(2)]
    assert make(fake, events, clock).release_for("p", ["alice"], "room").released == tuple(ids)
    assert not [c for c in fake.calls if c[0] == "move_all"]
    fake.queues.pop("room-staging")
    more = [fake.submit("room", "alice") for _ in range(4)]
    assert make(fake, events, clock).release_for("p", ["alice"], "room").released == tuple(more)
    assert not [c for c in fake.calls if c[0] == "move_all"]
    assert all(fake.jobs[j].queue == "room-release" for j in ids + more)


def test_a_staging_queue_removed_since_the_last_check_is_not_used(
    staged: FakeCups, events: Events, clock: Clock
) -> None:
    svc = make(staged, events, clock)
    svc.ensure_holding()  # finds the staging queue
    staged.queues.pop("room-staging")
    ids = [staged.submit("room", "alice") for _ in range(4)]

    out = svc.release_for("p", ["alice"], "room")

    assert out.ok and out.released == tuple(ids)
    assert all(staged.jobs[j].queue == "room-release" for j in ids)
    assert not [c for c in staged.calls if c[0] == "move_all"]
