"""The gateway's incremental cache: which chunks each unchanged file has.

Keys are keyed hashes of the path (HMAC with the dedup key), so the cache file holds no file
names. It is rewritten from scratch by every run with the files present in that run only:
after a file is deleted from the vault, the next run leaves nothing of it in the cache.
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

# value: [size, mtime_ns, ctime_ns, inode, chunks]; chunks as in the manifest
CacheEntries = dict[str, list[Any]]


def cache_path(cache_dir: Path, repo_id: str) -> Path:
    return cache_dir / f"{repo_id}.cache"


def load(cache_dir: Path, repo_id: str) -> CacheEntries:
    path = cache_path(cache_dir, repo_id)
    try:
        doc = json.loads(compress.decompress_meta(path.read_bytes()))
        if doc.get("repo") != repo_id or doc.get("v") != 1:
            return {}
        entries: CacheEntries = doc["entries"]
        return entries
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, IntegrityError, AttributeError):
        return {}  # a damaged cache only costs a full read of the vault


def save(cache_dir: Path, repo_id: str, entries: CacheEntries) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(cache_dir, 0o700)
    data = compress.compress_json_parts(_parts(repo_id, entries), level=1)
    write_atomic(cache_path(cache_dir, repo_id), data, cache_dir, mode=0o600)


def _parts(repo_id: str, entries: CacheEntries) -> Iterator[str]:
    yield json.dumps({"v": 1, "repo": repo_id})[:-1] + ', "entries": {'
    items = list(entries.items())
    for start in range(0, len(items), 512):
        text = json.dumps(dict(items[start:start + 512]), separators=(",", ":"))[1:-1]
        yield ("," if start and text else "") + text
    yield "}}"


def drop(cache_dir: Path, repo_id: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        cache_path(cache_dir, repo_id).unlink()
