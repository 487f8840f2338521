"""Chromium (Debian's) on the real dashboard with its MQTT ingest: a gateway's denied tap and its
camera still, as a node sends them (signed events over Mosquitto, the image by the node-signed
upload). A security admin watches the row arrive live and its camera cell go from waiting for
the image to intact without a reload (the overview's live feed and the door log), then sees the
still beside the tap in the door log and on the review item's page, intact; an admin is told a
still exists but never gets the image; every image shown was an audited view."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from controller.camera.events import CameraFailed, CameraStill
from controller.camera.upload import HEADER_NODE, HEADER_SIG, HEADER_STILL, sign_upload
from controller.envelope import Event, canonical_json, topic_for
from controller.mqtt import MqttLink, MqttSettings
from dashboard import services
from dashboard.i18n import catalogue
from dashboard.models import Anomaly, AuditRecord, Node, StoredEvent
from tests.dashboard.conftest import FakeNode
from tests.dashboard.web.conftest import (
    PASSWORD,
    LiveDashboard,
    add_user,
    artifacts_dir,
    chromium,
    run_live_dashboard,
)
from tests.support import require_binary, wait_until
from tests.support.mosquitto import Broker

pytestmark = pytest.mark.integration
JA = catalogue("ja")


def camera_jpeg(root: Path) -> bytes:
    """A real JPEG still: one frame of ffmpeg's test pattern (what the test cameras film)."""
    out = root / "still.jpg"
    subprocess.run([require_binary("ffmpeg"), "-hide_banner", "-loglevel", "error", "-f",
                    "lavfi", "-i", "testsrc2=size=320x240", "-frames:v", "1", "-q:v", "5",
                    str(out)], check=True, timeout=60)
    return out.read_bytes()


@dataclass
class Gateway:
    """A door gateway as the dashboard sees it: signed events over MQTT, stills uploaded."""

    live: LiveDashboard
    node: FakeNode
    link: MqttLink
    jpeg: bytes

    def send(self, kind: str, data: Any) -> Event:
        event = self.node.event(kind, data, ts=datetime.now(UTC))
        self.link.publish(event.topic(), event.to_bytes())
        return event

    def denied_tap(self) -> Event:
        return self.send("door.access", {
            "door": "server-room", "reader": "door-in", "direction": "in", "granted": False,
            "reason": "unknown_card", "card": "0A0B0C0D"})

    def still_of(self, record: Event) -> Event:
        return self.send("camera.still", CameraStill(
            camera="door-cam", target="door:server-room", record=record.id,
            record_kind="door.access", door="server-room",
            sha256=hashlib.sha256(self.jpeg).hexdigest(), size=len(self.jpeg)))

    def upload(self, still: Event) -> None:
        r = httpx.post(self.live.base_url + "/api/camera/stills", content=self.jpeg, timeout=30,
                       headers={HEADER_NODE: "gw1", HEADER_STILL: still.id,
                                HEADER_SIG: sign_upload(self.node.key, "gw1", still.id,
                                                        self.jpeg),
                                "Content-Type": "image/jpeg"})
        assert r.status_code == 201, r.text


@pytest.fixture
def gateway(tmp_path: Path, broker: Broker) -> Iterator[Gateway]:
    mqtt = MqttSettings(host="127.0.0.1", port=broker.port)
    with run_live_dashboard(tmp_path / "dash", mqtt=mqtt) as live:
        add_user(live.sessionmaker, live.settings, "sec", "security_admin")
        node = FakeNode("gw1", site=live.settings.site)
        link = MqttLink(mqtt, client_id="test-gw1")
        link.start()
        try:
            assert link.connected.wait(10)
            link.publish(topic_for(live.settings.site, "gw1", "state"), canonical_json(
                {"state": "online", "public_key": node.public}), retain=True)

            def announced() -> bool:
                with live.sessionmaker() as db:
                    return db.get(Node, "gw1") is not None

            wait_until(announced, 15, "gw1 to announce its key", step=0.1)
            with live.sessionmaker.begin() as db:  # as an admin does on the nodes page
                services.approve_node(db, "admin", "gw1", roles=["door_gateway"],
                                      public_key=node.public)
            yield Gateway(live, node, link, camera_jpeg(tmp_path))
        finally:
            link.stop()


def log_in(page: Any, live: LiveDashboard, username: str) -> None:
    page.goto(live.base_url + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD if username != live.username else live.password)
    page.click("#login-form button[type=submit]")
    page.wait_for_load_state("load")
    assert "/login" not in page.url


def shown_image(page: Any, selector: str) -> Any:
    """The still's <img> under ``selector`` once the browser has loaded and decoded it."""
    img = page.wait_for_selector(selector + " img")
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=img)
    return img


def watch_live_cell(page: Any, gw: Gateway, cell: str) -> tuple[Event, Event]:
    """A tap and its still arrive while ``page`` is open: its camera cell (``cell`` formats the
    record's id into a selector) goes waiting -> intact with the image, with no reload."""
    page.evaluate("() => { window.__noReload = 1 }")
    record = gw.denied_tap()
    page.wait_for_selector(cell.format(record.id), state="attached")  # empty: no still yet
    still = gw.still_of(record)
    waiting = page.wait_for_selector(cell.format(record.id) + " figure[data-integrity=waiting]")
    assert JA["camera.integrity.waiting"] in waiting.inner_text()
    gw.upload(still)
    shown_image(page, cell.format(record.id) + " figure[data-integrity=ok]")
    ok = page.inner_text(cell.format(record.id) + " figure[data-integrity=ok] figcaption")
    assert JA["camera.integrity.ok"] in ok
    assert page.evaluate("() => window.__noReload") == 1
    return record, still


