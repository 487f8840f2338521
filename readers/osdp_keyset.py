"""Giving an OSDP reader its key: ``install_key`` (a reader in install mode, over a channel
opened with the well-known SCBK-D) and ``rekey`` (from its current key to a new one). Each
runs a control panel for that one address, so the other readers on a shared line are never
addressed; the gateway's readers are in readers.osdp."""

from __future__ import annotations

import time
from typing import Any

import osdp

from readers.base import ReaderError
from readers.osdp import _NOTE_SC, ChannelFactory, OsdpReaderSpec, _close, _pd_info, _serial
from readers.osdp_keys import SCBK_BYTES


class KeyChangeUncertain(ReaderError):
    """KEYSET was sent but the channel did not come back under the new key: the reader may
    hold either key."""


def _wait_sc(cp: Any, address: int, deadline: float, *, restart: bool = False) -> bool:
    """Wait for the secure channel under the CP's own key (not SCBK-D); with ``restart``, for
    it to go down first and come back (KEYSET makes libosdp restart SC with the new key)."""
    down = not restart
    while (left := deadline - time.monotonic()) > 0:
        event = cp.get_event(address, timeout=min(left, 0.5))
        if not event or event.get("event") != osdp.Event.Notification:
            continue
        if event.get("type") == _NOTE_SC:
            if not event.get("arg0"):
                down = True
            elif down and not event.get("arg1"):  # arg1 = 0: under the reader's own key
                return True
    return False


def rekey(spec: OsdpReaderSpec, new_scbk: bytes, *, timeout: float = 20.0,
          channel_factory: ChannelFactory = _serial) -> None:
    """Replace a reader's key: a secure channel under its current key (``spec.scbk``), then
    KEYSET with ``new_scbk``; returns once the channel is back under the new key. Raises
    KeyChangeUncertain when KEYSET went out but the channel did not come back (the reader may
    hold either key), ReaderError when nothing was sent."""
    if len(new_scbk) != SCBK_BYTES or new_scbk == spec.scbk:
        raise ReaderError("the new OSDP key must be 16 bytes and differ from the current one")
    channel = channel_factory(spec)  # a CP for this address only: others on the line idle
    cp = osdp.ControlPanel([_pd_info(spec, channel)], log_level=osdp.LogLevel.Warning)
    cp.start()
    deadline = time.monotonic() + timeout
    try:
        if not _wait_sc(cp, spec.address, deadline):
            raise ReaderError(f"OSDP reader {spec.name!r} did not open the secure channel "
                              f"under its current key within {timeout:.0f} s")
        command = {"command": osdp.Command.Keyset, "type": 1, "data": new_scbk}
        if not cp.submit_command(spec.address, command):
            raise ReaderError(f"OSDP reader {spec.name!r}: the key change could not be queued")
        if not _wait_sc(cp, spec.address, deadline, restart=True):
            raise KeyChangeUncertain(f"OSDP reader {spec.name!r} did not come back under the "
                                     f"new key within {timeout:.0f} s")
    finally:
        try:
            cp.teardown()
        finally:
            _close(channel)


def install_key(spec: OsdpReaderSpec, *, timeout: float = 20.0,
                channel_factory: ChannelFactory = _serial) -> None:
    """Give a reader in install mode its key (``spec.scbk``). The CP opens the secure channel
    with the install key SCBK-D, sends KEYSET with the reader's key, and the channel restarts
    under that key; returns once it has. A reader that already holds this key passes at once.
    Raises ReaderError when the reader did not take the key within ``timeout``."""
    channel = channel_factory(spec)  # a CP for this address only: others on the line idle
    cp = osdp.ControlPanel([_pd_info(spec, channel, enforce=False)],
                           log_level=osdp.LogLevel.Warning)
    cp.start()
    try:
        if _wait_sc(cp, spec.address, time.monotonic() + timeout):
            return
    finally:
        try:
            cp.teardown()
        finally:
            _close(channel)
    raise ReaderError(f"OSDP reader {spec.name!r} (address {spec.address} on {spec.port}) did "
                      f"not take its key within {timeout:.0f} s: put it in install mode "
                      "(SCBK-D) and check the wiring, address and baud rate")
