from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import configuration as hypothesis_configuration
from hypothesis import settings as hypothesis_settings

from tests.support import unavailable
from tests.support.mosquitto import Broker
from tests.support.postgres import PostgresUnavailable, postgres_url

# Hypothesis keeps its example database under ./.hypothesis by default: no test writes into the
# working directory, so point it at a temporary folder and keep no example database.
hypothesis_configuration.set_hypothesis_home_dir(tempfile.mkdtemp(prefix="secroom-hypothesis-"))
hypothesis_settings.register_profile("secroom", database=None)
hypothesis_settings.load_profile("secroom")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A private Mosquitto on a free port, started for this test and stopped after it."""
    b = Broker(tmp_path / "mosquitto")
    b.start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """The PostgreSQL every test of the run shares (each in a schema of its own):
    SECROOM_TEST_PG_URL when set, else a private cluster started here once and stopped at the
    end (tests/support/postgres.py). Neither: skipped, or failed with
    SECROOM_REQUIRE_INTEGRATION=1 (pytest keeps that outcome for the whole session)."""
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(postgres_url())
        except PostgresUnavailable as exc:
            unavailable(str(exc))
        yield url
