"""A broker outage shows in the gateway's health (published to the dashboard as node state):
the soak found it left no trace at all (no event can be sent while the broker is away)."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.gateway import Gateway
from controller.gpio import make_pin_factory
from readers.fake import FakeReader
from tests.controller.gateway_kit import make_kit
from tests.support import wait_until
from tests.support.mosquitto import Broker

pytestmark = pytest.mark.integration


def test_broker_restart_counts_in_gateway_health(tmp_path: Path, broker: Broker) -> None:
    kit = make_kit(tmp_path / "gw", mqtt_port=broker.port, backend="fake")
    gateway = Gateway(kit.config, reader=FakeReader(), pin_factory=make_pin_factory("mock"))
    gateway.start()
    try:
        link = gateway.runtime.link
        assert link.connected.wait(10)
        assert gateway.health()["mqtt"] == {"connects": 1, "disconnects": 0, "oversized": 0}
        broker.kill()
        # the link has no "disconnected" event to await
        wait_until(lambda: link.stats["disconnects"] >= 1, 10, "the link to notice")
        broker.start()
        wait_until(lambda: link.stats["connects"] >= 2, 10, "the link to reconnect")
        assert gateway.health()["mqtt"] == {"connects": 2, "disconnects": 1, "oversized": 0}
    finally:
        gateway.stop()
