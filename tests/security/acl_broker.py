"""The room's broker for the security tests (tests.support.secure_broker: TLS, per-node users,
the generated ACL), and a node's view of its ack topic."""

from __future__ import annotations

import queue

from controller.envelope import topic_for
from controller.mqtt import MqttLink
from tests.support.receipts import ack_seq
from tests.support.secure_broker import SITE
from tests.support.secure_broker import SecureBroker as AclBroker

__all__ = ["SITE", "Acks", "AclBroker"]


class Acks:
    """A node's view of its retained ack topic."""

    def __init__(self, link: MqttLink, node: str) -> None:
        self.q: queue.Queue[int] = queue.Queue()
        link.subscribe(topic_for(SITE, node, "ack"), lambda t, p: self.q.put(ack_seq(p)))

    def reaching(self, seq: int, timeout: float = 30) -> int:
        while True:
            got = self.q.get(timeout=timeout)
            if got >= seq:
                return got
