"""Fixtures for the demo tests: a Chromium page in English (the dashboard tests' browser)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.dashboard.web.conftest import chromium


@pytest.fixture
def chromium_page() -> Iterator[Any]:
    with chromium("en-US") as page:
        yield page
