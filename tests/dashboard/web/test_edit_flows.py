"""Every edit form changes the record through the audited services (who, before, after)."""

from __future__ import annotations

from datetime import time

from sqlalchemy import select

from dashboard.audit import verify_audit
from dashboard.models import AuditRecord, Door, Group, Person, Printer, SiteSettings
from tests.dashboard.web.conftest import WebApp


def post(client, path: str, csrf: str, **data) -> int:  # type: ignore[no-untyped-def]
    r = client.post(path, data={**data, "csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303, (path, r.status_code, r.text[:500])
    return r.status_code


def test_rights_doors_printers_lockdown_forms(webapp: WebApp) -> None:
    client, csrf = webapp.as_role("security_admin")
    post(client, "/doors", csrf, id="server-room", name="サーバー室")
    post(client, "/doors/server-room", csrf, name="サーバー室", two_person="true",
         two_person_window_s="20", anti_passback="true", require_verified="true")
    post(client, "/printers", csrf, id="mfp1", name="複合機")
    post(client, "/groups", csrf, id="staff", name="担当者")
    post(client, "/groups/staff", csrf, name="担当者", doors=["server-room"], printers=["mfp1"],
         hosts="pc-01, pc-02", host_admin="true")
    post(client, "/groups/staff/windows", csrf, days=["0", "1", "2", "3", "4"], start="08:30",
         end="19:00")
    post(client, "/people", csrf, id="p1", name="山田 太郎")
    post(client, "/people/p1", csrf, name="山田 太郎", active="true", valid_from="2026-04-01",
         valid_until="", operator_ids="op7, op8", cups_users="yamada", host_accounts="yamada",
         groups=["staff"])
    post(client, "/people/p1/cards", csrf, uid="01:02:03:04", label="社員証")
    post(client, "/lockdown", csrf, scope="doors", doors=["server-room"], reason="工事のため")
    with webapp.sm() as db:
        door = db.get(Door, "server-room")
        assert door and door.two_person and door.anti_passback and door.two_person_window_s == 20
        assert door.require_verified  # verified cards only (cards that prove themselves)
        group = db.get(Group, "staff")
        assert group and [d.id for d in group.doors] == ["server-room"]
        assert [p.id for p in group.printers] == ["mfp1"]
        assert group.hosts == ["pc-01", "pc-02"] and group.host_admin
        assert [(w.days, w.start, w.end) for w in group.windows] == [
            ([0, 1, 2, 3, 4], time(8, 30), time(19, 0))]
        person = db.get(Person, "p1")
        assert person and [g.id for g in person.groups] == ["staff"]
        assert person.operator_ids == ["op7", "op8"] and person.cups_users == ["yamada"]
        assert person.host_accounts == ["yamada"]
        assert [c.uid for c in person.cards] == ["01020304"]
        site = db.get(SiteSettings, webapp.settings.site)
        assert site and site.lockdown_doors == ["server-room"] and not site.lockdown
        actions = db.scalars(select(AuditRecord.action).order_by(AuditRecord.seq)).all()
        actors = set(db.scalars(select(AuditRecord.actor)))
        assert verify_audit(db).ok
    assert actors == {"u_security_admin"}
    for action in ("door.create", "door.update", "printer.create", "group.create",
                   "group.update", "person.create", "person.update", "card.enrol",
                   "site.lockdown"):
        assert action in actions, (action, actions)
    # removing a window and a printer, and lifting the lockdown
    post(client, "/groups/staff/windows/0/delete", csrf)
    post(client, "/printers/mfp1/delete", csrf)
    post(client, "/lockdown", csrf, scope="end", reason="工事終了")
    with webapp.sm() as db:
        group = db.get(Group, "staff")
        assert group and group.windows == []
        assert db.get(Printer, "mfp1") is None
        site = db.get(SiteSettings, webapp.settings.site)
        assert site and site.lockdown_doors == []
    pages = {p: client.get(p).text for p in ("/groups", "/doors", "/people/p1", "/lockdown")}
    assert "担当者" in pages["/groups"] and "祝日" in pages["/groups"]
    assert "01020304" in pages["/people/p1"]


def test_bad_form_input_is_a_clear_error_and_changes_nothing(webapp: WebApp) -> None:
    client, csrf = webapp.as_role("admin")
    r = client.post("/people/p404/cards", data={"uid": "0102", "csrf_token": csrf})
    assert r.status_code == 404
    post(client, "/people", csrf, id="p1", name="A")
    r = client.post("/people/p1/cards", data={"uid": "zz-not-hex", "csrf_token": csrf})
    assert r.status_code == 400 and "16 進数で入力してください" in r.text  # in the UI language
    r = client.post("/groups", data={"id": "g1", "name": "G", "csrf_token": csrf},
                    follow_redirects=False)
    r = client.post("/groups/g1/windows", data={"days": ["0"], "start": "18:00", "end": "09:00",
                                                "csrf_token": csrf})
    assert r.status_code == 400 and "終了時刻は開始時刻より後に" in r.text
    r = client.post("/lockdown", data={"doors": ["nope"], "csrf_token": csrf})
    assert r.status_code == 404
    with webapp.sm() as db:
        group = db.get(Group, "g1")
        assert group is not None and group.windows == []
        person = db.get(Person, "p1")
        assert person is not None and person.cards == []
