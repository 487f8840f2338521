"""The door state machine on gpiozero's own MockFactory, timed by a ManualClock."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import ValidationError

from controller.door import (
    DENY_RED_S,
    GRANT_BEEP,
    Door,
    DoorConfig,
    DoorError,
)
from controller.events import KINDS
from controller.gpio import GpioError, Pins, make_pin_factory
from controller.timers import Cancellable, ManualClock, ThreadClock
from tests.controller.door_fixtures import Recorder

RELAY, CONTACT, REX, GREEN, RED, BUZZER = 17, 27, 22, 5, 6, 13


def config(**overrides: Any) -> DoorConfig:
    base: dict[str, Any] = {
        "id": "main",
        "relay_pin": RELAY,
        "contact_pin": CONTACT,
        "rex_pin": REX,
        "led_green_pin": GREEN,
        "led_red_pin": RED,
        "buzzer_pin": BUZZER,
        "unlock_s": 5.0,
        "held_open_s": 30.0,
    }
    base.update(overrides)
    return DoorConfig.model_validate(base)


@dataclass
class Rig:
    factory: Any
    clock: ManualClock
    events: Recorder
    door: Door

    def pin(self, number: int) -> Any:
        return self.factory.pin(number)

    def open(self) -> None:
        self.pin(CONTACT).drive_high()  # reed switch to ground opens: pull-up reads high

    def shut(self) -> None:
        self.pin(CONTACT).drive_low()

    def press_rex(self) -> None:
        self.pin(REX).drive_low()
        self.pin(REX).drive_high()


def build(**overrides: Any) -> Rig:
    factory = make_pin_factory("mock")
    clock, events = ManualClock(), Recorder()
    door = Door(config(**overrides), pins=factory, emit=events, clock=clock)
    rig = Rig(factory, clock, events, door)
    rig.shut()  # the door is closed when the test begins
    events.clear()
    return rig


@pytest.fixture
def rig() -> Iterator[Rig]:
    r = build()
    yield r
    r.door.close()


def assert_typed(events: Recorder) -> None:
    for kind, data in events.events:
        KINDS[kind].model.model_validate(data)


# --- start-up and relay semantics ----------------------------------------------------------


def test_fail_secure_relay_never_energises_during_start_up(rig: Rig) -> None:
    relay = rig.pin(RELAY)
    assert relay.function == "output"
    assert [s.state for s in relay.states] == [False]  # never went high, not even briefly
    assert not rig.door.relay_energised and rig.door.state == "locked"


def test_active_low_relay_is_configured_straight_to_its_idle_level() -> None:
    factory = make_pin_factory("mock")
    factory.pin(RELAY).drive_high()  # the relay board's own pull-up holds the input high
    door = Door(config(relay_active_high=False), pins=factory, emit=Recorder(), clock=ManualClock())
    try:
        relay = factory.pin(RELAY)
        assert all(s.state for s in relay.states[1:])  # never pulled low (= energised)
        assert relay.state is True and not door.relay_energised
        door.grant(person_id="alice")
        assert relay.state is False and door.relay_energised  # active low: low energises
    finally:
        door.close()


def test_fail_safe_maglock_is_energised_to_lock_and_released_to_unlock() -> None:
    rig = build(fail_mode="safe")
    relay = rig.pin(RELAY)
    assert [s.state for s in relay.states] == [False, True]  # locked as the last start-up step
    assert rig.door.state == "locked" and rig.door.relay_energised
    rig.door.grant(person_id="alice")
    assert rig.door.state == "unlocked" and not rig.door.relay_energised
    rig.clock.advance(5.0)
    assert rig.door.state == "locked" and rig.door.relay_energised
    rig.door.close()
    assert relay.state is False  # fail-safe: a stopped controller frees the door


def test_fail_secure_close_leaves_the_door_locked(rig: Rig) -> None:
    rig.door.grant(person_id="alice")
    rig.door.close()
    assert rig.pin(RELAY).state is False
    assert rig.pin(GREEN).state is False
    rig.door.close()  # idempotent
    with pytest.raises(DoorError):
        rig.door.grant(person_id="alice")


def test_close_releases_the_pins_for_reuse(rig: Rig) -> None:
    rig.door.close()
    again = Door(config(), pins=rig.factory, emit=Recorder(), clock=ManualClock())
    again.close()


# --- grant, deny, relock ----------------------------------------------------------------


def test_grant_energises_at_once_then_releases_after_unlock_s(rig: Rig) -> None:
    rig.door.grant(person_id="alice")
    assert rig.door.relay_energised and rig.door.state == "unlocked"
    assert rig.pin(RELAY).state is True and rig.pin(GREEN).state is True
    assert rig.pin(BUZZER).state is True
    rig.clock.advance(GRANT_BEEP[0])
    assert rig.pin(BUZZER).state is False  # short beep
    rig.clock.advance(4.9 - GRANT_BEEP[0])
    assert rig.door.relay_energised
    rig.clock.advance(0.1)
    assert not rig.door.relay_energised and rig.door.state == "locked"
    assert rig.pin(GREEN).state is False
    assert [s.state for s in rig.pin(RELAY).states] == [False, True, False]
    assert rig.events.events == []  # nobody opened it: no door events


def test_a_second_grant_extends_the_pulse(rig: Rig) -> None:
    rig.door.grant(person_id="alice")
    rig.clock.advance(3)
    rig.door.grant(person_id="bob")
    rig.clock.advance(3)  # 6 s after the first grant, 3 s after the second
    assert rig.door.state == "unlocked"
    rig.clock.advance(2)
    assert rig.door.state == "locked"


def test_deny_lights_red_and_beeps_without_touching_the_relay(rig: Rig) -> None:
    rig.door.deny()
    assert rig.pin(RED).state is True and rig.pin(BUZZER).state is True
    rig.clock.advance(DENY_RED_S)
    assert rig.pin(RED).state is False and rig.pin(BUZZER).state is False
    buzzes = [s.state for s in rig.pin(BUZZER).states[1:]]
    assert buzzes == [True, False, True, False, True, False]  # three beeps
    assert [s.state for s in rig.pin(RELAY).states] == [False]


# --- contact: opened, closed, forced, held open -----------------------------------------


def test_authorised_opening_is_reported_and_closing_relocks_early(rig: Rig) -> None:
    rig.door.grant(person_id="alice", reason="access")
    rig.clock.advance(1.5)
    rig.open()
    rig.clock.advance(2.0)
    rig.shut()
    assert rig.events.kinds() == ["door.opened", "door.closed"]
    opened, closed = rig.events.of("door.opened")[0], rig.events.of("door.closed")[0]
    assert opened == {"door": "main", "via": "grant", "person_id": "alice", "reason": "access"}
    assert closed == {"door": "main", "open_s": 2.0, "via": "grant"}
    assert rig.door.state == "locked" and not rig.door.relay_energised  # one grant, one passage
    assert_typed(rig.events)


def test_opening_while_locked_is_forced_and_sounds_the_alarm(rig: Rig) -> None:
    rig.open()
    assert rig.events.kinds() == ["door.forced"]
    assert rig.pin(BUZZER).state is True and rig.door.contact_open is True
    rig.clock.advance(60)
    assert rig.pin(BUZZER).state is True  # the alarm lasts while the door is open
    rig.shut()
    assert rig.pin(BUZZER).state is False
    assert rig.events.kinds() == ["door.forced", "door.held_open", "door.closed"]
    assert rig.events.of("door.closed")[0]["via"] == "forced"
    assert_typed(rig.events)


def test_opening_after_the_pulse_ended_is_forced(rig: Rig) -> None:
    rig.door.grant(person_id="alice")
    rig.clock.advance(5.0)
    rig.open()
    assert rig.events.kinds() == ["door.forced"]


def test_held_open_is_reported_once_after_held_open_s(rig: Rig) -> None:
    rig.door.grant(person_id="alice")
    rig.open()
    rig.clock.advance(29.9)
    assert rig.events.kinds() == ["door.opened"]
    rig.clock.advance(0.1)
    assert rig.events.kinds() == ["door.opened", "door.held_open"]
    held = rig.events.of("door.held_open")[0]
    assert held == {"door": "main", "open_s": 30.0, "via": "grant", "person_id": "alice"}
    assert rig.pin(BUZZER).state is True
    rig.clock.advance(120)
    assert rig.events.kinds().count("door.held_open") == 1
    rig.shut()
    assert rig.events.of("door.closed")[0]["open_s"] == 150.0
    assert rig.pin(BUZZER).state is False


def test_closing_before_held_open_s_cancels_the_report(rig: Rig) -> None:
    rig.door.grant(person_id="alice")
    rig.open()
    rig.clock.advance(10)
    rig.shut()
    rig.clock.advance(100)
    assert "door.held_open" not in rig.events.kinds()


def test_door_open_at_start_up_is_watched_but_not_called_forced() -> None:
    factory = make_pin_factory("mock")
    clock, events = ManualClock(), Recorder()
    door = Door(config(held_open_s=10), pins=factory, emit=events, clock=clock)
    try:
        assert door.contact_open is True  # pull-up, nothing driving it: reads open
        clock.advance(10)
        assert events.kinds() == ["door.held_open"]
        assert events.of("door.held_open")[0]["via"] == "unknown"
    finally:
        door.close()


def test_contact_wired_closed_high() -> None:
    rig = build(contact_closed_is_low=False)  # pulled down: low reads open
    assert rig.door.contact_open is True
    rig.pin(CONTACT).drive_high()  # closed
    assert rig.door.contact_open is False
    rig.events.clear()
    rig.pin(CONTACT).drive_low()
    assert rig.events.kinds() == ["door.forced"]
    rig.door.close()


# --- REX and lockdown -------------------------------------------------------------------


def test_rex_unlocks_and_the_opening_is_authorised(rig: Rig) -> None:
    rig.press_rex()
    assert rig.door.state == "unlocked" and rig.door.relay_energised
    rig.open()
    rig.shut()
    assert rig.events.kinds() == ["door.rex", "door.opened", "door.closed"]
    assert rig.events.of("door.opened")[0]["via"] == "rex"
    assert rig.events.of("door.closed")[0]["via"] == "rex"
    assert_typed(rig.events)


def test_lockdown_relocks_at_once_and_keeps_red_on(rig: Rig) -> None:
    rig.door.grant(person_id="alice")
    rig.door.lockdown(True)
    assert rig.door.state == "locked" and not rig.door.relay_energised
    assert rig.door.in_lockdown and rig.pin(RED).state is True
    rig.door.lockdown(True)  # no change, no second event
    rig.door.deny()
    rig.clock.advance(DENY_RED_S)
    assert rig.pin(RED).state is True  # the deny flash ends on lockdown red
    rig.open()
    assert rig.events.of("door.forced")[0]["lockdown"] is True
    rig.shut()
    rig.door.lockdown(False)
    assert rig.pin(RED).state is False
    assert [d["on"] for d in rig.events.of("door.lockdown")] == [True, False]


def test_rex_still_works_in_lockdown_so_nobody_is_trapped(rig: Rig) -> None:
    rig.door.lockdown(True)
    rig.press_rex()
    assert rig.door.state == "unlocked"
    assert rig.events.of("door.rex")[0]["lockdown"] is True


# --- config and GPIO boundary -----------------------------------------------------------


def test_config_rejects_shared_pins_and_unknown_keys() -> None:
    with pytest.raises(ValidationError, match="used twice"):
        config(contact_pin=RELAY)
    with pytest.raises(ValidationError, match="used twice"):
        config(rex_pin="GPIO17")
    with pytest.raises(ValidationError):
        config(colour="blue")
    with pytest.raises(ValidationError):
        config(fail_mode="open")


def test_pin_conflicts_and_bad_pins_become_gpio_errors() -> None:
    factory = make_pin_factory("mock")
    first = Door(config(), pins=factory, emit=Recorder(), clock=ManualClock())
    try:
        with pytest.raises(GpioError):
            Door(config(id="other"), pins=factory, emit=Recorder(), clock=ManualClock())
    finally:
        first.close()
    with pytest.raises(GpioError):
        Door(config(relay_pin="GPIO99"), pins=Pins(factory), emit=Recorder(), clock=ManualClock())
    # the failed doors released what they had claimed
    Door(config(), pins=factory, emit=Recorder(), clock=ManualClock()).close()


def test_pin_factory_kinds() -> None:
    with pytest.raises(GpioError, match="unknown GPIO backend"):
        make_pin_factory("magic")  # type: ignore[arg-type]
    try:
        make_pin_factory("auto")
    except GpioError as exc:
        assert "no GPIO backend" in str(exc)  # not on a Pi: a clear error, never the mock


# --- real timers --------------------------------------------------------------------------


class NotifyingClock(ThreadClock):
    """Real timers that report each callback they ran."""

    def __init__(self) -> None:
        self.ran: list[float] = []
        self.fired = threading.Condition()

    def call_later(self, delay: float, fn: Callable[[], None]) -> Cancellable:
        def run() -> None:
            fn()
            with self.fired:
                self.ran.append(delay)
                self.fired.notify_all()

        return super().call_later(delay, run)


def test_real_timers_relock_and_report_held_open() -> None:
    factory = make_pin_factory("mock")
    events = Recorder()
    held = threading.Event()
    clock = NotifyingClock()

    def emit(kind: str, data: Any) -> None:
        events(kind, data)
        if kind == "door.held_open":
            held.set()

    door = Door(
        config(unlock_s=0.05, held_open_s=0.1, buzzer_pin=None),
        pins=factory,
        emit=emit,
        clock=clock,
    )
    try:
        factory.pin(CONTACT).drive_low()
        door.grant(person_id="alice")
        assert door.relay_energised
        with clock.fired:
            assert clock.fired.wait_for(lambda: 0.05 in clock.ran, timeout=5)
        assert not door.relay_energised
        factory.pin(CONTACT).drive_high()
        assert held.wait(5)
        assert events.kinds()[-2:] == ["door.forced", "door.held_open"]
    finally:
        door.close()


class _NoTimers(ManualClock):
    """A clock that cannot schedule (the process is out of threads)."""

    armed = True

    def call_later(self, delay: float, fn: Any) -> Cancellable:
        if not self.armed:
            raise RuntimeError("can't start new thread")
        return super().call_later(delay, fn)


def test_a_grant_without_a_relock_timer_leaves_the_door_locked() -> None:
    """The relock timer is armed before the relay moves: with no timer to be had the relay is
    never energised (before, it was energised first and then nothing relocked it)."""
    factory = make_pin_factory("mock")
    clock = _NoTimers()
    door = Door(config(), pins=factory, emit=Recorder(), clock=clock)
    clock.armed = False
    with pytest.raises(DoorError, match="stays locked"):
        door.grant(person_id="alice")
    assert not door.relay_energised and door.state == "locked"
    assert [s.state for s in factory.pin(RELAY).states] == [False]
