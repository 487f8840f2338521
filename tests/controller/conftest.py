"""Fixtures for the node runtime tests: node keys, runtime settings, and a collector.

The collector plays the dashboard's part of the delivery contract on a real broker: it stores
events by seq (dropping duplicates), asks the node to resend any gap, and can publish the ack.
"""

from __future__ import annotations

import functools
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controller.envelope import EnvelopeError, Event, parse, topic_for
from controller.keys import generate
from controller.mqtt import MqttLink, MqttSettings
from controller.runtime import RuntimeSettings
from tests.support.receipts import DashboardSigner

SITE = "site1"
NODE = "gw1"
DASHBOARD = DashboardSigner()  # plays the dashboard: the runtimes here pin its key


def fast_mqtt(port: int) -> MqttSettings:
    """Short reconnect backoff so fault tests do not wait for the production defaults."""
    return MqttSettings(port=port, backoff_min_s=0.05, backoff_max_s=0.5, keepalive_s=5)


@pytest.fixture
def node_key(tmp_path: Path) -> tuple[Path, Ed25519PrivateKey]:
    path = tmp_path / "keys" / "node.pem"
    return path, generate(path)


@pytest.fixture
def make_settings(
    tmp_path: Path, node_key: tuple[Path, Ed25519PrivateKey]
) -> Callable[..., RuntimeSettings]:
    def make(port: int, **overrides: object) -> RuntimeSettings:
        values: dict[str, object] = {
            "node": NODE,
            "site": SITE,
            "journal": tmp_path / "journal" / "node.db",
            "key_file": node_key[0],
            "mqtt": fast_mqtt(port),
            "trusted_keys": [DASHBOARD.write_public(tmp_path / "keys" / "dashboard.pub")],
        }
        values.update(overrides)
        return RuntimeSettings.model_validate(values)

    return make


class Collector:
    """Subscribes to a node's events; keeps one copy per seq; asks for resends of gaps."""

    def __init__(self, port: int, *, site: str = SITE, node: str = NODE) -> None:
        self.site, self.node = site, node
        self.link = MqttLink(fast_mqtt(port), client_id=f"collector-{uuid.uuid4().hex[:8]}")
        self.events: dict[int, Event] = {}
        self.wire_count = 0
        self.copies: Counter[int] = Counter()
        self.bad = 0
        self.forks = 0  # a second copy of a seq with a different hash
        self.states: list[dict[str, object]] = []
        self._cond = threading.Condition()
        self.link.subscribe(topic_for(site, node, "events/#"), self._on_event)
        self.link.subscribe(topic_for(site, node, "state"), self._on_state)

    def __enter__(self) -> Collector:
        self.link.start()
        assert self.link.wait_subscribed(10), f"collector not subscribed: {self.link.last_error}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.link.stop()

    def _on_event(self, topic: str, payload: bytes) -> None:
        try:
            event = parse(payload)
        except EnvelopeError:
            self.bad += 1
            return
        with self._cond:
            self.wire_count += 1
            self.copies[event.seq] += 1
            first = self.events.setdefault(event.seq, event)
            if first.hash != event.hash:
                self.forks += 1
            self._cond.notify_all()

    def _on_state(self, topic: str, payload: bytes) -> None:
        with self._cond:
            self.states.append(json.loads(payload))
            self._cond.notify_all()

    def missing(self, upto: int) -> list[tuple[int, int]]:
        """Ranges of seqs 1..upto not received yet."""
        with self._cond:
            have = set(self.events)
        ranges: list[tuple[int, int]] = []
        for seq in range(1, upto + 1):
            if seq in have:
                continue
            if ranges and ranges[-1][1] == seq - 1:
                ranges[-1] = (ranges[-1][0], seq)
            else:
                ranges.append((seq, seq))
        return ranges

    def complete(self, upto: int, timeout: float, quiet: float = 0.5) -> bool:
        """Wait for every seq 1..upto; when nothing new arrives for ``quiet`` seconds, ask the
        node to resend the gaps (as the dashboard does)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.missing(upto):
                return True
            with self._cond:
                before = len(self.events)
                if self._cond.wait_for(functools.partial(self._grown, before), timeout=quiet):
                    continue  # still arriving
            gaps = self.missing(upto)
            if not gaps:
                return True
            if self.link.connected.is_set():
                for first, last in gaps[:50]:
                    self.request_resend(first, last)
        return not self.missing(upto)

    def wait_all(self, upto: int, timeout: float) -> bool:
        """Wait for every seq 1..upto without asking for anything (no-fault tests)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._has_all(upto), timeout)

    def _has_all(self, upto: int) -> bool:
        return len(self.events) >= upto and all(s in self.events for s in range(1, upto + 1))

    def _grown(self, before: int) -> bool:
        return len(self.events) > before

    def wait_copies(self, seq: int, n: int, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.copies[seq] >= n, timeout)

    def wait_state(self, predicate: Callable[[dict[str, object]], bool], timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: any(predicate(s) for s in self.states), timeout)

    def request_resend(self, first: int, last: int) -> None:
        topic = topic_for(self.site, self.node, "resend")
        self.link.publish(topic, DASHBOARD.resend(self.site, self.node, first, last))

    def ack(self, seq: int) -> None:
        """A signed ack of ``seq``, bound to the event this collector received at that seq."""
        topic = topic_for(self.site, self.node, "ack")
        with self._cond:
            digest = self.events[seq].hash
        self.link.publish(topic, DASHBOARD.ack(self.site, self.node, seq, digest), retain=True)

    def wait_for_kind(self, kind: str, n: int, timeout: float) -> list[Event]:
        """The first ``n`` events of ``kind`` received, waiting up to ``timeout``."""
        def found() -> list[Event]:
            return [e for _, e in sorted(self.events.items()) if e.kind == kind]

        with self._cond:
            assert self._cond.wait_for(lambda: len(found()) >= n, timeout), found()
            return found()[:n]

    def ordered(self) -> list[Event]:
        with self._cond:
            return [self.events[s] for s in sorted(self.events)]


@pytest.fixture
def collector_factory() -> Iterator[Callable[[int], Collector]]:
    made: list[Collector] = []

    def make(port: int) -> Collector:
        c = Collector(port)
        made.append(c)
        return c

    yield make
    for c in made:
        c.link.stop()
