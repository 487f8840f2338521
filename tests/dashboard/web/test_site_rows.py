"""Site-scoped rows (issue 24): people (by their home site) with their cards, groups, doors,
printers and room PCs belong to a site. A site's security admin sees and manages its own site's
rows only: another site's person, card, group, door or PC is "not found" (404) by page and by
API, as if it did not exist, and a change naming one changes nothing. Headquarters' auditor
reads every site's rows. The admin sets an account's scope on the users page, audited. Over
HTTP, on SQLite and PostgreSQL (``webapp_db``)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from dashboard import services
from dashboard.i18n import catalogue
from dashboard.models import Card, Door, Group, Node, Person
from dashboard.models.audit import AuditRecord
from dashboard.models.auth import Session, User
from dashboard.models.reports import Client
from tests.dashboard.web.conftest import WebApp
from tests.dashboard.web.test_site_scope import _user

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SITES = ("osaka", "nagoya")
NAMES = {"osaka": "大阪 太郎", "nagoya": "名古屋 花子"}


def _world(w: WebApp) -> None:
    """Each site: a node, a door, a printer, a group (its door, printer and PC), a person in it
    with a card. Headquarters allows the Osaka person at Nagoya too (Nagoya's group)."""
    with w.sm.begin() as db:
        for i, site in enumerate(SITES):
            db.add(Node(name=f"{site}-gw1", site=site, key_status="approved",
                        public_key=f"k{i}", roles="door_gateway", first_seen_at=T0))
            services.create_door(db, "hq", {"id": f"door-{site}", "name": f"{site} 室",
                                            "site": site}, now=T0)
            services.create_printer(db, "hq", {"id": f"pr-{site}", "name": f"{site} 複合機",
                                               "site": site}, now=T0)
            services.create_group(db, "hq", {
                "id": f"g-{site}", "name": f"{site} 担当", "site": site,
                "doors": [f"door-{site}"], "printers": [f"pr-{site}"],
                "hosts": [f"{site}-pc"]}, now=T0)
            services.create_person(db, "hq", {"id": f"p-{site}", "name": NAMES[site],
                                              "site": site, "groups": [f"g-{site}"]}, now=T0)
            services.enrol_card(db, "hq", f"p-{site}", f"0A0B0C0{i}", now=T0)
        services.set_membership(db, "hq", "g-nagoya", "p-osaka", True, now=T0)


@pytest.fixture
def world(webapp_db: WebApp) -> WebApp:
    _world(webapp_db)
    return webapp_db


def test_a_site_admin_lists_only_its_sites_rows(world: WebApp) -> None:
    osaka, _ = _user(world, "osaka_sec", "security_admin", site="osaka")
    assert [p["id"] for p in osaka.get("/api/v1/people").json()] == ["p-osaka"]
    assert [d["id"] for d in osaka.get("/api/v1/doors").json()] == ["door-osaka"]
    assert [p["id"] for p in osaka.get("/api/v1/printers").json()] == ["pr-osaka"]
    groups = osaka.get("/api/v1/groups").json()
    assert [g["id"] for g in groups] == ["g-osaka"]
    # the Osaka person's right at Nagoya is Nagoya's: not shown to Osaka
    assert osaka.get("/api/v1/people/p-osaka").json()["groups"] == ["g-osaka"]
    for path in ("/people", "/groups", "/doors", "/printers", "/hosts"):
        page = osaka.get(path)
        assert page.status_code == 200, path
        assert "nagoya" not in page.text and NAMES["nagoya"] not in page.text, path
    assert NAMES["osaka"] in osaka.get("/people").text
    assert "osaka-pc" in osaka.get("/hosts").text


def test_another_sites_person_door_group_and_pc_are_not_found(world: WebApp) -> None:
    osaka, csrf = _user(world, "osaka_sec", "security_admin", site="osaka")
    headers = {"X-CSRF-Token": csrf}
    form = {"csrf_token": csrf}
    for path in ("/people/p-nagoya", "/api/v1/people/p-nagoya", "/hosts/nagoya-pc",
                 "/people/nobody"):
        assert osaka.get(path).status_code == 404, path
    # every change naming another site's row: 404, the same as a row that does not exist
    changes = [
        osaka.patch("/api/v1/people/p-nagoya", json={"name": "x"}, headers=headers),
        osaka.post("/api/v1/people/p-nagoya/cards", json={"uid": "DEADBEEF"}, headers=headers),
        osaka.post("/api/v1/cards/0A0B0C01/revoke", headers=headers),
        osaka.post("/people/p-nagoya", data={**form, "name": "x"}),
        osaka.post("/people/p-nagoya/cards", data={**form, "uid": "DEADBEEF"}),
        osaka.post("/people/p-nagoya/cards/0A0B0C01/revoke", data=form),
        osaka.post("/doors/door-nagoya", data={**form, "name": "x"}),
        osaka.post("/groups/g-nagoya", data={**form, "name": "x"}),
        osaka.post("/groups/g-nagoya/windows", data={**form, "start": "08:00", "end": "09:00",
                                                     "days": ["0"]}),
        osaka.post("/printers/pr-nagoya/delete", data=form),
        # its own group may not be given another site's door or printer, nor its person
        # another site's group
        osaka.post("/groups/g-osaka", data={**form, "name": "x", "doors": ["door-nagoya"]}),
        osaka.patch("/api/v1/people/p-osaka", json={"groups": ["g-nagoya"]}, headers=headers),
        # nor log-on at another site's PC (named by Nagoya's group, or Nagoya's node)
        osaka.post("/groups/g-osaka", data={**form, "name": "x", "hosts": "nagoya-pc"}),
        osaka.post("/groups/g-osaka", data={**form, "name": "x", "hosts": "nagoya-gw1"}),
    ]
    assert [r.status_code for r in changes] == [404] * len(changes)
    with world.sm() as s:
        assert s.get(Person, "p-nagoya").name == NAMES["nagoya"]
        assert s.get(Card, "0A0B0C01").active and s.get(Card, "DEADBEEF") is None
        assert s.get(Door, "door-nagoya").name == "nagoya 室"
        group = s.get(Group, "g-nagoya")
        assert group.name == "nagoya 担当" and not group.windows
        assert [d.id for d in s.get(Group, "g-osaka").doors] == ["door-osaka"]
        assert s.get(Group, "g-osaka").hosts == ["osaka-pc"]
        assert s.get(Group, "g-osaka").name == "osaka 担当"


def test_a_site_admin_manages_its_own_site(world: WebApp) -> None:
    osaka, csrf = _user(world, "osaka_sec", "security_admin", site="osaka")
    headers = {"X-CSRF-Token": csrf}
    r = osaka.post("/api/v1/people", json={"id": "p-new", "name": "新人 一郎",
                                           "groups": ["g-osaka"]}, headers=headers)
    assert r.status_code == 201 and r.json()["site"] == "osaka"
    r = osaka.post("/api/v1/people", json={"id": "p-away", "name": "x", "site": "nagoya"},
                   headers=headers)
    assert r.status_code == 400  # it makes rows of its own site only
    r = osaka.post("/doors", data={"csrf_token": csrf, "id": "rack-osaka", "name": "ラック"},
                   follow_redirects=False)
    assert r.status_code == 303
    r = osaka.post("/api/v1/people/p-new/cards", json={"uid": "0A0B0C00"}, headers=headers)
    assert r.status_code == 409  # held by an active card, and the owner is not named
    assert "p-osaka" not in r.text
    r = osaka.post("/api/v1/people/p-new/cards", json={"uid": "0A0B0C01"}, headers=headers)
    assert r.status_code == 409 and "p-nagoya" not in r.text  # another site's holder: unnamed
    assert osaka.post("/api/v1/cards/0A0B0C00/revoke", headers=headers).status_code == 200
    # editing the person's rights keeps their right at Nagoya (which Osaka does not see)
    r = osaka.patch("/api/v1/people/p-osaka", json={"groups": []}, headers=headers)
    assert r.status_code == 200 and r.json()["groups"] == []
    with world.sm() as s:
        assert s.get(Person, "p-new").site == "osaka"
        assert s.get(Door, "rack-osaka").site == "osaka"
        assert [g.id for g in s.get(Person, "p-osaka").groups] == ["g-nagoya"]
        assert not s.get(Card, "0A0B0C00").active


def test_a_site_admin_editing_its_group_keeps_members_of_other_sites(world: WebApp) -> None:
    nagoya, csrf = _user(world, "nagoya_sec", "security_admin", site="nagoya")
    group = nagoya.get("/api/v1/groups").json()[0]
    assert group["id"] == "g-nagoya" and group["members"] == ["p-nagoya"]  # Osaka's unnamed
    r = nagoya.post("/groups/g-nagoya", data={"csrf_token": csrf, "name": "名古屋 担当",
                                              "doors": ["door-nagoya"]},
                    follow_redirects=False)
    assert r.status_code == 303
    with world.sm() as s:
        g = s.get(Group, "g-nagoya")
        assert g.name == "名古屋 担当" and {p.id for p in g.members} == {"p-osaka", "p-nagoya"}


def test_headquarters_auditor_reads_every_site_and_changes_nothing(world: WebApp) -> None:
    hq, csrf = _user(world, "hq_audit", "auditor")
    assert {p["id"] for p in hq.get("/api/v1/people").json()} == {"p-osaka", "p-nagoya"}
    assert {d["id"] for d in hq.get("/api/v1/doors").json()} == {"door-osaka", "door-nagoya"}
    assert hq.get("/api/v1/people/p-osaka").json()["groups"] == ["g-nagoya", "g-osaka"]
    assert hq.get("/people/p-nagoya").status_code == 200
    assert hq.get("/hosts/nagoya-pc").status_code == 200
    page = hq.get("/people").text
    assert NAMES["osaka"] in page and NAMES["nagoya"] in page
    r = hq.patch("/api/v1/people/p-nagoya", json={"name": "x"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 403


def test_a_client_auditor_sees_no_sites_rows(world: WebApp) -> None:
    with world.sm.begin() as s:
        s.add(Client(name="Alpha 株式会社", created_at=T0))
    with world.sm() as s:
        cid = s.scalar(select(Client.id))
    alpha, _ = _user(world, "alpha_audit", "auditor", client_id=cid)
    for path in ("/people", "/api/v1/people", "/doors", "/groups", "/hosts",
                 "/people/p-osaka"):
        assert alpha.get(path).status_code == 403, path


def _scope_form(w: WebApp, csrf: str, username: str, **fields: str):
    admin, _ = w.as_role("admin")
    with w.sm() as s:
        uid = s.scalar(select(User.id).where(User.username == username))
    return admin.post(f"/users/{uid}/scope", data={"csrf_token": csrf, **fields},
                      follow_redirects=False)


def test_the_admin_sets_an_accounts_scope_on_the_users_page(world: WebApp) -> None:
    sec, _ = _user(world, "sec", "security_admin")  # headquarters' for now
    assert sec.get("/api/v1/people").status_code == 200
    assert len(sec.get("/api/v1/people").json()) == 2
    admin, csrf = world.as_role("admin")
    page = admin.get("/users").text
    assert 'data-scope-form="sec"' in page and catalogue("ja")["users.scope_set"] in page
    r = _scope_form(world, csrf, "sec", site="osaka")
    assert r.status_code == 303
    with world.sm() as s:
        user = s.scalars(select(User).where(User.username == "sec")).one()
        assert (user.site, user.client_id) == ("osaka", None)
        assert s.scalar(select(Session.id).where(Session.user_id == user.id)) is None
        audit = s.scalars(select(AuditRecord).where(AuditRecord.action == "user.scope")).one()
        assert audit.actor == "u_admin" and audit.target_id == "sec"
        assert audit.before["site"] is None and audit.after["site"] == "osaka"
    # its session ended: it logs in again, now with Osaka's rows only
    assert sec.get("/api/v1/people").status_code == 401
    sec, _ = _relogin(world, "sec")
    assert [p["id"] for p in sec.get("/api/v1/people").json()] == ["p-osaka"]
    assert sec.get("/people/p-nagoya").status_code == 404
    # lifting the limit: headquarters again
    assert _scope_form(world, csrf, "sec").status_code == 303
    with world.sm() as s:
        assert s.scalars(select(User.site).where(User.username == "sec")).one() is None


def test_a_scope_the_role_cannot_have_is_refused_in_the_users_language(world: WebApp) -> None:
    admin, csrf = world.as_role("admin")
    _user(world, "boss", "admin")
    r = _scope_form(world, csrf, "boss", site="osaka")  # an admin runs every site
    assert r.status_code == 400 and catalogue("ja")["users.scope_invalid"] in r.text
    r = _scope_form(world, csrf, "boss", site="atlantis")  # no such site
    assert r.status_code == 400
    admin.cookies.set("secroom_lang", "en")
    r = _scope_form(world, csrf, "boss", site="osaka")
    assert r.status_code == 400 and catalogue("en")["users.scope_invalid"] in r.text
    with world.sm() as s:
        assert s.scalars(select(User.site).where(User.username == "boss")).one() is None
        scoped = select(AuditRecord.action).where(AuditRecord.action == "user.scope")
        assert s.scalar(scoped) is None


def test_a_client_scope_is_set_by_the_clients_name(world: WebApp) -> None:
    with world.sm.begin() as s:
        s.add(Client(name="Alpha 株式会社", created_at=T0))
    with world.sm() as s:
        cid = s.scalar(select(Client.id))
    admin, csrf = world.as_role("admin")
    _user(world, "alpha", "auditor")
    assert "Alpha 株式会社" in admin.get("/users").text
    assert _scope_form(world, csrf, "alpha", client=str(cid)).status_code == 303
    assert _scope_form(world, csrf, "alpha", client="999999").status_code == 400
    with world.sm() as s:
        assert s.scalars(select(User.client_id).where(User.username == "alpha")).one() == cid
    page = admin.get("/users").text
    assert catalogue("ja")["users.scope_client"].format(client="Alpha 株式会社") in page


def _relogin(w: WebApp, username: str):
    from tests.dashboard.web.conftest import login

    client = w.client()
    return client, login(client, username)


def _media(w: WebApp) -> dict[str, str]:
    """A medium kept by each site's person: a medium is its custodian's site's."""
    from dashboard.media import service as media
    from tests.dashboard.media.conftest import medium_data

    with w.sm.begin() as db:
        return {site: media.register_medium(db, "hq", medium_data(custodian=f"p-{site}",
                                                                  hosts=[f"{site}-pc"]),
                                            now=T0).control_number
                for site in SITES}


def test_a_site_admin_keeps_only_its_sites_media(world: WebApp) -> None:
    from dashboard.models.media import Medium
    from tests.dashboard.media.conftest import medium_data

    cn = _media(world)
    osaka, csrf = _user(world, "osaka_sec", "security_admin", site="osaka")
    headers = {"X-CSRF-Token": csrf}
    assert [m["control_number"] for m in osaka.get("/api/v1/media").json()] == [cn["osaka"]]
    page = osaka.get("/media")
    assert page.status_code == 200
    assert cn["osaka"] in page.text and cn["nagoya"] not in page.text
    csv = osaka.get("/media.csv")
    assert cn["osaka"] in csv.text and cn["nagoya"] not in csv.text
    assert osaka.get(f"/media/{cn['osaka']}").status_code == 200
    for path in (f"/media/{cn['nagoya']}", f"/api/v1/media/{cn['nagoya']}",
                 f"/media/{cn['nagoya']}/certificate.csv"):
        assert osaka.get(path).status_code == 404, path
    changes = [
        osaka.post(f"/api/v1/media/{cn['nagoya']}/lost", json={"note": "x"}, headers=headers),
        osaka.post(f"/media/{cn['nagoya']}/lost", data={"csrf_token": csrf, "note": "x"}),
        # a medium for another site's person, or checked out to one: that person is unknown
        osaka.post("/api/v1/media", json=medium_data(custodian="p-nagoya"), headers=headers),
    ]
    assert [r.status_code for r in changes] == [404] * len(changes)
    with world.sm() as s:
        assert s.get(Medium, cn["nagoya"]).state == "in_storage"  # not lost
        assert s.scalar(select(Medium.control_number).where(
            Medium.custodian == "p-nagoya", Medium.control_number != cn["nagoya"])) is None
    r = osaka.post("/api/v1/media", json=medium_data(custodian="p-osaka"), headers=headers)
    assert r.status_code == 201
    hq, _ = _user(world, "hq_audit", "auditor")
    assert len(hq.get("/api/v1/media").json()) == 3
    assert hq.get(f"/media/{cn['nagoya']}").status_code == 200


def test_headquarters_moves_a_person_to_another_site(world: WebApp) -> None:
    hq, hq_csrf = _user(world, "hq_sec", "security_admin")
    r = hq.patch("/api/v1/people/p-osaka", json={"site": "nagoya"},
                 headers={"X-CSRF-Token": hq_csrf})
    assert r.status_code == 200 and r.json()["site"] == "nagoya"
    osaka, csrf = _user(world, "osaka_sec", "security_admin", site="osaka")
    assert osaka.get("/api/v1/people").json() == []
    assert osaka.get("/people/p-osaka").status_code == 404
    r = osaka.patch("/api/v1/people/p-osaka", json={"site": "osaka"},
                    headers={"X-CSRF-Token": csrf})
    assert r.status_code == 404  # it cannot take them back either
    with world.sm() as s:
        assert s.get(Person, "p-osaka").site == "nagoya"
        assert {g.id for g in s.get(Person, "p-osaka").groups} == {"g-osaka", "g-nagoya"}
    # with several sites, headquarters names the site of a new row
    r = hq.post("/api/v1/people", json={"id": "p-where", "name": "x"},
                headers={"X-CSRF-Token": hq_csrf})
    assert r.status_code == 400 and "several sites" in r.json()["detail"]
