from __future__ import annotations

import pytest

from readers.base import CardReader, CardTap, ReaderError, ReaderStatus, ReadFailure
from readers.fake import FakeReader
from tests.readers.recording import RecordingSink

DOOR_IN, DOOR_OUT = "Door In 00 00", "Door Out 00 00"


@pytest.fixture
def started() -> tuple[FakeReader, RecordingSink]:
    reader = FakeReader(readers=(DOOR_IN, DOOR_OUT))
    sink = RecordingSink()
    reader.start(sink)
    return reader, sink


def test_fake_is_a_card_reader() -> None:
    reader: CardReader = FakeReader()
    assert isinstance(reader, FakeReader)


def test_start_reports_readers_connected(started: tuple[FakeReader, RecordingSink]) -> None:
    _, sink = started
    assert [(s.reader, s.connected) for s in sink.events if isinstance(s, ReaderStatus)] == [
        (DOOR_IN, True),
        (DOOR_OUT, True),
    ]


def test_one_tap_per_presentation(started: tuple[FakeReader, RecordingSink]) -> None:
    reader, sink = started
    first = reader.present("012e4cd2a1b3c4d5")
    assert isinstance(first, CardTap)
    assert first.uid == "012E4CD2A1B3C4D5" and first.reader == DOOR_IN
    assert first.at.tzinfo is not None
    assert reader.present("012E4CD2A1B3C4D5") is None  # still lying on the reader
    reader.remove()
    second = reader.present(bytes.fromhex("012E4CD2A1B3C4D5"))
    assert second is not None
    assert sink.taps() == [first, second]


def test_readers_are_independent(started: tuple[FakeReader, RecordingSink]) -> None:
    reader, sink = started
    reader.present("01020304", reader=DOOR_IN)
    reader.present("01020304", reader=DOOR_OUT)
    assert [t.reader for t in sink.taps()] == [DOOR_IN, DOOR_OUT]


def test_failures_use_the_adapter_reason_codes(started: tuple[FakeReader, RecordingSink]) -> None:
    reader, sink = started
    reader.fail("wrong_length", reader=DOOR_OUT, detail="SW=6C05")
    failure = sink.events[-1]
    assert isinstance(failure, ReadFailure)
    assert (failure.reader, failure.reason, failure.detail) == (DOOR_OUT, "wrong_length", "SW=6C05")
    with pytest.raises(ValueError, match="unknown failure reason"):
        reader.fail("bogus")


def test_disconnect_and_connect(started: tuple[FakeReader, RecordingSink]) -> None:
    reader, sink = started
    reader.present("01020304")
    reader.disconnect()
    with pytest.raises(ReaderError, match="disconnected"):
        reader.present("01020304")
    reader.connect()
    assert reader.present("01020304") is not None  # the unplug ended the presentation
    statuses = [(s.reader, s.connected) for s in sink.events if isinstance(s, ReaderStatus)]
    assert statuses[-2:] == [(DOOR_IN, False), (DOOR_IN, True)]


def test_misuse_is_a_clear_error() -> None:
    reader = FakeReader()
    with pytest.raises(ReaderError, match="not started"):
        reader.present("01020304")
    reader.start(RecordingSink())
    with pytest.raises(ReaderError, match="unknown fake reader"):
        reader.present("01020304", reader="nope")
    with pytest.raises(ValueError, match="hex"):
        reader.present("0102030")
    with pytest.raises(ReaderError, match="already started"):
        reader.start(RecordingSink())
    reader.stop()
    assert not reader.started
