"""A blank card issued from the dashboard, end to end, on two real gateways: the admin picks a
person and a reader on the person's page, the dashboard signs an enrol command to that node
over a real Mosquitto, the gateway personalises a blank virtual DESFire EV2 presented through a
real pcscd + vpcd, the card comes back registered to the person (audited) and opens at both
gateways' doors as a verified card; revoked as lost in the dashboard, one policy push later
it opens at neither."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from gpiozero.pins.mock import MockFactory
from sqlalchemy import select

from controller.envelope import Event
from controller.gateway import Gateway
from controller.keys import load_private
from controller.mqtt import MqttSettings
from controller.policy import DoorRule, Group, Person, Policy
from controller.policy_slice import card_key_for
from dashboard import cardkeys
from dashboard.demo.dashboard import approve_when_announced, enter_office
from dashboard.models import AuditRecord, Card
from readers.pcsc import PcscReaders
from readers.pcscd_host import PcscdHost
from readers.verify import desfire
from readers.verify.select import CardVerifier
from readers.virtual import VirtualCard
from readers.virtual_cards import DesfireCard
from tests.controller.gateway_kit import ALICE_UID, DOOR, EventCollector, make_kit
from tests.dashboard.web.conftest import LiveDashboard, post_login, run_live_dashboard
from tests.support.mosquitto import Broker
from tests.support.pcscd import start_pcscd

pytestmark = pytest.mark.integration
BLANK = bytes.fromhex("04B1A2C3D4E5F6")
NODES = {"gw1": "Virtual PCD 00 00", "gw2": "Virtual PCD 00 01"}


@dataclass
class Site:
    live: LiveDashboard
    pcscd: PcscdHost
    gateways: dict[str, Gateway]
    collector: EventCollector
    key_id: str

    def present(self, uid: bytes, node: str, applet: Any = None) -> Event:
        """Hold a card on ``node``'s reader until its door.access is out."""
        mark = self.collector.mark()
        slot = list(NODES).index(node)
        kwargs = {"atr": applet.atr} if applet is not None else {}
        card = VirtualCard(port=self.pcscd.port + slot, uid=uid, applet=applet, **kwargs)
        card.insert()
        try:
            return self.collector.wait_for(
                lambda e: e.kind == "door.access" and e.node == node
                and e.data["card"] == uid.hex().upper()
                and self.collector.arrivals.index(e) >= mark, timeout=30)
        finally:
            card.remove()

    def policy_has(self, node: str, holds: Callable[[Any], bool]) -> None:
        """Wait until ``node`` applied a policy for which ``holds(policy)``."""
        gateway = self.gateways[node]
        self.collector.wait_for(
            lambda e: e.kind == "policy.applied" and e.node == node
            and gateway.policies.current is not None and holds(gateway.policies.current),
            timeout=40)


