"""PcscReaders against a real (private) pcscd, with virtual cards tapped through vpcd."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC

import pytest

from readers.apdu import GET_DATA_UID
from readers.base import CardTap, ReaderStatus, ReadFailure
from readers.pcsc import PcscReaders
from readers.pcscd_host import PcscdHost
from readers.virtual import DEFAULT_ATR, Misbehaviour, VirtualCard
from tests.readers.recording import RecordingSink

pytestmark = pytest.mark.integration

UID = bytes.fromhex("012E4CD2A1B3C4D5")
OTHER = bytes.fromhex("04A1B2C3D4E5F6")


@pytest.fixture
def readers(pcscd: PcscdHost, sink: RecordingSink) -> Iterator[PcscReaders]:
    watcher = PcscReaders()
    watcher.start(sink)
    for name in pcscd.expected_reader_names():
        sink.wait_status(name, True)
    try:
        yield watcher
    finally:
        watcher.stop()


def tap_and_get(sink: RecordingSink, card: VirtualCard) -> CardTap | ReadFailure:
    card.tap()
    return sink.next_outcome()


def test_tap_yields_one_card_tap(
    pcscd: PcscdHost, readers: PcscReaders, sink: RecordingSink
) -> None:
    slot0 = pcscd.expected_reader_names()[0]
    card = VirtualCard(port=pcscd.port, uid=UID)
    tap = tap_and_get(sink, card)
    assert isinstance(tap, CardTap)
    assert tap.reader == slot0
    assert tap.uid == "012E4CD2A1B3C4D5"
    assert tap.atr == DEFAULT_ATR.hex().upper()
    assert tap.at.tzinfo is UTC
    assert tap.present_monotonic <= tap.read_monotonic
    assert card.apdus_seen == [GET_DATA_UID]
    assert readers.counters["taps"] == 1


def test_second_slot_is_its_own_reader(
    pcscd: PcscdHost, readers: PcscReaders, sink: RecordingSink
) -> None:
    slot1 = pcscd.expected_reader_names()[1]
    tap = tap_and_get(sink, VirtualCard(port=pcscd.port + 1, uid=OTHER))
    assert isinstance(tap, CardTap)
    assert (tap.reader, tap.uid) == (slot1, OTHER.hex().upper())


def test_card_left_on_reader_taps_once(
    pcscd: PcscdHost, readers: PcscReaders, sink: RecordingSink
) -> None:
    card = VirtualCard(port=pcscd.port, uid=UID)
    card.tap(hold_s=1.5)  # pcscd polls vpcd every 0.4 s: several polls see the card
    card.tap()  # presented again: a new tap
    first, second = sink.next_outcome(), sink.next_outcome()
    assert isinstance(first, CardTap) and isinstance(second, CardTap)
    assert first.uid == second.uid == "012E4CD2A1B3C4D5"
    assert second.present_monotonic > first.read_monotonic
    assert len(sink.taps()) == 2
    assert [a for a in card.apdus_seen if a == GET_DATA_UID] == [GET_DATA_UID] * 2


EXPECTED = {
    Misbehaviour.SW_6A81: ("file_not_found", "6A81"),
    Misbehaviour.SW_6C05: ("wrong_length", "6C05"),
    Misbehaviour.SW_6282: ("warning_eof", "6282"),
    Misbehaviour.SW_6300: ("verify_failed", "6300"),
    Misbehaviour.SW_6F00: ("status_error", "6F00"),
    Misbehaviour.TRUNCATED: ("short_reply", "1 byte"),
    Misbehaviour.REMOVE_MID_READ: ("removed", "card left"),
    Misbehaviour.ODD_UID: ("bad_uid_length", "5-byte"),
    Misbehaviour.OVERLONG_UID: ("bad_uid_length", "16-byte"),
    Misbehaviour.GARBAGE: ("status_error", "SW="),
}


@pytest.mark.parametrize("mode", list(Misbehaviour))
def test_misbehaving_card_gives_one_clear_failure_and_reading_goes_on(
    pcscd: PcscdHost, readers: PcscReaders, sink: RecordingSink, mode: Misbehaviour
) -> None:
    reason, detail = EXPECTED[mode]
    bad = VirtualCard(port=pcscd.port, uid=UID, misbehave=mode, seed=11)
    outcome = tap_and_get(sink, bad)
    assert isinstance(outcome, ReadFailure), outcome
    assert outcome.reason == reason
    assert detail in outcome.detail
    assert UID.hex().upper() not in outcome.detail.upper()
    assert readers.counters[f"failure.{reason}"] == 1
    assert readers.counters["rebuilds"] == 0  # nothing escaped into the supervisor
    good = tap_and_get(sink, VirtualCard(port=pcscd.port, uid=OTHER))
    assert isinstance(good, CardTap) and good.uid == OTHER.hex().upper()
    assert [t.uid for t in sink.taps()] == [OTHER.hex().upper()]  # never a bogus UID


def test_pcscd_killed_and_restarted(
    pcscd: PcscdHost, readers: PcscReaders, sink: RecordingSink
) -> None:
    names = pcscd.expected_reader_names()
    assert isinstance(tap_and_get(sink, VirtualCard(port=pcscd.port, uid=UID)), CardTap)
    pcscd.kill()
    for name in names:
        gone = sink.wait_status(name, False)
        assert "pcscd unavailable" in gone.detail
    pcscd.start()
    for name in names:
        sink.wait_status(name, True)
    tap = tap_and_get(sink, VirtualCard(port=pcscd.port, uid=OTHER))
    assert isinstance(tap, CardTap) and tap.uid == OTHER.hex().upper()
    assert readers.counters["rebuilds"] >= 1


def test_reader_removed_and_returned(
    pcscd: PcscdHost, readers: PcscReaders, sink: RecordingSink
) -> None:
    names = pcscd.expected_reader_names()
    pcscd.remove_reader()
    for name in names:
        sink.wait_status(name, False)
    assert pcscd.reader_names() == []
    pcscd.return_reader()
    for name in names:
        sink.wait_status(name, True)
    assert readers.readers == names
    for port, name in zip(pcscd.ports, names, strict=True):
        tap = tap_and_get(sink, VirtualCard(port=port, uid=UID))
        assert isinstance(tap, CardTap) and tap.reader == name


def test_started_before_pcscd_then_picks_it_up(pcscd: PcscdHost, sink: RecordingSink) -> None:
    pcscd.kill()
    watcher = PcscReaders(rebuild_backoff_s=0.05)
    watcher.start(sink)
    try:
        pcscd.start()
        for name in pcscd.expected_reader_names():
            sink.wait_status(name, True)
        assert isinstance(tap_and_get(sink, VirtualCard(port=pcscd.port, uid=UID)), CardTap)
    finally:
        watcher.stop()


def test_filter_limits_the_readers(pcscd: PcscdHost, sink: RecordingSink) -> None:
    slot0, slot1 = pcscd.expected_reader_names()
    watcher = PcscReaders(reader_filter=lambda name: name == slot1)
    watcher.start(sink)
    try:
        sink.wait_status(slot1, True)
        VirtualCard(port=pcscd.port, uid=UID).tap(hold_s=0.5, wait_read=False)
        tap = tap_and_get(sink, VirtualCard(port=pcscd.port + 1, uid=OTHER))
        assert isinstance(tap, CardTap) and tap.reader == slot1
        assert all(getattr(e, "reader", slot1) == slot1 for e in sink.events)
    finally:
        watcher.stop()


def test_a_raising_sink_does_not_stop_the_readers(
    pcscd: PcscdHost, readers: PcscReaders, sink: RecordingSink
) -> None:
    sink.raise_on_tap = True
    assert isinstance(tap_and_get(sink, VirtualCard(port=pcscd.port, uid=UID)), CardTap)
    assert isinstance(tap_and_get(sink, VirtualCard(port=pcscd.port, uid=OTHER)), CardTap)
    assert readers.counters["sink_errors"] == 2


def test_stop_is_prompt_and_final(pcscd: PcscdHost, sink: RecordingSink) -> None:
    watcher = PcscReaders(poll_timeout_ms=60_000)  # only SCardCancel can wake it
    watcher.start(sink)
    sink.wait_status(pcscd.expected_reader_names()[0], True)
    watcher.stop()
    assert watcher.readers == []
    before = list(sink.events)
    VirtualCard(port=pcscd.port, uid=UID).tap(hold_s=0.5, wait_read=False)
    assert sink.events == before
    assert all(isinstance(e, ReaderStatus) for e in before)
