"""Live updates over SSE from a real uvicorn; the stream ends with its session."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select

from controller.envelope import format_ts
from dashboard.i18n import Translator
from dashboard.models.auth import User
from dashboard.web.live import live_item
from tests.dashboard.web.conftest import PASSWORD, LiveDashboard, add_user
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
                            json={"public_key": pending[0]["public_key"],
                                  "roles": ["door_gateway"]},
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


def log_in_as(live: LiveDashboard, username: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=live.base_url, timeout=10, follow_redirects=True)
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    r = client.post("/login", data={"username": username, "password": PASSWORD,
                                    "csrf_token": token.group(1), "next": "/nodes"})
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
    assert r.status_code == 200 and csrf, r.text
    return client, csrf.group(1)


@pytest.mark.parametrize("how", ["logout", "sessions/end", "deactivate", "password-reset"])
def test_the_live_stream_ends_with_its_session(live_dashboard: LiveDashboard, how: str) -> None:
    """Logging out (or an admin logging the user out everywhere, deactivating them or resetting
    their password) ends the user's open live stream within a second, and the old cookie
    opens no new one."""
    live = live_dashboard
    add_user(live.sessionmaker, live.settings, "eve", "security_admin")
    eve, eve_csrf = log_in_as(live, "eve")
    admin, admin_csrf = log_in_as(live, live.username)
    cookie = {"secroom_session": eve.cookies["secroom_session"]}
    before = live.bus.subscribers
    # every read of the stream must get data (or its end) within one second
    stream = httpx.Client(base_url=live.base_url, cookies=cookie,
                          timeout=httpx.Timeout(10, read=1.0))
    with stream.stream("GET", "/live") as r:
        assert r.status_code == 200
        lines = r.iter_lines()
        assert next(lines).startswith("retry:")
        wait_until(lambda: live.bus.subscribers > before, 5, "the stream to subscribe")
        if how == "logout":
            done = eve.post("/logout", headers={"x-csrf-token": eve_csrf})
        else:
            with live.sessionmaker() as db:
                eve_id = db.scalar(select(User.id).where(User.username == "eve"))
            done = admin.post(f"/users/{eve_id}/{how}", data={"csrf_token": admin_csrf})
        assert done.status_code == 200, done.text  # followed to the next page
        rest = list(lines)  # ends: no read waits longer than a second
    assert "event: session_ended" in rest
    assert httpx.get(live.base_url + "/live", cookies=cookie).status_code == 401
    for client in (eve, admin, stream):
        client.close()
