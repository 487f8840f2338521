"""A virtual contactless card that talks to the vpcd driver loaded inside a real pcscd.

vpcd (vsmartcard) listens on TCP (35963 for slot 0, 35964 for slot 1 by default); a virtual
card is a TCP *client*: the card is present in the reader while it is connected. Each message
both ways is framed by a 2-byte big-endian length. From vpcd: one control byte (00 power off,
01 power on, 02 reset, 04 get ATR; only "get ATR" is answered) or else a command APDU, which is
answered with a response APDU.

The card answers PC/SC GET DATA (FF CA 00 00 xx) with its UID and 90 00, or misbehaves on
request (error status words, truncated replies, removal mid-read, odd or overlong UIDs,
garbage) so tests can check that every bad reply turns into a clear failure.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import threading
import time
from enum import StrEnum
from functools import reduce
from typing import Final, Protocol

from readers.base import ReaderError

VPCD_PORT: Final[int] = 0x8C7B  # 35963; slot 1 listens on 35964

CTRL_OFF: Final[int] = 0x00
CTRL_ON: Final[int] = 0x01
CTRL_RESET: Final[int] = 0x02
CTRL_ATR: Final[int] = 0x04


def pcsc_storage_atr(standard: int = 0x11, card_name: int = 0x003B) -> bytes:
    """ATR a PC/SC contactless reader reports for a storage card (PC/SC part 3, 3.1.3.2.3).

    Defaults: standard 0x11 (FeliCa), card name 0x003B (FeliCa 212K), i.e. what a Sony PaSoRi
    reports for a FeliCa card.
    """
    body = bytes((0x8F, 0x80, 0x01, 0x80, 0x4F, 0x0C, 0xA0, 0x00, 0x00, 0x03, 0x06, standard))
    body += card_name.to_bytes(2, "big") + bytes(4)
    tck = reduce(lambda a, b: a ^ b, body, 0)  # XOR of T0..last historical byte
    return bytes((0x3B,)) + body + bytes((tck,))


DEFAULT_ATR: Final[bytes] = pcsc_storage_atr()


class Applet(Protocol):
    """A card personality (readers.virtual_cards): answers every APDU but GET DATA, and says
    whether the reader's check is finished."""

    uid: bytes
    atr: bytes

    def answer(self, apdu: bytes) -> tuple[bytes, bool]: ...


class Misbehaviour(StrEnum):
    """How the virtual card answers GET DATA instead of ``UID 90 00``."""

    SW_6A81 = "sw_6a81"  # function not supported
    SW_6C05 = "sw_6c05"  # wrong Le, card wants 5
    SW_6282 = "sw_6282"  # end of data reached before Le bytes
    SW_6300 = "sw_6300"  # verification failed
    SW_6F00 = "sw_6f00"  # no precise diagnosis
    TRUNCATED = "truncated"  # only the first byte of the reply
    REMOVE_MID_READ = "remove_mid_read"  # the card leaves after the command, no reply
    ODD_UID = "odd_uid"  # a 5-byte UID with 90 00
    OVERLONG_UID = "overlong_uid"  # a 16-byte UID with 90 00
    GARBAGE = "garbage"  # random bytes (seeded) that do not end in 90 00


_STATUS_REPLIES: Final[dict[Misbehaviour, bytes]] = {
    Misbehaviour.SW_6A81: b"\x6a\x81",
    Misbehaviour.SW_6C05: b"\x6c\x05",
    Misbehaviour.SW_6282: b"\x62\x82",
    Misbehaviour.SW_6300: b"\x63\x00",
    Misbehaviour.SW_6F00: b"\x6f\x00",
}


def get_data_reply(uid: bytes, misbehave: Misbehaviour | None, rng: random.Random) -> bytes | None:
    """The card's reply to GET DATA (UID); None means "leave without replying"."""
    if misbehave is None:
        return uid + b"\x90\x00"
    if misbehave in _STATUS_REPLIES:
        return _STATUS_REPLIES[misbehave]
    if misbehave is Misbehaviour.TRUNCATED:
        return (uid + b"\x90\x00")[:1]
    if misbehave is Misbehaviour.REMOVE_MID_READ:
        return None
    if misbehave is Misbehaviour.ODD_UID:
        return (uid * 5)[:5] + b"\x90\x00"
    if misbehave is Misbehaviour.OVERLONG_UID:
        return (uid * 16)[:16] + b"\x90\x00"
    garbage = bytes(rng.randrange(256) for _ in range(rng.randrange(3, 24)))
    return garbage if garbage[-2:] != b"\x90\x00" else garbage[:-1]


