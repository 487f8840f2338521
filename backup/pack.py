"""Pack files: many encrypted blobs, a clear-text trailer listing them, named by SHA-256.

Layout (all integers big-endian), see FORMAT.md:
    "SRPK" 0x01 0 0 0 | blob ciphertexts ... | entries | groups | footer
    entry  = id[32] group:u16 seq:u64 offset:u64 length:u32 raw:u32 flags:u8   (59 bytes)
    group  = ephemeral X25519 public key[32]
    footer = n_entries:u32 n_groups:u16 trailer_len:u32 "SRPE"                   (14 bytes)
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from backup import crypto
from backup.errors import IntegrityError
from backup.storage import fsync_dir, io_errors, tmp_name

MAGIC = b"SRPK\x01\0\0\0"
END = b"SRPE"
ENTRY = struct.Struct(">32sHQQIIB")
FOOTER = struct.Struct(">IHI4s")
FLAG_ZSTD = 1
PURPOSE = b"pack"


def blob_aad(chunk_id: bytes, flags: int, raw: int) -> bytes:
    return chunk_id + struct.pack(">BI", flags, raw)


@dataclass(frozen=True, slots=True)
class Entry:
    id: bytes
    group: int
    seq: int
    offset: int
    length: int
    raw: int
    flags: int


def encode_trailer(entries: list[Entry], groups: list[bytes]) -> bytes:
    body = b"".join(ENTRY.pack(e.id, e.group, e.seq, e.offset, e.length, e.raw, e.flags)
                    for e in entries) + b"".join(groups)
    return body + FOOTER.pack(len(entries), len(groups), len(body) + FOOTER.size, END)


def decode_trailer(data: bytes, data_end: int | None = None) -> tuple[list[Entry], list[bytes]]:
    """Parse the trailer that ends ``data`` (a whole pack or just its tail)."""
    if len(data) < FOOTER.size:
        raise IntegrityError("pack too short")
    n, g, tlen, end = FOOTER.unpack_from(data, len(data) - FOOTER.size)
    if end != END or tlen != n * ENTRY.size + g * 32 + FOOTER.size or tlen > len(data):
        raise IntegrityError("pack trailer malformed")
    base = len(data) - tlen
    entries = [Entry(*t) for t in ENTRY.iter_unpack(data[base:base + n * ENTRY.size])]
    gstart = base + n * ENTRY.size
    groups = [data[gstart + 32 * i:gstart + 32 * i + 32] for i in range(g)]
    limit = data_end if data_end is not None else base
    for e in entries:
        if e.group >= g or e.offset < len(MAGIC) or e.offset + e.length > limit:
            raise IntegrityError("pack trailer points outside the pack")
    return entries, groups


class PackWriter:
    """Appends blobs to a temporary file, hashing as it goes; ``finish`` publishes it."""

    def __init__(self, repo_root: Path, operator_public: bytes | None) -> None:
        self._root = repo_root
        self._tmp = tmp_name(repo_root / "tmp", "pack")
        with io_errors("creating a pack"):
            self._fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        self._hash = hashlib.sha256()
        self._size = 0
        self.entries: list[Entry] = []
        self.groups: list[bytes] = []
        self._sealer: crypto.Sealer | None = None
        if operator_public is not None:  # None: a repack writer that only copies sealed blobs
            eph, key = crypto.new_group_key(operator_public, PURPOSE)
            self.groups.append(eph)
            self._sealer = crypto.Sealer(key)
        self._write(MAGIC)

    @property
    def size(self) -> int:
        return self._size

    def _write(self, data: bytes | memoryview) -> None:
        with io_errors("writing a pack"):
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]
        self._hash.update(data)
        self._size += len(data)

    def add(self, chunk_id: bytes, payload: bytes | memoryview, raw: int, flags: int) -> int:
        """Encrypt and append one blob; returns its stored length."""
        assert self._sealer is not None
        seq = len(self.entries)
        sealed = self._sealer.seal(seq, payload, blob_aad(chunk_id, flags, raw))
        self.entries.append(Entry(chunk_id, 0, seq, self._size, len(sealed), raw, flags))
        self._write(sealed)
        return len(sealed)

    def add_sealed(self, entry: Entry, group_key: bytes, sealed: bytes) -> None:
        """Copy an already encrypted blob from another pack (repacking without any key)."""
        try:
            group = self.groups.index(group_key)
        except ValueError:
            group = len(self.groups)
            self.groups.append(group_key)
        self.entries.append(Entry(entry.id, group, entry.seq, self._size, len(sealed),
                                  entry.raw, entry.flags))
        self._write(sealed)

    def finish(self) -> tuple[str, int]:
        """Write the trailer, fsync, rename to packs/xx/<sha256>; returns (pack id, size)."""
        self._write(encode_trailer(self.entries, self.groups))
        with io_errors("syncing a pack"):
            os.fsync(self._fd)
            os.close(self._fd)
        self._fd = -1
        pack_id = self._hash.hexdigest()
        final = pack_path(self._root, pack_id)
        with io_errors("publishing a pack"):
            final.parent.mkdir(exist_ok=True)
            os.rename(self._tmp, final)
            fsync_dir(final.parent)
        return pack_id, self._size

    def abort(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        with contextlib.suppress(OSError):
            os.unlink(self._tmp)


def pack_path(repo_root: Path, pack_id: str) -> Path:
    return repo_root / "packs" / pack_id[:2] / pack_id


def read_trailer(path: Path) -> tuple[list[Entry], list[bytes], int]:
    """Entries and groups of a pack read from its tail, and the pack size."""
    with io_errors(f"reading pack {path.name}"), open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size < len(MAGIC) + FOOTER.size:
            raise IntegrityError(f"pack {path.name[:12]} truncated")
        fh.seek(size - FOOTER.size)
        tail = fh.read(FOOTER.size)
        tlen = FOOTER.unpack(tail)[2]
        if not FOOTER.size <= tlen <= size - len(MAGIC):
            raise IntegrityError(f"pack {path.name[:12]} trailer malformed")
        fh.seek(size - tlen)
        trailer = fh.read(tlen)
    entries, groups = decode_trailer(trailer, data_end=size - tlen)
    return entries, groups, size
