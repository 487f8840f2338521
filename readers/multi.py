"""Several card-reader adapters as one (PC/SC readers and OSDP readers on the same gateway)."""

from __future__ import annotations

from typing import Any

from readers.base import CardReader, Signal, TapSink


class ReaderSet:
    """Starts every adapter with the same sink, stops them in reverse order, and passes a
    door's signal to the adapters that drive LEDs (the one that knows the reader takes it)."""

    def __init__(self, readers: list[CardReader]) -> None:
        self.readers = readers

    def start(self, sink: TapSink) -> None:
        started: list[CardReader] = []
        try:
            for reader in self.readers:
                reader.start(sink)
                started.append(reader)
        except BaseException:
            for reader in reversed(started):
                reader.stop()
            raise

    def stop(self) -> None:
        for reader in reversed(self.readers):
            reader.stop()

    @property
    def verifier(self) -> Any:
        """The card verifier of the adapter that checks cards (PC/SC; readers.verify), if any:
        the gateway hands it the site card keys."""
        for adapter in self.readers:
            found = getattr(adapter, "verifier", None)
            if found is not None:
                return found
        return None

    def signal(self, reader: str, signal: Signal, seconds: float) -> bool:
        for adapter in self.readers:
            send = getattr(adapter, "signal", None)
            if send is not None and send(reader, signal, seconds):
                return True
        return False
