"""Snapshot files: a clear-text header, the sealed chunk references and manifest, and the
clear list of the packs the snapshot needs.

    "SRSN" 0x02 0 0 0 | header_len:u32 | header (JSON) | refs_len:u32 | sealed refs
                      | manifest_len:u32 | sealed manifest | n_packs:u32 | packs[32*n] | check[32]
    sealed refs     = e_public[32] | AES-256-GCM(chunk ids), AAD = e_public | SHA-256(header)
    sealed manifest = e_public[32] | AES-256-GCM(zstd(manifest JSON)),
                      AAD = e_public | SHA-256(header | chunk ids)
In a manifest of version 2 a file's chunk names its id by its position in the references (the
ids of the manifest's chunks in manifest order, one per use), not by the 64 hex digits of
version 1: the sealed references hold the id already, so the manifest need not repeat it (a
third of a small-file vault's snapshot), and a writer needs no table of the ids it has seen.
Readers give every entry with hex ids, whichever version was stored.
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
import re
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
# (stored in version 2 with the id's position in the references instead of its hex digits)
FILE, DIR, LINK = "f", "d", "l"
MANIFEST_VERSION = 2
_HEX_ID = re.compile("[0-9a-f]{64}")


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
    return _encode_raw(raw_header, b"".join(sorted(set(refs))), sealed_manifest,
                       operator_public, packs)


def _encode_raw(raw_header: bytes, refs_raw: bytes, sealed_manifest: bytes,
                operator_public: bytes, packs: Iterable[str]) -> bytes:
    sealed_refs = crypto.seal_to(operator_public, REFS_PURPOSE, refs_raw,
                                 hashlib.sha256(raw_header).digest())
    # the parts are joined once (a large vault's manifest is megabytes: no extra copies)
    parts = [MAGIC]
    for section in (raw_header, sealed_refs, sealed_manifest):
        parts += [U32.pack(len(section)), section]
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    parts.append(_pack_section(digest.digest(), packs))
    return b"".join(parts)


def encode(header: dict[str, Any], manifest: dict[str, Any], operator_public: bytes,
           packs: Iterable[str]) -> bytes:
    """A snapshot of ``manifest`` (entries with hex ids, as ``open_manifest`` gives them)."""
    w = ManifestWriter(manifest["paths"])
    for entry in manifest["entries"]:
        w.add(entry)
    body = w.finish()
    return encode_body(header, bytes(w.refs), body, operator_public, packs)


def encode_body(header: dict[str, Any], refs_raw: bytes, body: bytes,
                operator_public: bytes, packs: Iterable[str]) -> bytes:
    """A snapshot from its manifest already compressed (``body``, as ``ManifestWriter``
    makes it) and the chunk ids it uses (``refs_raw``: the writer's ``refs``, in the order
    its chunk positions count them)."""
    raw_header = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    aad = hashlib.sha256(raw_header + refs_raw).digest()
    sealed = crypto.seal_to(operator_public, PURPOSE, body, aad)
    del body
    return _encode_raw(raw_header, refs_raw, sealed, operator_public, packs)


class ManifestWriter:
    """The manifest JSON (version 2), compressed as entries come in (walk order), so a run
    never holds every entry of a large vault. Entries come with hex (or bytes) chunk ids;
    each is appended to ``refs`` (which become the snapshot's sealed references) and written
    as its position there."""

    def __init__(self, paths: list[str]) -> None:
        self._c = compress.JsonStream()
        self._c.add(json.dumps({"v": MANIFEST_VERSION, "paths": paths},
                               separators=(",", ":"))[:-1] + ',"entries":[')
        self._buf: list[list[Any]] = []
        self._first = True
        self.refs = bytearray()  # 32 bytes per chunk (an id used twice is there twice)

    def _ref(self, cid: str | bytes | None) -> int | None:
        if cid is None:
            return None
        key = bytes.fromhex(cid) if isinstance(cid, str) else cid
        if len(key) != 32:
            raise ValueError("a chunk id is 32 bytes")
        self.refs += key
        return len(self.refs) // 32 - 1

    def add(self, entry: list[Any]) -> None:
        if entry[0] == FILE and entry[8]:
            entry = [*entry[:8], [[c[0], c[1], self._ref(c[2])] for c in entry[8]]]
        self._buf.append(entry)
        if len(self._buf) >= 512:
            self._flush()

    def _flush(self) -> None:
        if self._buf:
            text = json.dumps(self._buf, separators=(",", ":"))[1:-1]
            self._c.add(text if self._first else "," + text)
            self._first = False
            self._buf = []

    def finish(self) -> bytes:
        self._flush()
        self._c.add("]}")
        return self._c.finish()


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


def _open_refs_raw(snap: SnapshotFile, key: crypto.PrivateKey) -> bytes:
    raw = crypto.open_sealed(key, REFS_PURPOSE, snap.sealed_refs,
                             hashlib.sha256(snap.raw_header).digest())
    if len(raw) % 32:
        raise IntegrityError(f"snapshot {snap.header.id[:12]} references malformed")
    return raw


def open_refs(snap: SnapshotFile, key: crypto.PrivateKey) -> list[bytes]:
    """The chunk ids the snapshot uses (needs the operators' private key): sorted and unique
    for a version 1 manifest, in manifest order (repeats kept) for a version 2 one."""
    raw = _open_refs_raw(snap, key)
    return [raw[i:i + 32] for i in range(0, len(raw), 32)]


def _resolve(entry: list[Any], refs: bytes) -> list[Any]:
    """A file entry's chunk positions (version 2) as hex ids, in place; hex ids (version 1)
    stay. A position outside the references is damage (or a forged snapshot)."""
    if entry[0] == FILE and entry[8]:
        n = len(refs) // 32
        for c in entry[8]:
            ref = c[2]
            if type(ref) is int and 0 <= ref < n:
                c[2] = refs[32 * ref:32 * ref + 32].hex()
            elif ref is not None and not (type(ref) is str and _HEX_ID.fullmatch(ref)):
                raise IntegrityError("snapshot manifest names a chunk it has no reference for")
    return entry


def _check_version(v: Any) -> None:
    if v not in (1, MANIFEST_VERSION):
        raise IntegrityError(f"snapshot manifest version {v!r} is not one this secroom reads "
                             "(written by a newer secroom? upgrade this one)",
                             public="snapshot manifest of an unknown version")


def _open_body(snap: SnapshotFile, key: crypto.PrivateKey) -> tuple[bytes, bytes]:
    refs = _open_refs_raw(snap, key)
    aad = hashlib.sha256(snap.raw_header + refs).digest()
    return refs, crypto.open_sealed(key, PURPOSE, snap.sealed, aad)


def open_manifest(snap: SnapshotFile, key: crypto.PrivateKey) -> dict[str, Any]:
    """The whole manifest, its entries with hex chunk ids (both manifest versions)."""
    refs, body = _open_body(snap, key)
    try:
        manifest: dict[str, Any] = json.loads(compress.decompress_meta(body))
        _check_version(manifest.get("v"))
        for entry in manifest["entries"]:
            _resolve(entry, refs)
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise IntegrityError(f"snapshot {snap.header.id[:12]} manifest malformed") from exc
    return manifest


class ManifestText:
    """A manifest kept as its JSON text: entries are parsed one at a time, on each pass, so
    a large vault's manifest is never a list of Python lists as a whole. ``refs``: the
    snapshot's references, for a version 2 manifest's chunk positions."""

    def __init__(self, text: str, refs: bytes = b"") -> None:
        self.text = text
        self.refs = refs

    def entries(self) -> Iterator[list[Any]]:
        text, dec = self.text, json.JSONDecoder()
        try:
            pos = _skip(text, 0)
            if text[pos] != "{":
                raise ValueError("not an object")
            pos = _skip(text, pos + 1)
            while text[pos] != "}":
                key, pos = dec.raw_decode(text, pos)
                pos = _skip(text, pos)
                if text[pos] != ":":
                    raise ValueError("expected ':'")
                pos = _skip(text, pos + 1)
                if key != "entries":
                    value, pos = dec.raw_decode(text, pos)
                    if key == "v":
                        _check_version(value)
                else:
                    if text[pos] != "[":
                        raise ValueError("entries is not a list")
                    pos = _skip(text, pos + 1)
                    while text[pos] != "]":
                        entry, pos = dec.raw_decode(text, pos)
                        yield _resolve(entry, self.refs)
                        pos = _skip(text, pos)
                        if text[pos] == ",":
                            pos = _skip(text, pos + 1)
                    pos += 1
                pos = _skip(text, pos)
                if text[pos] == ",":
                    pos = _skip(text, pos + 1)
        except (ValueError, IndexError, TypeError) as exc:
            raise IntegrityError(f"snapshot manifest malformed: {exc}") from exc


def _skip(text: str, pos: int) -> int:
    while text[pos] in " \t\n\r":
        pos += 1
    return pos


def open_manifest_text(snap: SnapshotFile, key: crypto.PrivateKey) -> ManifestText:
    """The manifest, decrypted and decompressed but not parsed (see ManifestText)."""
    refs, body = _open_body(snap, key)
    try:
        return ManifestText(compress.decompress_meta(body).decode(), refs)
    except ValueError as exc:
        raise IntegrityError(f"snapshot {snap.header.id[:12]} manifest malformed") from exc


def manifest_refs(manifest: dict[str, Any]) -> set[bytes]:
    out: set[bytes] = set()
    for entry in manifest["entries"]:
        if entry[0] == FILE:
            out.update(bytes.fromhex(c[2]) for c in entry[8] if c[2] is not None)
    return out
