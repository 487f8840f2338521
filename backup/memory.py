"""Keep the peak RSS low in a threaded process that allocates many multi-MiB buffers.

glibc raises its mmap threshold dynamically after large frees, after which big chunk buffers
come from the heap arenas and fragment them; each thread may also get its own arena. Fixing the
threshold (which turns the dynamic adjustment off) and capping arenas returns every large
buffer to the kernel as soon as it is freed. A no-op where glibc is not the C library.
"""

from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8


def libc() -> ctypes.CDLL | None:
    """The C library's functions, as linked into this process (ctypes.util.find_library would
    run ldconfig in a child process to find its name)."""
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


def tune_allocator() -> bool:
    lib = libc()
    try:
        mallopt = lib.mallopt  # type: ignore[union-attr]
    except AttributeError:
        return False
    ok = bool(mallopt(M_MMAP_THRESHOLD, 256 * 1024))
    ok &= bool(mallopt(M_TRIM_THRESHOLD, 1024 * 1024))
    ok &= bool(mallopt(M_ARENA_MAX, 2))
    return ok