def until(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    """A value the dashboard's database reaches (written by its own threads), polled."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise TimeoutError("the dashboard did not get there in time")
        time.sleep(0.1)
    return value


def page_with(http: httpx.Client, text: str) -> str | None:
    page = http.get("/people/bob").text
    return page if text in page else None


def settled(http: httpx.Client) -> dict[str, Any] | None:
    status: dict[str, Any] = http.get("/people/bob/personalise").json()
    return status if status["state"] not in ("requested", "sent", "waiting") else None


@pytest.fixture
def site(tmp_path: Path, broker: Broker) -> Iterator[Site]:
    host = start_pcscd(tmp_path)
    host.use_in_this_process()
    stop = threading.Event()
    gateways: dict[str, Gateway] = {}
    with run_live_dashboard(tmp_path / "dash", mqtt=MqttSettings(port=broker.port)) as live:
        name = live.settings.site
        office = Policy(version=1, issued_at=datetime.now(UTC), site=name,
                        people=[Person(id="alice", name="鈴木 花子", cards=[ALICE_UID],
                                       groups=["staff"]),
                                Person(id="bob", name="山田 太郎", cards=[], groups=["staff"])],
                        groups=[Group(id="staff", name="担当者", doors=[DOOR])],
                        doors=[DoorRule(id=DOOR, name="サーバー室")])
        enter_office(live.sessionmaker, office, datetime.now(UTC))
        assert live.settings.policy_key_file is not None
        signing = load_private(live.settings.policy_key_file)
        with live.sessionmaker.begin() as db:  # the site's first card master key
            key_id = cardkeys.rotate(db, signing, actor="admin", now=datetime.now(UTC))
        trust = live.settings.policy_key_file.with_name(live.settings.policy_key_file.name
                                                        + ".pub")
        collector = EventCollector(broker.port).start()
        approvers = []
        try:
            for node, reader in NODES.items():
                kit = make_kit(tmp_path / node, mqtt_port=broker.port, site=name, trust=trust,
                               node=node, bindings=[{"name": reader, "role": "door_in",
                                                     "door": DOOR}])
                (kit.root / "card.key").write_text(card_key_for(signing, name, node).hex())
                gateways[node] = Gateway(kit.config, reader=PcscReaders(
                    reader_filter=lambda n, want=reader: n == want, verifier=CardVerifier()),
                    pin_factory=MockFactory())
                approver = threading.Thread(target=approve_when_announced, daemon=True, args=(
                    live.sessionmaker, node, kit.config.key_file, stop, ("door_gateway",)))
                approver.start()
                approvers.append(approver)
                gateways[node].start()
            s = Site(live, host, gateways, collector, key_id)
            for node in NODES:
                s.policy_has(node, lambda p: bool(p.site_keys))
            yield s
        finally:
            stop.set()
            for gateway in gateways.values():
                gateway.stop()
            collector.stop()
            host.stop()


def test_a_blank_card_issued_from_the_dashboard_opens_both_doors_until_revoked(
    site: Site,
) -> None:
    live, sm = site.live, site.live.sessionmaker
    # any tap makes the reader known to the dashboard (the door log offers it by its door)
    site.present(bytes.fromhex(ALICE_UID), "gw1")
    with httpx.Client(base_url=live.base_url) as http:
        assert post_login(http, live.username, live.password).status_code == 303
        page = until(lambda: page_with(http, "gw1:Virtual PCD 00 00"))
        assert "ブランクカードの発行" in page and 'id="personalise-form"' in page
        token = page.split('name="csrf_token" value="')[1].split('"')[0]
        mark = site.collector.mark()
        r = http.post("/people/bob/personalise", follow_redirects=False, data={
            "reader": "gw1:Virtual PCD 00 00", "label": "社員証", "csrf_token": token})
        assert r.status_code == 303, r.text
        site.collector.wait_for(lambda e: e.kind == "card.enrolment" and e.node == "gw1"
                                and e.data["outcome"] == "waiting"
                                and site.collector.arrivals.index(e) >= mark, timeout=30)
        assert "カードを置いてください" in until(lambda: page_with(http, 'data-state="waiting"'))

        blank = DesfireCard.blank(BLANK)
        card = VirtualCard(port=site.pcscd.port, uid=BLANK, applet=blank, atr=blank.atr)
        card.insert()
        try:
            done = site.collector.wait_for(lambda e: e.kind == "card.enrolment"
                                           and e.data["outcome"] not in ("waiting",), timeout=30)
        finally:
            card.remove()
        assert done.data["outcome"] == "personalised", done.data
        status = until(lambda: settled(http))
        assert (status["state"], status["uid"], status["card_type"], status["key_id"]) == (
            "personalised", BLANK.hex().upper(), "desfire", site.key_id)
        with sm() as db:
            row = db.get(Card, BLANK.hex().upper())
            assert row is not None and row.person_id == "bob" and row.active
            assert (row.credential, row.key_id, row.label) == ("desfire", site.key_id, "社員証")
            actions = [a.action for a in db.scalars(select(AuditRecord).order_by(AuditRecord.seq))
                       if a.action.startswith("card.")]
        assert actions == ["card.enrol", "card.personalise_request", "card.enrol",
                           "card.personalise_done"]  # alice's card at setup, then bob's
        with sm() as db:
            issued_with = cardkeys.site_keys(db, load_private(live.settings.policy_key_file))[0]
        assert blank.key == desfire.card_key(issued_with, BLANK)  # the card's own AN10922 key

        # the registered card reaches both gateways' slices and proves itself at both doors
        uid = BLANK.hex().upper()
        for node in NODES:
            site.policy_has(node, lambda p: p.person_for_card(uid) is not None)
            event = site.present(BLANK, node, applet=blank)
            assert (event.data["granted"], event.data["credential"],
                    event.data["person_id"]) == (True, "verified", "bob"), node

        # lost: revoked in the dashboard, and with the next policy neither door opens for it
        token = http.get("/people/bob").text.split('name="csrf_token" value="')[1].split('"')[0]
        r = http.post(f"/people/bob/cards/{uid}/revoke", data={"csrf_token": token},
                      follow_redirects=False)
        assert r.status_code == 303, r.text
        for node in NODES:
            site.policy_has(node, lambda p: p.person_for_card(uid) is None)
            event = site.present(BLANK, node, applet=blank)
            assert (event.data["granted"], event.data["reason"]) == (False, "unknown_card"), node


def test_every_request_state_and_card_type_reads_in_both_languages() -> None:
    from dashboard.i18n import catalogue
    from dashboard.web.personalise import STATE_KEYS, TYPE_KEYS

    for lang in ("ja", "en"):
        texts = catalogue(lang)
        for key in [*STATE_KEYS.values(), *TYPE_KEYS.values()]:
            assert texts.get(key), (lang, key)
