from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services.mosquitto import Broker


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A private Mosquitto on a free port, started for this test and stopped after it."""
    b = Broker(tmp_path / "mosquitto")
    b.start()
    try:
        yield b
    finally:
        b.stop()
