"""ReaderSet: PC/SC and OSDP adapters as one reader (unit test with stateful fakes)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from readers.base import ReaderError, Signal, TapSink
from readers.fake import FakeReader
from readers.multi import ReaderSet
from tests.readers.recording import RecordingSink


@dataclass
class SignalFake(FakeReader):
    """A fake that drives LEDs for its own reader names, like the OSDP adapter."""

    signals: list[tuple[str, Signal, float]] = field(default_factory=list)

    def signal(self, reader: str, signal: Signal, seconds: float) -> bool:
        if reader not in self.readers:
            return False
        self.signals.append((reader, signal, seconds))
        return True


class Broken(FakeReader):
    def start(self, sink: TapSink) -> None:
        raise ReaderError("no such serial port")


def test_both_adapters_feed_one_sink_and_signals_reach_the_owner() -> None:
    pcsc, osdp = FakeReader(("PC/SC 00 00",)), SignalFake(("osdp-in",))
    readers, sink = ReaderSet([pcsc, osdp]), RecordingSink()
    readers.start(sink)
    pcsc.present("04A1B2C3")
    osdp.present("DEADBEEF", reader="osdp-in")
    assert [(t.reader, t.uid) for t in sink.taps()] == [("PC/SC 00 00", "04A1B2C3"),
                                                       ("osdp-in", "DEADBEEF")]
    assert readers.signal("osdp-in", Signal.GRANTED, 5.0)
    assert not readers.signal("PC/SC 00 00", Signal.DENIED, 5.0)  # no LED to drive there
    assert osdp.signals == [("osdp-in", Signal.GRANTED, 5.0)]
    readers.stop()
    assert not pcsc.started and not osdp.started


def test_a_failed_start_stops_what_had_started() -> None:
    first = FakeReader(("PC/SC 00 00",))
    readers = ReaderSet([first, Broken(("osdp-in",))])
    with pytest.raises(ReaderError, match="serial port"):
        readers.start(RecordingSink())
    assert not first.started
