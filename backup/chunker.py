"""Content-defined chunking (the only module importing `pyfastcdc`, a Cython FastCDC-2020).

The gear table is seeded from the dedup key, so chunk boundaries (and thus chunk sizes seen in
the repository) depend on a secret: sizes alone do not fingerprint known files.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator

from pyfastcdc import FastCDC

MIN_SIZE = 256 * 1024
AVG_SIZE = 1024 * 1024
MAX_SIZE = 8 * 1024 * 1024


class Chunker:
    def __init__(self, dedup_key: bytes) -> None:
        seed = int.from_bytes(hmac.digest(dedup_key, b"chunker-seed", "sha256")[:7], "big") | 1
        self._cdc = FastCDC(AVG_SIZE, min_size=MIN_SIZE, max_size=MAX_SIZE,
                            normalized_chunking=1, seed=seed)

    def cut(self, buf: bytes) -> Iterator[tuple[int, int]]:
        """(offset, length) of each chunk of ``buf`` (the last one may end mid-content)."""
        for chunk in self._cdc.cut_buf(buf):
            yield chunk.offset, chunk.length
