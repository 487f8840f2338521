"""The virtual card against a stand-in vpcd (a TCP server speaking vpcd's framing)."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from functools import reduce

import pytest

from readers.base import ReaderError
from readers.virtual import (
    DEFAULT_ATR,
    Misbehaviour,
    VirtualCard,
    pcsc_storage_atr,
)
from tests.support import free_port

UID = bytes.fromhex("012E4CD2A1B3C4D5")


class StandInVpcd:
    """Accepts one card at a time and lets the test exchange framed messages with it."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.conn: socket.socket | None = None

    def accept(self) -> None:
        self.server.settimeout(5)
        self.conn, _ = self.server.accept()
        self.conn.settimeout(5)

    def send(self, payload: bytes) -> None:
        assert self.conn is not None
        self.conn.sendall(struct.pack(">H", len(payload)) + payload)

    def recv(self) -> bytes | None:
        assert self.conn is not None
        head = self.conn.recv(2, socket.MSG_WAITALL)
        if len(head) < 2:
            return None
        (n,) = struct.unpack(">H", head)
        return self.conn.recv(n, socket.MSG_WAITALL) if n else b""

    def ask(self, payload: bytes) -> bytes | None:
        self.send(payload)
        return self.recv()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.server.close()


@pytest.fixture
def vpcd() -> Iterator[StandInVpcd]:
    server = StandInVpcd()
    yield server
    server.close()


def test_default_atr_is_a_pcsc_felica_storage_atr() -> None:
    assert DEFAULT_ATR.hex().upper() == "3B8F8001804F0CA00000030611003B0000000042"
    assert reduce(lambda a, b: a ^ b, DEFAULT_ATR[1:], 0) == 0  # TCK makes T0..TCK XOR to 0
    mifare = pcsc_storage_atr(standard=0x03, card_name=0x0001)
    assert reduce(lambda a, b: a ^ b, mifare[1:], 0) == 0


def test_card_answers_vpcd_control_and_get_data(vpcd: StandInVpcd) -> None:
    card = VirtualCard(port=vpcd.port, uid=UID)
    card.insert()
    vpcd.accept()
    assert card.present
    assert vpcd.ask(b"\x04") == DEFAULT_ATR  # get ATR
    vpcd.send(b"\x01")  # power on: no answer
    vpcd.send(b"\x02")  # reset: no answer
    assert vpcd.ask(b"\x04") == DEFAULT_ATR
    assert not card.read_done.is_set()
    assert vpcd.ask(bytes.fromhex("FFCA000000")) == UID + b"\x90\x00"
    assert card.read_done.wait(5)  # set by the card's thread just after it sent the reply
    assert vpcd.ask(bytes.fromhex("00A4040000")) == b"\x6d\x00"
    assert card.apdus_seen == [bytes.fromhex("FFCA000000"), bytes.fromhex("00A4040000")]
    card.remove()
    assert vpcd.recv() is None  # vpcd sees the card go
    assert not card.present


@pytest.mark.parametrize(
    ("mode", "reply"),
    [
        (Misbehaviour.SW_6A81, "6A81"),
        (Misbehaviour.SW_6C05, "6C05"),
        (Misbehaviour.SW_6282, "6282"),
        (Misbehaviour.SW_6300, "6300"),
        (Misbehaviour.SW_6F00, "6F00"),
        (Misbehaviour.TRUNCATED, "01"),
        (Misbehaviour.ODD_UID, "012E4CD2A1" + "9000"),
        (Misbehaviour.OVERLONG_UID, (UID * 2).hex().upper() + "9000"),
    ],
)
def test_misbehaviour_replies(vpcd: StandInVpcd, mode: Misbehaviour, reply: str) -> None:
    with VirtualCard(port=vpcd.port, uid=UID, misbehave=mode):
        vpcd.accept()
        assert vpcd.ask(bytes.fromhex("FFCA000000")) == bytes.fromhex(reply)


def test_garbage_is_seeded_and_never_a_success_reply(vpcd: StandInVpcd) -> None:
    with VirtualCard(port=vpcd.port, uid=UID, misbehave=Misbehaviour.GARBAGE, seed=3):
        vpcd.accept()
        first = vpcd.ask(bytes.fromhex("FFCA000000"))
        second = vpcd.ask(bytes.fromhex("FFCA000000"))
    assert first and second and first != second
    assert first[-2:] != b"\x90\x00" and second[-2:] != b"\x90\x00"


def test_removal_mid_read_walks_out_without_reply(vpcd: StandInVpcd) -> None:
    card = VirtualCard(port=vpcd.port, uid=UID, misbehave=Misbehaviour.REMOVE_MID_READ)
    card.insert()
    vpcd.accept()
    assert vpcd.ask(b"\x04") == DEFAULT_ATR
    assert vpcd.ask(bytes.fromhex("FFCA000000")) is None
    assert card.read_done.is_set()
    assert card.gone.wait(5)
    card.remove()


def test_tap_waits_for_the_read_then_leaves(vpcd: StandInVpcd) -> None:
    card = VirtualCard(port=vpcd.port, uid=UID)
    answers: list[bytes | None] = []

    def reader_side() -> None:
        vpcd.accept()
        answers.append(vpcd.ask(bytes.fromhex("FFCA000000")))
        answers.append(vpcd.recv())  # EOF once the card was taken away

    t = threading.Thread(target=reader_side)
    t.start()
    card.tap(timeout=5)
    t.join(5)
    assert answers == [UID + b"\x90\x00", None]


def test_tap_not_read_is_an_error(vpcd: StandInVpcd) -> None:
    card = VirtualCard(port=vpcd.port, uid=UID)
    with pytest.raises(ReaderError, match="not read"):
        card.tap(timeout=0.3)
    assert not card.present


def test_no_vpcd_listening_is_an_error() -> None:
    card = VirtualCard(port=free_port(), uid=UID)
    with pytest.raises(ReaderError, match="vpcd not reachable"):
        card.insert(timeout=0.2)


def test_double_insert_is_refused(vpcd: StandInVpcd) -> None:
    with (
        VirtualCard(port=vpcd.port, uid=UID) as card,
        pytest.raises(ReaderError, match="already inserted"),
    ):
        card.insert()
