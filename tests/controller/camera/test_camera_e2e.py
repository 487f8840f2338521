"""Cameras end to end with real parts: a virtual card at a real pcscd, the gateway, Mosquitto,
the dashboard (uvicorn, MQTT ingest), and ffmpeg's test pattern recorded by Motion.

A denied tap produces a still whose SHA-256 is in a signed camera.still event and whose image
the dashboard shows beside the record (door log, review item) to the roles allowed, auditing
each view; a tampered still is shown as failing its check; a camera that fails raises a review
item; retention purges the image and keeps the events."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from controller.envelope import Event, verify_signature
from controller.gateway import Gateway
from controller.gpio import make_pin_factory
from controller.keys import load_private
from controller.mqtt import MqttSettings
from controller.policy import DoorRule, Group, Person, Policy
from controller.policy_slice import card_key_for
from dashboard.camera.store import StillKey, purge_expired
from dashboard.demo.dashboard import approve_when_announced, enter_office
from dashboard.models import Anomaly, AuditRecord, DoorAccess, StoredEvent
from dashboard.models.camera import CameraImage
from readers.pcsc import PcscReaders
from readers.pcscd_host import PcscdHost
from readers.virtual import VirtualCard
from tests.controller.gateway_kit import ALICE_UID, DOOR, MALLORY_UID, EventCollector, make_kit
from tests.dashboard.web.conftest import LiveDashboard, add_user, login, run_live_dashboard
from tests.support import free_port, wait_until
from tests.support.camera import MotionCamera
from tests.support.mosquitto import Broker
from tests.support.pcscd import start_pcscd

pytestmark = pytest.mark.integration


@dataclass
class Site:
    live: LiveDashboard
    pcscd: PcscdHost
    gateway: Gateway
    collector: EventCollector
    key_file: Path

    def tap(self, uid: str) -> None:
        VirtualCard(port=self.pcscd.port, uid=bytes.fromhex(uid)).tap(timeout=15)

    def client(self, role: str) -> httpx.Client:
        add_user(self.live.sessionmaker, self.live.settings, f"u_{role}", role)
        c = httpx.Client(base_url=self.live.base_url, timeout=30)
        login(c, f"u_{role}")  # type: ignore[arg-type]
        return c


@pytest.fixture
def site(tmp_path: Path, broker: Broker, motion: MotionCamera) -> Iterator[Site]:
    host = start_pcscd(tmp_path)
    host.use_in_this_process()
    stop = threading.Event()
    with run_live_dashboard(tmp_path / "dash", mqtt=MqttSettings(port=broker.port)) as live:
        office = Policy(version=1, issued_at=datetime.now(UTC), site=live.settings.site,
                        people=[Person(id="alice", name="鈴木 花子", cards=[ALICE_UID],
                                       groups=["staff"])],
                        groups=[Group(id="staff", name="担当者", doors=[DOOR])],
                        doors=[DoorRule(id=DOOR, name="サーバー室")])
        enter_office(live.sessionmaker, office, datetime.now(UTC))
        assert live.settings.policy_key_file is not None
        trust = live.settings.policy_key_file.with_name(live.settings.policy_key_file.name
                                                        + ".pub")
        cameras = {
            "upload_url": live.base_url + "/api/camera/stills", "timeout_s": 10,
            "camera": [
                {"id": "door-cam", "adapter": "motion", "url": motion.control_url,
                 "snapshot_url": motion.snapshot_url, "username": "secroom",
                 "password_file": str(motion.password_file),
                 "clip_url": "https://nvr.example/clips/{camera}/{start}-{end}.mkv"},
                # nothing listens there: a camera that is down
                {"id": "hall-cam", "adapter": "http",
                 "url": f"http://127.0.0.1:{free_port()}/snapshot.jpg"},
            ],
            "watch": [
                {"target": f"door:{DOOR}", "camera": "door-cam",
                 "events": ["door.access.denied", "door.forced"], "pre_s": 5, "post_s": 1},
                {"target": f"door:{DOOR}", "camera": "hall-cam",
                 "events": ["door.access.denied"]},
            ],
        }
        kit = make_kit(tmp_path / "gw", mqtt_port=broker.port, site=live.settings.site,
                       trust=trust, cameras=cameras)
        card_key = card_key_for(load_private(live.settings.policy_key_file),
                                live.settings.site, "gw1")
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
            yield Site(live, host, gateway, collector, kit.config.key_file)
        finally:
            stop.set()
            gateway.stop()
            collector.stop()
            host.stop()


def _stored(site: Site, still: Event) -> bool:
    with site.live.sessionmaker() as db:
        image = db.scalar(select(CameraImage.id).where(CameraImage.still_id == still.id))
        event = db.scalar(select(StoredEvent.id).where(StoredEvent.node == still.node,
                                                       StoredEvent.seq == still.seq))
        access = db.scalar(select(DoorAccess.id).where(DoorAccess.node == still.node,
                                                       DoorAccess.seq == int(
                                                           still.data["record"].split(":")[1])))
        return None not in (image, event, access)


def _integrity(html: str, still_id: str) -> str | None:
    found = re.search(rf'data-still="{re.escape(still_id)}" data-integrity="(\w+)"', html)
    return found.group(1) if found else None


def test_denied_tap_still_sealed_shown_audited_tamper_and_retention(site: Site) -> None:
    site.tap(MALLORY_UID)
    access = site.collector.wait_for(lambda e: e.kind == "door.access", timeout=30)
    assert access.data["granted"] is False
    still = site.collector.wait_for(lambda e: e.kind == "camera.still", timeout=60)
    assert still.data["record"] == access.id and still.data["camera"] == "door-cam"
    verify_signature(still, load_private(site.key_file).public_key())
    assert still.data["clip"].startswith("https://nvr.example/clips/1/")
    wait_until(lambda: _stored(site, still), 60, "the still and its events on the dashboard",
               step=0.2)
    url = f"/camera/stills/{still.node}/{still.seq}.jpg"

    # a security admin sees the still beside the record, intact, and can open it
    sec = site.client("security_admin")
    log = sec.get("/door-log").text
    assert _integrity(log, still.id) == "ok" and f'src="{url}"' in log
    assert "https://nvr.example/clips/1/" in log  # the link to the NVR's clip
    image = sec.get(url)
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    assert hashlib.sha256(image.content).hexdigest() == still.data["sha256"]
    assert image.content[:3] == b"\xff\xd8\xff" and len(image.content) == still.data["size"]

    # an admin (accounts, nodes) is told a still exists but never gets the image
    admin = site.client("admin")
    assert f'src="{url}"' not in admin.get("/door-log").text
    assert admin.get(url).status_code == 403

    # the camera that is down raised a review item, which shows the record's still
    with site.live.sessionmaker() as db:
        wait_until(lambda: db.scalar(select(func.count()).select_from(Anomaly).where(
            Anomaly.kind == "camera_failed")) == 1, 30, "the camera_failed item", step=0.2)
        item = db.scalar(select(Anomaly).where(Anomaly.kind == "camera_failed"))
        assert item is not None and item.detail["record"] == access.id
    page = sec.get(f"/review/{item.id}").text
    assert "hall-cam" in page and _integrity(page, still.id) == "ok"

    # someone swaps the stored image (even with the storage key): the check fails
    key = StillKey.of(site.live.settings.camera, site.live.settings.data_dir)
    with site.live.sessionmaker.begin() as db:
        row = db.scalar(select(CameraImage).where(CameraImage.still_id == still.id))
        assert row is not None and row.ciphertext is not None
        assert image.content[:64] not in row.ciphertext  # encrypted at rest
        original = (row.nonce, row.ciphertext)
        row.nonce, row.ciphertext = key.seal(still.id, image.content[:-1] + b"\x00")
    assert _integrity(sec.get("/door-log").text, still.id) == "failing"
    assert sec.get(url).status_code == 409
    with site.live.sessionmaker.begin() as db:  # or flips a byte of the sealed file
        row = db.scalar(select(CameraImage).where(CameraImage.still_id == still.id))
        assert row is not None and original[1] is not None
        row.nonce, row.ciphertext = original[0], original[1][:-1] + bytes([original[1][-1] ^ 1])
    assert _integrity(sec.get("/door-log").text, still.id) == "failing"

    # every view of a still was audited, the refused ones too
    with site.live.sessionmaker() as db:
        views = db.scalars(select(AuditRecord).where(
            AuditRecord.action == "camera.still_view")).all()
        assert [(v.actor, v.target_id) for v in views] == [("u_security_admin", still.id)] * 2
        assert [v.after["integrity"] for v in views] == ["ok", "failing"]

    # retention: the image goes, the events stay
    with site.live.sessionmaker.begin() as db:
        assert purge_expired(db, now=datetime.now(UTC) + timedelta(days=91),
                             retention_days=90) == 1
    with site.live.sessionmaker() as db:
        row = db.scalar(select(CameraImage).where(CameraImage.still_id == still.id))
        assert row is not None and row.ciphertext is None and row.purged_at is not None
        kinds = set(db.scalars(select(StoredEvent.kind).where(StoredEvent.seq.in_(
            [access.seq, still.seq]))))
        assert kinds == {"door.access", "camera.still"}
    assert _integrity(sec.get("/door-log").text, still.id) == "purged"
    assert sec.get(url).status_code == 404
    sec.close()
    admin.close()
