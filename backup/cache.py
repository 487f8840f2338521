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
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from backup import compress
from backup.errors import IntegrityError
from backup.storage import write_atomic

VERSION = 2
# value: [size, mtime_ns, ctime_ns, inode, chunks]; chunks as in the manifest
CacheEntries = dict[str, list[Any]]
CompactEntries = dict[str, str]  # the same, each value as its JSON text
Chunks = dict[str, str]  # chunk id (hex) -> pack id


def cache_path(cache_dir: Path, repo_id: str) -> Path:
    return cache_dir / f"{repo_id}.cache"


def load_state(cache_dir: Path, repo_id: str) -> tuple[CacheEntries, Chunks]:
    """(file entries, chunk id -> pack); empty when missing, damaged or of another format."""
    compact, chunks = load_compact(cache_dir, repo_id)
    return {tag: json.loads(text) for tag, text in compact.items()}, chunks


def load(cache_dir: Path, repo_id: str) -> CacheEntries:
    return load_state(cache_dir, repo_id)[0]


def load_compact(cache_dir: Path, repo_id: str) -> tuple[CompactEntries, Chunks]:
    """Like load_state, but each file entry stays the JSON text of its value (a few hundred
    bytes instead of a dozen Python objects): a run parses only the entry of the file it is
    at, and writes unchanged ones back as they are."""
    path = cache_path(cache_dir, repo_id)
    try:
        text = compress.decompress_meta(path.read_bytes()).decode()
        return _parse(text, repo_id)
    except FileNotFoundError:
        return {}, {}
    except (OSError, ValueError, KeyError, IndexError, IntegrityError, AttributeError,
            TypeError):
        return {}, {}  # a damaged cache costs a full read (and upload) of the vault


_SPACE = re.compile(r"[ \t\n\r]*")


def _parse(text: str, repo_id: str) -> tuple[CompactEntries, Chunks]:
    """The cache document, read one member at a time; "entries" kept as value texts."""
    dec = json.JSONDecoder()
    head: dict[str, Any] = {}
    entries: CompactEntries = {}
    pos = _expect(text, _SPACE.match(text, 0).end(), "{")  # type: ignore[union-attr]
    while text[pos] != "}":
        key, pos = dec.raw_decode(text, pos)
        pos = _expect(text, pos, ":")
        if key == "entries":
            pos = _expect(text, pos, "{")
            while text[pos] != "}":
                tag, pos = dec.raw_decode(text, pos)
                start = pos = _expect(text, pos, ":")
                _value, pos = dec.raw_decode(text, pos)
                entries[tag] = text[start:pos]
                pos = _next(text, pos)
            pos = _SPACE.match(text, pos + 1).end()  # type: ignore[union-attr]
        else:
            head[key], pos = dec.raw_decode(text, pos)
        pos = _next(text, pos)
    if head.get("repo") != repo_id or head.get("v") != VERSION:
        return {}, {}
    chunks = {cid: pack for pack, ids in head["chunks"].items() for cid in ids}
    return entries, chunks


def _expect(text: str, pos: int, char: str) -> int:
    pos = _SPACE.match(text, pos).end()  # type: ignore[union-attr]
    if text[pos] != char:
        raise ValueError(f"expected {char!r} at {pos}")
    return _SPACE.match(text, pos + 1).end()  # type: ignore[union-attr]


def _next(text: str, pos: int) -> int:
    """Past the whitespace and the comma after a member, at the next member or the end."""
    pos = _SPACE.match(text, pos).end()  # type: ignore[union-attr]
    if text[pos] == ",":
        pos = _SPACE.match(text, pos + 1).end()  # type: ignore[union-attr]
    return pos


class Writer:
    """The next cache, written as the run goes: file entries first (each the JSON text of its
    value), the chunks last, compressed piece by piece. Same document as ``save`` writes."""

    def __init__(self, repo_id: str) -> None:
        self._c = compress.JsonStream(level=1)
        self._c.add(json.dumps({"v": VERSION, "repo": repo_id})[:-1] + ', "entries": {')
        self._buf: list[str] = []  # members whose value is text already
        self._lists: dict[str, list[Any]] = {}  # the others, encoded together at a flush
        self._first = True

    def add(self, tag: str, value: str | list[Any]) -> None:
        if isinstance(value, str):
            self._buf.append(f'"{tag}":{value}')
        else:
            self._lists[tag] = value
        if len(self._buf) + len(self._lists) >= 512:
            self._flush()

    def _flush(self) -> None:
        if self._lists:
            self._buf.append(json.dumps(self._lists, separators=(",", ":"))[1:-1])
            self._lists = {}
        if self._buf:
            self._c.add(("" if self._first else ",") + ",".join(self._buf))
            self._first = False
            self._buf = []

    def finish(self, by_pack: Mapping[str, list[str]] | Mapping[str, list[bytes]]
               | Mapping[str, list[str] | list[bytes]]) -> bytes:
        """The whole document; ``by_pack``: pack id -> its chunk ids (hex, or bytes)."""
        self._flush()
        self._c.add('}, "chunks": {')
        for n, (pack, ids) in enumerate(by_pack.items()):
            hexes = [c if isinstance(c, str) else c.hex() for c in ids]
            self._c.add(("," if n else "") + f'"{pack}":' + json.dumps(hexes))
        self._c.add("}}")
        return self._c.finish()


def save(cache_dir: Path, repo_id: str, entries: CacheEntries | CompactEntries,
         chunks: Chunks) -> None:
    w = Writer(repo_id)
    for tag, value in entries.items():
        w.add(tag, value)
    by_pack: dict[str, list[str]] = {}
    for cid, pack in chunks.items():
        by_pack.setdefault(pack, []).append(cid)
    save_bytes(cache_dir, repo_id, w.finish(by_pack))


def save_bytes(cache_dir: Path, repo_id: str, data: bytes) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(cache_dir, 0o700)
    write_atomic(cache_path(cache_dir, repo_id), data, cache_dir, mode=0o600)


def drop(cache_dir: Path, repo_id: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        cache_path(cache_dir, repo_id).unlink()
