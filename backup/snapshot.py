"""Snapshot files: a clear-text header and chunk-reference table, then the sealed manifest.

    "SRSN" 0x01 0 0 0 | header_len:u32 | header (JSON) | n_refs:u32 | refs[32*n] | sealed
    sealed = ephemeral X25519 public key[32] | AES-256-GCM(zstd(manifest JSON))
    AAD    = ephemeral key | SHA-256(header | refs)

The header holds only the time, host name and counts; the reference table (sorted chunk ids)
lets prune and verify work without the private key. Names, modes, times, sizes and chunk
lists are in the manifest, which only the operators' private key opens.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from backup import compress, crypto
from backup.errors import IntegrityError

MAGIC = b"SRSN\x01\0\0\0"
PURPOSE = b"snapshot"

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


@dataclass(frozen=True)
class SnapshotFile:
    header: Header
    raw_header: bytes
    refs: list[bytes]
    sealed: bytes

    def aad(self, refs_raw: bytes) -> bytes:
        return hashlib.sha256(self.raw_header + refs_raw).digest()


def encode(header: dict[str, Any], refs: list[bytes], manifest: dict[str, Any],
           operator_public: bytes) -> bytes:
    raw_header = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    refs_raw = b"".join(sorted(set(refs)))
    aad = hashlib.sha256(raw_header + refs_raw).digest()
    body = compress.compress_json_parts(_manifest_json(manifest))
    sealed = crypto.seal_to(operator_public, PURPOSE, body, aad)
    return b"".join([MAGIC, struct.pack(">I", len(raw_header)), raw_header,
                     struct.pack(">I", len(refs_raw) // 32), refs_raw, sealed])


def _manifest_json(manifest: dict[str, Any]) -> Iterator[str]:
    head = {k: v for k, v in manifest.items() if k != "entries"}
    yield json.dumps(head, separators=(",", ":"))[:-1] + ',"entries":['
    entries = manifest["entries"]
    for start in range(0, len(entries), 512):
        text = json.dumps(entries[start:start + 512], separators=(",", ":"))[1:-1]
        yield ("," if start else "") + text
    yield "]}"


def decode(data: bytes, name: str, *, check_hash: bool = True) -> SnapshotFile:
    if check_hash and hashlib.sha256(data).hexdigest() != name:
        raise IntegrityError(f"snapshot {name[:12]} does not match its hash (corrupt)")
    try:
        if not data.startswith(MAGIC):
            raise ValueError("bad magic")
        pos = len(MAGIC)
        (hlen,) = struct.unpack_from(">I", data, pos)
        raw_header = data[pos + 4:pos + 4 + hlen]
        pos += 4 + hlen
        doc = json.loads(raw_header)
        (n,) = struct.unpack_from(">I", data, pos)
        pos += 4
        refs = [data[pos + 32 * i:pos + 32 * i + 32] for i in range(n)]
        pos += 32 * n
        sealed = data[pos:]
        if len(sealed) < 48 or (refs and len(refs[-1]) != 32):
            raise ValueError("truncated")
        header = Header(id=name, time=str(doc["time"]), host=str(doc["host"]),
                        files=int(doc["files"]), bytes=int(doc["bytes"]), repo=str(doc["repo"]))
    except (ValueError, KeyError, TypeError, struct.error) as exc:
        raise IntegrityError(f"snapshot {name[:12]} malformed: {exc}") from exc
    return SnapshotFile(header, raw_header, refs, sealed)


def open_manifest(snap: SnapshotFile, key: crypto.PrivateKey) -> dict[str, Any]:
    aad = snap.aad(b"".join(snap.refs))
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
