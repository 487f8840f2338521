"""zstd compression (the only module importing `zstandard`). Compressor objects are not
thread-safe, so each thread gets its own."""

from __future__ import annotations

import threading

import zstandard

from backup.errors import IntegrityError

_local = threading.local()
SAMPLE = 64 * 1024


def _compressors(level: int) -> tuple[zstandard.ZstdCompressor, zstandard.ZstdCompressor]:
    cached = getattr(_local, "c", None)
    if cached is None or cached[0] != level:
        cached = (level, zstandard.ZstdCompressor(level=level), zstandard.ZstdCompressor(level=1))
        _local.c = cached
    return cached[1], cached[2]


def maybe_compress(data: bytes | memoryview, level: int) -> bytes | None:
    """zstd frame of ``data``, or None when it does not shrink (already compressed data).

    Large buffers are probed with a 64 KiB sample at level 1 first so incompressible media
    costs almost nothing.
    """
    full, probe = _compressors(level)
    if len(data) > 4 * SAMPLE:
        mid = len(data) // 2
        sample = data[mid:mid + SAMPLE]
        if len(probe.compress(sample)) > SAMPLE * 0.97:
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
    return zstandard.ZstdCompressor(level=10).compress(data)


def decompress_meta(data: bytes, limit: int = 1 << 31) -> bytes:
    try:
        return zstandard.ZstdDecompressor().decompress(data, max_output_size=limit)
    except zstandard.ZstdError as exc:
        raise IntegrityError("compressed metadata is corrupt") from exc
