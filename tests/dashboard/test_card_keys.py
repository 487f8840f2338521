"""Site card master keys on the dashboard: generated and sealed at rest, carried to the door
nodes only inside their slices (sealed to each node), rotated with a changeover (old and new
both sent), retired; verified cards and verified-only doors reach the slices; no secret in a
published blob or the audit trail."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from sqlalchemy import select

from controller.envelope import b64u
from dashboard import cardkeys, services
from dashboard.models import AuditRecord
from dashboard.models.cardkeys import CardMasterKey
from dashboard.policy_signer import PolicySigner
from tests.dashboard.conftest import SITE, T0
from tests.dashboard.test_policy_signer import Clock, Sink
from tests.dashboard.test_policy_slices import ALICE, BOB, TTL, open_slice, published
from tests.dashboard.test_policy_slices import key as key  # noqa: F401,PLC0414 - fixture
from tests.dashboard.test_policy_slices import site as site  # noqa: F401,PLC0414 - fixture


def secrets_in(sm, key) -> list[bytes]:
    with sm() as s:
        return [k.secret for k in cardkeys.site_keys(s, key)]


def forms(secret: bytes) -> list[bytes]:
    return [secret, secret.hex().encode(), secret.hex().upper().encode(), b64u(secret).encode(),
            base64.b64encode(secret)]


def test_keys_reach_door_nodes_sealed_and_rotate_with_a_changeover(sm, key, site) -> None:
    sink, clock = Sink(), Clock()
    signer = PolicySigner(sm, key, site=SITE, publish=sink, clock=clock, ttl_s=TTL)
    assert signer.publish_now() == 1
    assert open_slice(published(sink)["gw1"], key, "gw1").site_keys == []

    with sm.begin() as s:
        first = cardkeys.rotate(s, key, actor="admin", now=T0)
        services.update_door(s, "admin", "d1", {"require_verified": True}, now=T0)
        alice = services.enrol_card(s, "admin", "alice", "04112233445566", now=T0,
                                    credential="desfire", key_id=first)
        assert alice.credential == "desfire"
    clock.now += timedelta(seconds=5)
    assert signer.poll() == 2
    blobs = published(sink)
    gw1 = open_slice(blobs["gw1"], key, "gw1")
    assert [k.key_id for k in gw1.site_keys] == [first]
    assert [k.secret for k in gw1.site_keys] == secrets_in(sm, key)
    assert gw1.door("d1").require_verified is True
    assert gw1.card_enrolled_verified("04112233445566")
    assert not gw1.card_enrolled_verified(ALICE)  # her UID-only card stays weak
    assert open_slice(blobs["ps1"], key, "ps1").card_keys == []  # a printer verifies nothing
    for blob in blobs.values():
        for form in forms(secrets_in(sm, key)[0]):
            assert form not in blob

    with sm.begin() as s:
        second = cardkeys.rotate(s, key, actor="admin", now=T0)
    clock.now += timedelta(seconds=5)
    assert signer.poll() == 3  # a rotation is a new version
    gw1 = open_slice(published(sink)["gw1"], key, "gw1")
    assert [k.key_id for k in gw1.site_keys] == [second, first]  # both during the changeover

    with sm.begin() as s, pytest.raises(cardkeys.CardKeyError, match="changeover"):
        cardkeys.rotate(s, key, actor="admin", now=T0)
    with sm.begin() as s:
        assert cardkeys.retire_previous(s, actor="admin", now=T0) == first
    clock.now += timedelta(seconds=5)
    assert signer.poll() == 4
    assert [k.key_id for k in open_slice(published(sink)["gw1"], key, "gw1").site_keys] == [
        second]
    with sm() as s:
        retired = s.get(CardMasterKey, first)
        assert retired.state == "retired" and retired.sealed is None
        trail = [r for r in s.scalars(select(AuditRecord)) if r.action.startswith("card_key.")]
        assert [r.action for r in trail] == ["card_key.rotate", "card_key.rotate",
                                             "card_key.retire"]


def test_a_stored_key_does_not_open_without_the_dashboards_signing_key(sm, key, site) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    with sm.begin() as s:
        cardkeys.rotate(s, key, actor="admin", now=T0)
    with sm() as s, pytest.raises(cardkeys.CardKeyError, match="does not open"):
        cardkeys.site_keys(s, Ed25519PrivateKey.generate())
    assert BOB  # the fixture's people are enrolled UID-only


def test_the_card_keys_command_on_a_migrated_database(tmp_path, capsys) -> None:
    """`secroom db upgrade` (this change's migration included), then `secroom card-keys`:
    rotate, list (ids, states and the cards on each key), a second rotation refused during
    the changeover, retire (saying how many cards it cut off)."""
    from controller.cli import main as secroom
    from controller.keys import generate
    from dashboard.db import make_engine, make_sessionmaker

    generate(tmp_path / "policy.key")
    url = f"sqlite:///{tmp_path / 'dash.db'}"
    config = tmp_path / "dashboard.toml"
    config.write_text(f'[dashboard]\ndata_dir = "{tmp_path}"\ndatabase_url = "{url}"\n'
                      f'site = "{SITE}"\n')
    args = ["--config", str(config)]
    assert secroom(["db", "upgrade", *args]) == 0
    assert secroom(["card-keys", "rotate", *args, "--actor", "admin"]) == 0
    engine = make_engine(url)
    with make_sessionmaker(engine).begin() as s:  # one card of each site on the first key
        first = cardkeys.key_ids(s)[0]
        for i, site in enumerate((SITE, "osaka")):
            services.create_person(s, "admin", {"id": f"p-{site}", "name": "山田 太郎",
                                                "site": site}, now=T0)
            services.enrol_card(s, "admin", f"p-{site}", f"04AA{i:010X}", now=T0,
                                credential="desfire", key_id=first)
    engine.dispose()
    assert secroom(["card-keys", "rotate", *args, "--actor", "admin"]) == 0
    assert secroom(["card-keys", "rotate", *args, "--actor", "admin"]) == 2  # changeover
    assert secroom(["card-keys", "list", *args]) == 0
    out = capsys.readouterr()
    rows = [line.split("\t") for line in out.out.splitlines() if line.startswith("ck-")]
    assert sorted(r[1] for r in rows) == ["active", "previous"]
    # the cards on each key, every site's
    assert {r[1]: r[4] for r in rows} == {"previous": "2 cards", "active": "0 cards"}
    assert "changeover is still running" in out.err
    assert secroom(["card-keys", "retire", *args, "--actor", "admin"]) == 0
    assert "the 2 cards still on it" in capsys.readouterr().out
    assert secroom(["card-keys", "retire", *args, "--actor", "admin"]) == 2
