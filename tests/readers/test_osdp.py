"""readers.osdp against libosdp's own PD over a pty: secure channel enforced, taps, alarms,
LED and buzzer, offline, and the install flow (SCBK-D, KEYSET, then only the reader's key)."""

from __future__ import annotations

import os
import queue
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import osdp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from readers.base import (
    AlarmKind,
    CardTap,
    FailureReason,
    ReaderAlarm,
    ReaderError,
    ReaderStatus,
    ReadFailure,
    Signal,
)
from readers.osdp import OsdpReaders, OsdpReaderSpec
from readers.osdp_keys import KeyFileError, load_scbk
from readers.osdp_keyset import install_key
from tests.support.osdp_pd import SCBK_D, PtyLine, VirtualOsdpReader, write_key

pytestmark = pytest.mark.integration

NAME = "osdp-door-in"
UID = "04A1B2C3D4E5F6"


@dataclass
class AlarmRecorder:
    """A sink that records everything (taps, statuses, failures, alarms) for awaiting."""

    events: list[object] = field(default_factory=list)
    _q: queue.Queue[object] = field(default_factory=queue.Queue)
    _lock: threading.Condition = field(default_factory=threading.Condition)

    def _put(self, event: object) -> None:
        with self._lock:
            self.events.append(event)
            self._lock.notify_all()
        self._q.put(event)

    def seen(self, want: type, timeout: float = 20.0, **match: object) -> None:
        """An event of type ``want`` with fields ``match`` arrived, now or before, whatever
        came between (``wait`` takes them in order)."""
        with self._lock:
            assert self._lock.wait_for(lambda: any(
                isinstance(e, want) and all(getattr(e, k) == v for k, v in match.items())
                for e in self.events), timeout), f"no {want.__name__} {match} within {timeout}s"

    on_tap = on_status = on_failure = on_alarm = _put

    def wait(self, want: type, timeout: float = 20.0, **match: object) -> object:
        """The next event of type ``want`` whose fields equal ``match``; others are skipped."""
        while True:
            try:
                event = self._q.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {want.__name__} {match} within {timeout}s; "
                                     f"got {self.events}") from None
            if isinstance(event, want) and all(getattr(event, k) == v for k, v in match.items()):
                return event

    def of(self, want: type) -> list[object]:
        with self._lock:
            return [e for e in self.events if isinstance(e, want)]


@dataclass
class Bench:
    line: PtyLine
    key: bytes
    sink: AlarmRecorder
    readers: OsdpReaders | None = None
    pd: VirtualOsdpReader | None = None

    def start_cp(self, *, retry_s: float = 30.0) -> OsdpReaders:
        spec = OsdpReaderSpec(name=NAME, port=self.line.port, address=101, scbk=self.key)
        self.readers = OsdpReaders([spec], retry_s=retry_s)
        self.readers.start(self.sink)
        return self.readers

    def start_pd(self, **kw: object) -> VirtualOsdpReader:
        self.pd = VirtualOsdpReader(self.line, **kw).start()  # type: ignore[arg-type]
        return self.pd


@pytest.fixture
def bench() -> Iterator[Bench]:
    line = PtyLine()
    b = Bench(line, os.urandom(16), AlarmRecorder())
    try:
        yield b
    finally:
        if b.readers is not None:
            b.readers.stop()
        if b.pd is not None:
            b.pd.stop()
        line.close()


def test_tap_through_secure_channel_and_led_follows_signal(bench: Bench) -> None:
    pd = bench.start_pd(scbk=bench.key)
    readers = bench.start_cp()
    bench.sink.wait(ReaderStatus, reader=NAME, connected=True)
    assert pd.sc_active(), "the PD is online only under its secure channel"
    pd.tap(UID)
    tap = bench.sink.wait(CardTap)
    assert isinstance(tap, CardTap) and (tap.reader, tap.uid) == (NAME, UID)

    mark = len(pd.commands)
    assert readers.signal(NAME, Signal.GRANTED, 5.0)
    led = pd.wait_command(lambda c: c["command"] == osdp.Command.LED, after=mark)
    assert (led["on_color"], led["timer_count"]) == (osdp.CommandLEDColor.Green, 50)
    pd.wait_command(lambda c: c["command"] == osdp.Command.Buzzer and c["rep_count"] == 1,
                    after=mark)
    mark = len(pd.commands)
    assert readers.signal(NAME, Signal.DENIED, 5.0)
    pd.wait_command(lambda c: c["command"] == osdp.Command.Buzzer and c["rep_count"] == 3,
                    after=mark)
    assert pd.led_colors(after=mark) == [osdp.CommandLEDColor.Red]
    assert not readers.signal("another reader", Signal.GRANTED, 5.0)
    mark = len(pd.commands)
    assert readers.signal(NAME, Signal.PENDING, 600.0)  # longer than an LED timer holds
    led = pd.wait_command(lambda c: c["command"] == osdp.Command.LED, after=mark)
    assert (led["on_color"], led["timer_count"]) == (osdp.CommandLEDColor.Amber, 255)


