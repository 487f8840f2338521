"""A room with one PC, every part real but the door's hardware: Mosquitto, the dashboard's
ingest, policy signer and presence publisher on SQLite, a door gateway node that signs real
door.access events, and the host agent node of pc-01 with its card reader on a private pcscd
with the vpcd virtual card, PAM through pamtester (pam_wrapper), and logind's stand-in."""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from controller.config import parse_config
from controller.envelope import topic_for
from controller.host.logind import DbusLogind
from controller.host_agent import HostNode
from controller.keys import generate, public_b64
from controller.mqtt import MqttLink, MqttSettings
from controller.policy_slice import card_key_for
from dashboard import services
from dashboard.bus import Bus
from dashboard.hosts.presence import PresencePublisher
from dashboard.ingest.consumer import IngestConsumer
from dashboard.models import Node
from dashboard.policy_signer import PolicySigner
from readers.pcsc import PcscReaders
from readers.virtual import VirtualCard
from tests.dashboard.conftest import SITE, FakeNode
from tests.support.pam import PamService

HOST = "pc-01"
NODE = "pc-01"
HANA = "0102030405060708"
KENJI = "1112131415161718"
PASSWORDS = {"hana": "hana-pw", "kenji": "kenji-pw"}


def _rights(sm: Any) -> None:
    with sm.begin() as s:
        services.create_door(s, "admin", {"id": "room", "name": "Server room"})
        services.create_group(s, "admin", {"id": "pc_users", "name": "PC users",
                                           "doors": ["room"], "hosts": [HOST]})
        for pid, name, card in (("hana", "中村 花", HANA), ("kenji", "佐藤 健二", KENJI)):
            services.create_person(s, "admin", {"id": pid, "name": name, "groups": ["pc_users"],
                                                "host_accounts": [pid]})
            services.enrol_card(s, "admin", pid, card)


