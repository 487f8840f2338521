"""readers.osdp with several readers on one RS-485 line (multidrop): one control panel, a PD
per reader, each with its own key, status, alarms and LED; libosdp's own PDs on a pty bus that
copies the CP's bytes to every PD, as RS-485 does."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import osdp
import pytest

from readers.base import AlarmKind, CardTap, ReaderAlarm, ReaderError, ReaderStatus, Signal
from readers.osdp import OsdpReaders, OsdpReaderSpec
from readers.osdp_frames import ReplyCounter, crc16
from readers.osdp_keyset import install_key
from tests.readers.test_osdp import AlarmRecorder
from tests.support.osdp_pd import PtyBus, VirtualOsdpReader

pytestmark = pytest.mark.integration

ENTRY, EXIT = "room-entry", "room-exit"
ADDR = {ENTRY: 1, EXIT: 2}


@dataclass
class Line:
    bus: PtyBus
    sink: AlarmRecorder
    keys: dict[str, bytes] = field(default_factory=lambda: {n: os.urandom(16) for n in ADDR})
    pds: dict[str, VirtualOsdpReader] = field(default_factory=dict)
    readers: OsdpReaders | None = None

    def spec(self, name: str) -> OsdpReaderSpec:
        return OsdpReaderSpec(name=name, port=self.bus.port, address=ADDR[name],
                              scbk=self.keys[name])

    def start_pd(self, name: str, **kw: object) -> VirtualOsdpReader:
        kw.setdefault("scbk", self.keys[name])
        pd = self.pds[name] = VirtualOsdpReader(self.bus, address=ADDR[name],  # type: ignore[arg-type]
                                                **kw).start()
        return pd

    def start_cp(self, *, retry_s: float = 30.0) -> OsdpReaders:
        self.readers = OsdpReaders([self.spec(n) for n in ADDR], retry_s=retry_s)
        self.readers.start(self.sink)
        return self.readers


@pytest.fixture
def line() -> Iterator[Line]:
    bus = PtyBus()
    ln = Line(bus, AlarmRecorder())
    try:
        yield ln
    finally:
        if ln.readers is not None:
            ln.readers.stop()
        for pd in ln.pds.values():
            pd.stop()
        bus.close()


def _seen(sink: AlarmRecorder, want: type, **match: object) -> None:
    """An event of that type and those fields arrived (now or before), in any order."""
    sink.seen(want, **match)


def _taps(sink: AlarmRecorder) -> list[tuple[str, str]]:
    return [(t.reader, t.uid) for t in sink.of(CardTap)]  # type: ignore[attr-defined]


def test_two_readers_on_one_line_each_tap_and_show_their_own_signal(line: Line) -> None:
    entry, exit_ = line.start_pd(ENTRY), line.start_pd(EXIT)
    readers = line.start_cp()
    _seen(line.sink, ReaderStatus, reader=ENTRY, connected=True)
    _seen(line.sink, ReaderStatus, reader=EXIT, connected=True)
    assert entry.sc_active() and exit_.sc_active()
    entry.tap("04A1B2C3D4E5F6")
    line.sink.wait(CardTap, reader=ENTRY)
    exit_.tap("0102030405060708")
    line.sink.wait(CardTap, reader=EXIT)
    assert _taps(line.sink) == [(ENTRY, "04A1B2C3D4E5F6"), (EXIT, "0102030405060708")]

    marks = {n: len(pd.commands) for n, pd in line.pds.items()}
    assert readers.signal(EXIT, Signal.DENIED, 5.0)
    exit_.wait_command(lambda c: c["command"] == osdp.Command.Buzzer and c["rep_count"] == 3,
                       after=marks[EXIT])
    assert readers.signal(ENTRY, Signal.GRANTED, 5.0)
    entry.wait_command(lambda c: c["command"] == osdp.Command.Buzzer and c["rep_count"] == 1,
                       after=marks[ENTRY])
    assert exit_.led_colors(after=marks[EXIT]) == [osdp.CommandLEDColor.Red]
    assert entry.led_colors(after=marks[ENTRY]) == [osdp.CommandLEDColor.Green]


def test_reader_with_the_wrong_key_is_refused_while_the_other_stays_online(line: Line) -> None:
    entry = line.start_pd(ENTRY)
    intruder = line.start_pd(EXIT, scbk=os.urandom(16))  # swapped, or reset and re-keyed
    readers = line.start_cp(retry_s=1.0)  # the refused one is restarted every second
    _seen(line.sink, ReaderStatus, reader=ENTRY, connected=True)
    _seen(line.sink, ReaderAlarm, kind=AlarmKind.SECURE_REFUSED, reader=EXIT, active=True)
    intruder.tap("0A0B0C0D")
    # the refused reader is restarted on its own, again and again; the other keeps its taps
    for n in range(3):
        before = readers.counters().get("rebuilds", 0)
        entry.tap(f"0102030405060{n}")
        line.sink.wait(CardTap, reader=ENTRY, uid=f"0102030405060{n}")
        assert readers.wait_rebuilds(before + 1, 20.0)
    assert readers.online(ENTRY) and not readers.online(EXIT)
    assert [t[0] for t in _taps(line.sink)] == [ENTRY] * 3
    ups = [s for s in line.sink.of(ReaderStatus) if s.reader == ENTRY]  # type: ignore[attr-defined]
    assert [s.connected for s in ups] == [True]  # never dropped while the other was restarted
    refusals = [a for a in line.sink.of(ReaderAlarm) if a.kind is AlarmKind.SECURE_REFUSED]  # type: ignore[attr-defined]
    assert [(a.reader, a.active) for a in refusals] == [(EXIT, True)]  # type: ignore[attr-defined]
    assert not readers.signal(EXIT, Signal.GRANTED, 5.0)


def test_one_reader_stopping_leaves_the_other_online(line: Line) -> None:
    entry, exit_ = line.start_pd(ENTRY), line.start_pd(EXIT)
    readers = line.start_cp(retry_s=1.0)
    _seen(line.sink, ReaderStatus, reader=ENTRY, connected=True)
    _seen(line.sink, ReaderStatus, reader=EXIT, connected=True)
    exit_.stop()  # its power or its stub of the cable is cut
    down = line.sink.wait(ReaderStatus, reader=EXIT, connected=False, timeout=30)
    assert isinstance(down, ReaderStatus) and "stopped answering" in down.detail
    before = readers.counters().get("rebuilds", 0)
    assert readers.wait_rebuilds(before + 2, 20.0)
    entry.tap("04A1B2C3D4E5F6")
    line.sink.wait(CardTap, reader=ENTRY, uid="04A1B2C3D4E5F6")
    assert readers.online(ENTRY) and not readers.online(EXIT)
    assert [s.connected for s in line.sink.of(ReaderStatus)  # type: ignore[attr-defined]
            if s.reader == ENTRY] == [True]
    assert line.sink.of(ReaderAlarm) == []  # an absent reader is no refused key
    line.start_pd(EXIT)  # repaired: back within retry_s, the entry reader never left
    line.sink.wait(ReaderStatus, reader=EXIT, connected=True, timeout=30)
    line.pds[EXIT].tap("0A0B0C0D")
    line.sink.wait(CardTap, reader=EXIT, uid="0A0B0C0D")


def test_install_on_a_shared_line_addresses_only_that_reader(line: Line) -> None:
    entry = line.start_pd(ENTRY)
    fresh = line.start_pd(EXIT, scbk=None, install=True)  # a new exit reader, install mode
    install_key(line.spec(EXIT), timeout=30)
    assert fresh.scbk == line.keys[EXIT]
    assert entry.scbk == line.keys[ENTRY]  # the entry reader kept its key
    assert not [c for c in entry.commands if c["command"] == osdp.Command.Keyset]
    fresh.stop()
    line.start_pd(EXIT, scbk=fresh.scbk)  # restarts with the key it stored
    line.start_cp()
    _seen(line.sink, ReaderStatus, reader=ENTRY, connected=True)
    _seen(line.sink, ReaderStatus, reader=EXIT, connected=True)
    assert line.sink.of(ReaderAlarm) == []


@pytest.mark.parametrize(("change", "message"), [
    ({"address": 1}, "both have address 1"),
    ({"baud": 19200}, "different baud rates"),
    ({"name": ENTRY}, "names must be unique"),
])
def test_readers_that_cannot_share_a_line_are_refused(change: dict[str, object],
                                                      message: str) -> None:
    key = os.urandom(16)
    first = OsdpReaderSpec(name=ENTRY, port="/dev/ttyUSB0", address=1, scbk=key)
    fields: dict[str, object] = {"name": EXIT, "port": "/dev/ttyUSB0", "address": 2,
                                 "scbk": key, **change}
    with pytest.raises(ReaderError, match=message) as info:
        OsdpReaders([first, OsdpReaderSpec(**fields)])  # type: ignore[arg-type]
    assert key.hex() not in str(info.value)
    # another port may use the same address and its own speed
    other = OsdpReaderSpec(name=EXIT, port="/dev/ttyUSB1", address=1, scbk=key, baud=19200)
    assert OsdpReaders([first, other]).names() == {ENTRY, EXIT}


# -- reply packets on the line (no reader needed) ---------------------------------------------


def _packet(address: int, payload: bytes, *, crc: bool = True) -> bytes:
    length = 5 + len(payload) + (2 if crc else 1)
    head = bytes([0x53, address, length & 0xFF, length >> 8, 0x04 if crc else 0x00]) + payload
    if crc:
        c = crc16(head)
        return head + bytes([c & 0xFF, c >> 8])
    return head + bytes([(-sum(head)) & 0xFF])


def test_reply_counter_counts_intact_replies_per_address_only() -> None:
    replies = ReplyCounter()
    reply = _packet(0x80 | 2, b"\x45\x01\x02")
    command = _packet(2, b"\x60")  # the CP's own poll (an adapter that echoes)
    damaged = bytearray(_packet(0x80 | 1, b"\x40"))
    damaged[-1] ^= 0xFF
    stream = b"\xff" + command + bytes(damaged) + b"\x53\x53" + reply + _packet(0x81, b"\x40",
                                                                                 crc=False)
    for i in range(0, len(stream), 3):  # as the line delivers it, in pieces
        replies.feed(stream[i:i + 3])
    assert (replies.count(1), replies.count(2)) == (1, 1)


def test_the_packet_crc_is_crc16_aug_ccitt() -> None:
    # the CRC catalogue's check value of CRC-16/AUG-CCITT (SPI-FUJITSU) over "123456789"
    assert crc16(b"123456789") == 0xE5CC
