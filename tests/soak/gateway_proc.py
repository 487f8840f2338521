"""`secroom gateway run` for the soak, with two test-only additions (run as a child process).

    python tests/soak/gateway_proc.py --config gateway.toml --relay-log relay.log

This runs the real command (``controller.cli.main(["gateway", "run", ...])``: config, readers,
journal, MQTT, signed policy, doors, backup scheduler, signals) with ``controller.gateway.Gateway``
replaced by a subclass that

* adds in-process readers (``INJECTED``) next to the configured PC/SC ones: a line
  ``tap READER UID`` on stdin presents and lifts a card there. vpcd costs ~0.9 s per tap, so 50
  taps/s cannot all go through pcscd; these taps enter at the reader interface and everything
  after it (binding, policy, decision, journal, relay, MQTT) is the gateway's real path;
* records every relay energising (``Door._set_unlocked(True)``, extensions included) in
  ``--relay-log`` as ``relay DOOR SEQ GRANTED``: SEQ is the journal seq of the last door.access
  event of that door emitted before it ("-" when the journal write failed), GRANTED the
  decision that event carried. Taps are decided under the gateway's lock, which is held from
  the door.access emit to the relay, so the last access of the door is the one that caused it;
* with ``SECROOM_SOAK_SKEW_S`` set, runs on a clock that is that many seconds off (a Pi without
  RTC and NTP): events and decisions use it, exactly as the ``clock`` argument of Gateway does.

Prints ``soak-gateway ready`` once the gateway started.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import controller.gateway as gateway_module  # noqa: E402
from controller.cli import main as secroom_main  # noqa: E402
from controller.envelope import now_utc  # noqa: E402
from controller.journal import JournalError  # noqa: E402
from dashboard.demo.readers import CombinedReaders  # noqa: E402
from readers.fake import FakeReader  # noqa: E402

INJECTED = ("Soak door in", "Soak door out", "Soak rack A", "Soak rack B", "Soak printer")


class SoakGateway(gateway_module.Gateway):
    relay_log: Path | None = None

    def __init__(self, config: Any, *, reader: Any, pin_factory: Any, **kw: Any) -> None:
        skew = float(os.environ.get("SECROOM_SOAK_SKEW_S", "0") or 0)
        if skew:
            kw["clock"] = lambda: now_utc() + timedelta(seconds=skew)
        self.injected = FakeReader(readers=INJECTED)
        super().__init__(
            config, reader=CombinedReaders(reader, self.injected), pin_factory=pin_factory, **kw
        )
        self._last_access: dict[str, tuple[int | None, bool]] = {}
        self._relay_out = (self.relay_log or Path(os.devnull)).open("a", buffering=1)
        emit = self.runtime.emit

        def recording_emit(kind: str, data: Mapping[str, Any] | Any) -> Any:
            d = data.model_dump(mode="json") if hasattr(data, "model_dump") else dict(data)
            try:
                event = emit(kind, data)
            except JournalError:
                if kind == "door.access":
                    self._last_access[str(d.get("door"))] = (None, bool(d.get("granted")))
                raise
            if kind == "door.access":
                self._last_access[str(d.get("door"))] = (event.seq, bool(d.get("granted")))
            return event

        self.runtime.emit = recording_emit  # type: ignore[method-assign]

    def start(self) -> None:
        super().start()
        for door_id, door in self.doors.items():
            if door.config.contact_pin is not None:  # the simulated doors start closed
                self._pin_factory.pin(door.config.contact_pin).drive_low()
            self._watch_relay(door_id, door)
        threading.Thread(target=self._read_stdin, name="soak-taps", daemon=True).start()
        print("soak-gateway ready", flush=True)

    def _watch_relay(self, door_id: str, door: Any) -> None:
        original = door._set_unlocked

        def set_unlocked(unlocked: bool) -> None:
            if unlocked:
                seq, granted = self._last_access.get(door_id, (None, False))
                self._relay_out.write(
                    f"relay {door_id} {'-' if seq is None else seq} {int(granted)} "
                    f"{datetime.now().timestamp():.3f}\n"
                )
            original(unlocked)

        door._set_unlocked = set_unlocked

    def _read_stdin(self) -> None:
        for line in sys.stdin:
            parts = line.split()
            if len(parts) == 3 and parts[0] == "tap":
                reader = parts[1].replace("_", " ")
                self.injected.present(parts[2], reader=reader)
                self.injected.remove(reader=reader)
                if len(self.injected.taps) > 1000:  # FakeReader keeps every tap for tests
                    self.injected.taps.clear()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--relay-log", type=Path, required=True)
    args = ap.parse_args()
    SoakGateway.relay_log = args.relay_log
    gateway_module.Gateway = SoakGateway  # type: ignore[misc]
    return secroom_main(["gateway", "run", "--config", args.config])


if __name__ == "__main__":
    sys.exit(main())
