"""zstd compression (the only module importing `zstandard`). Compressor objects are not
thread-safe, so each thread gets its own."""

from __future__ import annotations

import threading

import zstandard

from backup.errors import IntegrityError

_local = threading.local()
SAMPLE = 8 * 1024
PROBES = 8


def _compressors(level: int) -> tuple[zstandard.ZstdCompressor, zstandard.ZstdCompressor]:
    cached = getattr(_local, "c", None)
    if cached is None or cached[0] != level:
        cached = (level, zstandard.ZstdCompressor(level=level), zstandard.ZstdCompressor(level=1))
        _local.c = cached
    return cached[1], cached[2]


def maybe_compress(data: bytes | memoryview, level: int) -> bytes | None:
    """zstd frame of ``data``, or None when it does not shrink (already compressed data).

    Large buffers are probed first with eight 8 KiB samples spread over them at level 1: only
    when every sample is incompressible (photos, scans, archives) is compression skipped, so
    mixed content (database dumps) is still compressed.
    """
    full, probe = _compressors(level)
    n = len(data)
    if n > 4 * PROBES * SAMPLE:
        step = (n - SAMPLE) // (PROBES - 1)
        if all(len(probe.compress(data[i * step:i * step + SAMPLE])) > SAMPLE * 0.97
               for i in range(PROBES)):
            return None
    out = full.compress(data)
    return out if len(out) < len(data) * 0.98 else None


def decompress(data: bytes, raw_length: int) -> bytes:
    d = getattr(_local, "d", None)
    if d is None:
        d = _local.d = zstandard.ZstdDecompressor()
    try:
        out = d.decompress(data, max_output_size=raw_length)
    except zstandard.ZstdError as exc:
        raise IntegrityError("compressed blob is corrupt") from exc
    if len(out) != raw_length:
        raise IntegrityError("decompressed blob has the wrong length")
    return out


def compress_meta(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=3).compress(data)


class JsonStream:
    """zstd of text added piece by piece; the compressed pieces are kept, not the text."""

    def __init__(self, level: int = 3) -> None:
        self._c = zstandard.ZstdCompressor(level=level).compressobj()
        self._out: list[bytes] = []

    def add(self, text: str) -> None:
        piece = self._c.compress(text.encode())
        if piece:
            self._out.append(piece)

    def finish(self) -> bytes:
        self._out.append(self._c.flush())
        out = b"".join(self._out)
        self._out = []
        return out


def decompress_meta(data: bytes, limit: int = 1 << 31) -> bytes:
    try:
        return zstandard.ZstdDecompressor().decompress(data, max_output_size=limit)
    except zstandard.ZstdError as exc:
        raise IntegrityError("compressed metadata is corrupt") from exc