class HostWorld:
    def __init__(self, tmp: Path, broker: Any, pcscd: Any, logind: Any, sm: Any) -> None:
        self.tmp, self.broker, self.pcscd, self.logind, self.sm = tmp, broker, pcscd, logind, sm
        self.key = Ed25519PrivateKey.generate()
        self.bus = Bus()
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.bus.listen(("event",), lambda m: self.events.put(m.data))
        self._nodes = threading.Condition()
        self.bus.listen(("node",), lambda m: self._notify())
        self.gate = FakeNode("gw1")
        self.cards = {uid: VirtualCard(port=pcscd.ports[0], uid=bytes.fromhex(uid))
                      for uid in (HANA, KENJI)}

    def _notify(self) -> None:
        with self._nodes:
            self._nodes.notify_all()

    def _link(self, client_id: str) -> MqttLink:
        link = MqttLink(MqttSettings(host=self.broker.host, port=self.broker.port),
                        client_id=client_id)
        link.start()
        assert link.connected.wait(30), link.last_error
        return link

    def start(self) -> None:
        _rights(self.sm)
        self.link = self._link("dashboard")
        publish = lambda topic, blob, retain: self.link.publish(topic, blob, retain=retain)  # noqa: E731
        self.consumer = IngestConsumer(self.sm, self.link, site=SITE, bus=self.bus,
                                       gap_timeout_s=5, receipt_key=self.key)
        self.consumer.start()
        assert self.link.wait_subscribed(30), self.link.last_error
        self.signer = PolicySigner(self.sm, self.key, site=SITE, publish=publish)
        self.signer.publish_now()
        self.presence = PresencePublisher(self.sm, self.key, site=SITE, publish=publish,
                                          heartbeat_s=30, bus=self.bus)
        self.presence.start()
        self.gate_link = self._link("gw1")
        self._approve_gate()
        self.node = self._host_node()
        self.node.start()
        self._approve(NODE, self.node.runtime.public_key)
        self._publish_slice()
        assert self.node.policy_ready.wait(30), "the host agent never applied the policy"
        self.pam = PamService(self.tmp / "pam", self.node.config.host.socket,
                              passwords=PASSWORDS)

    def _host_node(self) -> HostNode:
        keys = self.tmp / "keys"
        (keys / "dashboard.pub").parent.mkdir(parents=True, exist_ok=True)
        (keys / "dashboard.pub").write_text(public_b64(self.key.public_key()))
        generate(keys / "node.key")
        # the agent's card key, as `secroom policy card-key` gives it to the installer
        (self.tmp / "node").mkdir(parents=True, exist_ok=True)
        (self.tmp / "node" / "card.key").write_text(card_key_for(self.key, SITE, NODE).hex())
        config = parse_config({
            "node": {"name": NODE, "site": SITE, "data_dir": str(self.tmp / "node"),
                     "key_file": str(keys / "node.key"), "clock": "synced"},
            "mqtt": {"host": self.broker.host, "port": self.broker.port, "backoff_min_s": 0.05,
                     "backoff_max_s": 0.5},
            "policy": {"trusted_keys": [str(keys / "dashboard.pub")]},
            "host": {"host": HOST, "socket": str(self.tmp / "run" / "agent.sock"),
                     "logind_bus": self.logind.address, "logoff_after_s": 3600,
                     "journal": {"enabled": False}, "audit": {"enabled": False}},
        }, base=self.tmp)
        return HostNode(config, reader=PcscReaders(), logind=DbusLogind(self.logind.address),
                        usb=False)

    def _approve(self, name: str, public_key: str,
                 roles: tuple[str, ...] = ("host_agent",)) -> None:
        def announced() -> bool:
            with self.sm() as s:
                node = s.get(Node, name)
                return node is not None and node.public_key == public_key
        with self._nodes:
            assert self._nodes.wait_for(announced, 30), f"{name} never announced its key"
        with self.sm.begin() as s:
            services.approve_node(s, "admin", name, roles=roles, public_key=public_key)

    def _publish_slice(self) -> None:
        """Once the approved agent's state declared its scope, the signer sends its slice."""
        from dashboard.policy_signer import node_scopes

        def declared() -> bool:
            with self.sm() as s:
                return NODE in node_scopes(s, SITE)
        with self._nodes:
            assert self._nodes.wait_for(declared, 30), f"{NODE} never declared its scope"
        self.signer.publish_now()

    def _approve_gate(self) -> None:
        from controller.envelope import canonical_json

        self.gate_link.publish(topic_for(SITE, "gw1", "state"), canonical_json(
            {"state": "online", "public_key": self.gate.public}), qos=1, retain=True)
        self._approve("gw1", self.gate.public, ("door_gateway", "print_station"))

    def stop(self) -> None:
        for card in self.cards.values():
            card.remove()
        self.node.stop()
        self.presence.stop()
        self.consumer.stop()
        self.gate_link.stop()
        self.link.stop()

    # -- acting in the room ------------------------------------------------------------------

    def badge(self, person: str, direction: str) -> None:
        """A granted tap at the room's door, signed by the gateway node."""
        ev = self.gate.event("door.access", {"door": "room", "reader": f"room-{direction}",
                                             "direction": direction, "granted": True,
                                             "person_id": person}, ts=_now())
        self.gate_link.publish(ev.topic(), ev.to_bytes(), qos=1)
        assert self.node.agent.wait_presence(person, direction, 30), \
            f"the agent never learnt that {person} is {direction}"

    def lay(self, uid: str) -> None:
        self.cards[uid].insert()
        assert self.node.agent.wait_card(uid, 30), "the agent never saw the card"

    def lift(self, uid: str) -> None:
        self.cards[uid].remove()
        assert self.node.agent.wait_card(None, 30), "the agent still sees a card"

    def next_event(self, kind: str, timeout: float = 30, **match: Any) -> dict[str, Any]:
        """The next event of ``kind`` the dashboard stored (whose data has ``match``)."""
        while True:
            got = self.events.get(timeout=timeout)
            if got["kind"] == kind and all(got["data"].get(k) == v for k, v in match.items()):
                return got

    def watch_node(self, kind: str) -> queue.Queue[Any]:
        """The host node's events of ``kind`` as the broker carries them (no dashboard)."""
        from controller.envelope import parse

        got: queue.Queue[Any] = queue.Queue()
        self.gate_link.subscribe(topic_for(SITE, NODE, f"events/{kind}"),
                                 lambda _t, payload: got.put(parse(payload)))
        return got

    def stored(self, kind: str) -> list[dict[str, Any]]:
        from dashboard.models import StoredEvent

        with self.sm() as s:
            return [e.data for e in s.scalars(select(StoredEvent).where(
                StoredEvent.kind == kind).order_by(StoredEvent.seq))]


def _now() -> Any:
    from controller.envelope import now_utc

    return now_utc()
