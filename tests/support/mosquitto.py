"""A Mosquitto broker owned by one test: free port, private config, can be killed and restarted."""

from __future__ import annotations

from pathlib import Path

from controller.localbroker import LocalBroker
from tests.support import require_binary


class Broker(LocalBroker):
    def __init__(self, workdir: Path, port: int | None = None) -> None:
        super().__init__(workdir, port, binary=require_binary("mosquitto", "/usr/sbin/mosquitto"))
