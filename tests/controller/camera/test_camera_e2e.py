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
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from controller.camera.upload import Spool, Uploader
from controller.config import GatewayConfig
from controller.envelope import Event, verify_signature
from controller.gateway import Gateway
from controller.gpio import make_pin_factory
from controller.keys import load_private, public_b64, rotate
from controller.mqtt import MqttSettings
from controller.policy import DoorRule, Group, Person, Policy
from controller.policy_slice import card_key_for
from dashboard import services
from dashboard.camera import web as camera_web
from dashboard.camera.store import StillKey, image_for, purge_expired
from dashboard.demo.dashboard import approve_when_announced, enter_office
from dashboard.models import Anomaly, AuditRecord, DoorAccess, Node, StoredEvent
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
    config: GatewayConfig

    def tap(self, uid: str) -> None:
        VirtualCard(port=self.pcscd.port, uid=bytes.fromhex(uid)).tap(timeout=15)

    def client(self, role: str) -> httpx.Client:
        add_user(self.live.sessionmaker, self.live.settings, f"u_{role}", role)
        c = httpx.Client(base_url=self.live.base_url, timeout=30)
        login(c, f"u_{role}")  # type: ignore[arg-type]
        return c


@pytest.fixture
def site(tmp_path: Path, broker: Broker, motion: MotionCamera) -> Iterator[Site]:
    with running_site(tmp_path, broker, motion) as s:
        yield s


@contextmanager
def running_site(tmp_path: Path, broker: Broker, motion: MotionCamera,
                 upload_url: str | None = None) -> Iterator[Site]:
    """The site; the gateway sends its stills to ``upload_url`` (default: the dashboard)."""
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
            "upload_url": upload_url or live.base_url + "/api/camera/stills", "timeout_s": 10,
            "retry_s": 3600,  # the tests retry the spool themselves
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
        site = Site(live, host, gateway, collector, kit.config.key_file, kit.config)
        approver = threading.Thread(target=approve_when_announced, daemon=True,
                                    args=(live.sessionmaker, "gw1", kit.config.key_file, stop,
                                          ("door_gateway",)))
        approver.start()
        gateway.start()
        try:
            collector.wait_for(lambda e: e.kind == "policy.applied", timeout=30)
            collector.wait_for(lambda e: e.kind == "reader.connected", timeout=15)
            yield site
        finally:
            stop.set()
            site.gateway.stop()  # the one running (a test may restart it)
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


