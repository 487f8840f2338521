from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel

from controller.events import payload_error
from tests.support.cupsd import Cupsd


class Events:
    """Collects emitted events; like the node runtime, takes only the kind's registered model
    (controller.events.KINDS) and keeps the JSON object the journal would."""

    def __init__(self) -> None:
        self.items: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, kind: str, data: BaseModel) -> None:
        refused = payload_error(kind, data)
        if refused is not None:
            raise AssertionError(refused)
        self.items.append((kind, data.model_dump(mode="json")))

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [d for k, d in self.items if k == kind]

    @property
    def kinds(self) -> list[str]:
        return [k for k, _ in self.items]


@pytest.fixture
def events() -> Events:
    return Events()


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 20, 10, 0, tzinfo=UTC))


@pytest.fixture(scope="session")
def cupsd() -> Iterator[Cupsd]:
    """One private cupsd for the session (libcups reads $CUPS_STATEDIR once per thread, so the
    adapter's Local-certificate authentication needs a single state dir per process). Tests use
    their own queues; a test that kills cupsd restarts it. It lives outside pytest's 0700 temp
    tree because its filters run as user lp and must reach the spool."""
    with Cupsd.private() as daemon:
        yield daemon
