"""The whole loop in a browser: a virtual card tapped through a real pcscd at a real gateway,
its signed event ingested over Mosquitto and shown live; a card enrolled by tapping it at a
chosen reader (shown, then confirmed); a card revoked in the UI, the dashboard's signed policy
propagated, and the gateway denying the next tap."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from controller.gateway import Gateway
from controller.gpio import make_pin_factory
from controller.keys import load_private
from controller.mqtt import MqttSettings
from controller.policy import DoorRule, Group, Person, Policy
from controller.policy_slice import card_key_for
from dashboard.demo.dashboard import approve_when_announced, enter_office
from readers.pcsc import PcscReaders
from readers.pcscd_host import PcscdHost
from readers.virtual import VirtualCard
from tests.controller.gateway_kit import ALICE_UID, DOOR, EventCollector, make_kit
from tests.dashboard.web.conftest import LiveDashboard, artifacts_dir, run_live_dashboard
from tests.dashboard.web.test_browser import log_in, watch_requests
from tests.support.mosquitto import Broker
from tests.support.pcscd import start_pcscd

pytestmark = pytest.mark.integration
NEW_CARD = "04C0FFEE112233"
READER_IN = "Virtual PCD 00 00"


@dataclass
class Loop:
    live: LiveDashboard
    pcscd: PcscdHost
    gateway: Gateway
    collector: EventCollector

    def tap(self, uid: str) -> None:
        VirtualCard(port=self.pcscd.port, uid=bytes.fromhex(uid)).tap(timeout=15)


@pytest.fixture
def loop(tmp_path: Path, broker: Broker) -> Iterator[Loop]:
    host = start_pcscd(tmp_path)
    host.use_in_this_process()
    stop = threading.Event()
    with run_live_dashboard(tmp_path / "dash", mqtt=MqttSettings(port=broker.port)) as live:
        site = live.settings.site
        office = Policy(version=1, issued_at=datetime.now(UTC), site=site,
                        people=[Person(id="alice", name="鈴木 花子", cards=[ALICE_UID],
                                       groups=["staff"])],
                        groups=[Group(id="staff", name="担当者", doors=[DOOR])],
                        doors=[DoorRule(id=DOOR, name="サーバー室")])
        enter_office(live.sessionmaker, office, datetime.now(UTC))
        assert live.settings.policy_key_file is not None
        trust = live.settings.policy_key_file.with_name(live.settings.policy_key_file.name
                                                        + ".pub")
        kit = make_kit(tmp_path / "gw", mqtt_port=broker.port, site=site, trust=trust)
        # gw1's card key, as `secroom policy card-key` hands it to the installer
        card_key = card_key_for(load_private(live.settings.policy_key_file), site, "gw1")
        (kit.root / "card.key").write_text(card_key.hex() + "\n")
        collector = EventCollector(broker.port).start()
        gateway = Gateway(kit.config, reader=PcscReaders(), pin_factory=make_pin_factory("mock"))
        approver = threading.Thread(target=approve_when_announced, daemon=True,
                                    args=(live.sessionmaker, "gw1", kit.config.key_file, stop,
                                          ("door_gateway",)))
        approver.start()
        gateway.start()
        try:
            collector.wait_for(lambda e: e.kind == "policy.applied", timeout=30)
            collector.wait_for(lambda e: e.kind == "reader.connected", timeout=15)
            yield Loop(live, host, gateway, collector)
        finally:
            stop.set()
            gateway.stop()
            collector.stop()
            host.stop()


def test_tap_enrol_revoke_through_the_real_gateway(loop: Loop, browser_page: Any) -> None:
    page, live, shots = browser_page, loop.live, artifacts_dir()
    foreign, _ = watch_requests(page, live)
    log_in(page, live)
    page.wait_for_function("() => document.body.dataset.liveState === 'open'")

    # a real tap appears on the open overview without a reload
    loop.tap(ALICE_UID)
    row = page.wait_for_selector("tbody[data-live-rows=events] tr", timeout=30000)
    assert "鈴木 花子" in row.inner_text() and "サーバー室" in row.inner_text()  # names, not ids
    page.screenshot(path=str(shots / "gateway-live-tap.png"), full_page=True)

    # enrol a new card for a new person by tapping it at the chosen reader
    page.goto(live.base_url + "/people")
    page.fill("#person-new input[name=id]", "bob")
    page.fill("#person-new input[name=name]", "山田 太郎")
    page.click("#person-new button[type=submit]")
    # the door log has seen the gateway's reader (alice's tap): it is offered by its door's name
    page.select_option("#enrol-form select[name=reader]", f"gw1:{READER_IN}")
    page.click("#enrol-form button[type=submit]")
    page.wait_for_selector("#enrol-window")
    loop.tap(NEW_CARD)
    page.wait_for_selector(f"#enrol-candidate[data-uid='{NEW_CARD}']", timeout=30000)
    assert page.inner_text("#enrol-reader") == f"サーバー室（入）— gw1 · {READER_IN}"
    page.click("#enrol-confirm button[type=submit]")
    page.wait_for_selector(f"#cards tr[data-uid='{NEW_CARD}']", timeout=30000)

    # revoke alice's card: the signed policy propagates and the gateway denies her next tap
    page.goto(live.base_url + "/people/alice")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click(f"#cards tr[data-uid='{ALICE_UID}'] button.danger")
    page.wait_for_selector(f"#cards tr[data-uid='{ALICE_UID}'] .badge.denied")
    # wait for the policy that drops her card (not just any newer one: the enrolment above
    # published one too, which the gateway may apply only now); a policy is applied before
    # its policy.applied event is journaled
    loop.collector.wait_for(
        lambda e: e.kind == "policy.applied"
        and loop.gateway.policies.current is not None
        and loop.gateway.policies.current.person_for_card(ALICE_UID) is None, timeout=30)
    mark = loop.collector.mark()
    with live.bus.subscribe(("event",)) as stored:
        loop.tap(ALICE_UID)
        denied = loop.collector.wait_for(
            lambda e: e.kind == "door.access" and loop.collector.arrivals.index(e) >= mark)
        assert (denied.data["granted"], denied.data["reason"]) == (False, "unknown_card")
        while (msg := stored.get(timeout=30)) is not None and msg.data["seq"] < denied.seq:
            pass  # the dashboard stores in seq order: wait until the denial is stored
        assert msg is not None, "the denial was not stored by the dashboard"
    page.goto(live.base_url + "/door-log")
    newest = page.wait_for_selector("main table tbody tr").inner_text()
    assert "未登録カード" in newest and ALICE_UID in newest, newest  # her revoked card, refused
    page.screenshot(path=str(shots / "gateway-door-log.png"), full_page=True)
    assert foreign == [], foreign
