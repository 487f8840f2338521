"""Walk the vault: entries in a stable order, with excludes, and the data extents of files."""

from __future__ import annotations

import errno
import fnmatch
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Item:
    path: str  # absolute path as a str (surrogateescape for undecodable names)
    st: os.stat_result


@dataclass
class WalkErrors:
    count: int = 0
    paths: list[str] | None = None

    def add(self, path: str, exc: OSError) -> None:
        self.count += 1
        if self.paths is None:
            self.paths = []
        if len(self.paths) < 100:
            self.paths.append(f"{path}: {exc.strerror}")


_name = attrgetter("name")


def _excluded(rel: str, name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(rel, p) or fnmatch.fnmatchcase(name, p) for p in patterns)


def walk(roots: list[Path], excludes: list[str], errors: WalkErrors) -> Iterator[Item]:
    for root in roots:
        top = os.path.abspath(root)
        try:
            st = os.lstat(top)
        except OSError as exc:
            errors.add(top, exc)
            continue
        yield Item(top, st)
        if stat.S_ISDIR(st.st_mode):
            yield from _walk_dir(top, top, excludes, errors)


def _walk_dir(top: str, path: str, excludes: list[str], errors: WalkErrors) -> Iterator[Item]:
    try:
        with os.scandir(path) as it:
            entries = sorted(it, key=_name)
    except OSError as exc:
        errors.add(path, exc)
        return
    for entry in entries:
        full = entry.path
        if excludes and _excluded(full[len(top) + 1:], entry.name, excludes):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError as exc:
            errors.add(full, exc)
            continue
        yield Item(full, st)
        if stat.S_ISDIR(st.st_mode):
            yield from _walk_dir(top, full, excludes, errors)


def data_extents(fd: int, size: int, st: os.stat_result) -> list[tuple[int, int]]:
    """(start, end) ranges holding data; holes of sparse files are skipped without reading."""
    if size == 0:
        return []
    if st.st_blocks * 512 >= size:
        return [(0, size)]
    extents: list[tuple[int, int]] = []
    pos = 0
    try:
        while pos < size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:
                    break
                raise
            end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
            if start >= size:
                break
            extents.append((start, end))
            pos = end
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP):
            return [(0, size)]
        raise
    return extents