@pytest.mark.parametrize("who", ["wrong_key", "plain", "default_key"])
def test_reader_without_its_key_is_refused_and_never_heard(bench: Bench, who: str) -> None:
    if who == "wrong_key":
        pd = bench.start_pd(scbk=os.urandom(16))
    elif who == "plain":
        pd = bench.start_pd(secure=False)
    else:  # fresh from the box: install mode with SCBK-D, which production refuses
        pd = bench.start_pd(scbk=None, install=True)
    bench.start_cp()
    alarm = bench.sink.wait(ReaderAlarm, kind=AlarmKind.SECURE_REFUSED)
    assert isinstance(alarm, ReaderAlarm) and alarm.active and alarm.reader == NAME
    pd.tap(UID)  # queued on the PD: a refused reader is never polled for it
    bench.sink.wait(ReaderStatus, reader=NAME, connected=False)
    assert bench.sink.of(CardTap) == []
    assert not bench.readers.online(NAME)  # type: ignore[union-attr]
    assert bench.readers.counters()["sc_refused"] >= 1  # type: ignore[union-attr]
    assert not any(c.get("command") == osdp.Command.Keyset for c in pd.commands)


def test_tamper_and_power_reports_become_alarms_on_change(bench: Bench) -> None:
    pd = bench.start_pd(scbk=bench.key)
    bench.start_cp()
    bench.sink.wait(ReaderStatus, reader=NAME, connected=True)
    pd.local_status(tamper=True)
    alarm = bench.sink.wait(ReaderAlarm, kind=AlarmKind.TAMPER)
    assert isinstance(alarm, ReaderAlarm) and alarm.active
    pd.local_status(tamper=True, power_failed=True)  # tamper unchanged: no second tamper alarm
    power = bench.sink.wait(ReaderAlarm, kind=AlarmKind.POWER)
    assert isinstance(power, ReaderAlarm) and power.active
    pd.local_status(tamper=False)
    cleared = bench.sink.wait(ReaderAlarm, kind=AlarmKind.TAMPER)
    assert isinstance(cleared, ReaderAlarm) and not cleared.active
    tampers = [a for a in bench.sink.of(ReaderAlarm) if a.kind is AlarmKind.TAMPER]  # type: ignore[attr-defined]
    assert [a.active for a in tampers] == [True, False]  # type: ignore[attr-defined]


def test_no_reader_on_the_line_is_offline_not_refused(bench: Bench) -> None:
    bench.start_cp(retry_s=30.0)
    status = bench.sink.wait(ReaderStatus, reader=NAME, connected=False, timeout=30)
    assert isinstance(status, ReaderStatus) and "not online" in status.detail
    assert bench.sink.of(ReaderAlarm) == []


def test_odd_card_data_is_a_read_failure_not_a_tap(bench: Bench) -> None:
    pd = bench.start_pd(scbk=bench.key)
    bench.start_cp()
    bench.sink.wait(ReaderStatus, reader=NAME, connected=True)
    pd.tap("AB")  # one byte: no card number anyone issued
    failure = bench.sink.wait(ReadFailure)
    assert isinstance(failure, ReadFailure)
    assert failure.reason == FailureReason.BAD_UID_LENGTH
    assert bench.sink.of(CardTap) == []
    assert bench.readers.counters()["bad_card_data"] == 1  # type: ignore[union-attr]


def test_a_sink_that_raises_does_not_stop_the_reader(bench: Bench) -> None:
    pd = bench.start_pd(scbk=bench.key)
    bench.start_cp()
    bench.sink.wait(ReaderStatus, reader=NAME, connected=True)
    calls: list[CardTap] = []

    def refuse(tap: CardTap) -> None:
        calls.append(tap)
        if len(calls) == 1:
            raise RuntimeError("sink refuses the tap")
        bench.sink._put(tap)

    bench.sink.on_tap = refuse  # type: ignore[method-assign]
    pd.tap(UID)
    pd.tap("0102030405060708")
    tap = bench.sink.wait(CardTap)
    assert isinstance(tap, CardTap) and tap.uid == "0102030405060708"
    assert bench.readers.counters()["sink_errors"] == 1  # type: ignore[union-attr]


def test_install_gives_the_key_then_only_that_key_is_accepted(bench: Bench) -> None:
    pd = bench.start_pd(scbk=None, install=True)  # fresh reader: install mode, SCBK-D
    spec = OsdpReaderSpec(name=NAME, port=bench.line.port, address=101, scbk=bench.key)
    install_key(spec, timeout=30)
    keyset = pd.wait_command(lambda c: c["command"] == osdp.Command.Keyset)
    assert bytes(keyset["data"]) == bench.key
    assert pd.scbk == bench.key
    pd.stop()
    # the reader restarts with the key it stored, enforcing SC; so does the gateway
    bench.pd = VirtualOsdpReader(bench.line, scbk=pd.scbk).start()
    bench.start_cp()
    bench.sink.wait(ReaderStatus, reader=NAME, connected=True)
    bench.pd.tap(UID)
    tap = bench.sink.wait(CardTap)
    assert isinstance(tap, CardTap) and tap.uid == UID
    assert not bench.sink.of(ReaderAlarm)