def test_a_still_whose_key_was_revoked_is_set_aside_counted_and_reviewed(
        tmp_path: Path, broker: Broker, motion: MotionCamera) -> None:
    """The dashboard is unreachable when a denied tap's still is taken (spooled, signed by the
    node key A); the node key is rotated to B (``secroom keys rotate`` and a restart), a second
    still is spooled under B, then an admin revokes A. When the dashboard is back, the still of
    A is refused for good (410 key_revoked): the gateway sets it aside in its spool (sealed,
    not deleted), counts it, journals camera.set_aside and never sends it again; the still of
    B uploads. The dashboard shows a review item naming the door, in Japanese and English."""
    dead = f"http://127.0.0.1:{free_port()}/api/camera/stills"  # nothing listens there
    with running_site(tmp_path, broker, motion, upload_url=dead) as site:
        live = site.live
        site.tap(MALLORY_UID)
        access = site.collector.wait_for(lambda e: e.kind == "door.access", timeout=30)
        first = site.collector.wait_for(lambda e: e.kind == "camera.still", timeout=60)
        old_key = load_private(site.key_file)

        def on_dashboard(event: Event) -> bool:
            with live.sessionmaker() as db:
                return db.scalar(select(StoredEvent.id).where(
                    StoredEvent.node == event.node, StoredEvent.seq == event.seq)) is not None

        wait_until(lambda: on_dashboard(first), 30, "the first camera.still stored", step=0.2)
        assert site.gateway.cameras is not None and site.gateway.cameras.wait_idle(30)
        assert site.gateway.cameras.spool.waiting() == [first.id]

        # `secroom keys rotate` and the restart: the journal hands over to the new key
        site.gateway.stop()
        _, new_key = rotate(site.key_file)
        site.gateway = Gateway(site.config, reader=PcscReaders(),
                               pin_factory=make_pin_factory("mock"))
        site.gateway.start()

        def handed_over() -> bool:
            with live.sessionmaker() as db:
                node = db.get(Node, "gw1")
                return node is not None and node.public_key == public_b64(new_key.public_key())

        wait_until(handed_over, 30, "the dashboard to take the new key", step=0.2)
        site.collector.wait_for(lambda e: e.kind == "reader.connected" and e.seq > first.seq,
                                timeout=15)
        site.tap(MALLORY_UID)
        second = site.collector.wait_for(
            lambda e: e.kind == "camera.still" and e.seq > first.seq, timeout=60)
        cams = site.gateway.cameras
        assert cams is not None and cams.wait_idle(30)
        assert sorted(cams.spool.waiting()) == sorted([first.id, second.id])
        wait_until(lambda: on_dashboard(second), 30, "the second camera.still", step=0.2)

        # the old key was on the stolen SD card: an admin revokes it
        with live.sessionmaker.begin() as db:
            services.revoke_key(db, "admin", "gw1", public_b64(old_key.public_key()))
        refused_before = camera_web.UPLOAD_REFUSALS["key_revoked"]

        # the dashboard is reachable again
        assert cams.uploader is not None
        cams.uploader.close()
        cams.uploader = Uploader(live.base_url + "/api/camera/stills", "gw1")
        cams.retry_uploads()
        aside = cams.spool.folder / f"gw1_{first.seq}.revoked"
        assert cams.spool.waiting() == [] and aside.exists()
        health = cams.health()
        assert (health["set_aside"], health["spool_revoked"], health["uploaded"]) == (1, 1, 1)
        assert camera_web.UPLOAD_REFUSALS["key_revoked"] == refused_before + 1
        cams.retry_uploads()  # not sent again
        assert camera_web.UPLOAD_REFUSALS["key_revoked"] == refused_before + 1
        assert cams.health()["set_aside"] == 1 and aside.exists()

        # journaled, and the node's state says so
        journaled = site.collector.wait_for(lambda e: e.kind == "camera.set_aside", timeout=30)
        assert journaled.data == {"still": first.id, "record": access.id, "camera": "door-cam",
                                  "door": DOOR, "reason": "key_revoked"}
        site.gateway.publish_health()

        def state_counts() -> bool:
            with live.sessionmaker() as db:
                node = db.get(Node, "gw1")
                state = (node.health or {}).get("health", {}) if node is not None else {}
                cameras = state.get("cameras", {})
                return cameras.get("spool_revoked") == 1

        wait_until(state_counts, 30, "the node's state to count the still set aside", step=0.2)

        # nothing lost: the still of B is on the dashboard, intact; the one set aside is still
        # sealed under the node's key and opens (an admin who reinstates the key renames it)
        key = StillKey.of(live.settings.camera, live.settings.data_dir)
        with live.sessionmaker() as db:
            assert image_for(db, key, second.id)[0] == "ok"
            assert image_for(db, key, first.id)[1] is None
        kept = tmp_path / "kept"
        kept.mkdir()
        (kept / f"gw1_{first.seq}.still").write_bytes(aside.read_bytes())
        found = Spool(kept, new_key).get(first.id)
        assert found is not None
        assert hashlib.sha256(found.image).hexdigest() == first.data["sha256"]

        # the review items: the gateway's account names the door, in Japanese and English
        with live.sessionmaker() as db:
            wait_until(lambda: db.scalar(select(Anomaly.id).where(
                Anomaly.kind == "camera_still_set_aside")) is not None, 30,
                "the set-aside review item", step=0.2)
            item = db.scalar(select(Anomaly).where(Anomaly.kind == "camera_still_set_aside"))
            assert item is not None and item.detail["still"] == first.id
            assert db.scalar(select(Anomaly.id).where(
                Anomaly.kind == "camera_upload_revoked")) is not None
        sec = site.client("security_admin")
        page = sec.get(f"/review/{item.id}").text
        assert "サーバー室の静止画を送れないため保留しました" in page
        assert "送れない静止画の保留" in page
        sec.get(f"/lang/en?next=/review/{item.id}")
        page = sec.get(f"/review/{item.id}").text
        assert "set aside 1 still(s) of サーバー室" in page
        assert "Still set aside on the gateway" in page
        assert DOOR not in re.sub(r'data-[a-z-]+="[^"]*"|href="[^"]*"', "", page.split(
            "<main", 1)[-1].split("</main>")[0])  # the door by its name, not its id
        sec.close()