def test_a_security_admin_sees_the_still_live_in_the_door_log_and_review_an_admin_does_not(
        gateway: Gateway) -> None:
    gw, live = gateway, gateway.live
    shots = artifacts_dir()
    with chromium("ja-JP") as page:
        log_in(page, live, "sec")
        page.goto(live.base_url + "/")  # a security admin lands on the review queue
        page.wait_for_selector("#live-events")
        page.wait_for_function("() => document.body.dataset.liveState === 'open'")
        # the overview's live feed: the row is pushed, then its camera cell updates in place
        first, first_still = watch_live_cell(
            page, gw, "tbody[data-live-rows=events] td[data-camera-for='{}']")
        page.screenshot(path=str(shots / "camera-overview-live.png"), full_page=True)

        # the door log, open while a second tap comes in: the same, in its own rows
        page.goto(live.base_url + "/door-log")
        page.wait_for_function("() => document.body.dataset.liveState === 'open'")
        second, second_still = watch_live_cell(
            page, gw, "#door-log tr[data-event='{}'] td[data-camera-for]")
        # both taps, each with its still beside it, intact
        for record in (first, second):
            row = f"#door-log tr[data-event='{record.id}']"
            assert "denied" in (page.get_attribute(row, "class") or "")
            shown_image(page, row + " figure[data-integrity=ok]")
        page.screenshot(path=str(shots / "camera-door-log.png"), full_page=True)

        # the hall camera gave nothing for the first tap: a review item, with the still
        gw.send("camera.failed", CameraFailed(
            camera="hall-cam", target="door:server-room", record=first.id,
            record_kind="door.access", door="server-room", reason="timeout",
            detail="no answer in 3.0s"))

        def item() -> int | None:
            with live.sessionmaker() as db:
                return db.scalar(select(Anomaly.id).where(Anomaly.kind == "camera_failed"))

        wait_until(lambda: item() is not None, 30, "the camera_failed review item", step=0.1)
        page.goto(f"{live.base_url}/review/{item()}")
        img = shown_image(page, "#camera-stills figure[data-integrity=ok]")
        assert JA["camera.integrity.ok"] in page.inner_text("#camera-stills")
        assert img.get_attribute("src") == f"/camera/stills/gw1/{first_still.seq}.jpg"
        page.screenshot(path=str(shots / "camera-review-item.png"), full_page=True)

    with chromium("ja-JP") as page:
        log_in(page, live, live.username)  # an admin: accounts and nodes, not incidents
        page.goto(live.base_url + "/door-log")
        for record in (first, second):
            fig = f"#door-log tr[data-event='{record.id}'] figure[data-integrity=ok]"
            assert JA["camera.restricted"] in page.inner_text(fig)
            assert page.query_selector(fig + " img") is None
        page.goto(f"{live.base_url}/review/{item()}")
        assert page.query_selector("#camera-stills figure[data-integrity=ok]") is not None
        assert page.query_selector("#camera-stills img") is None
        refused = page.goto(f"{live.base_url}/camera/stills/gw1/{first_still.seq}.jpg")
        assert refused is not None and refused.status == 403

    with live.sessionmaker() as db:
        views = db.scalars(select(AuditRecord).where(
            AuditRecord.action == "camera.still_view")).all()
    assert views and {v.actor for v in views} == {"sec"}
    assert {v.after["integrity"] for v in views} == {"ok"}
    assert {v.target_id for v in views} == {first_still.id, second_still.id}


def still_views(live: LiveDashboard, still: Event) -> list[str]:
    """The actors of the audited views of ``still``, oldest first."""
    with live.sessionmaker() as db:
        return list(db.scalars(select(AuditRecord.actor).where(
            AuditRecord.action == "camera.still_view", AuditRecord.target_id == still.id)
            .order_by(AuditRecord.seq)))


def test_reloading_the_door_log_is_one_audited_view_another_users_is_another(
        gateway: Gateway) -> None:
    """The browser keeps the still (private) and asks again with its ETag on each reload: 304,
    no body, and no second row for the same session; an auditor's view is its own row."""
    gw, live = gateway, gateway.live
    record = gw.denied_tap()
    still = gw.still_of(record)
    gw.upload(still)

    def stored() -> bool:
        with live.sessionmaker() as db:
            return db.scalar(select(StoredEvent.id).where(StoredEvent.node == "gw1",
                                                          StoredEvent.seq == still.seq)) is not None

    wait_until(stored, 30, "the still's event on the dashboard", step=0.1)
    url = f"/camera/stills/gw1/{still.seq}.jpg"
    fig = f"#door-log tr[data-event='{record.id}'] figure[data-integrity=ok]"
    with chromium("ja-JP") as page:
        statuses: list[int] = []
        page.on("response", lambda r: statuses.append(r.status) if r.url.endswith(url) else None)
        log_in(page, live, "sec")
        page.goto(live.base_url + "/door-log")
        shown_image(page, fig)
        assert still_views(live, still) == ["sec"]
        for _ in range(2):
            page.reload()
            shown_image(page, fig)
        assert still_views(live, still) == ["sec"]  # three loads, one view
        assert statuses == [200, 304, 304]  # the browser's copy, re-validated each time
    add_user(live.sessionmaker, live.settings, "aud", "auditor")
    with chromium("ja-JP") as page:
        log_in(page, live, "aud")
        page.goto(live.base_url + "/door-log")
        shown_image(page, fig)
        page.reload()
        shown_image(page, fig)
    assert still_views(live, still) == ["sec", "aud"]
