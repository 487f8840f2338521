"""Live updates over SSE from a real uvicorn, and card enrolment by a tap at a reader."""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime

import httpx
import pytest

from controller.envelope import format_ts
from dashboard.i18n import Translator
from dashboard.web.live import live_item
from tests.dashboard.web.conftest import LiveDashboard
from tests.support import wait_until

pytestmark = pytest.mark.integration


def tap(reader: str, uid: str, *, seq: int = 1, granted: bool = False) -> dict[str, object]:
    """A bus message as the ingest publishes it for a stored door.access event."""
    return {
        "node": "gw1", "seq": seq, "kind": "door.access",
        "ts": format_ts(datetime.now(UTC)), "person_id": None, "door": "server-room",
        "data": {"door": "server-room", "direction": "in", "granted": granted,
                 "reason": None if granted else "unknown_card", "card": uid, "reader": reader},
    }


def session(live: LiveDashboard) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=live.base_url, timeout=10, follow_redirects=True)
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    r = client.post("/login", data={"username": live.username, "password": live.password,
                                    "csrf_token": token.group(1)})
    assert r.status_code == 200, r.text  # followed the redirect to the overview
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
    assert csrf
    return client, csrf.group(1)


def test_sse_delivers_a_stored_event_live(live_dashboard: LiveDashboard) -> None:
    client, _ = session(live_dashboard)
    bus = live_dashboard.bus
    before = bus.subscribers
    with client.stream("GET", "/live", headers={"accept": "text/event-stream"}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = r.iter_lines()
        assert next(lines).startswith("retry:")
        wait_until(lambda: bus.subscribers > before, 5, "the stream to subscribe")
        bus.publish("event", tap("door-in", "01020304", seq=7, granted=True))
        for line in lines:
            if line.startswith("data: "):
                item = json.loads(line[6:])
                break
    assert item["id"] == "gw1:7" and item["kind"] == "入退室"  # labelled, never the raw kind
    assert item["granted"] is True and item["result"] == "許可"
    client.close()


def test_sse_refused_without_login(live_dashboard: LiveDashboard) -> None:
    r = httpx.get(live_dashboard.base_url + "/live")
    assert r.status_code == 401


def test_enrol_by_tap_takes_the_next_uid_at_that_reader(live_dashboard: LiveDashboard) -> None:
    client, csrf = session(live_dashboard)
    r = client.post("/api/v1/people", json={"id": "p1", "name": "Taro"},
                    headers={"x-csrf-token": csrf})
    assert r.status_code == 201
    waits = live_dashboard.app.state.enrol_waits
    result: dict[str, httpx.Response] = {}

    def enrol() -> None:
        result["r"] = client.post("/people/p1/cards/enrol",
                                  data={"reader": "door-in", "csrf_token": csrf}, timeout=40)

    worker = threading.Thread(target=enrol)
    worker.start()
    assert waits.wait_for("door-in", 10)
    live_dashboard.bus.publish("event", tap("printer", "AAAAAAAA"))  # another reader: ignored
    live_dashboard.bus.publish("event", tap("door-in", "0A0B0C0D"))
    worker.join(40)
    assert result["r"].status_code == 200, result["r"].text
    cards = client.get("/api/v1/people/p1").json()["cards"]
    assert [(c["uid"], c["active"]) for c in cards] == [("0A0B0C0D", True)]
    audit = client.get("/api/v1/audit").json()["items"]
    assert audit[0]["action"] == "card.enrol" and audit[0]["actor"] == "admin"
    client.close()


def test_live_item_for_a_denied_tap_is_translated() -> None:
    from zoneinfo import ZoneInfo

    msg = tap("door-in", "01")
    msg["ts"] = "2026-11-20T03:00:00.000000Z"
    item = live_item("event", msg, Translator("en", ZoneInfo("Asia/Tokyo")))
    assert item["time_local"] == "Fri 20 Nov 2026 12:00:00"
    assert item["result"] == "Denied · Unknown card" and item["granted"] is False


def test_runtime_ingests_from_mqtt_and_shows_it_live(tmp_path, broker) -> None:  # type: ignore[no-untyped-def]
    """The full dashboard process: a node announces its key, an admin approves it on the
    nodes API, the node's signed tap arrives over MQTT, is stored, and is pushed live."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from controller.envelope import GENESIS, seal
    from controller.keys import public_b64
    from controller.mqtt import MqttLink, MqttSettings
    from tests.dashboard.web.conftest import run_live_dashboard

    mqtt = MqttSettings(host="127.0.0.1", port=broker.port)
    with run_live_dashboard(tmp_path / "rt", mqtt=mqtt) as live:
        client, csrf = session(live)
        key = Ed25519PrivateKey.generate()
        node = MqttLink(mqtt, client_id="test-gw1")
        node.start()
        try:
            assert node.connected.wait(10)
            nodes_sub = live.bus.subscribe(("node",))
            state = json.dumps({"state": "online", "public_key": public_b64(key.public_key())})
            node.publish("secroom/v1/lab/gw1/state", state.encode(), retain=True)
            assert nodes_sub.get(timeout=10) is not None
            nodes_sub.close()
            pending = client.get("/api/v1/nodes").json()
            assert [(n["name"], n["key_status"]) for n in pending] == [("gw1", "pending")]
            r = client.post("/api/v1/nodes/gw1/approve",
                            json={"public_key": pending[0]["public_key"]},
                            headers={"x-csrf-token": csrf})
            assert r.status_code == 200 and r.json()["key_status"] == "approved"

            events = live.bus.subscribe(("event",))
            event = seal(key, node="gw1", site="lab", seq=1, ts=datetime.now(UTC), boot="b1",
                         clock="synced", kind="door.access", prev=GENESIS,
                         data={"door": "server-room", "direction": "in", "granted": True,
                               "card": "01020304", "reader": "door-in", "person_id": "p1"})
            node.publish(event.topic(), event.to_bytes())
            msg = events.get(timeout=10)
            events.close()
            assert msg is not None and msg.data["seq"] == 1
            stored = client.get("/api/v1/events/door").json()["items"]
            assert [(e["node"], e["seq"], e["granted"]) for e in stored] == [("gw1", 1, True)]
            gw = client.get("/api/v1/nodes").json()[0]
            assert gw["contiguous_seq"] == 1 and gw["state"] == "online"
        finally:
            node.stop()
            client.close()
