"""OSDP card readers on RS-485 with the secure channel: the only module that imports libosdp
(PyPI ``libosdp``, package ``osdp``), used as the control panel (CP).

Every reader is held to OSDP Secure Channel with its own key (SCBK, 16 bytes, from a key file):
the CP runs with ``EnforceSecure``, so a reader that answers in plain, with the well-known
install key (SCBK-D) or with another key is never taken online, nothing it sends reaches the
gateway, and a ``secure_refused`` alarm says so (once per streak of refusals). A reader gets its
key once, in the install flow (readers.osdp_keyset: the CP offers the new key over a channel
opened with SCBK-D and sends KEYSET; the reader must be in install mode).

One CP and one thread per serial line. Readers that share a port (multidrop RS-485, e.g. a
door's entry and exit readers at distinct addresses 0-126, one baud rate) are PDs of the same
CP on one channel; each keeps its own key, secure channel enforcement, status, alarms and LED
and buzzer, and a tap is reported for the reader it came from only. The line's thread takes
the CP's events (card reads, local status, link notifications) for every reader on it and
turns them into taps, failures, statuses and alarms for the sink. libosdp holds a reader that
stopped answering (or was refused) offline for five minutes; here that reader's PD alone is
restarted ``retry_s`` later (libosdp's disable_pd / enable_pd), so a reader that is repaired
or re-powered is back within seconds while the others on the line keep being polled. When no
reader on a line answers, the whole line is reopened (an unplugged adapter comes back as a
new tty). Whether a refused reader answered at all is told by the reply packets seen under its
address (readers.osdp_frames), since libosdp keeps a PD's ID across its restart. The door's
decision drives the reader's LED and buzzer (:meth:`OsdpReaders.signal`). The install flow
and key changes (readers.osdp_keyset) run a CP for that one address, so the
other readers on the line are never addressed (the gateway must be stopped: the port is
locked).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import termios
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import osdp

from readers.base import (
    AlarmKind,
    CardTap,
    FailureReason,
    ReaderAlarm,
    ReaderError,
    ReaderStatus,
    ReadFailure,
    Signal,
    TapSink,
    utc_now,
)
from readers.osdp_frames import ReplyCounter

log = logging.getLogger(__name__)

BAUD_RATES = {9600: termios.B9600, 19200: termios.B19200, 38400: termios.B38400,
              57600: termios.B57600, 115200: termios.B115200}
MIN_CARD_BYTES, MAX_CARD_BYTES = 2, 16  # 16-bit raw data up to a long UID / ASCII number
_LOCAL_STATUS = osdp.StatusReportType.Local  # LSTATR: byte 0 tamper, byte 1 power
_NOTE_SC = osdp.EventNotification.SecureChannelStatus
_NOTE_PD = osdp.EventNotification.PeripheralDeviceStatus


class SerialChannel(osdp.Channel):  # type: ignore[misc]
    """A serial line (an RS-485 adapter's tty, or a pty in tests), raw, 8N1, non-blocking."""

    def __init__(self, port: str, baud: int = 9600) -> None:
        super().__init__()
        if baud not in BAUD_RATES:
            raise ReaderError(f"baud rate {baud} not supported; one of {sorted(BAUD_RATES)}")
        self.port = port
        self.replies = ReplyCounter()  # which readers on the line answered
        try:
            self.fd = os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as exc:
            raise ReaderError(f"serial port {port} cannot be opened: {exc.strerror}") from exc
        try:  # one control panel per line: a second (the CLI beside the gateway) would collide
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(self.fd)
            raise ReaderError(f"serial port {port} is in use by another secroom process (stop "
                              "the gateway first)") from exc
        try:
            attrs = termios.tcgetattr(self.fd)
            attrs[0] = 0  # iflag: no translation, no flow control
            attrs[1] = 0  # oflag: raw
            attrs[2] = termios.CS8 | termios.CREAD | termios.CLOCAL
            attrs[3] = 0  # lflag: no echo, not canonical
            attrs[4] = attrs[5] = BAUD_RATES[baud]
            attrs[6][termios.VMIN] = 0
            attrs[6][termios.VTIME] = 0
            termios.tcsetattr(self.fd, termios.TCSANOW, attrs)
        except termios.error as exc:
            os.close(self.fd)
            raise ReaderError(f"{port} is not a serial port: {exc}") from exc

    def read(self, max_bytes: int) -> bytes:
        try:
            data = os.read(self.fd, max_bytes)
        except BlockingIOError:
            return b""
        except OSError as exc:
            if exc.errno in (errno.EIO, errno.EBADF):  # adapter unplugged / closed
                return b""
            raise
        self.replies.feed(data)
        return data

    def write(self, buf: bytes) -> int:
        try:
            return os.write(self.fd, buf)
        except (BlockingIOError, OSError):
            return 0  # nothing sent: libosdp retries, then takes the reader offline

    def flush(self) -> None:
        with contextlib.suppress(termios.error):
            termios.tcflush(self.fd, termios.TCIOFLUSH)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


@dataclass(frozen=True)
class OsdpReaderSpec:
    name: str  # the reader's name in the config's bindings and in every event
    port: str
    address: int
    scbk: bytes = field(repr=False)
    baud: int = 9600


ChannelFactory = Callable[[OsdpReaderSpec], Any]  # returns an osdp.Channel


def _serial(spec: OsdpReaderSpec) -> SerialChannel:
    return SerialChannel(spec.port, spec.baud)


def _close(channel: Any) -> None:
    close = getattr(channel, "close", None)
    if callable(close):
        close()


def _card_tap(name: str, event: dict[str, Any], present: float) -> CardTap | ReadFailure:
    data = bytes(event.get("data") or b"")
    bits = int(event.get("length") or 0)
    if event.get("format") != osdp.CardFormat.ASCII and bits:
        data = data[: (bits + 7) // 8]
    if not MIN_CARD_BYTES <= len(data) <= MAX_CARD_BYTES:
        return ReadFailure(reader=name, reason=FailureReason.BAD_UID_LENGTH,
                           detail=f"OSDP card data of {len(data)} bytes", at=utc_now())
    return CardTap(reader=name, uid=data.hex().upper(), atr="", at=utc_now(),
                   read_monotonic=time.monotonic(), present_monotonic=present)


# what the reader shows: LED colour (for the door's unlock time, or the two-person window) and
# beeps: green and one beep, red and three, amber and one while a second person is awaited
_SHOWN = {Signal.GRANTED: (osdp.CommandLEDColor.Green, 1),
          Signal.DENIED: (osdp.CommandLEDColor.Red, 3),
          Signal.PENDING: (osdp.CommandLEDColor.Amber, 1)}


class _Reader:
    """One reader on a line: its events turned into taps, statuses and alarms for the sink."""

    def __init__(self, spec: OsdpReaderSpec, sink: TapSink) -> None:
        self.spec = spec
        self.sink = sink
        self.online = False
        self.reported: bool | None = None  # the last status told to the sink
        self.refused = False  # a refusal was reported and has not cleared yet
        self.sc_failed = False  # this session saw the secure channel fail
        self.down_since: float | None = None
        self.restarting = False  # disable_pd sent; enable_pd once libosdp has done it
        self.replies_before = 0  # reply packets from its address before this session
        self.tamper: bool | None = None
        self.power_failed: bool | None = None
        self.counters: Counter[str] = Counter()

    def new_session(self, replies: int) -> None:
        """The CP (or this PD in it) starts afresh: not up yet, rebuilt if it stays so."""
        self.sc_failed = False
        self.restarting = False
        self.replies_before = replies
        self.down_since = time.monotonic()

    def handle(self, event: dict[str, Any], answered: Callable[[], bool]) -> None:
        kind = event.get("event")
        if kind == osdp.Event.CardRead:
            if not self.online:  # EnforceSecure delivers nothing before SC; belt and braces
                return
            outcome = _card_tap(self.spec.name, event, time.monotonic())
            self.counters["taps" if isinstance(outcome, CardTap) else "bad_card_data"] += 1
            if isinstance(outcome, CardTap):
                self.sink.on_tap(outcome)
            else:
                self.sink.on_failure(outcome)
        elif kind == osdp.Event.Status and event.get("type") == _LOCAL_STATUS:
            self._local_status(bytes(event.get("report") or b""))
        elif kind == osdp.Event.Notification:
            if event.get("type") == _NOTE_SC and not event.get("arg0"):
                self.sc_failed = True
            elif event.get("type") == _NOTE_PD:
                if event.get("arg0"):
                    self.came_up()
                else:
                    # an absent reader ends the same way (SC inactive, offline) after its
                    # probes; a refused one had answered: it sent its ID before failing SC
                    self.sc_failed = self.sc_failed and not self.online and answered()
                    self.went_down("OSDP reader stopped answering" if self.online else
                                   f"OSDP reader at address {self.spec.address} not online")

    def came_up(self) -> None:
        self.online = True
        self.down_since = None
        if self.refused:
            self.refused = False
            self._alarm(AlarmKind.SECURE_REFUSED, False, "secure channel established")
        self._status(True, f"OSDP address {self.spec.address}, secure channel with its key")

    def went_down(self, detail: str) -> None:
        self.down_since = time.monotonic()
        if self.sc_failed:
            self.counters["sc_refused"] += 1
        if self.sc_failed and not self.refused:
            self.refused = True
            self._alarm(AlarmKind.SECURE_REFUSED, True,
                        "secure channel failed: wrong or default key, or no OSDP SC")
        self.online = False
        self._status(False, detail)

    def _local_status(self, report: bytes) -> None:
        if len(report) < 2:
            self.counters["bad_status"] += 1
            return
        tamper, power_failed = bool(report[0]), bool(report[1])
        # on change only; a first report of "all well" is no alarm
        if tamper != bool(self.tamper):
            self._alarm(AlarmKind.TAMPER, tamper, "OSDP local status")
        if power_failed != bool(self.power_failed):
            self._alarm(AlarmKind.POWER, power_failed, "OSDP local status")
        self.tamper, self.power_failed = tamper, power_failed

    def _status(self, connected: bool, detail: str) -> None:
        if self.reported is connected:
            return
        self.reported = connected
        self.sink.on_status(ReaderStatus(reader=self.spec.name, connected=connected,
                                         at=utc_now(), detail=detail))

    def _alarm(self, kind: AlarmKind, active: bool, detail: str) -> None:
        on_alarm = getattr(self.sink, "on_alarm", None)
        if on_alarm is not None:
            on_alarm(ReaderAlarm(reader=self.spec.name, kind=kind, active=active,
                                 at=utc_now(), detail=detail))


def _pd_info(spec: OsdpReaderSpec, channel: Any, *, enforce: bool = True) -> Any:
    flags = [osdp.LibFlag.EnableNotification]
    if enforce:
        flags.insert(0, osdp.LibFlag.EnforceSecure)
    return osdp.PDInfo(spec.address, channel, scbk=spec.scbk, name=f"PD-{spec.address}",
                       flags=flags)


class _Bus:
    """One serial line (port and baud) with its readers: one CP with a PD per reader, all on
    one channel, and one thread taking the CP's events for every reader on it."""

    def __init__(self, readers: list[_Reader], channel_factory: ChannelFactory,
                 retry_s: float, stop: threading.Event,
                 restarted: threading.Condition) -> None:
        self.readers = {r.spec.address: r for r in readers}
        self.restarted = restarted  # notified after each round of restarts
        self.channel_factory = channel_factory
        self.retry_s = retry_s
        self.stop_event = stop
        self.wake = threading.Event()  # set by libosdp's thread when any PD has an event
        self.cp: Any = None
        self.channel: Any = None
        self.lock = threading.Lock()  # the CP being replaced vs. signal() from the gateway
        port = readers[0].spec.port
        self.thread = threading.Thread(target=self._run, name=f"osdp-{port}", daemon=True)

    def _on_event(self, _pd: int, _event: dict[str, Any]) -> int:
        self.wake.set()  # libosdp has queued it for that PD; this thread takes it
        return 0

    # -- CP life cycle ----------------------------------------------------------------------
    def _open(self) -> None:
        specs = [r.spec for r in self.readers.values()]
        channel = self.channel_factory(specs[0])
        try:
            cp = osdp.ControlPanel([_pd_info(s, channel) for s in specs],
                                   log_level=osdp.LogLevel.Warning, event_handler=self._on_event)
            cp.start()
        except Exception as exc:  # libosdp raises plain exceptions: translate at the boundary
            _close(channel)
            raise ReaderError(f"libosdp could not set up the control panel: {exc}") from exc
        with self.lock:
            self.cp, self.channel = cp, channel
        for reader in self.readers.values():
            reader.new_session(self._replies(reader.spec.address))

    def _close(self) -> None:
        with self.lock:
            cp, channel, self.cp, self.channel = self.cp, self.channel, None, None
        if cp is not None:
            with contextlib.suppress(RuntimeError):  # its thread had already stopped
                cp.teardown()
        if channel is not None:
            _close(channel)

    def _replies(self, address: int) -> int:
        replies = getattr(self.channel, "replies", None)
        return replies.count(address) if replies is not None else 0

    def _run(self) -> None:
        while not self.stop_event.is_set():
            if self.cp is None:
                try:
                    self._open()
                except ReaderError as exc:  # the serial port is missing: try again later
                    for reader in self.readers.values():
                        reader.counters["open_failures"] += 1
                        reader.went_down(f"OSDP line unavailable: {exc}")
                    if self.stop_event.wait(self.retry_s):
                        break
                    continue
            self.wake.wait(0.2)
            self.wake.clear()
            for reader in self.readers.values():
                self._take_events(reader)
            self._restart_the_silent()
        self._close()

    def _take_events(self, reader: _Reader) -> None:
        address = reader.spec.address
        while (event := self.cp.get_event(address, timeout=0)) is not None:
            if reader.restarting:  # the PD being disabled: its going down is no news
                continue
            try:
                reader.handle(event, lambda: self._answered(reader))
            except Exception:  # noqa: BLE001 - a broken sink must not stop the reader
                reader.counters["sink_errors"] += 1
                log.exception("OSDP reader %s: the sink raised; event handed over but not "
                              "accepted", reader.spec.name)

    def _restart_the_silent(self) -> None:
        """libosdp holds a PD that went offline for five minutes: after ``retry_s`` restart
        that PD alone (disable, then enable once libosdp has done it), so the readers still
        answering keep being polled; when none answers, reopen the line (an adapter that was
        unplugged comes back as a new tty)."""
        now = time.monotonic()
        due = [r for r in self.readers.values() if not r.restarting and
               r.down_since is not None and now - r.down_since >= self.retry_s]
        for reader in due:
            if not reader.online:
                reader.went_down(f"OSDP reader at address {reader.spec.address} does not "
                                 "answer")
            reader.counters["rebuilds"] += 1
        if due:
            with self.restarted:
                self.restarted.notify_all()
        if due and not any(r.online for r in self.readers.values()):
            self._close()
            return
        for reader in due:
            address = reader.spec.address
            if self.cp.is_pd_enabled(address) and not self.cp.disable_pd(address):
                self._close()  # libosdp refused: start the whole line afresh
                return
            reader.restarting = True
            reader.down_since = now
        for reader in self.readers.values():
            address = reader.spec.address
            if reader.restarting and not self.cp.is_pd_enabled(address):
                self._take_events(reader)  # what the disabling said, dropped
                if not self.cp.enable_pd(address):
                    self._close()
                    return
                reader.new_session(self._replies(address))
            elif reader.restarting and reader.down_since is not None and (
                now - reader.down_since >= self.retry_s
            ):
                self._close()  # the disable never took effect: start afresh
                return

    def _answered(self, reader: _Reader) -> bool:
        """Did the reader answer this session? Whole reply packets from its address seen on
        the line; without a channel that counts them, the ID it sent (osdp_PDID), which
        libosdp keeps across a PD's restart and so is only right for a fresh CP."""
        address = reader.spec.address
        if getattr(self.channel, "replies", None) is not None:
            return self._replies(address) > reader.replies_before
        try:
            pd_id = self.cp.get_pd_id(address)
        except Exception:  # noqa: BLE001 - libosdp's wrapper fails when it has no ID at all
            return False
        return any((pd_id.version, pd_id.model, pd_id.vendor_code, pd_id.serial_number,
                    pd_id.firmware_version))

    # -- LED and buzzer ---------------------------------------------------------------------
    def signal(self, reader: _Reader, signal: Signal, seconds: float) -> bool:
        color, beeps = _SHOWN[signal]
        tenths = max(1, min(255, round(seconds * 10)))  # libosdp 3.2.9 sends 8 bits of it
        led = {"command": osdp.Command.LED, "reader": 0, "led_number": 0, "temporary": True,
               "control_code": 2, "on_color": color, "off_color": osdp.CommandLEDColor.Black,
               "on_count": 10, "off_count": 0, "timer_count": tenths}
        beep = {"command": osdp.Command.Buzzer, "reader": 0, "control_code": 2,
                "on_count": 2 if beeps == 1 else 1, "off_count": 1, "rep_count": beeps}
        address = reader.spec.address
        with self.lock:
            if self.cp is None or not reader.online:
                return False
            return bool(self.cp.submit_command(address, led)) and bool(
                self.cp.submit_command(address, beep))


def check_lines(specs: list[OsdpReaderSpec]) -> None:
    """Readers sharing a port share its line: distinct addresses, one baud rate."""
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ReaderError("OSDP reader names must be unique")
    seen: dict[tuple[str, int], str] = {}
    bauds: dict[str, tuple[int, str]] = {}
    for s in specs:
        if (s.port, s.address) in seen:
            raise ReaderError(f"OSDP readers {seen[s.port, s.address]!r} and {s.name!r} both "
                              f"have address {s.address} on {s.port}: give each reader on a "
                              "line its own address")
        seen[s.port, s.address] = s.name
        baud, first = bauds.setdefault(s.port, (s.baud, s.name))
        if baud != s.baud:
            raise ReaderError(f"OSDP readers {first!r} and {s.name!r} share {s.port} at "
                              f"different baud rates ({baud} and {s.baud}): one line has one "
                              "speed")


class OsdpReaders:
    """The configured OSDP readers as one :class:`CardReader`: the readers on one port
    (multidrop RS-485) share a control panel, each port has its own."""

    def __init__(self, specs: list[OsdpReaderSpec], *, retry_s: float = 10.0,
                 channel_factory: ChannelFactory = _serial) -> None:
        check_lines(specs)
        self.specs = specs
        self.retry_s = retry_s
        self.channel_factory = channel_factory
        self._readers: dict[str, _Reader] = {}
        self._bus_of: dict[str, _Bus] = {}
        self._stop = threading.Event()
        self._restarted = threading.Condition()

    def start(self, sink: TapSink) -> None:
        self._stop.clear()
        lines: dict[str, list[_Reader]] = {}
        for spec in self.specs:
            reader = self._readers[spec.name] = _Reader(spec, sink)
            lines.setdefault(spec.port, []).append(reader)
        for readers in lines.values():
            bus = _Bus(readers, self.channel_factory, self.retry_s, self._stop,
                       self._restarted)
            self._bus_of.update({r.spec.name: bus for r in readers})
            bus.thread.start()

    def stop(self) -> None:
        self._stop.set()
        for bus in {id(b): b for b in self._bus_of.values()}.values():
            bus.thread.join(10)
        self._bus_of.clear()
        self._readers.clear()

    def names(self) -> frozenset[str]:
        return frozenset(s.name for s in self.specs)

    def counters(self) -> dict[str, int]:
        """In all readers: taps, bad_card_data, sc_refused, rebuilds, sink_errors."""
        out: Counter[str] = Counter()
        for reader in self._readers.values():
            out.update(reader.counters)
        return dict(out)

    def wait_rebuilds(self, at_least: int, timeout: float) -> bool:
        """Wait until the readers were restarted (or their line reopened) ``at_least`` times in
        all; False if that did not happen within ``timeout`` seconds."""
        with self._restarted:
            return self._restarted.wait_for(
                lambda: self.counters().get("rebuilds", 0) >= at_least, timeout)

    def online(self, reader: str) -> bool:
        state = self._readers.get(reader)
        return bool(state and state.online)

    def signal(self, reader: str, signal: Signal, seconds: float) -> bool:
        state, bus = self._readers.get(reader), self._bus_of.get(reader)
        return bus.signal(state, signal, seconds) if state and bus else False
