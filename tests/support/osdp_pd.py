"""An OSDP reader for tests: libosdp's own peripheral device (PD) on the far end of a pty.

The gateway's control panel opens the pty's slave path as its serial port (readers.osdp's
``SerialChannel``, the same code that drives an RS-485 adapter's tty); the PD reads and writes
the master side. :class:`PtyBus` is a multidrop RS-485 line: every byte the CP sends reaches
every PD on it (each answers only to its own address), and their answers go back to the CP.
The PD records every command the CP sends (LED, buzzer, KEYSET) so a test can
await them, and keeps the key a KEYSET gave it, as a real reader stores it in its flash.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path
from typing import Any

import osdp

from readers.osdp_keys import SCBK_D  # noqa: F401 - the tests' name for it


class PtyLine:
    """A serial line: ``port`` for the CP, the master fd for the PD."""

    def __init__(self) -> None:
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.port = os.ttyname(slave)
        self._slave = slave  # held open so the master never reads EIO between CP rebuilds
        os.set_blocking(self.master, False)

    def pd_channel(self) -> osdp.Channel:
        return _MasterChannel(self.master)

    def close(self) -> None:
        for fd in (self.master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)


class _Drop(osdp.Channel):  # type: ignore[misc]
    """One PD's tap on the bus: it hears everything the CP sends, and talks to the CP."""

    def __init__(self, bus: PtyBus) -> None:
        super().__init__()
        self.bus = bus
        self.heard = bytearray()
        self.lock = threading.Lock()

    def read(self, max_bytes: int) -> bytes:
        with self.lock:
            out = bytes(self.heard[:max_bytes])
            del self.heard[:max_bytes]
        return out

    def write(self, buf: bytes) -> int:
        with self.bus.lock:  # half duplex: one talker at a time
            try:
                return os.write(self.bus.master, buf)
            except OSError:
                return 0

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.bus.detach(self)


class PtyBus(PtyLine):
    """A multidrop RS-485 line on a pty: the CP's bytes are copied to every attached PD."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self._drops: list[_Drop] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._forward, name="rs485-bus", daemon=True)
        self._thread.start()

    def pd_channel(self) -> osdp.Channel:
        drop = _Drop(self)
        with self.lock:
            self._drops.append(drop)
        return drop

    def detach(self, drop: _Drop) -> None:
        with self.lock:
            if drop in self._drops:
                self._drops.remove(drop)

    def _forward(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self.master], [], [], 0.1)
                data = os.read(self.master, 4096) if ready else b""
            except BlockingIOError:
                continue
            except OSError:
                return  # closed
            if not data:
                continue
            with self.lock:
                drops = list(self._drops)
            for drop in drops:
                with drop.lock:
                    drop.heard += data

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        super().close()


class _MasterChannel(osdp.Channel):  # type: ignore[misc]
    def __init__(self, fd: int) -> None:
        super().__init__()
        self.fd = fd

    def read(self, max_bytes: int) -> bytes:
        try:
            return os.read(self.fd, max_bytes)
        except BlockingIOError:
            return b""
        except OSError as exc:
            if exc.errno in (errno.EIO, errno.EBADF):
                return b""
            raise

    def write(self, buf: bytes) -> int:
        try:
            return os.write(self.fd, buf)
        except OSError:
            return 0

    def flush(self) -> None:
        pass


class VirtualOsdpReader:
    """libosdp's PD with secure channel, LED and buzzer; ``scbk=None`` with ``install=True`` is
    a reader fresh from the box (install mode, SCBK-D); ``secure=False`` one without SC."""

    def __init__(self, line: PtyLine, *, address: int = 101, scbk: bytes | None = None,
                 install: bool = False, secure: bool = True) -> None:
        self.line = line
        self.address = address
        self.scbk = scbk
        self.commands: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self.channel = line.pd_channel()
        caps = [(osdp.Capability.LEDControl, 1, 1), (osdp.Capability.AudibleControl, 1, 1)]
        flags = []
        if secure:
            caps.append((osdp.Capability.CommunicationSecurity, 1, 1))
            flags.append(osdp.LibFlag.InstallMode if install else osdp.LibFlag.EnforceSecure)
        self.pd = osdp.PeripheralDevice(
            osdp.PDInfo(address, self.channel, scbk=scbk, flags=flags),
            osdp.PDCapabilities(caps), log_level=osdp.LogLevel.Error,
            command_handler=self._on_command)

    def _on_command(self, command: dict[str, Any]) -> tuple[int, None]:
        with self._cond:
            if command.get("command") == osdp.Command.Keyset:
                self.scbk = bytes(command["data"])  # a real PD keeps it in flash
            self.commands.append(dict(command))
            self._cond.notify_all()
        return 0, None

    def start(self) -> VirtualOsdpReader:
        self.pd.start()
        return self

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.pd.teardown()
        close = getattr(self.channel, "close", None)
        if close is not None:  # off the bus: it hears nothing more
            close()

    def tap(self, uid: str) -> None:
        data = bytes.fromhex(uid)
        self.pd.submit_event({"event": osdp.Event.CardRead, "reader_no": 0,
                              "format": osdp.CardFormat.Unspecified, "direction": 0,
                              "data": data, "length": len(data) * 8})

    def local_status(self, *, tamper: bool, power_failed: bool = False) -> None:
        self.pd.submit_event({"event": osdp.Event.Status,
                              "type": osdp.StatusReportType.Local,
                              "report": bytes([int(tamper), int(power_failed)])})

    def sc_active(self) -> bool:
        return bool(self.pd.is_sc_active())

    def wait_command(self, predicate: Callable[[dict[str, Any]], bool], *, after: int = 0,
                     timeout: float = 15.0) -> dict[str, Any]:
        """The first command from index ``after`` on that matches ``predicate``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for command in self.commands[after:]:
                    if predicate(command):
                        return command
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no matching OSDP command within {timeout}s; "
                                       f"got {[c.get('command') for c in self.commands]}")
                self._cond.wait(left)

    def led_colors(self, after: int = 0) -> list[int]:
        with self._cond:
            return [c["on_color"] for c in self.commands[after:]
                    if c.get("command") == osdp.Command.LED]


def write_key(path: Path, key: bytes) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(key.hex() + "\n")
    return path
