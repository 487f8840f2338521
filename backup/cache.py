"""The gateway's local cache: which chunks each unchanged file has, and in which pack each
chunk the last snapshot uses lives. It is the gateway's only dedup source: the repository
lists chunk ids only inside trailers sealed to the operators' key.

File keys are keyed hashes of the path (BLAKE2b with the dedup key), so the cache holds no
file names. It is rewritten from scratch by every run with the files present in that run and
the chunks its snapshot references only: after a file is deleted from the vault, the next run
leaves nothing of it here. A run first drops every chunk whose pack is gone from the
repository (a purge or prune removed or rewrote it), so a purged chunk never survives here
past the gateway's next run, and is stored again if its content comes back.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from backup import compress
from backup.errors import IntegrityError
from backup.storage import write_atomic

VERSION = 2
# value: [size, mtime_ns, ctime_ns, inode, chunks]; chunks as in the manifest
CacheEntries = dict[str, list[Any]]
Chunks = dict[str, str]  # chunk id (hex) -> pack id


def cache_path(cache_dir: Path, repo_id: str) -> Path:
    return cache_dir / f"{repo_id}.cache"


def load_state(cache_dir: Path, repo_id: str) -> tuple[CacheEntries, Chunks]:
    """(file entries, chunk id -> pack); empty when missing, damaged or of another format."""
    path = cache_path(cache_dir, repo_id)
    try:
        doc = json.loads(compress.decompress_meta(path.read_bytes()))
        if doc.get("repo") != repo_id or doc.get("v") != VERSION:
            return {}, {}
        entries: CacheEntries = doc["entries"]
        chunks = {cid: pack for pack, ids in doc["chunks"].items() for cid in ids}
        return entries, chunks
    except FileNotFoundError:
        return {}, {}
    except (OSError, ValueError, KeyError, IntegrityError, AttributeError, TypeError):
        return {}, {}  # a damaged cache costs a full read (and upload) of the vault


def load(cache_dir: Path, repo_id: str) -> CacheEntries:
    return load_state(cache_dir, repo_id)[0]


def save(cache_dir: Path, repo_id: str, entries: CacheEntries, chunks: Chunks) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(cache_dir, 0o700)
    by_pack: dict[str, list[str]] = {}
    for cid, pack in chunks.items():
        by_pack.setdefault(pack, []).append(cid)
    data = compress.compress_json_parts(_parts(repo_id, entries, by_pack), level=1)
    write_atomic(cache_path(cache_dir, repo_id), data, cache_dir, mode=0o600)


def _parts(repo_id: str, entries: CacheEntries, by_pack: dict[str, list[str]]
           ) -> Iterator[str]:
    yield json.dumps({"v": VERSION, "repo": repo_id, "chunks": by_pack})[:-1] + ', "entries": {'
    items = list(entries.items())
    for start in range(0, len(items), 512):
        text = json.dumps(dict(items[start:start + 512]), separators=(",", ":"))[1:-1]
        yield ("," if start and text else "") + text
    yield "}}"


def drop(cache_dir: Path, repo_id: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        cache_path(cache_dir, repo_id).unlink()
