"""Snapshot files: a clear-text header, the sealed chunk references and manifest, and the
clear list of the packs the snapshot needs.

    "SRSN" 0x02 0 0 0 | header_len:u32 | header (JSON) | refs_len:u32 | sealed refs
                      | manifest_len:u32 | sealed manifest | n_packs:u32 | packs[32*n] | check[32]
    sealed refs     = e_public[32] | AES-256-GCM(sorted chunk ids), AAD = e_public | SHA-256(header)
    sealed manifest = e_public[32] | AES-256-GCM(zstd(manifest JSON)),
                      AAD = e_public | SHA-256(header | chunk ids)
    id (file name)  = SHA-256 of everything before n_packs
    check           = SHA-256(id | n_packs | packs)

The header holds only the time, host name and counts. Chunk ids are sealed (only the
operators' private key opens them); the pack list is clear, since pack names reveal nothing
about content: with it `verify` checks without a key that every pack a snapshot needs is
present, and `prune` without a key drops packs no snapshot needs. Garbage collection with the
key rewrites the pack list (and only it) in place when it repacks, so snapshot ids stay.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from backup import compress, crypto
from backup.errors import IntegrityError

MAGIC = b"SRSN\x02\0\0\0"
PURPOSE = b"snapshot"
REFS_PURPOSE = b"snapshot-refs"
U32 = struct.Struct(">I")

# manifest entry: [type, path, mode, uid, gid, atime_ns, mtime_ns, size, extra]
# extra: files -> [[offset, length, id-hex or None for zeros], ...]; symlinks -> target; dirs None
FILE, DIR, LINK = "f", "d", "l"


@dataclass(frozen=True)
class Header:
    id: str
    time: str
    host: str
    files: int
    bytes: int
    repo: str
    tag: str | None = None  # None: the vault; "dashboard": the dashboard's database (FORMAT.md)


@dataclass(frozen=True)
class SnapshotFile:
    header: Header
    raw_header: bytes
    sealed_refs: bytes
    sealed: bytes  # the sealed manifest
    packs: list[str]  # pack ids this snapshot needs, sorted
    prefix: bytes  # everything the id covers


def _section(data: bytes) -> bytes:
    return U32.pack(len(data)) + data


def _pack_section(snapshot_id: bytes, packs: Iterable[str]) -> bytes:
    names = sorted(set(packs))
    body = U32.pack(len(names)) + b"".join(bytes.fromhex(p) for p in names)
    return body + hashlib.sha256(snapshot_id + body).digest()


def encode_sealed(raw_header: bytes, refs: Iterable[bytes], sealed_manifest: bytes,
                  operator_public: bytes, packs: Iterable[str]) -> bytes:
    """A snapshot file around an already sealed manifest (also used by `migrate`)."""
    refs_raw = b"".join(sorted(set(refs)))
    sealed_refs = crypto.seal_to(operator_public, REFS_PURPOSE, refs_raw,
                                 hashlib.sha256(raw_header).digest())
    prefix = b"".join([MAGIC, _section(raw_header), _section(sealed_refs),
                       _section(sealed_manifest)])
    return prefix + _pack_section(hashlib.sha256(prefix).digest(), packs)


def encode(header: dict[str, Any], manifest: dict[str, Any], operator_public: bytes,
           packs: Iterable[str]) -> bytes:
    raw_header = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    refs = sorted(manifest_refs(manifest))
    aad = hashlib.sha256(raw_header + b"".join(refs)).digest()
    body = compress.compress_json_parts(_manifest_json(manifest))
    sealed = crypto.seal_to(operator_public, PURPOSE, body, aad)
    return encode_sealed(raw_header, refs, sealed, operator_public, packs)


def with_packs(snap: SnapshotFile, packs: Iterable[str]) -> bytes:
    """The same snapshot (same id) needing other packs: garbage collection moved its blobs."""
    return snap.prefix + _pack_section(hashlib.sha256(snap.prefix).digest(), packs)


def snapshot_id(data: bytes) -> str:
    """The id (file name) of an encoded snapshot."""
    return hashlib.sha256(data[:_prefix_end(data)]).hexdigest()


def _prefix_end(data: bytes) -> int:
    pos = len(MAGIC)
    for _ in range(3):
        (n,) = U32.unpack_from(data, pos)
        pos += 4 + n
    if pos > len(data):
        raise struct.error("truncated")
    return pos


def _manifest_json(manifest: dict[str, Any]) -> Iterator[str]:
    head = {k: v for k, v in manifest.items() if k != "entries"}
    yield json.dumps(head, separators=(",", ":"))[:-1] + ',"entries":['
    entries = manifest["entries"]
    for start in range(0, len(entries), 512):
        text = json.dumps(entries[start:start + 512], separators=(",", ":"))[1:-1]
        yield ("," if start else "") + text
    yield "]}"


def decode(data: bytes, name: str, *, check_hash: bool = True) -> SnapshotFile:
    try:
        if not data.startswith(MAGIC):
            raise ValueError("bad magic")
        end = _prefix_end(data)
        prefix = data[:end]
        sid = hashlib.sha256(prefix).digest()
        if check_hash and sid.hex() != name:
            raise IntegrityError(f"snapshot {name[:12]} does not match its hash (corrupt)")
        parts, pos = [], len(MAGIC)
        for _ in range(3):
            (n,) = U32.unpack_from(data, pos)
            parts.append(data[pos + 4:pos + 4 + n])
            pos += 4 + n
        raw_header, sealed_refs, sealed = parts
        (n,) = U32.unpack_from(data, end)
        body = data[end:end + 4 + 32 * n]
        if len(data) != end + 4 + 32 * n + 32 or min(len(sealed), len(sealed_refs)) < 48:
            raise ValueError("truncated")
        if hashlib.sha256(sid + body).digest() != data[-32:]:
            raise IntegrityError(f"snapshot {name[:12]}: its pack list is corrupt")
        packs = [body[4 + 32 * i:36 + 32 * i].hex() for i in range(n)]
        doc = json.loads(raw_header)
        tag = doc.get("tag")
        if tag is not None and not isinstance(tag, str):
            raise ValueError("tag is not a string")
        header = Header(id=name, time=str(doc["time"]), host=str(doc["host"]),
                        files=int(doc["files"]), bytes=int(doc["bytes"]), repo=str(doc["repo"]),
                        tag=tag)
    except (ValueError, KeyError, TypeError, struct.error) as exc:
        raise IntegrityError(f"snapshot {name[:12]} malformed: {exc}") from exc
    return SnapshotFile(header, raw_header, sealed_refs, sealed, packs, prefix)


def open_refs(snap: SnapshotFile, key: crypto.PrivateKey) -> list[bytes]:
    """The sorted chunk ids the snapshot uses (needs the operators' private key)."""
    raw = crypto.open_sealed(key, REFS_PURPOSE, snap.sealed_refs,
                             hashlib.sha256(snap.raw_header).digest())
    if len(raw) % 32:
        raise IntegrityError(f"snapshot {snap.header.id[:12]} references malformed")
    return [raw[i:i + 32] for i in range(0, len(raw), 32)]


def open_manifest(snap: SnapshotFile, key: crypto.PrivateKey) -> dict[str, Any]:
    refs = open_refs(snap, key)
    aad = hashlib.sha256(snap.raw_header + b"".join(refs)).digest()
    body = crypto.open_sealed(key, PURPOSE, snap.sealed, aad)
    try:
        manifest: dict[str, Any] = json.loads(compress.decompress_meta(body))
    except ValueError as exc:
        raise IntegrityError(f"snapshot {snap.header.id[:12]} manifest malformed") from exc
    return manifest


def manifest_refs(manifest: dict[str, Any]) -> set[bytes]:
    out: set[bytes] = set()
    for entry in manifest["entries"]:
        if entry[0] == FILE:
            out.update(bytes.fromhex(c[2]) for c in entry[8] if c[2] is not None)
    return out
