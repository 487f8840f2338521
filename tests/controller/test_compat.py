"""A node says what it runs (controller.compat) in its retained state message: the dashboard
tells a supported node from an old one by it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from controller.compat import ANNOUNCE_KEY, announcement, software_version
from controller.runtime import NodeRuntime
from tests.controller.conftest import Collector
from tests.support.mosquitto import Broker


@pytest.mark.integration
def test_the_node_announces_what_it_runs_in_its_state(
    broker: Broker, make_settings: Callable[..., object],
    collector_factory: Callable[[int], Collector],
) -> None:
    runtime = NodeRuntime(make_settings(broker.port))
    try:
        with collector_factory(broker.port) as col:
            runtime.start()
            assert col.wait_state(lambda s: s.get(ANNOUNCE_KEY) == announcement(), 10)
            assert announcement()["software"] == software_version() != "0+unknown"
    finally:
        runtime.stop()
