"""A replica's broker subscriptions for one site: its leased nodes' topics only.

With several dashboard replicas (dashboard.replicas), each node's events are stored by the one
replica holding its lease. Each replica subscribes at the broker to the events of the nodes it
holds (``secroom/v1/{site}/{node}/events/#``, one filter a node), so the broker sends each
event to one replica, not to all of them to be dropped by all but one (measured in
BENCHMARKS.md: two replicas fell to 55-68 % of one replica's rate that way). The state topic
stays one filter for the whole site on every replica (``secroom/v1/{site}/+/state``): a node
not yet enrolled introduces itself there (its key), and a node sends a state message only when
it connects or its health changes; the replica not holding the node drops it.

A hand-over loses nothing: a lease is lost in the lease round, then the node's filter is
unsubscribed; what arrives in between is dropped un-acked (``IngestLeases.holds`` says no
from the round on, and the storing transaction's fence says no as well), and stays in the
node's journal. The new holder subscribes the node's filter, then (on the same broker
connection, so after the broker has the subscription) asks the node to re-send what follows
its ack. An event published under a node name that no replica leases (not enrolled) reaches no
replica: a real node keeps it in its journal, and its state message raises ``unknown_node``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from controller.envelope import TOPIC_ROOT
from controller.mqtt import MqttLink
from dashboard.ingest.link_process import BatchHandler, LinkProcess
from dashboard.replicas.leases import LeaseChange


def node_filter(site: str, node: str) -> str:
    return f"{TOPIC_ROOT}/{site}/{node}/events/#"


class LeasedTopics:
    def __init__(self, link: MqttLink | LinkProcess, site: str, *,
                 on_message: Callable[[str, bytes], None], on_messages: BatchHandler,
                 max_payload: int) -> None:
        self.link = link
        self.site = site
        self.on_message = on_message
        self.on_messages = on_messages
        self.max_payload = max_payload
        self._lock = threading.Lock()
        self._started = False
        self._want: frozenset[str] = frozenset()
        self._have: set[str] = set()
        self.subscribed_total = 0
        self.unsubscribed_total = 0

    @property
    def nodes(self) -> frozenset[str]:
        """The nodes whose events this replica is subscribed to now."""
        with self._lock:
            return frozenset(self._have)

    def start(self) -> None:
        """Subscribe the site's state topic (and route events of the held nodes)."""
        state = f"{TOPIC_ROOT}/{self.site}/+/state"
        link = self.link
        if isinstance(link, LinkProcess):  # batches straight into the consumer's inbox
            link.route_many([f"{TOPIC_ROOT}/{self.site}/+/events/#", state], self.on_messages)
            link.add_filters([state])
        else:
            link.subscribe(state, self.on_message, max_payload=self.max_payload)
        with self._lock:
            self._started = True
        self._apply()

    def changed(self, change: LeaseChange) -> None:
        """The leases changed (lease thread): follow them."""
        if isinstance(self.link, LinkProcess):  # another replica's node: dropped in the child
            self.link.skip_nodes(change.others)
        with self._lock:
            self._want = frozenset(change.held_at(self.site))
        self._apply()

    def _apply(self) -> None:
        """Unsubscribe the nodes no longer held, then subscribe the ones gained."""
        with self._lock:
            if not self._started:
                return
            drop = sorted(self._have - self._want)
            add = sorted(self._want - self._have)
            self._have = set(self._want)
            link = self.link
            if isinstance(link, LinkProcess):
                if drop:
                    link.remove_filters([node_filter(self.site, n) for n in drop])
                if add:
                    link.add_filters([node_filter(self.site, n) for n in add])
            else:
                for n in drop:
                    link.unsubscribe(node_filter(self.site, n))
                for n in add:
                    link.subscribe(node_filter(self.site, n), self.on_message,
                                   max_payload=self.max_payload)
            self.subscribed_total += len(add)
            self.unsubscribed_total += len(drop)