class VirtualCard:
    """One virtual card: ``insert``/``remove`` it, or ``tap`` it (insert, await a read, remove)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = VPCD_PORT,
        uid: bytes,
        atr: bytes = DEFAULT_ATR,
        misbehave: Misbehaviour | None = None,
        reply: bytes | None = None,
        seed: int = 0,
        applet: Applet | None = None,
    ) -> None:
        """``reply``, when given, is sent verbatim as the answer to GET DATA (for fuzzing).
        ``applet`` (readers.virtual_cards) answers every other APDU; the read is then done
        when the applet says the reader's check is finished."""
        if not atr or len(atr) > 33:
            raise ValueError("an ATR has 1 to 33 bytes")
        self.host = host
        self.port = port
        self.uid = bytes(uid)
        self.atr = bytes(atr)
        self.misbehave = misbehave
        self.reply = reply
        self.applet = applet
        self.apdus_seen: list[bytes] = []
        self.read_done = threading.Event()  # set when GET DATA was answered (or walked out on)
        self.gone = threading.Event()  # set when the connection ended (removed, or vpcd closed)
        self.gone.set()
        self._rng = random.Random(seed)
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def present(self) -> bool:
        return not self.gone.is_set()

    def insert(self, timeout: float = 5.0) -> None:
        """Connect to vpcd (the card enters the field); retries while vpcd is not listening."""
        if self.present:
            raise ReaderError("virtual card is already inserted")
        self.read_done.clear()
        deadline = time.monotonic() + timeout
        while True:
            try:
                sock = socket.create_connection((self.host, self.port), timeout=1.0)
                break
            except OSError as exc:
                if time.monotonic() >= deadline:
                    raise ReaderError(
                        f"vpcd not reachable on {self.host}:{self.port} within {timeout}s "
                        "(is pcscd running with the vpcd reader?)"
                    ) from exc
                # vpcd is (re)starting: nothing to subscribe to but the port itself.
                time.sleep(0.02)
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._sock = sock
            self.gone.clear()
            self._thread = threading.Thread(
                target=self._serve, args=(sock,), name=f"vicc-{self.port}", daemon=True
            )
            self._thread.start()

    def remove(self) -> None:
        """Disconnect (the card leaves the field) and wait for the serving thread."""
        with self._lock:
            sock, thread = self._sock, self._thread
            self._sock = None
            self._thread = None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)
        self.gone.set()

    def tap(
        self, hold_s: float | None = None, wait_read: bool = True, timeout: float = 5.0
    ) -> None:
        """Present the card until it was read (and ``hold_s`` longer), then take it away."""
        self.insert(timeout=timeout)
        try:
            if wait_read and not self.read_done.wait(timeout):
                raise ReaderError(
                    f"virtual card on port {self.port} was not read within {timeout}s"
                )
            if hold_s:
                self.gone.wait(hold_s)  # a deliberate dwell; ends early if vpcd drops the card
        finally:
            self.remove()

    def __enter__(self) -> VirtualCard:
        self.insert()
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    # -- serving ---------------------------------------------------------------------------

    def _serve(self, sock: socket.socket) -> None:
        try:
            while True:
                msg = _recv_frame(sock)
                if msg is None:
                    return
                if len(msg) == 1 and msg[0] in (CTRL_OFF, CTRL_ON, CTRL_RESET):
                    continue
                if len(msg) == 1 and msg[0] == CTRL_ATR:
                    _send_frame(sock, self.atr)
                    continue
                self.apdus_seen.append(msg)
                if msg[:4] == b"\xff\xca\x00\x00":
                    answer = self.reply
                    if answer is None:
                        answer = get_data_reply(self.uid, self.misbehave, self._rng)
                    if answer is None:  # removal mid-read
                        self.read_done.set()
                        return
                    _send_frame(sock, answer)
                    if self.applet is None:
                        self.read_done.set()
                elif self.applet is not None:
                    answer, finished = self.applet.answer(msg)
                    _send_frame(sock, answer)
                    if finished:
                        self.read_done.set()
                else:
                    _send_frame(sock, b"\x6d\x00")  # instruction not supported
        except OSError:
            return  # connection torn down (remove(), or pcscd went away)
        finally:
            with contextlib.suppress(OSError):
                sock.close()
            self.gone.set()


_QUICKACK = getattr(socket, "TCP_QUICKACK", None)


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        if _QUICKACK is not None:
            # vpcd writes a frame's length and its body in two sends with Nagle on: a delayed
            # ACK here holds the body back ~40 ms per APDU. Linux clears QUICKACK after use.
            sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        buf += chunk
    return bytes(buf)


def _recv_frame(sock: socket.socket) -> bytes | None:
    head = _recv_exact(sock, 2)
    if head is None:
        return None
    (length,) = struct.unpack(">H", head)
    return _recv_exact(sock, length) if length else b""


def _send_frame(sock: socket.socket, payload: bytes) -> None:
    if len(payload) > 0xFFFF:
        raise ValueError("vpcd frames carry at most 65535 bytes")
    sock.sendall(struct.pack(">H", len(payload)) + payload)
