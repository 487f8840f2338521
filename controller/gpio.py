"""GPIO boundary: the only module that imports gpiozero and its pin factories.

``make_pin_factory(kind)`` picks the backend by config: ``mock`` (gpiozero's MockFactory, a
stateful fake you drive with ``factory.pin(n).drive_high()`` and inspect through ``.states``),
``lgpio`` (Pi 5 and current Raspberry Pi OS), ``rpigpio`` (RPi.GPIO, older Pis) or ``auto``
(lgpio, then RPi.GPIO; never silently the mock: a door that only pretends to work is worse than
a start-up error). ``Pins`` wraps a factory in two small line types so that the door logic never
touches gpiozero; every gpiozero exception becomes ``GpioError``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

from gpiozero import DigitalInputDevice, DigitalOutputDevice
from gpiozero.exc import GPIOZeroError

FactoryKind = Literal["mock", "lgpio", "rpigpio", "auto"]
PinName = int | str


class GpioError(Exception):
    """A pin could not be set up or driven (bad pin name, pin in use, no GPIO backend)."""


@contextmanager
def _translated(what: str) -> Iterator[None]:
    try:
        yield
    except GPIOZeroError as exc:
        raise GpioError(f"{what}: {exc}") from exc


def make_pin_factory(kind: FactoryKind) -> Any:
    """A gpiozero pin factory of the given kind; raises GpioError if the backend is missing."""
    if kind == "mock":
        from gpiozero.pins.mock import MockFactory

        return MockFactory()
    if kind == "auto":
        errors: list[str] = []
        for real in ("lgpio", "rpigpio"):
            try:
                return make_pin_factory(real)  # type: ignore[arg-type]
            except GpioError as exc:
                errors.append(str(exc))
        raise GpioError(
            "no GPIO backend works here (" + "; ".join(errors) + "); "
            "install lgpio or RPi.GPIO, or set gpio: mock for a test bench"
        )
    try:
        if kind == "lgpio":
            from gpiozero.pins.lgpio import LGPIOFactory

            return LGPIOFactory()
        if kind == "rpigpio":
            from gpiozero.pins.rpigpio import RPiGPIOFactory

            return RPiGPIOFactory()
    except ImportError as exc:
        raise GpioError(f"GPIO backend {kind} is not installed ({exc.name})") from exc
    except Exception as exc:  # lgpio.error, RuntimeError, OSError: all mean "no usable GPIO"
        raise GpioError(f"GPIO backend {kind} cannot start: {exc}") from exc
    raise GpioError(f"unknown GPIO backend {kind!r} (use mock, lgpio, rpigpio or auto)")


class OutputLine:
    """A digital output that always starts inactive (configured straight to its idle level)."""

    def __init__(self, device: DigitalOutputDevice) -> None:
        self._device = device

    @property
    def active(self) -> bool:
        with _translated("reading an output"):
            return bool(self._device.value)

    def set(self, active: bool) -> None:
        with _translated(f"driving pin {self._device.pin}"):
            if active:
                self._device.on()
            else:
                self._device.off()

    def close(self) -> None:
        with _translated("closing an output"):
            self._device.close()


class InputLine:
    """A digital input reporting the electrical level (``high``) and changes of it."""

    def __init__(self, device: DigitalInputDevice, *, pull_up: bool | None) -> None:
        self._device = device
        # gpiozero's "active" is low with a pull-up and high otherwise.
        self._active_is_high = pull_up is not True

    @property
    def high(self) -> bool:
        with _translated("reading an input"):
            return bool(self._device.is_active) == self._active_is_high

    def on_change(self, callback: Callable[[bool], None] | None) -> None:
        """Call ``callback(high)`` on every edge (from gpiozero's event thread)."""
        with _translated("setting an input handler"):
            if callback is None:
                self._device.when_activated = None
                self._device.when_deactivated = None
                return
            level = self._active_is_high
            self._device.when_activated = lambda: callback(level)
            self._device.when_deactivated = lambda: callback(not level)

    def close(self) -> None:
        with _translated("closing an input"):
            self._device.close()


class Pins:
    """The devices the door needs, on one gpiozero pin factory."""

    def __init__(self, factory: Any) -> None:
        self.factory = factory

    @classmethod
    def wrap(cls, pins: Pins | Any) -> Pins:
        return pins if isinstance(pins, Pins) else cls(pins)

    def output(self, pin: PinName, *, active_high: bool = True) -> OutputLine:
        with _translated(f"output pin {pin}"):
            device = DigitalOutputDevice(
                pin, active_high=active_high, initial_value=False, pin_factory=self.factory
            )
        return OutputLine(device)

    def input(
        self, pin: PinName, *, pull_up: bool | None, bounce_s: float | None = None
    ) -> InputLine:
        """``pull_up`` None means an external resistor (the line floats otherwise)."""
        with _translated(f"input pin {pin}"):
            device = DigitalInputDevice(
                pin,
                pull_up=pull_up,
                active_state=True if pull_up is None else None,
                bounce_time=bounce_s,
                pin_factory=self.factory,
            )
        return InputLine(device, pull_up=pull_up)
