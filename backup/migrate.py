"""`backup migrate`: convert a format 1 repository (chunk ids in clear in pack trailers, index
files and snapshots) to format 2, where they are sealed to the operators' public key.

It needs no private key: blob ciphertexts and sealed manifests are copied byte for byte (their
keys and associated data are the same in both formats); only the clear lists are sealed. So
the gateway itself can run it, and it then also converts the gateway's cache (chunk -> new
pack), so the next run uploads nothing again. Run elsewhere (`--repo`), the gateway's next run
reads and uploads the whole vault once.

Crash safety: the format 1 folders are first moved into `migrate-v1/`; format 2 objects are
written beside them; the config's version is switched last (the commit point); then
`migrate-v1/` is removed (by any later locked command if this one is killed first). Killed
before the switch, the next `migrate` starts over from `migrate-v1/`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backup import cache, compress, pack, snapshot
from backup.errors import IntegrityError
from backup.pack import ENTRY, Entry
from backup.repo import MIGRATING, VERSION, Repository, config_bytes, load_config
from backup.storage import fsync_dir, io_errors, read, write_atomic

V1_PACK, V1_INDEX, V1_SNAP = b"SRPK\x01\0\0\0", b"SRIX\x01\0\0\0", b"SRSN\x01\0\0\0"
V1_FOOTER = struct.Struct(">IHI4s")
MOVED = ("packs", "index", "snapshots")


@dataclass
class MigrateResult:
    already: bool = False
    packs: int = 0
    packs_dropped: int = 0  # format 1 packs no index listed (left by interrupted runs)
    snapshots: list[tuple[str, str]] = field(default_factory=list)  # old id -> new id
    cache_entries: int = -1  # files kept in the gateway's cache; -1: no cache converted


def _v1_trailer(data: bytes, name: str) -> tuple[list[Entry], list[bytes], int]:
    try:
        n, g, tlen, end = V1_FOOTER.unpack_from(data, len(data) - V1_FOOTER.size)
        base = len(data) - tlen
        if (not data.startswith(V1_PACK) or end != b"SRPE" or base < len(V1_PACK)
                or tlen != n * ENTRY.size + g * 32 + V1_FOOTER.size):
            raise struct.error("bad trailer")
    except struct.error as exc:
        raise IntegrityError(f"format 1 pack {name[:12]} malformed") from exc
    entries = [Entry(*t) for t in ENTRY.iter_unpack(data[base:base + n * ENTRY.size])]
    gstart = base + n * ENTRY.size
    return entries, [data[gstart + 32 * i:gstart + 32 * i + 32] for i in range(g)], base


def _v1_index_packs(data: bytes, name: str) -> set[str]:
    if hashlib.sha256(data).hexdigest() != name or not data.startswith(V1_INDEX):
        raise IntegrityError(f"format 1 index file {name[:12]} is corrupt")
    try:
        pos, out = len(V1_INDEX) + 4, set()
        for _ in range(struct.unpack_from(">I", data, len(V1_INDEX))[0]):
            out.add(data[pos:pos + 32].hex())
            (ng,) = struct.unpack_from(">H", data, pos + 32)
            pos += 34 + 32 * ng
            (ne,) = struct.unpack_from(">I", data, pos)
            pos += 4 + ne * ENTRY.size
    except struct.error as exc:
        raise IntegrityError(f"format 1 index file {name[:12]} malformed") from exc
    return out


def _v1_snapshot(data: bytes, name: str) -> tuple[bytes, list[bytes], bytes]:
    """(raw header, chunk ids, sealed manifest) of a format 1 snapshot file."""
    if hashlib.sha256(data).hexdigest() != name or not data.startswith(V1_SNAP):
        raise IntegrityError(f"format 1 snapshot {name[:12]} is corrupt")
    try:
        pos = len(V1_SNAP)
        (hlen,) = struct.unpack_from(">I", data, pos)
        raw_header = data[pos + 4:pos + 4 + hlen]
        pos += 4 + hlen
        (n,) = struct.unpack_from(">I", data, pos)
        refs = [data[pos + 4 + 32 * i:pos + 36 + 32 * i] for i in range(n)]
        sealed = data[pos + 4 + 32 * n:]
        if len(sealed) < 48:
            raise struct.error("truncated")
    except struct.error as exc:
        raise IntegrityError(f"format 1 snapshot {name[:12]} malformed") from exc
    return raw_header, refs, sealed


def _set_aside(root: Path) -> Path:
    """Move the format 1 folders into migrate-v1/ (once) and start empty format 2 ones."""
    old = root / MIGRATING
    with io_errors("setting the format 1 folders aside"):
        old.mkdir(exist_ok=True)
        for d in MOVED:
            if not (old / d).exists():
                os.rename(root / d, old / d)
        for d in MOVED:  # what is here now is a killed migration's partial work
            shutil.rmtree(root / d, ignore_errors=True)
            (root / d).mkdir()
        fsync_dir(old)
        fsync_dir(root)
    return old


def migrate(root: Path, cache_dir: Path | None = None) -> MigrateResult:
    config = load_config(read(root / "config"))
    repo = Repository(root, config)
    res = MigrateResult(already=config["v"] == VERSION)
    with repo.locked("migrate"):  # a finished migration's leftovers are removed here
        if res.already:
            return res
        old = _set_aside(root)
        public = repo.public_key
        indexed: set[str] = set()
        for path in sorted((old / "index").iterdir()):
            indexed |= _v1_index_packs(read(path), path.name)
        where: dict[bytes, str] = {}
        trailers: dict[str, bytes] = {}
        for pid in sorted(indexed):
            data = read(old / "packs" / pid[:2] / pid)
            if hashlib.sha256(data).hexdigest() != pid:
                raise IntegrityError(f"format 1 pack {pid[:12]} is corrupt; nothing was changed "
                                     "(run `backup verify` with the previous version)")
            entries, groups, data_end = _v1_trailer(data, pid)
            sealed = pack.seal_trailer(public, entries, groups)
            new = b"".join([pack.MAGIC, data[len(V1_PACK):data_end], sealed,
                            pack.FOOTER.pack(len(sealed), pack.END)])
            new_id = hashlib.sha256(new).hexdigest()
            write_atomic(pack.pack_path(root, new_id), new, root / "tmp")
            trailers[new_id] = sealed
            for e in entries:
                where.setdefault(e.id, new_id)
            res.packs += 1
        res.packs_dropped = sum(1 for d in (old / "packs").iterdir() for p in d.iterdir()
                                if p.name not in indexed)
        if trailers:
            repo.write_index(trailers)
        newest: tuple[str, list[bytes]] = ("", [])
        for path in sorted((old / "snapshots").iterdir()):
            raw_header, refs, sealed = _v1_snapshot(read(path), path.name)
            if any(r not in where for r in refs):
                raise IntegrityError(f"format 1 snapshot {path.name[:12]} references chunks no "
                                     "index lists; nothing was changed")
            data = snapshot.encode_sealed(raw_header, refs, sealed, public,
                                          {where[r] for r in refs})
            res.snapshots.append((path.name, repo.write_snapshot(data)))
            newest = max(newest, (str(json.loads(raw_header).get("time")), refs))
        write_atomic(root / "config", config_bytes({**config, "v": VERSION}), root / "tmp")
        if cache_dir is not None:
            res.cache_entries = _convert_cache(cache_dir, repo.id, where, newest[1])
        with io_errors("removing the format 1 folders"):
            shutil.rmtree(old)
    return res


def _convert_cache(cache_dir: Path, repo_id: str, where: dict[bytes, str],
                   newest_refs: list[bytes]) -> int:
    """Give the gateway's format 1 cache the new pack of each chunk it and the newest
    snapshot use; file entries with a chunk no pack holds are dropped (read again)."""
    try:
        doc: dict[str, Any] = json.loads(compress.decompress_meta(
            cache.cache_path(cache_dir, repo_id).read_bytes()))
        entries: cache.CacheEntries = doc["entries"] if doc.get("v") == 1 else {}
    except (OSError, ValueError, KeyError, IntegrityError, TypeError):
        entries = {}
    chunks = {r.hex(): where[r] for r in newest_refs}
    kept: cache.CacheEntries = {}
    for tag, e in entries.items():
        ids = [c[2] for c in e[4] if c[2] is not None]
        if all(bytes.fromhex(i) in where for i in ids):
            kept[tag] = e
            chunks.update((i, where[bytes.fromhex(i)]) for i in ids)
    cache.save(cache_dir, repo_id, kept, chunks)
    return len(kept)
