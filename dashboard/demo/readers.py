"""The demo gateway's readers: the server-room door's two through PC/SC (private pcscd, vpcd
virtual reader); the rack's two and the printer's in-process (readers.fake).

Why not more vpcd readers: the vpcd driver keeps its card contexts in one static array indexed
by slot number (``ctx[Lun & 0xffff]``), shared by every vpcd reader a pcscd loads, so a second
vpcd reader in the same daemon answers on the first one's slots; and one process can talk to
only one private pcscd (readers/pcscd_host.py). The rack's taps therefore enter at the reader
interface; everything after it (binding, signed policy, two-person decision, relay, events)
is the gateway's real path.
"""

from __future__ import annotations

from readers.base import CardReader, TapSink
from readers.fake import FakeReader

RACK_READERS = ("Rack reader A", "Rack reader B")
PRINTER_READER = "Printer reader"
IN_PROCESS = (*RACK_READERS, PRINTER_READER)


class CombinedReaders:
    """Several CardReaders behind one (the gateway takes one reader)."""

    def __init__(self, *readers: CardReader) -> None:
        self.readers = readers

    def start(self, sink: TapSink) -> None:
        for reader in self.readers:
            reader.start(sink)

    def stop(self) -> None:
        for reader in reversed(self.readers):
            reader.stop()


def rack_readers() -> FakeReader:
    """The rack's two readers and the printer's (the printer's is bound only with CUPS)."""
    return FakeReader(readers=IN_PROCESS)


def tap_rack(reader: FakeReader, uid: str, which: int) -> None:
    """Present and lift a card at rack reader A (0), B (1) or the printer's reader (2)."""
    name = IN_PROCESS[which]
    reader.present(uid, reader=name)
    reader.remove(reader=name)
