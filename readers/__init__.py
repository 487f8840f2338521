"""Card-reader adapters: the CardReader protocol and its taps; pcsc (real), fake, virtual card.

Import ``readers.pcsc`` only where real readers are wanted: it is the one module that loads
pyscard.
"""

from readers.base import (
    CardReader,
    CardTap,
    FailureReason,
    ReaderError,
    ReaderRole,
    ReaderStatus,
    ReadFailure,
    TapSink,
)

__all__ = [
    "CardReader",
    "CardTap",
    "FailureReason",
    "ReadFailure",
    "ReaderError",
    "ReaderRole",
    "ReaderStatus",
    "TapSink",
]
