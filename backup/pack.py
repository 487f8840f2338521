"""Pack files: many encrypted blobs, then a trailer listing them, sealed to the operators' key.
Named by SHA-256, so every pack's integrity is checkable without any key.

Layout (all integers big-endian), see FORMAT.md:
    "SRPK" 0x02 0 0 0 | blob ciphertexts ... | sealed trailer | trailer_len:u32 "SRPE"
    sealed trailer = e_public[32] | AES-256-GCM(trailer key, nonce 0, plain, AAD = e_public | MAGIC)
    plain  = n_entries:u32 n_groups:u16 | entries | groups
    entry  = id[32] group:u16 seq:u64 offset:u64 length:u32 raw:u32 flags:u8   (59 bytes)
    group  = ephemeral X25519 public key[32] of the blob key group
The chunk ids (keyed hashes of content) are inside the sealed trailer only: a holder of the
dedup key cannot test the repository for known content.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
from pathlib import Path
from typing import NamedTuple

from backup import crypto
from backup.errors import IntegrityError
from backup.storage import fsync_dir, io_errors, tmp_name

MAGIC = b"SRPK\x02\0\0\0"
END = b"SRPE"
ENTRY = struct.Struct(">32sHQQIIB")
COUNTS = struct.Struct(">IH")
FOOTER = struct.Struct(">I4s")
FLAG_ZSTD = 1
WRITE_SIZE = 1 << 20  # blobs are written to the pack file in pieces of about this size
PURPOSE = b"pack"
TRAILER_PURPOSE = b"pack-trailer"


def blob_aad(chunk_id: bytes, flags: int, raw: int) -> bytes:
    return chunk_id + struct.pack(">BI", flags, raw)


class Entry(NamedTuple):  # a tuple: one is made per blob written
    id: bytes
    group: int
    seq: int
    offset: int
    length: int
    raw: int
    flags: int


def encode_trailer(entries: list[Entry], groups: list[bytes]) -> bytes:
    """The plain trailer (before sealing)."""
    return COUNTS.pack(len(entries), len(groups)) + b"".join(
        ENTRY.pack(e.id, e.group, e.seq, e.offset, e.length, e.raw, e.flags)
        for e in entries) + b"".join(groups)


def seal_trailer(operator_public: bytes, entries: list[Entry], groups: list[bytes]) -> bytes:
    return crypto.seal_to(operator_public, TRAILER_PURPOSE, encode_trailer(entries, groups),
                          MAGIC)


def decode_trailer(plain: bytes, data_end: int | None = None
                   ) -> tuple[list[Entry], list[bytes]]:
    if len(plain) < COUNTS.size:
        raise IntegrityError("pack trailer malformed")
    n, g = COUNTS.unpack_from(plain)
    if len(plain) != COUNTS.size + n * ENTRY.size + g * 32:
        raise IntegrityError("pack trailer malformed")
    end = COUNTS.size + n * ENTRY.size
    entries = [Entry(*t) for t in ENTRY.iter_unpack(plain[COUNTS.size:end])]
    groups = [plain[end + 32 * i:end + 32 * i + 32] for i in range(g)]
    for e in entries:
        if e.group >= g or e.offset < len(MAGIC) or (
                data_end is not None and e.offset + e.length > data_end):
            raise IntegrityError("pack trailer points outside the pack")
    return entries, groups


def open_trailer(key: crypto.PrivateKey, sealed: bytes, data_end: int | None = None
                 ) -> tuple[list[Entry], list[bytes]]:
    """Entries and groups of a sealed trailer (needs the operators' private key)."""
    return decode_trailer(crypto.open_sealed(key, TRAILER_PURPOSE, sealed, MAGIC), data_end)


class PackWriter:
    """Appends blobs to a temporary file, hashing as it goes; ``finish`` publishes it."""

    def __init__(self, repo_root: Path, operator_public: bytes, *, own_group: bool = True
                 ) -> None:
        self._root, self._public = repo_root, operator_public
        self._tmp = tmp_name(repo_root / "tmp", "pack")
        with io_errors("creating a pack"):
            self._fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        self._hash = hashlib.sha256()
        self._size = 0
        self._buf = bytearray()
        self.entries: list[Entry] = []
        self.groups: list[bytes] = []
        self.sealed_trailer = b""
        self._sealer: crypto.Sealer | None = None
        if own_group:  # not for a repack writer, which only copies sealed blobs
            eph, key = crypto.new_group_key(operator_public, PURPOSE)
            self.groups.append(eph)
            self._sealer = crypto.Sealer(key)
        self._write(MAGIC)

    @property
    def size(self) -> int:
        return self._size

    def _write(self, data: bytes | memoryview) -> None:
        """Append; small blobs are gathered and written (and hashed) a MiB at a time."""
        self._size += len(data)
        if len(data) >= WRITE_SIZE:
            self._flush()
            self._put(data)
            return
        self._buf += data
        if len(self._buf) >= WRITE_SIZE:
            self._flush()

    def _flush(self) -> None:
        if self._buf:
            self._put(self._buf)
            self._buf = bytearray()

    def _put(self, data: bytes | bytearray | memoryview) -> None:
        with io_errors("writing a pack"), memoryview(data) as whole:
            view = whole
            while view:
                view = view[os.write(self._fd, view):]
            del view
        self._hash.update(data)

    def add(self, chunk_id: bytes, payload: bytes | memoryview, raw: int, flags: int) -> int:
        """Encrypt and append one blob; returns its stored length."""
        assert self._sealer is not None
        seq = len(self.entries)
        sealed = self._sealer.seal(seq, payload, blob_aad(chunk_id, flags, raw))
        self.entries.append(Entry(chunk_id, 0, seq, self._size, len(sealed), raw, flags))
        self._write(sealed)
        return len(sealed)

    def add_sealed(self, entry: Entry, group_key: bytes, sealed: bytes) -> None:
        """Copy an already encrypted blob from another pack (repacking without decrypting)."""
        try:
            group = self.groups.index(group_key)
        except ValueError:
            group = len(self.groups)
            self.groups.append(group_key)
        self.entries.append(Entry(entry.id, group, entry.seq, self._size, len(sealed),
                                  entry.raw, entry.flags))
        self._write(sealed)

    def finish(self) -> tuple[str, int]:
        """Seal and write the trailer, fsync, rename to packs/xx/<sha256>; returns (pack id,
        size). The sealed trailer stays in ``sealed_trailer`` for the index."""
        self.sealed_trailer = seal_trailer(self._public, self.entries, self.groups)
        self._write(self.sealed_trailer + FOOTER.pack(len(self.sealed_trailer), END))
        self._flush()
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


def read_sealed_trailer(path: Path) -> tuple[bytes, int]:
    """The sealed trailer of a pack (no key needed to read it, only to open it) and the
    offset where the blobs end."""
    with io_errors(f"reading pack {path.name}"), open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size < len(MAGIC) + FOOTER.size:
            raise IntegrityError(f"pack {path.name[:12]} truncated")
        if fh.read(len(MAGIC)) != MAGIC:
            raise IntegrityError(f"pack {path.name[:12]} has a bad header")
        fh.seek(size - FOOTER.size)
        tlen, end = FOOTER.unpack(fh.read(FOOTER.size))
        if end != END or not 48 <= tlen <= size - len(MAGIC) - FOOTER.size:
            raise IntegrityError(f"pack {path.name[:12]} trailer malformed")
        fh.seek(size - FOOTER.size - tlen)
        sealed = fh.read(tlen)
    return sealed, size - FOOTER.size - tlen


def read_trailer(path: Path, key: crypto.PrivateKey) -> tuple[list[Entry], list[bytes], int]:
    """Entries and groups of a pack (opened with the operators' private key), and its size."""
    sealed, data_end = read_sealed_trailer(path)
    entries, groups = open_trailer(key, sealed, data_end)
    return entries, groups, data_end + len(sealed) + FOOTER.size
