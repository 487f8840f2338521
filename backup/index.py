"""Index files: which blob lives in which pack. Clear text (ids are keyed hashes), named by
SHA-256 of their content.

    "SRIX" 0x01 0 0 0 | n_packs:u32 | per pack: pack_id[32] n_groups:u16 groups[32*n]
                                                n_entries:u32 entries[59*n]
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from pathlib import Path

from backup.errors import IntegrityError
from backup.pack import ENTRY, Entry

MAGIC = b"SRIX\x01\0\0\0"


@dataclass
class PackInfo:
    groups: list[bytes]
    entries: list[Entry]


@dataclass
class Index:
    packs: dict[str, PackInfo] = field(default_factory=dict)
    by_id: dict[bytes, tuple[str, Entry]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)  # index file names loaded

    def add_pack(self, pack_id: str, info: PackInfo) -> None:
        if pack_id in self.packs:
            return
        self.packs[pack_id] = info
        for e in info.entries:
            self.by_id.setdefault(e.id, (pack_id, e))

    def __contains__(self, chunk_id: bytes) -> bool:
        return chunk_id in self.by_id


def encode(packs: dict[str, PackInfo]) -> bytes:
    parts = [MAGIC, struct.pack(">I", len(packs))]
    for pack_id, info in sorted(packs.items()):
        parts.append(bytes.fromhex(pack_id))
        parts.append(struct.pack(">H", len(info.groups)))
        parts.extend(info.groups)
        parts.append(struct.pack(">I", len(info.entries)))
        parts.extend(ENTRY.pack(e.id, e.group, e.seq, e.offset, e.length, e.raw, e.flags)
                     for e in info.entries)
    return b"".join(parts)


def decode(data: bytes, name: str) -> dict[str, PackInfo]:
    if hashlib.sha256(data).hexdigest() != name:
        raise IntegrityError(f"index file {name[:12]} does not match its hash (corrupt)")
    if not data.startswith(MAGIC):
        raise IntegrityError(f"index file {name[:12]} has a bad header")
    try:
        pos = len(MAGIC)
        (n_packs,) = struct.unpack_from(">I", data, pos)
        pos += 4
        packs: dict[str, PackInfo] = {}
        for _ in range(n_packs):
            pack_id = data[pos:pos + 32].hex()
            (ng,) = struct.unpack_from(">H", data, pos + 32)
            pos += 34
            groups = [data[pos + 32 * i:pos + 32 * i + 32] for i in range(ng)]
            pos += 32 * ng
            (ne,) = struct.unpack_from(">I", data, pos)
            pos += 4
            end = pos + ne * ENTRY.size
            if end > len(data):
                raise struct.error("truncated")
            entries = [Entry(*t) for t in ENTRY.iter_unpack(data[pos:end])]
            pos = end
            packs[pack_id] = PackInfo(groups, entries)
        if pos != len(data):
            raise struct.error("trailing bytes")
    except struct.error as exc:
        raise IntegrityError(f"index file {name[:12]} malformed") from exc
    return packs


def load(index_dir: Path) -> Index:
    idx = Index()
    for path in sorted(index_dir.iterdir()):
        if len(path.name) != 64:
            continue
        for pack_id, info in decode(path.read_bytes(), path.name).items():
            idx.add_pack(pack_id, info)
        idx.files.append(path.name)
    return idx
