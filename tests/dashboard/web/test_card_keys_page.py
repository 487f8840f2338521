"""The card master keys page (/card-keys): each key with its state and the cards on it, the
people whose cards are still on the previous key (with their last door), rotate after a
confirmation step, retire refused while cards remain unless the admin confirms how many, the
audit rows of dashboard.cardkeys (the `secroom card-keys` command's), a re-key at a tap
(ingested card.rekeyed) lowering the count, a site's account seeing its own site's cards only
and changing nothing, both languages. Over HTTP, on SQLite and PostgreSQL (``webapp_db``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from controller.card_events import KIND_REKEYED
from controller.keys import generate
from dashboard import cardkeys, services
from dashboard.card_enrol import EnrolSender
from dashboard.i18n import catalogue
from dashboard.ingest.core import IngestCore
from dashboard.models import Card, DoorAccess
from dashboard.models.audit import AuditRecord
from dashboard.models.cardkeys import CardMasterKey
from tests.dashboard.conftest import FakeNode, msg
from tests.dashboard.test_policy_signer import Sink
from tests.dashboard.web.conftest import WebApp
from tests.dashboard.web.test_site_scope import _user

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
NAMES = {"osaka": "大阪 太郎", "nagoya": "名古屋 花子", "weak": "弱井 次郎"}
CARDS = {"osaka": "04A1A2A3A4A5A6", "nagoya": "0102030405060708"}


class World:
    def __init__(self, w: WebApp) -> None:
        self.w = w
        assert w.settings.policy_key_file is not None
        self.key = generate(w.settings.policy_key_file)
        self.nodes = {site: FakeNode(f"{site}-gw1", site=site) for site in ("osaka", "nagoya")}
        with w.sm() as db:
            for node in self.nodes.values():
                node.enrol(db)
        with w.sm.begin() as db:
            self.first = cardkeys.rotate(db, self.key, actor="hq-setup", now=T0)
            for site, credential in (("osaka", "desfire"), ("nagoya", "felica_lite_s")):
                services.create_person(db, "hq", {"id": f"p-{site}", "name": NAMES[site],
                                                  "site": site}, now=T0)
                services.enrol_card(db, "hq", f"p-{site}", CARDS[site], now=T0,
                                    credential=credential, key_id=self.first)
            services.create_person(db, "hq", {"id": "p-weak", "name": NAMES["weak"],
                                              "site": "osaka"}, now=T0)
            services.enrol_card(db, "hq", "p-weak", "0A0B0C0D", now=T0)  # UID only: no key
            # a revoked card on the key counts for nothing
            services.enrol_card(db, "hq", "p-osaka", "04FFFFFFFFFFFF", now=T0,
                                credential="desfire", key_id=self.first)
            services.revoke_card(db, "hq", "04FFFFFFFFFFFF", now=T0)
            # the Osaka card last opened a door at 10:00 UTC (19:00 in Tokyo); a refused tap
            # later does not count
            db.add(DoorAccess(node="osaka-gw1", seq=900, ts=T0 + timedelta(hours=1), door="d1",
                              direction="in", granted=True, person_id="p-osaka",
                              uid=CARDS["osaka"], reader="d1-in"))
            db.add(DoorAccess(node="osaka-gw1", seq=901, ts=T0 + timedelta(hours=2), door="d1",
                              direction="in", granted=False, reason="outside_schedule",
                              person_id="p-osaka", uid=CARDS["osaka"], reader="d1-in"))

    def rekey(self, site: str, new_key: str) -> None:
        """The node re-keyed the card at a tap: its signed card.rekeyed event, through the
        ingest and the dashboard's enrolment sender (which moves the card's key id)."""
        node = self.nodes[site]
        event = node.event(KIND_REKEYED, {"reader": "d1-in", "card": CARDS[site],
                                          "card_type": "desfire", "key_id": new_key,
                                          "previous_key": self.first})
        with self.w.sm() as db:
            result = IngestCore(site=site).process(db, [msg(event)], T0)
            db.commit()
        assert result.counts["stored"] == 1, result.counts
        EnrolSender(self.w.sm, Ed25519PrivateKey.generate(), site=site, publish=Sink(),
                    clock=lambda: T0).poll()


@pytest.fixture
def world(webapp_db: WebApp) -> World:
    return World(webapp_db)


def _row(html: str, key_id: str) -> str:
    m = re.search(rf'<tr data-key="{key_id}"[^>]*>(.*?)</tr>', html, re.S)
    assert m, key_id
    return m.group(1)


def _previous_people(html: str) -> str:
    m = re.search(r'<table id="on-previous".*?</table>', html, re.S)
    assert m
    return m.group(0)


def _retire(client: Any, csrf: str, key_id: str, **form: Any) -> Any:
    return client.post("/card-keys/retire", data={"csrf_token": csrf, "key_id": key_id, **form},
                       follow_redirects=False)


def _audit(w: WebApp) -> list[tuple[str, str, str, Any]]:
    with w.sm() as db:
        return [(r.action, r.actor, r.target_id, r.after) for r in db.scalars(
            select(AuditRecord).where(AuditRecord.action.like("card_key.%"))
            .order_by(AuditRecord.seq))]


def test_rotate_then_the_people_on_the_previous_key_and_a_confirmed_retire(world: World) -> None:
    w, ja = world.w, catalogue("ja")
    admin, csrf = w.as_role("security_admin")
    page = admin.get("/card-keys").text
    assert ja["card_keys.state.active"] in _row(page, world.first)
    assert ja["card_keys.card_count"].format(n=2) in _row(page, world.first)
    assert 'id="on-previous"' not in page  # no changeover yet

    # rotate: only through the confirmation step
    r = admin.post("/card-keys/rotate", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 400 and ja["card_keys.error.confirm_rotate"] in r.text
    assert 'id="rotate-form"' in r.text  # the confirmation step is shown
    step = admin.get("/card-keys?step=rotate").text
    assert ja["card_keys.rotate_confirm"] in step
    r = admin.post("/card-keys/rotate", data={"csrf_token": csrf, "confirm": "yes"},
                   follow_redirects=False)
    assert r.status_code == 303
    with w.sm() as db:
        second = db.scalar(select(CardMasterKey.key_id).where(CardMasterKey.state == "active"))
    assert second and second != world.first

    page = admin.get("/card-keys").text
    assert ja["card_keys.state.previous"] in _row(page, world.first)
    assert ja["card_keys.card_count"].format(n=2) in _row(page, world.first)
    assert ja["card_keys.card_count"].format(n=0) in _row(page, second)
    assert "hq-setup" in _row(page, world.first)  # the creator, by their name
    people = _previous_people(page)
    assert NAMES["osaka"] in people and NAMES["nagoya"] in people
    assert NAMES["weak"] not in people
    assert ja["card_keys.type.desfire"] in people and ja["card_keys.type.felica_lite_s"] in people
    assert "2026年12月1日(火) 19:00" in people  # the Osaka card's last granted tap, Tokyo time
    assert ja["card_keys.never_opened"] in people  # the Nagoya card has none
    assert ja["card_keys.retire_impact"].format(n=2) in page
    assert ja["card_keys.retire_accept"].format(n=2) in page

    # retire refused without the confirmation, and with a confirmation of fewer cards
    r = _retire(admin, csrf, world.first, cards_left=2)
    assert r.status_code == 409 and ja["card_keys.error.cards_left"] in r.text
    r = _retire(admin, csrf, world.first, cards_left=1, accept="true")
    assert r.status_code == 409
    r = _retire(admin, csrf, "ck-other", cards_left=2, accept="true")  # a stale page
    assert r.status_code == 409 and ja["card_keys.error.stale"] in r.text
    with w.sm() as db:
        assert db.get(CardMasterKey, world.first).state == "previous"
    assert [a for a, *_ in _audit(w)] == ["card_key.rotate", "card_key.rotate"]

    r = _retire(admin, csrf, world.first, cards_left=2, accept="true")
    assert r.status_code == 303
    assert ja["card_keys.retired"] in admin.get(r.headers["location"]).text
    with w.sm() as db:
        row = db.get(CardMasterKey, world.first)
        assert row.state == "retired" and row.sealed is None
    # the rows dashboard.cardkeys writes for the command, with the page's user as the actor
    assert _audit(w) == [
        ("card_key.rotate", "hq-setup", world.first, {"keys": [world.first]}),
        ("card_key.rotate", "u_security_admin", second, {"keys": [second, world.first]}),
        ("card_key.retire", "u_security_admin", world.first,
         {"state": "retired", "cards_left": 2}),
    ]
    page = admin.get("/card-keys").text
    assert ja["card_keys.state.retired"] in _row(page, world.first)
    assert 'id="on-previous"' not in page


def test_a_rekey_at_a_tap_lowers_the_count_and_retiring_needs_no_confirmation(
        world: World) -> None:
    w, en = world.w, catalogue("en")
    admin, csrf = w.as_role("admin")
    admin.get("/lang/en?next=/card-keys")
    assert admin.post("/card-keys/rotate", data={"csrf_token": csrf, "confirm": "yes"},
                      follow_redirects=False).status_code == 303
    with w.sm() as db:
        second = cardkeys.key_ids(db)[0]
    world.rekey("osaka", second)
    page = admin.get("/card-keys").text
    assert en["card_keys.card_count"].format(n=1) in _row(page, world.first)
    assert en["card_keys.card_count"].format(n=1) in _row(page, second)
    people = _previous_people(page)
    assert NAMES["osaka"] not in people and NAMES["nagoya"] in people

    world.rekey("nagoya", second)
    page = admin.get("/card-keys").text
    assert en["card_keys.card_count"].format(n=0) in _row(page, world.first)
    assert en["card_keys.retire_safe"] in page and 'name="accept"' not in page
    assert en["card_keys.none_on_previous"] in _previous_people(page)
    with w.sm() as db:
        assert {c.uid: c.key_id for c in db.scalars(select(Card).where(
            Card.uid.in_(CARDS.values())))} == {uid: second for uid in CARDS.values()}
    r = _retire(admin, csrf, world.first, cards_left=0)
    assert r.status_code == 303
    assert _audit(w)[-1][3] == {"state": "retired", "cards_left": 0}


def test_a_sites_security_admin_sees_its_own_cards_and_changes_nothing(world: World) -> None:
    w, ja = world.w, catalogue("ja")
    with w.sm.begin() as db:
        second = cardkeys.rotate(db, world.key, actor="hq-setup", now=T0)
    osaka, csrf = _user(w, "osaka_sec", "security_admin", site="osaka")
    page = osaka.get("/card-keys")
    assert page.status_code == 200
    assert ja["card_keys.scoped"].format(site="osaka") in page.text
    # its own site's cards: the Osaka card only (the Nagoya one is on the same key)
    assert ja["card_keys.card_count"].format(n=1) in _row(page.text, world.first)
    people = _previous_people(page.text)
    assert NAMES["osaka"] in people and NAMES["nagoya"] not in page.text
    assert 'id="retire-form"' not in page.text and 'id="rotate-start"' not in page.text
    # rotating or retiring changes every site's keys: refused, nothing changed
    for path, form in (("/card-keys/retire", {"key_id": world.first, "cards_left": 2,
                                              "accept": "true"}),
                       ("/card-keys/rotate", {"confirm": "yes"})):
        r = osaka.post(path, data={"csrf_token": csrf, **form}, follow_redirects=False)
        assert r.status_code == 403, path
    with w.sm() as db:
        assert cardkeys.key_ids(db) == [second, world.first]
    assert [a[1] for a in _audit(w)] == ["hq-setup", "hq-setup"]
    # the Nagoya person (another site's) is "not found" from the list's link, as elsewhere
    assert osaka.get("/people/p-nagoya").status_code == 404
    # a client company's auditor does not see the keys at all
    client, _ = _user(w, "client_aud", "auditor", client_id=_client_id(w))
    assert client.get("/card-keys").status_code == 403


def _client_id(w: WebApp) -> int:
    from dashboard.models.reports import Client

    with w.sm.begin() as db:
        row = Client(name="株式会社 顧客", created_at=T0)
        db.add(row)
        db.flush()
        return int(row.id)


def test_roles_auditor_reads_backup_operator_does_not(world: World) -> None:
    w = world.w
    auditor, csrf = w.as_role("auditor")
    page = auditor.get("/card-keys")
    assert page.status_code == 200 and world.first in page.text
    assert 'id="card-keys-actions"' not in page.text
    r = auditor.post("/card-keys/rotate", data={"csrf_token": csrf, "confirm": "yes"},
                     follow_redirects=False)
    assert r.status_code == 403
    operator, _ = w.as_role("backup_operator")
    assert operator.get("/card-keys", headers={"accept": "text/html"}).status_code == 403
    # the menu links the page where the nodes are, for those who may read it
    admin, _ = w.as_role("admin")
    assert 'href="/card-keys"' in admin.get("/nodes").text
    assert 'href="/card-keys"' not in operator.get("/backups").text


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_every_word_is_translated(world: World, lang: str) -> None:
    w = world.w
    with w.sm.begin() as db:
        cardkeys.rotate(db, world.key, actor="hq-setup", now=T0)
    admin, _ = w.as_role("security_admin")
    admin.get(f"/lang/{lang}?next=/card-keys")
    words = catalogue(lang)
    for url in ("/card-keys", "/card-keys?step=rotate"):
        html = admin.get(url).text
        assert not re.search(r"\bcard_keys\.[a-z_.]+", html), url  # no message key shown
        assert words["nav.card_keys"] in html
        assert words["card_keys.state.previous"] in html
        assert words["card_keys.on_previous"].format(n=2) in html
    other = catalogue("en" if lang == "ja" else "ja")
    assert other["card_keys.help"] not in admin.get("/card-keys").text