def test_install_fails_clearly_when_the_reader_is_not_in_install_mode(bench: Bench) -> None:
    bench.start_pd(scbk=os.urandom(16))  # installed already, with another key
    spec = OsdpReaderSpec(name=NAME, port=bench.line.port, address=101, scbk=bench.key)
    with pytest.raises(ReaderError, match="install mode"):
        install_key(spec, timeout=3)


# -- key files (no reader needed) -----------------------------------------------------------


def test_key_file_loads_and_its_errors_never_show_the_key(tmp_path: Path) -> None:
    key = os.urandom(16)
    assert load_scbk(write_key(tmp_path / "ok.key", key)) == key
    bad = tmp_path / "short.key"
    write_key(bad, key[:8])
    with pytest.raises(KeyFileError, match="32 hex digits") as info:
        load_scbk(bad)
    assert key[:8].hex() not in str(info.value)
    with pytest.raises(KeyFileError, match="default install key"):
        load_scbk(write_key(tmp_path / "d.key", SCBK_D))
    open_key = write_key(tmp_path / "open.key", key)
    open_key.chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600") as info:
        load_scbk(open_key)
    assert key.hex() not in str(info.value)
    with pytest.raises(KeyFileError, match="not found"):
        load_scbk(tmp_path / "missing.key")


def test_spec_repr_hides_the_key() -> None:
    key = os.urandom(16)
    spec = OsdpReaderSpec(name=NAME, port="/dev/ttyUSB0", address=1, scbk=key)
    assert key.hex() not in repr(spec) and str(key) not in repr(spec)


def test_missing_serial_port_is_a_clear_error(tmp_path: Path) -> None:
    from readers.osdp import SerialChannel

    with pytest.raises(ReaderError, match="cannot be opened"):
        SerialChannel(str(tmp_path / "ttyUSB9"))
    plain = tmp_path / "plain-file"
    plain.write_text("")
    with pytest.raises(ReaderError, match="not a serial port"):
        SerialChannel(str(plain))


def test_reader_going_silent_is_offline_then_back_online(bench: Bench) -> None:
    pd = bench.start_pd(scbk=bench.key)
    readers = bench.start_cp(retry_s=1.0)  # libosdp alone would wait five minutes
    bench.sink.wait(ReaderStatus, reader=NAME, connected=True)
    pd.stop()  # the reader loses power or its wire is cut
    status = bench.sink.wait(ReaderStatus, reader=NAME, connected=False, timeout=30)
    assert isinstance(status, ReaderStatus) and "stopped answering" in status.detail
    assert bench.sink.of(ReaderAlarm) == []  # an outage is no refused key
    assert not readers.signal(NAME, Signal.GRANTED, 5.0)
    bench.pd = VirtualOsdpReader(bench.line, scbk=bench.key).start()  # repaired, re-powered
    bench.sink.wait(ReaderStatus, reader=NAME, connected=True, timeout=30)
    bench.pd.tap(UID)
    tap = bench.sink.wait(CardTap)
    assert isinstance(tap, CardTap) and tap.uid == UID


def test_adapter_plugged_in_late_is_found(bench: Bench, tmp_path: Path) -> None:
    port = tmp_path / "ttyUSB0"  # the udev symlink, not there yet
    spec = OsdpReaderSpec(name=NAME, port=str(port), address=101, scbk=bench.key)
    bench.readers = OsdpReaders([spec], retry_s=0.5)
    bench.readers.start(bench.sink)
    status = bench.sink.wait(ReaderStatus, reader=NAME, connected=False)
    assert isinstance(status, ReaderStatus) and "cannot be opened" in status.detail
    bench.start_pd(scbk=bench.key)
    port.symlink_to(bench.line.port)  # the adapter is plugged in
    bench.sink.wait(ReaderStatus, reader=NAME, connected=True)
    assert bench.readers.counters()["open_failures"] >= 1


# -- card data as the reader sends it (no reader needed) --------------------------------------


@given(data=st.binary(max_size=64), bits=st.integers(min_value=0, max_value=1024),
       fmt=st.sampled_from([osdp.CardFormat.Unspecified, osdp.CardFormat.Wiegand,
                            osdp.CardFormat.ASCII, 99]))
def test_any_card_data_is_a_tap_or_a_failure_never_a_crash(data: bytes, bits: int,
                                                           fmt: int) -> None:
    from readers.osdp import MAX_CARD_BYTES, MIN_CARD_BYTES, _card_tap

    out = _card_tap(NAME, {"data": data, "length": bits, "format": fmt}, 0.0)
    if isinstance(out, CardTap):
        raw = bytes.fromhex(out.uid)
        assert MIN_CARD_BYTES <= len(raw) <= MAX_CARD_BYTES and data.startswith(raw)
    else:
        assert out.reason == FailureReason.BAD_UID_LENGTH
        assert re.fullmatch(r"OSDP card data of \d+ bytes", out.detail)  # never the data
