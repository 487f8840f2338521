"""PC/SC card readers through pcscd: the only module that imports pyscard (``smartcard``).

One thread drives ``SCardGetStatusChange`` itself (no pyscard monitors: they stop for good when
pcscd restarts or a reader is unplugged). It watches every reader plus the PnP pseudo-reader,
so it wakes at once on a card or a reader arriving; ``poll_timeout_ms`` only bounds how late a
stop is noticed when ``SCardCancel`` cannot reach pcscd. When pcscd goes away the context is
released, every reader is reported disconnected, and a new context is established (retrying
every ``rebuild_backoff_s``) until pcscd is back; then the readers are reported connected again.

A presentation (card enters the field until it leaves) gives exactly one outcome: a
:class:`CardTap` when GET DATA returned a well formed UID, else a :class:`ReadFailure`. The
presence state lives with the PC/SC context: after pcscd restarts, a card still lying on the
reader is a new presentation.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from smartcard import scard as sc

from readers.apdu import GET_DATA_UID, UidOk, parse_uid_reply
from readers.base import (
    CardRemoved,
    CardTap,
    FailureReason,
    ReaderError,
    ReaderStatus,
    ReadFailure,
    TapSink,
    utc_now,
)
from readers.verify.base import UID_ONLY, Credential, VerifyIOError
from readers.verify.select import CardVerifier

log = logging.getLogger(__name__)

PNP_READER = "\\\\?PnP?\\Notification"
SOCKET_ENV = "PCSCLITE_CSOCK_NAME"
# Give pcscd (vpcd polls presence every 400 ms) this long to notice a card that vanished while
# we talked to it, to tell "removed" from "transmit_failed".
REMOVAL_GRACE_MS = 1000

_GONE_CODES = frozenset({sc.SCARD_W_REMOVED_CARD, sc.SCARD_E_NO_SMARTCARD})
# Errors after which the context is useless: pcscd stopped, restarted or the socket broke.
_SERVICE_CODES = frozenset(
    {
        sc.SCARD_E_NO_SERVICE,
        sc.SCARD_E_SERVICE_STOPPED,
        sc.SCARD_E_INVALID_HANDLE,
        sc.SCARD_F_COMM_ERROR,
        sc.SCARD_F_INTERNAL_ERROR,
        sc.SCARD_E_NO_MEMORY,
    }
)
_READER_GONE_FLAGS = sc.SCARD_STATE_UNKNOWN | sc.SCARD_STATE_UNAVAILABLE | sc.SCARD_STATE_IGNORE

_socket_env_lock = threading.Lock()
_socket_env_first: list[str | None] = []  # PCSCLITE_CSOCK_NAME seen by the first context


def _code(hr: int) -> str:
    return f"0x{hr & 0xFFFFFFFF:08X}"


def _describe(hr: int) -> str:
    try:
        text = str(sc.SCardGetErrorMessage(hr)).strip()
    except Exception:  # noqa: BLE001 - a message is a nicety, never worth failing over
        text = ""
    return f"{_code(hr)} {text}".strip()


def _check_socket_env() -> None:
    """libpcsclite caches PCSCLITE_CSOCK_NAME at the first context; refuse a silent mismatch."""
    current = os.environ.get(SOCKET_ENV)
    with _socket_env_lock:
        if not _socket_env_first:
            _socket_env_first.append(current)
        elif _socket_env_first[0] != current:
            raise ReaderError(
                f"{SOCKET_ENV} changed from {_socket_env_first[0]!r} to {current!r} after the "
                "first PC/SC call in this process; libpcsclite keeps the first value. Use "
                "PcscdHost.use_in_this_process() or run the reader in a subprocess."
            )


class _Rebuild(Exception):
    def __init__(self, hr: int, where: str) -> None:
        super().__init__(f"{where}: {_describe(hr)}")


def list_reader_names() -> list[str]:
    """Names of the readers pcscd knows now (one-shot; raises ReaderError if pcscd is down)."""
    _check_socket_env()
    hr, ctx = sc.SCardEstablishContext(sc.SCARD_SCOPE_USER)
    if hr != sc.SCARD_S_SUCCESS:
        raise ReaderError(f"cannot reach pcscd: {_describe(hr)}")
    try:
        hr, names = sc.SCardListReaders(ctx, [])
        if hr == sc.SCARD_E_NO_READERS_AVAILABLE:
            return []
        if hr != sc.SCARD_S_SUCCESS:
            raise ReaderError(f"listing readers failed: {_describe(hr)}")
        return list(names)
    finally:
        sc.SCardReleaseContext(ctx)


@dataclass
class _Slot:
    state: int = sc.SCARD_STATE_UNAWARE  # last dwEventState (CHANGED bit cleared)
    presented: bool = False  # the current presentation already had its outcome
    counter: int = -1  # pcscd's insert/remove counter at that presentation


class PcscReaders:
    """Watches all PC/SC readers (or those whose names pass ``reader_filter``)."""

    def __init__(
        self,
        *,
        reader_filter: Callable[[str], bool] | None = None,
        poll_timeout_ms: int = 200,
        rebuild_backoff_s: float = 0.2,
        verifier: CardVerifier | None = None,
    ) -> None:
        """``verifier``: the credential check run on each card while it is still connected
        (readers.verify); without one every tap is UID-only."""
        if poll_timeout_ms <= 0 or rebuild_backoff_s <= 0:
            raise ValueError("poll_timeout_ms and rebuild_backoff_s must be positive")
        self._filter = reader_filter or (lambda _name: True)
        self.verifier = verifier
        self._poll_ms = poll_timeout_ms
        self._backoff = rebuild_backoff_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sink: TapSink | None = None
        self._ctx_lock = threading.Lock()
        self._ctx: int | None = None
        self._slots: dict[str, _Slot] = {}
        # taps, credential.<verified|weak|failed>, failure.<reason>, rebuilds, sink_errors
        self.counters: Counter[str] = Counter()

    # -- CardReader ------------------------------------------------------------------------

    def start(self, sink: TapSink) -> None:
        if self._thread is not None:
            raise ReaderError("PcscReaders already started")
        _check_socket_env()
        self._sink = sink
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="pcsc-readers", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._ctx_lock:
            if self._ctx is not None:
                sc.SCardCancel(self._ctx)  # wakes SCardGetStatusChange at once
        if self._thread is not None:
            self._thread.join(10)
            if self._thread.is_alive():
                raise ReaderError("PC/SC reader thread did not stop within 10 s")
            self._thread = None

    @property
    def readers(self) -> list[str]:
        """Readers currently connected (as last reported)."""
        return sorted(self._slots)

    # -- supervision -----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            hr, ctx = sc.SCardEstablishContext(sc.SCARD_SCOPE_USER)
            if hr != sc.SCARD_S_SUCCESS:
                self._stop.wait(self._backoff)  # pcscd down: retry until it is back
                continue
            with self._ctx_lock:
                self._ctx = ctx
            reason = "stopped"
            try:
                self._watch(ctx)
            except _Rebuild as exc:
                reason = f"pcscd unavailable ({exc})"
                self.counters["rebuilds"] += 1
                log.warning("PC/SC context lost, rebuilding: %s", exc)
            except Exception as exc:  # noqa: BLE001 - keep watching whatever pyscard did
                reason = f"unexpected error ({type(exc).__name__}: {exc})"
                self.counters["rebuilds"] += 1
                log.exception("PC/SC watch loop failed, rebuilding the context")
            finally:
                with self._ctx_lock:
                    self._ctx = None
                sc.SCardReleaseContext(ctx)
            if self._stop.is_set():
                break
            for name in sorted(self._slots):
                self._emit_status(name, False, reason)
            self._slots.clear()
            self._stop.wait(self._backoff)
        self._slots.clear()

    def _sync_readers(self, ctx: int) -> None:
        hr, names = sc.SCardListReaders(ctx, [])
        if hr == sc.SCARD_E_NO_READERS_AVAILABLE:
            names = []
        elif hr != sc.SCARD_S_SUCCESS:
            raise _Rebuild(hr, "SCardListReaders")
        wanted = {n for n in names if self._filter(n)}
        for name in sorted(set(self._slots) - wanted):
            del self._slots[name]
            self._emit_status(name, False, "reader removed")
        for name in sorted(wanted - set(self._slots)):
            self._slots[name] = _Slot()
            self._emit_status(name, True, "reader present")

    def _watch(self, ctx: int) -> None:
        pnp_state = sc.SCARD_STATE_UNAWARE
        relist = True
        while not self._stop.is_set():
            if relist:
                self._sync_readers(ctx)
                relist = False
            query = [(PNP_READER, pnp_state)] + [(n, s.state) for n, s in self._slots.items()]
            hr, states = sc.SCardGetStatusChange(ctx, self._poll_ms, query)
            seen = time.monotonic()
            if hr in (sc.SCARD_E_TIMEOUT, sc.SCARD_E_CANCELLED):
                continue
            if hr in (sc.SCARD_E_UNKNOWN_READER, sc.SCARD_E_READER_UNAVAILABLE):
                relist = True
                continue
            if hr != sc.SCARD_S_SUCCESS:
                raise _Rebuild(hr, "SCardGetStatusChange")
            for name, event, atr in states:
                if name == PNP_READER:
                    if event & sc.SCARD_STATE_CHANGED:
                        relist = True
                    pnp_state = event & ~sc.SCARD_STATE_CHANGED
                    continue
                slot = self._slots.get(name)
                if slot is None:
                    continue
                slot.state = event & ~sc.SCARD_STATE_CHANGED
                if event & _READER_GONE_FLAGS:
                    relist = True
                    continue
                self._on_state(ctx, name, slot, event, bytes(atr), seen)

    def _on_state(
        self, ctx: int, name: str, slot: _Slot, event: int, atr: bytes, seen: float
    ) -> None:
        if not event & sc.SCARD_STATE_PRESENT:
            if slot.presented:
                self._removed(name)
            slot.presented = False
            return
        counter = (event >> 16) & 0xFFFF
        if slot.presented and counter == slot.counter:
            return  # debounce: the same presentation, its outcome is already out
        slot.presented = True
        slot.counter = counter
        if event & sc.SCARD_STATE_MUTE:
            self._fail(name, FailureReason.TRANSMIT_FAILED, "card is mute (no ATR)")
            return
        self._read(ctx, name, slot, atr, seen)

    # -- reading one card ------------------------------------------------------------------

    def _read(self, ctx: int, name: str, slot: _Slot, atr: bytes, seen: float) -> None:
        hr, card, protocol = sc.SCardConnect(
            ctx, name, sc.SCARD_SHARE_SHARED, sc.SCARD_PROTOCOL_T0 | sc.SCARD_PROTOCOL_T1
        )
        if hr in _SERVICE_CODES:
            slot.presented = False  # no outcome yet: read it again on the new context
            raise _Rebuild(hr, "SCardConnect")
        if hr != sc.SCARD_S_SUCCESS:
            self._fail_gone_or(ctx, name, slot, hr, "SCardConnect")
            return
        credential: Credential = UID_ONLY
        where = "SCardTransmit"
        try:
            hr, reply = sc.SCardTransmit(card, protocol, list(GET_DATA_UID))
            result = parse_uid_reply(reply) if hr == sc.SCARD_S_SUCCESS else None
            parsed_at = time.monotonic()
            if isinstance(result, UidOk) and self.verifier is not None:
                try:
                    credential = self.verifier.verify(
                        self._transmitter(card, protocol), result.uid, atr, reader=name)
                except VerifyIOError as exc:
                    hr = exc.args[0] if exc.args and isinstance(exc.args[0], int) else hr
                    where = "SCardTransmit (verify)"
        finally:
            sc.SCardDisconnect(card, sc.SCARD_LEAVE_CARD)
        if hr in _SERVICE_CODES:
            slot.presented = False
            raise _Rebuild(hr, where)
        if hr != sc.SCARD_S_SUCCESS:
            self._fail_gone_or(ctx, name, slot, hr, where)
            return
        if not isinstance(result, UidOk):
            assert result is not None
            if not reply and self._card_left(ctx, name, slot):
                # vpcd (and some drivers) hand over an empty reply when the card vanished
                self._fail(name, FailureReason.REMOVED, "SCardTransmit: empty reply, card left")
                return
            self._fail(name, result.reason, result.detail)
            return
        tap = CardTap(
            reader=name,
            uid=result.uid_hex,
            atr=atr.hex().upper(),
            at=utc_now(),
            read_monotonic=parsed_at,
            present_monotonic=seen,
            credential=credential,
        )
        self.counters["taps"] += 1
        self.counters[f"credential.{credential.strength.value}"] += 1
        self._deliver(lambda s: s.on_tap(tap))

    @staticmethod
    def _transmitter(card: int, protocol: int) -> Callable[[bytes], bytes]:
        def transmit(apdu: bytes) -> bytes:
            hr, reply = sc.SCardTransmit(card, protocol, list(apdu))
            if hr != sc.SCARD_S_SUCCESS or not reply:
                raise VerifyIOError(hr if hr != sc.SCARD_S_SUCCESS else sc.SCARD_W_REMOVED_CARD)
            return bytes(reply)

        return transmit

    def _fail_gone_or(self, ctx: int, name: str, slot: _Slot, hr: int, where: str) -> None:
        """Report "removed" if the card left (now or within the grace period), else the error."""
        if hr in _GONE_CODES or self._card_left(ctx, name, slot):
            self._fail(name, FailureReason.REMOVED, f"{where}: card left the field ({_code(hr)})")
        else:
            self._fail(name, FailureReason.TRANSMIT_FAILED, f"{where}: {_describe(hr)}")

    def _card_left(self, ctx: int, name: str, slot: _Slot) -> bool:
        deadline = time.monotonic() + REMOVAL_GRACE_MS / 1000
        state = slot.state
        while (left_ms := int((deadline - time.monotonic()) * 1000)) > 0:
            hr, states = sc.SCardGetStatusChange(ctx, left_ms, [(name, state)])
            if hr != sc.SCARD_S_SUCCESS or not states:
                return False
            state = states[0][1] & ~sc.SCARD_STATE_CHANGED
            if not state & sc.SCARD_STATE_PRESENT:
                slot.state = state
                slot.presented = False
                return True
        return False

    # -- delivering ------------------------------------------------------------------------

    def _fail(self, name: str, reason: FailureReason, detail: str) -> None:
        failure = ReadFailure(reader=name, reason=reason.value, detail=detail, at=utc_now())
        self.counters[f"failure.{reason.value}"] += 1
        self._deliver(lambda s: s.on_failure(failure))

    def _removed(self, name: str) -> None:
        if getattr(self._sink, "on_removed", None) is None:
            return
        removed = CardRemoved(reader=name, at=utc_now())
        self._deliver(lambda s: s.on_removed(removed))  # type: ignore[attr-defined]

    def _emit_status(self, name: str, connected: bool, detail: str) -> None:
        status = ReaderStatus(reader=name, connected=connected, at=utc_now(), detail=detail)
        self._deliver(lambda s: s.on_status(status))

    def _deliver(self, call: Callable[[TapSink], None]) -> None:
        if self._sink is None:
            return
        try:
            call(self._sink)
        except Exception:  # noqa: BLE001 - a broken sink must not stop the readers
            self.counters["sink_errors"] += 1
            log.exception("tap sink raised; the event was handed over but not accepted")
