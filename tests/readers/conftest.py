from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from readers.pcscd_host import PcscdHost
from tests.readers.recording import RecordingSink
from tests.support.pcscd import start_pcscd


@pytest.fixture
def pcscd(tmp_path: Path) -> Iterator[PcscdHost]:
    """A private pcscd with a two-slot vpcd reader; PC/SC calls in this process reach it."""
    host = start_pcscd(tmp_path)
    host.use_in_this_process()
    try:
        yield host
    finally:
        host.stop()


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()
