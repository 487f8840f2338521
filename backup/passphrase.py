"""Where a passphrase comes from: a file, the SECROOM_BACKUP_PASSPHRASE variable, or a prompt.
Never from the command line (it would land in shell history and `ps`)."""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

from backup.errors import ConfigError

ENV = "SECROOM_BACKUP_PASSPHRASE"


def read_passphrase(file: Path | None, *, confirm: bool = False) -> bytes:
    if file is not None:
        try:
            text = file.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(f"cannot read passphrase file {file}: {exc.strerror}") from exc
        return text.encode()
    if os.environ.get(ENV):
        return os.environ[ENV].encode()
    if not sys.stdin.isatty():
        raise ConfigError(f"no passphrase: use --passphrase-file FILE, set {ENV}, "
                          "or run in a terminal to be asked")
    first = getpass.getpass("Backup key passphrase: ")
    if confirm and getpass.getpass("Repeat the passphrase: ") != first:
        raise ConfigError("the two passphrases differ")
    return first.encode()
