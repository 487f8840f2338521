"""Index files: which packs exist and, sealed, which blob lives where. Named by SHA-256.

    "SRIX" 0x02 0 0 0 | n_packs:u32 | per pack: pack_id[32] trailer_len:u32 sealed_trailer

Each pack's section is a byte-for-byte copy of that pack's sealed trailer, so the index can be
checked against the packs and rebuilt from them without any key, and prune can drop the
sections of removed packs without decrypting anything. Pack names are clear (they reveal
nothing about content); chunk ids are only inside the sealed trailers.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from pathlib import Path

from backup import crypto
from backup.errors import IntegrityError
from backup.pack import Entry, open_trailer

MAGIC = b"SRIX\x02\0\0\0"


@dataclass
class PackInfo:
    groups: list[bytes]
    entries: list[Entry]
    sealed: bytes = b""  # the pack's sealed trailer, as stored in the pack and the index


@dataclass
class Index:
    sealed: dict[str, bytes] = field(default_factory=dict)  # pack id -> sealed trailer
    packs: dict[str, PackInfo] = field(default_factory=dict)  # filled by unseal()
    by_id: dict[bytes, tuple[str, Entry]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)  # index file names loaded

    def add_sealed(self, pack_id: str, sealed: bytes) -> None:
        self.sealed.setdefault(pack_id, sealed)

    def add_pack(self, pack_id: str, info: PackInfo) -> None:
        if pack_id in self.packs:
            return
        self.packs[pack_id] = info
        if info.sealed:
            self.sealed.setdefault(pack_id, info.sealed)
        for e in info.entries:
            self.by_id.setdefault(e.id, (pack_id, e))

    def unseal(self, key: crypto.PrivateKey) -> Index:
        """Open every pack's trailer (the operators' private key); idempotent."""
        for pack_id, sealed in self.sealed.items():
            if pack_id not in self.packs:
                entries, groups = open_trailer(key, sealed)
                self.add_pack(pack_id, PackInfo(groups, entries, sealed))
        return self

    def __contains__(self, chunk_id: bytes) -> bool:
        return chunk_id in self.by_id


def encode(sealed: dict[str, bytes]) -> bytes:
    parts = [MAGIC, struct.pack(">I", len(sealed))]
    for pack_id, trailer in sorted(sealed.items()):
        parts += [bytes.fromhex(pack_id), struct.pack(">I", len(trailer)), trailer]
    return b"".join(parts)


def decode(data: bytes, name: str) -> dict[str, bytes]:
    """Pack id -> sealed trailer (no key needed)."""
    if hashlib.sha256(data).hexdigest() != name:
        raise IntegrityError(f"index file {name[:12]} does not match its hash (corrupt)")
    if not data.startswith(MAGIC):
        raise IntegrityError(f"index file {name[:12]} has a bad header")
    try:
        pos = len(MAGIC)
        (n_packs,) = struct.unpack_from(">I", data, pos)
        pos += 4
        out: dict[str, bytes] = {}
        for _ in range(n_packs):
            pack_id = data[pos:pos + 32].hex()
            (tlen,) = struct.unpack_from(">I", data, pos + 32)
            pos += 36
            if pos + tlen > len(data) or len(pack_id) != 64:
                raise struct.error("truncated")
            out[pack_id] = data[pos:pos + tlen]
            pos += tlen
        if pos != len(data):
            raise struct.error("trailing bytes")
    except struct.error as exc:
        raise IntegrityError(f"index file {name[:12]} malformed") from exc
    return out


def load(index_dir: Path, key: crypto.PrivateKey | None = None) -> Index:
    """All index files; with the private key also every pack's entries (``by_id``)."""
    idx = Index()
    for path in sorted(index_dir.iterdir()):
        if len(path.name) != 64:
            continue
        for pack_id, sealed in decode(path.read_bytes(), path.name).items():
            idx.add_sealed(pack_id, sealed)
        idx.files.append(path.name)
    return idx.unseal(key) if key is not None else idx
