"""Media pages and API through the real app: role checks on every route, the whole lifecycle by
forms (check-out approved by a second person with their password), the JSON API with a token,
the ledger CSV and the USB events page."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from dashboard.auth.roles import PUBLIC_ROUTES, ROLE_MATRIX, Role
from dashboard.media.web import router
from dashboard.models.events import StoredEvent
from dashboard.models.media import Medium, MediumRecord
from tests.dashboard.media.conftest import NOW, medium_data, register_form
from tests.dashboard.web.conftest import PASSWORD, WebApp, login

MEDIA_ROLES = {r.name: ROLE_MATRIX[r.name] for r in router.routes}  # type: ignore[attr-defined]


def checkout_form(w: WebApp, cn: str, approver: str, password: str = PASSWORD,
                  as_role: str = "admin") -> Any:
    c, csrf = w.as_role(as_role)
    return c.post(f"/media/{cn}/check-out", data={
        "csrf_token": csrf, "holder": "p2", "purpose": "給与計算データの受け渡し",
        "due_back": "2026-11-21T18:00", "approver": approver,
        "approver_password": password}, follow_redirects=False)


def test_every_media_route_is_in_the_role_column_and_none_is_public() -> None:
    names = {r.name for r in router.routes}  # type: ignore[attr-defined]
    assert names == set(MEDIA_ROLES)
    assert not names & PUBLIC_ROUTES
    for name, allowed in MEDIA_ROLES.items():
        assert Role.backup_operator not in allowed, name
        assert Role.auditor in allowed or name.split(".")[-1] not in (
            "page", "csv", "detail", "list", "get", "person"), name


def _concrete(path: str) -> str:
    return path.replace("{cn}", "USB-0001").replace("{person_id}", "p1")


def test_roles_on_every_route(media_app: WebApp) -> None:
    register_form(media_app)
    clients = {role.value: media_app.as_role(role.value) for role in Role}
    anonymous = media_app.client()
    for route in router.routes:
        path, name = _concrete(route.path), route.name  # type: ignore[attr-defined]
        method = sorted(route.methods)[0]  # type: ignore[attr-defined]
        r = anonymous.request(method, path, follow_redirects=False)
        assert r.status_code in (401, 303), (name, r.status_code)
        for role, (c, csrf) in clients.items():
            kwargs: dict[str, Any] = {"headers": {"X-CSRF-Token": csrf}}
            if path.startswith("/api/") and method == "POST":
                kwargs["json"] = {}
            r = c.request(method, path, follow_redirects=False, **kwargs)
            if role in MEDIA_ROLES[name]:
                assert r.status_code not in (401, 403), (name, role, r.status_code, r.text)
                assert r.status_code < 500, (name, role, r.status_code, r.text)
                unknown = re.sub(r"{[^}]+}", "1", route.path)  # type: ignore[attr-defined]
                r = c.request(method, unknown, follow_redirects=False, **kwargs)
                assert r.status_code < 500, (name, role, unknown, r.status_code)
            else:
                assert r.status_code == 403, (name, role, r.status_code)


def test_lifecycle_by_forms_with_second_person_approval(media_app: WebApp) -> None:
    w = media_app
    w.as_role("security_admin")  # the second person, user u_security_admin
    cn = register_form(w)
    c, _ = w.as_role("admin")
    page = c.get(f"/media/{cn}").text
    assert "保管中" in page and 'id="checkout-form"' in page

    r = checkout_form(w, cn, "u_admin")  # the requester approving themselves
    assert r.status_code == 400 and "second person" in r.text
    r = checkout_form(w, cn, "u_security_admin", "wrong password")
    assert r.status_code == 400 and "password is wrong" in r.text
    r = checkout_form(w, cn, "u_auditor") if w.as_role("auditor") else None
    assert r is not None and r.status_code == 400 and "may not approve" in r.text
    with w.sm() as db:
        assert db.get(Medium, cn).state == "in_storage"

    r = checkout_form(w, cn, "u_security_admin")
    assert r.status_code == 303
    page = c.get(f"/media/{cn}").text
    assert "持出し中" in page and "u_admin / u_security_admin" in page
    person = c.get("/people/p2/media").text
    assert cn in person and "給与計算データの受け渡し" in person

    w.clock.advance(2 * 86400)  # past due back (and past the session's lifetime)
    w.csrf["admin"] = login(c, "u_admin")
    ledger = c.get("/media").text
    assert re.search(rf'data-medium="{cn}" class="denied"', ledger)
    assert "返却期限超過" in ledger
    _, csrf = w.as_role("admin")
    for action, data in (
        ("return", {"note": "返却確認"}),
        ("wipe", {"method": "Purge", "technique": "暗号消去", "tool": "nwipe 0.34",
                  "verifier": "山田 検証", "verification": "全領域の読み出し確認"}),
        ("dispose", {"method": "Destroy", "certificate_number": "DC-2026-001",
                     "destination": "destroyed", "verifier": "山田 検証"}),
    ):
        r = c.post(f"/media/{cn}/{action}", data={"csrf_token": csrf, **data},
                   follow_redirects=False)
        assert r.status_code == 303, (action, r.text)
    r = c.post(f"/media/{cn}/store", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 400 and "disposed" in r.text
    with w.sm() as db:
        actions = db.scalars(select(MediumRecord.action).where(
            MediumRecord.control_number == cn).order_by(MediumRecord.id)).all()
    assert actions == ["register", "store", "check_out", "return", "wipe", "dispose"]
    audit = c.get("/audit").text
    assert "媒体の持出し" in audit and "媒体の廃棄" in audit  # labelled, not medium.check_out


def test_ledger_csv_export(media_app: WebApp) -> None:
    cn = register_form(media_app, make="=cmd|' /C calc'!A0")
    c, _ = media_app.as_role("auditor")
    r = c.get("/media.csv?state=in_storage")
    assert r.status_code == 200 and r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0][0] == "管理番号" and len(rows) == 2
    assert rows[1][0] == cn and rows[1][1] == "保管中"
    assert "'=cmd|' /C calc'!A0" in rows[1]  # a formula is neutralised
    assert len(list(csv.reader(io.StringIO(
        c.get("/media.csv?state=lost").content.decode("utf-8-sig"))))) == 1
    assert c.get("/media?state=bogus").status_code == 422
    rules = c.get("/media/usbguard-rules.conf?host=pc-01").text
    assert f'label "{cn}"' in rules and rules.rstrip().endswith("block")


def test_api_flow_with_a_token(media_app: WebApp) -> None:
    w = media_app
    w.as_role("security_admin")
    token = w.token("admin", {"read", "write"})
    reader = w.token("auditor", {"read"})
    auth = {"Authorization": f"Bearer {token}"}
    c = w.client()
    body = {k: v for k, v in medium_data().items()}
    r = c.post("/api/v1/media", json=body, headers=auth)
    assert r.status_code == 201, r.text
    cn = r.json()["control_number"]
    assert r.json()["state"] == "in_storage"
    assert [x["action"] for x in r.json()["records"]] == ["register", "store"]
    out = {"holder": "p3", "purpose": "税務署への提出", "due_back": "2026-11-22T09:00:00+09:00",
           "approved_by": "u_admin", "approver_password": PASSWORD}
    r = c.post(f"/api/v1/media/{cn}/check-out", json=out, headers=auth)
    assert r.status_code == 400 and "second person" in r.json()["detail"]
    r = c.post(f"/api/v1/media/{cn}/check-out", json={**out, "approved_by": "u_security_admin"},
               headers=auth)
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["approved_by"]) == ("checked_out", "u_security_admin")
    r = c.post(f"/api/v1/media/{cn}/wipe", json={"method": "Clear", "technique": "overwrite",
               "tool": "t", "verifier": "v", "verification": "ok"}, headers=auth)
    assert r.status_code == 400 and "checked_out: cannot wipe" in r.json()["detail"]
    r = c.post(f"/api/v1/media/{cn}/return", json={"note": ""}, headers=auth)
    assert r.status_code == 200 and r.json()["state"] == "returned"
    r = c.post(f"/api/v1/media/{cn}/return", json={"extra": 1}, headers=auth)
    assert r.status_code == 422
    ro = {"Authorization": f"Bearer {reader}"}
    assert c.get(f"/api/v1/media/{cn}", headers=ro).json()["holder"] == "p3"
    assert c.post(f"/api/v1/media/{cn}/store", headers=ro).status_code == 403
    assert [m["control_number"] for m in c.get("/api/v1/media?state=returned",
                                               headers=ro).json()] == [cn]
    assert c.get("/api/v1/media/USB-9999", headers=ro).status_code == 404


def _usb_event(seq: int, kind: str, data: dict[str, Any]) -> StoredEvent:
    return StoredEvent(node="pc-01", seq=seq, kind=kind, ts=NOW + timedelta(minutes=seq),
                       received_at=NOW, boot="b", clock="synced", data=data, prev="0" * 64,
                       hash=f"{seq:064x}", sig="s" * 86)


@pytest.fixture
def usb_events(media_app: WebApp) -> None:
    with media_app.sm.begin() as db:
        db.add(_usb_event(1, "usb.inserted", {
            "verdict": "allow", "phase": "token_check", "rule": "medium", "host": "pc-01",
            "device": "1-2", "control_number": "USB-0001", "vendor_id": "0781",
            "product_id": "5581", "interfaces": ["08:06:50"], "serial_masked": "****AB12"}))
        db.add(_usb_event(2, "usb.inserted", {
            "verdict": "block", "phase": "insert", "rule": "default", "host": "pc-02",
            "device": "1-3", "control_number": None, "vendor_id": "abcd",
            "product_id": "1234", "interfaces": ["08:06:50"], "reason": "not registered"}))
        db.add(_usb_event(3, "usb.removed", {"host": "pc-01", "device": "1-2",
                                             "control_number": "USB-0001"}))
        db.add(_usb_event(4, "door.access", {"host": "pc-01"}))


@pytest.mark.usefixtures("usb_events")
def test_usb_events_page_and_api(media_app: WebApp) -> None:
    c, _ = media_app.as_role("auditor")
    page = c.get("/usb-events").text
    rows = re.findall(r"<tr class=\"[^\"]*\">\s*<td>", page)
    assert len(rows) == 3 and "遮断" in page and "その他の規則" in page
    c.get("/lang/en")
    assert "not registered" in c.get("/usb-events").text  # the agent's own words, in English
    c.get("/lang/ja")
    blocked = c.get("/usb-events?verdict=block").text
    assert "abcd:1234" in blocked and "0781:5581" not in blocked
    api = c.get("/api/v1/usb-events?host=pc-01").json()
    assert [(e["kind"], e["control_number"]) for e in api["items"]] == [
        ("usb.removed", "USB-0001"), ("usb.inserted", "USB-0001")]
    page1 = c.get("/api/v1/usb-events?limit=1").json()
    assert page1["items"][0]["seq"] == 3 and page1["next_before_id"]
    page2 = c.get(f"/api/v1/usb-events?limit=5&before_id={page1['next_before_id']}").json()
    assert [e["seq"] for e in page2["items"]] == [2, 1]


def test_pages_speak_english_too(media_app: WebApp) -> None:
    cn = register_form(media_app)
    c, _ = media_app.as_role("auditor")
    c.cookies.set("secroom_lang", "en")
    ledger = c.get("/media").text
    assert "<h1>Media ledger</h1>" in ledger and "In storage" in ledger and "媒体" not in ledger
    detail = c.get(f"/media/{cn}").text
    assert "History" in detail and "register" in detail and 'id="checkout-form"' not in detail
    rows = list(csv.reader(io.StringIO(c.get("/media.csv").content.decode("utf-8-sig"))))
    assert rows[0][0] == "Control number" and rows[1][1] == "In storage"
