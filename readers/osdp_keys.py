"""OSDP readers' secure channel keys (SCBK) on disk: one key file per reader, 32 hex digits,
mode 0600. Never logged; errors name the file, never its content. No libosdp here, so the
doctor and the CLI read key files without loading the reader library."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from readers.base import ReaderError

SCBK_BYTES = 16
SCBK_D = bytes(range(0x30, 0x40))  # the published install key of OSDP (0x30..0x3F)


class KeyFileError(ReaderError):
    """The reader's key file is missing, unreadable, readable by others or not 32 hex digits.
    The message names the file, never its content."""


def load_scbk(path: Path) -> bytes:
    """The 16-byte secure channel key in ``path`` (32 hex digits, one line, mode 0600)."""
    try:
        st = path.stat()
        text = path.read_text(encoding="ascii")
    except FileNotFoundError as exc:
        raise KeyFileError(f"OSDP key file {path} not found; create it and give it "
                           "to the reader with `secroom card osdp-install`") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"OSDP key file {path} cannot be read") from exc
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise KeyFileError(f"OSDP key file {path} is readable by others; chmod 600 it")
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        key = b""
    if len(key) != SCBK_BYTES:
        raise KeyFileError(f"OSDP key file {path} must hold one key of 32 hex digits")
    if key == SCBK_D:
        raise KeyFileError(f"OSDP key file {path} holds the default install key (SCBK-D); "
                           "generate a key for this reader")
    return key


def write_new_scbk(path: Path) -> bytes:
    """A fresh random key in a new file (mode 0600); refuses to overwrite one."""
    key = os.urandom(SCBK_BYTES)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(key.hex() + "\n")
    return key
