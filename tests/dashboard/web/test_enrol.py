"""Enrolment by a tap takes a card only from the reader the editor chose (node and reader name),
only inside the window they opened, and binds it only once they have seen who and where and
confirmed; everything else the ingest stores meanwhile is ignored and counted."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from controller.envelope import format_ts
from dashboard import services
from dashboard.app import create_app
from dashboard.bus import Bus
from dashboard.enrolment import CONFIRM_S, WINDOW_S, EnrolWindow, ReaderRef, Tap, judge
from dashboard.i18n import catalogue
from dashboard.models import AuditRecord, Card, DoorAccess
from tests.dashboard.web.conftest import WebApp

GW, USB = "gw1", "pc-01"  # the door gateway, and a USB agent host that also sends door.access


@pytest.fixture
def room(webapp: WebApp) -> Iterator[tuple[WebApp, Bus]]:
    """The web app over a real bus, a door, a person, and the readers the door log has seen."""
    bus = Bus()
    app = create_app(webapp.settings, sessionmaker=webapp.sm, bus=bus, clock=webapp.clock)
    w = WebApp(webapp.settings, webapp.sm, app, webapp.clock)
    now = webapp.clock()
    with webapp.sm.begin() as db:
        services.create_door(db, "seed", {"id": "server-room", "name": "サーバー室"}, now=now)
        services.create_person(db, "seed", {"id": "p1", "name": "山田 太郎"}, now=now)
        services.create_person(db, "seed", {"id": "p2", "name": "佐藤 花子"}, now=now)
        for seq, (node, reader, direction) in enumerate(
            [(GW, "door-in", "in"), (GW, "door-out", "out"), (USB, "door-in", "in")], 1
        ):
            db.add(DoorAccess(node=node, seq=seq, ts=now - timedelta(hours=1),
                              door="server-room", direction=direction, granted=False,
                              reason="unknown_card", uid="FFFF0000", reader=reader))
    yield w, bus
    for c in w.clients.values():
        c.close()


def tap(node: str, reader: str, uid: str, seq: int, at: datetime) -> dict[str, Any]:
    """The bus message the ingest publishes for a stored door.access event."""
    return {"node": node, "seq": seq, "kind": "door.access", "ts": format_ts(at),
            "person_id": None, "door": "server-room",
            "data": {"door": "server-room", "direction": "in", "granted": False,
                     "reason": "unknown_card", "card": uid, "reader": reader}}


def open_window(client: Any, csrf: str, reader: str, person: str = "p1") -> Any:
    return client.post(f"/people/{person}/enrol/open",
                       data={"reader": reader, "label": "社員証", "csrf_token": csrf},
                       follow_redirects=False)


def cards(w: WebApp, person: str = "p1") -> list[str]:
    with w.sm() as db:
        return list(db.scalars(select(Card.uid).where(Card.person_id == person)))


def audit(w: WebApp) -> list[AuditRecord]:
    with w.sm() as db:
        return list(db.scalars(select(AuditRecord).where(AuditRecord.actor != "seed")
                               .order_by(AuditRecord.seq)))


def test_only_the_chosen_reader_inside_the_window_and_only_once_confirmed(
    room: tuple[WebApp, Bus],
) -> None:
    w, bus = room
    client, csrf = w.as_role("security_admin")
    page = client.get("/people/p1").text
    options = dict(re.findall(r'<option value="([^"]+)">([^<]+)</option>', page))
    assert options == {
        "gw1:door-in": "サーバー室（入）— gw1 · door-in",
        "gw1:door-out": "サーバー室（出）— gw1 · door-out",
        "pc-01:door-in": "サーバー室（入）— pc-01 · door-in",
    }
    assert open_window(client, csrf, "gw1:door-in").status_code == 303
    page = client.get("/people/p1").text
    assert 'id="enrol-window"' in page and f'data-seconds-left="{WINDOW_S}"' in page
    assert "サーバー室（入）— gw1 · door-in" in page

    now = w.clock()
    bus.publish("event", tap(USB, "door-in", "0BAD0001", 1, now))  # the USB agent: same name
    bus.publish("event", tap(GW, "door-out", "0BAD0002", 2, now))  # the other reader
    bus.publish("event", tap(GW, "door-in", "0BAD0003", 3, now - timedelta(minutes=10)))  # old
    status = client.get("/people/p1/enrol").json()
    assert (status["state"], status["ignored"]) == ("open", 3)
    assert cards(w) == []

    w.clock.advance(5)
    bus.publish("event", tap(GW, "door-in", "0A0B0C0D", 4, w.clock()))
    bus.publish("event", tap(GW, "door-in", "0BAD0004", 5, w.clock()))  # a second card: late
    assert client.get("/people/p1/enrol").json()["state"] == "captured"
    assert cards(w) == []  # nothing is bound before the editor confirms
    page = client.get("/people/p1").text
    shown = re.search(r'<div id="enrol-candidate".*?</div>', page, re.S)
    assert shown, page
    box = shown.group(0)
    assert "0A0B0C0D" in box and "0BAD0004" not in box
    assert "サーバー室（入）— gw1 · door-in" in box
    at_local = w.clock().astimezone(w.settings.zone)
    assert f"{at_local.month}月{at_local.day}日" in box and at_local.strftime("%H:%M") in box
    for reason in ("other_node", "other_reader", "outside_window", "after_capture"):
        assert f'data-reason="{reason}"' in box, reason
    window_id = re.search(r'name="window" value="([0-9a-f]+)"', box)
    assert window_id

    form = {"window": window_id.group(1), "csrf_token": csrf}
    r = client.post("/people/p1/enrol/confirm", data={**form, "uid": "0BAD0004"})
    assert r.status_code == 409 and cards(w) == []
    r = client.post("/people/p1/enrol/confirm", data={**form, "uid": "0A0B0C0D"},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    assert cards(w) == ["0A0B0C0D"]
    assert catalogue("ja")["people.card_bound"] in client.get(r.headers["location"]).text
    trail = audit(w)
    assert [a.action for a in trail] == ["card.enrol_open", "card.enrol"]
    assert trail[0].after["node"] == GW and trail[0].after["reader"] == "door-in"
    presented = trail[1].after["presented"]
    assert (presented["node"], presented["reader"], presented["seq"]) == (GW, "door-in", 4)
    assert presented["ignored"] == {"other_node": 1, "other_reader": 1, "outside_window": 1,
                                    "after_capture": 1}
    assert trail[1].after["label"] == "社員証"
    assert client.get("/people/p1/enrol").status_code == 404  # the window is gone


def test_a_tap_after_the_window_is_ignored_and_counted(room: tuple[WebApp, Bus]) -> None:
    w, bus = room
    client, csrf = w.as_role("admin")
    assert open_window(client, csrf, "gw1:door-in").status_code == 303
    w.clock.advance(WINDOW_S)
    bus.publish("event", tap(GW, "door-in", "0A0B0C0D", 7, w.clock()))
    status = client.get("/people/p1/enrol").json()
    assert (status["state"], status["seconds_left"], status["ignored"]) == ("expired", 0, 1)
    page = client.get("/people/p1").text
    assert 'id="enrol-expired"' in page and 'data-reason="outside_window"' in page
    assert 'id="enrol-candidate"' not in page and cards(w) == []


def test_stop_closes_the_window_and_is_audited(room: tuple[WebApp, Bus]) -> None:
    w, bus = room
    client, csrf = w.as_role("admin")
    assert open_window(client, csrf, "gw1:door-in").status_code == 303
    bus.publish("event", tap(USB, "door-in", "0BAD0001", 1, w.clock()))
    r = client.post("/people/p1/enrol/close", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    bus.publish("event", tap(GW, "door-in", "0A0B0C0D", 8, w.clock()))
    assert client.get("/people/p1/enrol").status_code == 404
    assert cards(w) == []
    closed = audit(w)[-1]
    assert closed.action == "card.enrol_close"
    assert closed.after["ignored"] == {"other_node": 1} and closed.after["candidate"] is None


def test_a_candidate_not_confirmed_in_time_is_not_bound(room: tuple[WebApp, Bus]) -> None:
    w, bus = room
    client, csrf = w.as_role("admin")
    assert open_window(client, csrf, "gw1:door-in").status_code == 303
    window_id = client.get("/people/p1/enrol").json()["id"]
    bus.publish("event", tap(GW, "door-in", "0A0B0C0D", 9, w.clock()))
    w.clock.advance(CONFIRM_S)
    r = client.post("/people/p1/enrol/confirm",
                    data={"window": window_id, "uid": "0A0B0C0D", "csrf_token": csrf})
    assert r.status_code == 409 and cards(w) == []


def test_one_editor_at_a_reader_and_only_readers_seen(room: tuple[WebApp, Bus]) -> None:
    w, _ = room
    admin, csrf = w.as_role("admin")
    other, csrf2 = w.as_role("security_admin")
    assert open_window(admin, csrf, "gw1:door-in").status_code == 303
    r = open_window(other, csrf2, "gw1:door-in", person="p2")
    assert r.status_code == 409 and "u_admin" in r.text
    assert open_window(other, csrf2, "gw1:door-out", person="p2").status_code == 303
    for bogus in ("gw9:door-in", "door-in", "gw1:"):
        assert open_window(other, csrf2, bogus, person="p2").status_code in (409, 422), bogus


def test_judge_takes_node_reader_and_both_clocks_into_account() -> None:
    t0 = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    window = EnrolWindow("p1", ReaderRef(GW, "door-in"), "u", t0, t0 + timedelta(seconds=30))

    def at(node: str, reader: str, ts: datetime) -> Tap:
        return Tap(node, 1, reader, "0A0B0C0D", ts)

    inside = t0 + timedelta(seconds=10)
    assert judge(window, at(GW, "door-in", inside), inside) == "match"
    assert judge(window, at(USB, "door-in", inside), inside) == "other_node"
    assert judge(window, at(GW, "door-out", inside), inside) == "other_reader"
    assert judge(window, at(GW, "door-in", inside), t0 - timedelta(seconds=1)) == "outside_window"
    assert judge(window, at(GW, "door-in", inside), t0 + timedelta(seconds=30)) == "outside_window"
    # the node's clock may be off by up to two minutes; an older event is a resend
    assert judge(window, at(GW, "door-in", t0 - timedelta(seconds=100)), inside) == "match"
    assert judge(window, at(GW, "door-in", t0 - timedelta(seconds=121)), inside) == (
        "outside_window")


def test_readers_are_offered_by_name_in_english_too(room: tuple[WebApp, Bus]) -> None:
    w, _ = room
    client, _ = w.as_role("admin")
    client.get("/lang/en")
    page = client.get("/people/p1").text
    assert '<option value="gw1:door-out">サーバー室 (out) — gw1 · door-out</option>' in page
    assert "Start waiting for a card" in page


def test_a_card_that_proves_its_key_at_the_tap_is_enrolled_verified(
    room: tuple[WebApp, Bus],
) -> None:
    """The window's tap carries the card's credential: a DESFire card that proved a secroom key
    is bound as verified (it must prove it at every reader from then on); a UID-only one as
    weak, and a failed check is never taken as verified."""
    w, bus = room
    client, csrf = w.as_role("security_admin")
    for seq, (uid, cred, kind, want) in enumerate(
            [("04A1B2C3D4E5F6", "verified", "desfire", "desfire"),
             ("0A0B0C0E", "weak", "uid", "uid"),
             ("04A1B2C3D4E5F7", "failed", "desfire", "uid")], start=10):
        assert open_window(client, csrf, "gw1:door-in").status_code == 303
        w.clock.advance(1)
        event = tap(GW, "door-in", uid, seq, w.clock())
        event["data"].update(credential=cred, card_type=kind,
                             credential_key="ck-1" if cred == "verified" else None)
        bus.publish("event", event)
        window = re.search(r'name="window" value="([0-9a-f]+)"', client.get("/people/p1").text)
        assert window, uid
        r = client.post("/people/p1/enrol/confirm", follow_redirects=False,
                        data={"window": window.group(1), "uid": uid, "csrf_token": csrf})
        assert r.status_code == 303, r.text
        with w.sm() as db:
            card = db.get(Card, uid)
            assert card is not None and card.credential == want, uid
            assert card.key_id == ("ck-1" if want != "uid" else None)
    page = client.get("/people/p1").text
    rows = dict(re.findall(r'<tr data-uid="([0-9A-F]+)">(.*?)</tr>', page, re.S))
    assert "検証済み" in rows["04A1B2C3D4E5F6"] and "弱い" in rows["0A0B0C0E"]
    assert "弱い" in rows["04A1B2C3D4E5F7"]
