"""The door state machine: strike or maglock relay, door contact, REX button, LEDs and buzzer.

Relay semantics (``relay_active_high`` only says which pin level energises the relay coil):

* ``fail_mode="secure"`` (default; an electric strike): **energised = unlocked**. Idle, power
  loss, a crashed controller and ``close()`` all leave the relay de-energised, so the door stays
  locked. Start-up configures the relay pin straight to its de-energised level and never
  energises it; only ``grant()`` or REX does, for ``unlock_s``.
* ``fail_mode="safe"`` (a maglock, where fire rules want the door free without power):
  **energised = locked**. The relay is configured de-energised first (the door is already free
  while the controller is down) and energised as the last step of start-up, which locks it.
  ``grant()`` and REX de-energise it for ``unlock_s``; power loss, a crash and ``close()``
  release the door, by design.

Either way start-up never unlocks a door that was locked. Events (through ``emit``):
door.opened (contact opens while unlocked by a grant or REX), door.closed, door.forced (contact
opens while locked), door.held_open (open longer than ``held_open_s``, once per opening),
door.rex, door.lockdown. Closing the door ends the unlock pulse early: one grant, one passage.
``lockdown(True)`` relocks at once and keeps the red LED on; refusing entries is the access
decision's job (``controller.access``), so a granted exit and REX still unlock: nobody is
trapped inside.

Timing goes through a ``Clock`` (``ThreadClock`` in production; ``ManualClock`` in tests, which
runs due callbacks inside ``advance()``). Input callbacks arrive on gpiozero's threads, timers on
their own: every transition happens under one lock, and ``emit`` is called under it (so events
keep their order); ``emit`` must not call back into the door.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from controller.events import (
    DoorClosed,
    DoorForced,
    DoorHeldOpen,
    DoorLockdown,
    DoorOpened,
    DoorRex,
    Emit,
    OpenVia,
    Via,
)
from controller.gpio import GpioError, InputLine, OutputLine, Pins
from controller.timers import Cancellable, Clock, ThreadClock

PinName = int | str

GRANT_BEEP = (0.15,)
DENY_BEEP = (0.1, 0.1, 0.1, 0.1, 0.1)  # on, off, on, off, on
DENY_RED_S = 1.0


class DoorError(Exception):
    """The door cannot do what was asked (it was closed)."""


class DoorConfig(BaseModel):
    """One door's wiring and timing. Pins are BCM numbers or gpiozero names ("GPIO17")."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64)
    relay_pin: PinName
    relay_active_high: bool = True
    contact_pin: PinName | None = None
    contact_closed_is_low: bool = True  # reed switch to ground, internal pull-up
    rex_pin: PinName | None = None
    rex_pressed_is_low: bool = True  # button to ground, internal pull-up
    led_green_pin: PinName | None = None
    led_red_pin: PinName | None = None
    buzzer_pin: PinName | None = None
    indicators_active_high: bool = True
    unlock_s: float = Field(default=5.0, gt=0, le=600)
    held_open_s: float = Field(default=30.0, gt=0, le=86400)
    debounce_s: float | None = Field(default=0.05, ge=0, le=1)
    fail_mode: Literal["secure", "safe"] = "secure"
    # a granted tap whose door.access event cannot be journaled (disk full, journal broken):
    # "deny" keeps the door shut, so no entry goes unrecorded (fail closed, the default);
    # "open" lets the right holder in anyway and only counts the failure
    unrecorded_access: Literal["deny", "open"] = "deny"

    @model_validator(mode="after")
    def _distinct_pins(self) -> DoorConfig:
        pins = [
            p
            for p in (
                self.relay_pin,
                self.contact_pin,
                self.rex_pin,
                self.led_green_pin,
                self.led_red_pin,
                self.buzzer_pin,
            )
            if p is not None
        ]
        if len({str(p).upper().removeprefix("GPIO") for p in pins}) != len(pins):
            raise ValueError(f"door {self.id}: a pin is used twice")
        return self


class Door:
    """One door; see the module docstring for relay semantics and events."""

    def __init__(
        self, config: DoorConfig, *, pins: Pins | Any, emit: Emit, clock: Clock | None = None
    ) -> None:
        self.config = config
        self._emit = emit
        self._clock: Clock = clock or ThreadClock()
        self._lock = threading.RLock()
        self._closed = False
        self._lockdown = False
        self._unlocked_via: Via | None = None
        self._unlock_person: str | None = None
        self._unlock_reason: str | None = None
        self._unlock_gen = 0
        self._unlock_timer: Cancellable | None = None
        self._open = False
        self._open_since = 0.0
        self._open_via: OpenVia = "unknown"
        self._open_person: str | None = None
        self._held_gen = 0
        self._held_timer: Cancellable | None = None
        self._alarm = False
        self._buzz_gen = 0
        self._red_gen = 0
        self._outputs: list[OutputLine] = []
        self._inputs: list[InputLine] = []
        self._green: OutputLine | None = None
        self._red: OutputLine | None = None
        self._buzzer: OutputLine | None = None
        self._contact: InputLine | None = None
        self._rex: InputLine | None = None
        factory = Pins.wrap(pins)
        try:
            with self._lock:
                self._setup(factory)
        except GpioError:
            self.close()
            raise

    def _setup(self, pins: Pins) -> None:
        cfg = self.config
        # The relay first, straight to its de-energised level (gpiozero initial_value=False).
        self._relay = self._out(pins.output(cfg.relay_pin, active_high=cfg.relay_active_high))
        hi = cfg.indicators_active_high
        if cfg.led_green_pin is not None:
            self._green = self._out(pins.output(cfg.led_green_pin, active_high=hi))
        if cfg.led_red_pin is not None:
            self._red = self._out(pins.output(cfg.led_red_pin, active_high=hi))
        if cfg.buzzer_pin is not None:
            self._buzzer = self._out(pins.output(cfg.buzzer_pin, active_high=hi))
        if cfg.contact_pin is not None:
            self._contact = pins.input(
                cfg.contact_pin, pull_up=cfg.contact_closed_is_low, bounce_s=cfg.debounce_s
            )
            self._inputs.append(self._contact)
        if cfg.rex_pin is not None:
            self._rex = pins.input(
                cfg.rex_pin, pull_up=cfg.rex_pressed_is_low, bounce_s=cfg.debounce_s
            )
            self._inputs.append(self._rex)
        if self._contact is not None:
            if self._is_open(self._contact.high):
                # Open at start-up: we cannot know how it opened; watch how long it stays so.
                self._open = True
                self._open_since = self._clock.monotonic()
                self._arm_held()
            self._contact.on_change(self._on_contact)
        if self._rex is not None:
            self._rex.on_change(self._on_rex)
        if cfg.fail_mode == "safe":
            self._relay.set(True)  # maglock: energising locks; the door was free until now

    def _out(self, line: OutputLine) -> OutputLine:
        self._outputs.append(line)
        return line

    # --- public API -----------------------------------------------------------------------

    @property
    def state(self) -> Literal["locked", "unlocked"]:
        return "unlocked" if self._unlocked_via else "locked"

    @property
    def relay_energised(self) -> bool:
        return self._relay.active

    @property
    def contact_open(self) -> bool | None:
        return self._open if self._contact is not None else None

    @property
    def in_lockdown(self) -> bool:
        return self._lockdown

    def grant(self, *, person_id: str | None, reason: str = "access") -> None:
        """Unlock for ``unlock_s`` with green LED and a short beep; returns once unlocked."""
        with self._lock:
            self._check_open_for_use()
            self._unlock("grant", person_id, reason)
            self._beep(GRANT_BEEP)

    def deny(self) -> None:
        """Red LED and a triple beep; the relay is not touched."""
        with self._lock:
            self._check_open_for_use()
            self._red_gen += 1
            gen = self._red_gen
            self._drive(self._red, True)
            self._later(DENY_RED_S, lambda: self._red_off(gen))
            self._beep(DENY_BEEP)

    def lockdown(self, on: bool) -> None:
        """Relock now, red LED steady until lifted. Emits door.lockdown on change only."""
        with self._lock:
            self._check_open_for_use()
            if on == self._lockdown:
                return
            self._lockdown = on
            if on and self._unlocked_via is not None:
                self._relock()
            self._drive(self._red, on)
            self._emit("door.lockdown", DoorLockdown(door=self.config.id, on=on))

    def close(self) -> None:
        """Stop timers, de-energise every output and release the pins (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for timer in (self._unlock_timer, self._held_timer):
                if timer is not None:
                    timer.cancel()
            self._unlocked_via = None
            for line in self._inputs:
                line.on_change(None)
                line.close()
            for out in self._outputs:
                out.set(False)
                out.close()

    # --- transitions (called with the lock held) ------------------------------------------

    def _check_open_for_use(self) -> None:
        if self._closed:
            raise DoorError(f"door {self.config.id} is closed")

    def _set_unlocked(self, unlocked: bool) -> None:
        energise = unlocked if self.config.fail_mode == "secure" else not unlocked
        self._relay.set(energise)

    def _unlock(self, via: Via, person_id: str | None, reason: str | None) -> None:
        if self._unlock_timer is not None:
            self._unlock_timer.cancel()
        self._unlock_gen += 1
        gen = self._unlock_gen
        # Arm the relock before the relay moves: if no timer can be had (threads exhausted),
        # the door stays locked instead of staying open with nothing to close it.
        try:
            self._unlock_timer = self._later(self.config.unlock_s, lambda: self._relock_if(gen))
        except Exception as exc:  # no thread to be had: fail closed
            self._unlock_timer = None
            raise DoorError(f"door {self.config.id} stays locked: no relock timer ({exc})") from exc
        self._set_unlocked(True)
        self._unlocked_via, self._unlock_person, self._unlock_reason = via, person_id, reason
        self._drive(self._green, True)

    def _relock_if(self, gen: int) -> None:
        with self._lock:
            if not self._closed and gen == self._unlock_gen and self._unlocked_via is not None:
                self._relock()

    def _relock(self) -> None:
        self._unlock_gen += 1
        if self._unlock_timer is not None:
            self._unlock_timer.cancel()
            self._unlock_timer = None
        self._set_unlocked(False)
        self._unlocked_via = self._unlock_person = self._unlock_reason = None
        self._drive(self._green, False)

    def _is_open(self, high: bool) -> bool:
        return high == self.config.contact_closed_is_low

    def _on_contact(self, high: bool) -> None:
        with self._lock:
            is_open = self._is_open(high)
            if self._closed or is_open == self._open:
                return
            door = self.config.id
            now = self._clock.monotonic()
            if is_open:
                self._open, self._open_since = True, now
                if self._unlocked_via is not None:
                    self._open_via, self._open_person = self._unlocked_via, self._unlock_person
                    payload: BaseModel = DoorOpened(
                        door=door,
                        via=self._unlocked_via,
                        person_id=self._unlock_person,
                        reason=self._unlock_reason,
                    )
                    self._emit("door.opened", payload)
                else:
                    self._open_via, self._open_person = "forced", None
                    self._set_alarm(True)
                    payload = DoorForced(door=door, lockdown=self._lockdown)
                    self._emit("door.forced", payload)
                self._arm_held()
            else:
                self._open = False
                self._held_gen += 1
                if self._held_timer is not None:
                    self._held_timer.cancel()
                    self._held_timer = None
                self._set_alarm(False)
                if self._unlocked_via is not None:
                    self._relock()  # one grant, one passage
                payload = DoorClosed(
                    door=door,
                    open_s=round(max(now - self._open_since, 0.0), 3),
                    via=self._open_via,
                )
                self._open_via, self._open_person = "unknown", None
                self._emit("door.closed", payload)

    def _arm_held(self) -> None:
        self._held_gen += 1
        gen = self._held_gen
        self._held_timer = self._later(self.config.held_open_s, lambda: self._held(gen))

    def _held(self, gen: int) -> None:
        with self._lock:
            if self._closed or gen != self._held_gen or not self._open:
                return
            self._held_timer = None
            self._set_alarm(True)
            payload = DoorHeldOpen(
                door=self.config.id,
                open_s=round(self._clock.monotonic() - self._open_since, 3),
                via=self._open_via,
                person_id=self._open_person,
            )
            self._emit("door.held_open", payload)

    def _on_rex(self, high: bool) -> None:
        pressed = high != self.config.rex_pressed_is_low
        if not pressed:
            return
        with self._lock:
            if self._closed:
                return
            self._unlock("rex", None, "rex")
            self._emit(
                "door.rex", DoorRex(door=self.config.id, lockdown=self._lockdown)
            )

    # --- indicators -------------------------------------------------------------------------

    def _later(self, delay: float, fn: Callable[[], None]) -> Cancellable:
        return self._clock.call_later(delay, fn)

    @staticmethod
    def _drive(line: OutputLine | None, on: bool) -> None:
        if line is not None:
            line.set(on)

    def _red_off(self, gen: int) -> None:
        with self._lock:
            if not self._closed and gen == self._red_gen:
                self._drive(self._red, self._lockdown)

    def _set_alarm(self, on: bool) -> None:
        self._alarm = on
        self._buzz_gen += 1
        self._drive(self._buzzer, on)

    def _beep(self, pattern: tuple[float, ...]) -> None:
        """Alternate on/off for the given durations, starting on; the alarm wins."""
        if self._buzzer is None:
            return
        self._buzz_gen += 1
        gen = self._buzz_gen
        self._drive(self._buzzer, True)
        at, on = 0.0, True
        for step in pattern:
            at, on = at + step, not on
            self._later(at, lambda on=on: self._buzz_step(gen, on))  # type: ignore[misc]

    def _buzz_step(self, gen: int, on: bool) -> None:
        with self._lock:
            if not self._closed and gen == self._buzz_gen:
                self._drive(self._buzzer, on or self._alarm)
