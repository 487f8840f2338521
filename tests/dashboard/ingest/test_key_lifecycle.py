"""Finding 7: a node's key rotates (a handover signed by the old key, or an admin approving a
replacement) and is revoked. Old-key events below the handover are still stored; above it they
fail; a revoked key's events are refused (``key_revoked``), counted and raised."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.envelope import canonical_json, topic_for
from controller.keys import public_b64, rotation_statement
from dashboard import services
from dashboard.ingest.core import IngestCore
from dashboard.models import Anomaly, Node, StoredEvent
from tests.dashboard.conftest import SITE, T0, FakeNode, msg


def _state(node: FakeNode, **extra: object) -> tuple[str, bytes]:
    return topic_for(SITE, node.name, "state"), canonical_json(
        {"state": "online", "public_key": node.public, **extra})


def _seqs(session: Session) -> list[int]:
    return list(session.scalars(select(StoredEvent.seq).order_by(StoredEvent.seq)))


def _kinds(session: Session) -> set[str]:
    return set(session.scalars(select(Anomaly.kind)))


def _run(core: IngestCore, session: Session, items: list[tuple[str, bytes]]):
    result = core.process(session, items, T0)
    session.commit()
    return result


def test_handover_signed_by_the_old_key(session: Session, core: IngestCore) -> None:
    node = FakeNode()
    node.enrol(session, roles={"door_gateway"})
    old_key = node.key
    early = [node.event() for _ in range(3)]
    in_flight = node.event()  # seq 4: journaled with the old key before the restart
    new_key = Ed25519PrivateKey.generate()
    statement = rotation_statement(old_key, new_key.public_key(), node="gw1", site=SITE,
                                   from_seq=5)
    assert _run(core, session, [msg(e) for e in early]).counts["stored"] == 3
    node.key = new_key
    _run(core, session, [_state(node, key_rotation=statement)])
    row = session.get(Node, "gw1")
    assert (row.public_key, row.key_since_seq) == (public_b64(new_key.public_key()), 5)
    assert "node_key_rotated" in _kinds(session) and "node_key_mismatch" not in _kinds(session)
    after = [node.event() for _ in range(2)]  # seq 5, 6 with the new key
    result = _run(core, session, [msg(e) for e in [*after, in_flight]])
    assert result.counts["stored"] == 3 and _seqs(session) == [1, 2, 3, 4, 5, 6]
    # the old key cannot sign beyond its handover
    thief = FakeNode(key=old_key)
    thief.seq, thief.prev = 6, after[-1].hash
    assert _run(core, session, [msg(thief.event())]).counts["bad_signature"] == 1
    # revoked: even its range is closed (a forged seq 2, which would otherwise be a fork)
    services.revoke_key(session, "admin", "gw1", public_b64(old_key.public_key()), now=T0)
    session.commit()
    thief.seq, thief.prev = 1, early[0].hash
    result = _run(core, session, [msg(thief.event("door.forced", {"door": "d1"}))])
    assert result.counts["key_revoked"] == 1 and core.counters.get("key_revoked") == 1
    assert "key_revoked" in _kinds(session) and "fork" not in _kinds(session)
    assert _seqs(session) == [1, 2, 3, 4, 5, 6]


def test_a_handover_not_signed_by_the_approved_key_is_refused(session: Session,
                                                              core: IngestCore) -> None:
    node = FakeNode()
    node.enrol(session, roles={"door_gateway"})
    approved = node.public
    stranger, new_key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    forged = rotation_statement(stranger, new_key.public_key(), node="gw1", site=SITE,
                                from_seq=1)
    node.key = new_key
    _run(core, session, [_state(node, key_rotation=forged)])
    row = session.get(Node, "gw1")
    assert row.public_key == approved and row.announced_key == node.public
    assert {"key_rotation_refused", "node_key_mismatch"} <= _kinds(session)
    assert _run(core, session, [msg(node.event())]).counts["bad_signature"] == 1


def test_admin_approves_a_replacement_key_and_revokes_the_node(session: Session,
                                                               core: IngestCore) -> None:
    node = FakeNode()
    node.enrol(session, roles={"door_gateway"})
    _run(core, session, [msg(node.event()), msg(node.event())])
    node.key = Ed25519PrivateKey.generate()  # the old key was lost: a new one, no handover
    _run(core, session, [_state(node)])
    with pytest.raises(services.Conflict):
        services.approve_new_key(session, "admin", "gw1", "B" * 43, now=T0)
    services.approve_new_key(session, "admin", "gw1", node.public, revoke_old=True, now=T0)
    session.commit()
    assert _run(core, session, [msg(node.event())]).counts["stored"] == 1
    services.revoke_node(session, "admin", "gw1", now=T0)
    session.commit()
    result = _run(core, session, [msg(node.event())])
    assert result.counts["key_revoked"] == 1 and _seqs(session) == [1, 2, 3]
    # a revoked key is never approved again
    with pytest.raises(services.Conflict, match="revoked key"):
        services.approve_node(session, "admin", "gw1", roles=["door_gateway"], now=T0)


def test_secroom_nodes_cli_approves_for_roles_and_revokes(tmp_path, capsys) -> None:
    from controller.cli import main as secroom
    from dashboard.db import Base, make_engine, make_sessionmaker

    url = f"sqlite:///{tmp_path / 'dash.db'}"
    Base.metadata.create_all(make_engine(url))
    node = FakeNode("pc-01")
    with make_sessionmaker(make_engine(url))() as s:
        node.enrol(s, status="pending", roles=())
    db = ["--database-url", url, "--actor", "admin"]
    assert secroom(["nodes", "approve", *db, "pc-01", "--key", node.public,
                    "--role", "host_agent"]) == 0
    assert secroom(["nodes", "list", "--database-url", url]) == 0
    assert "pc-01\tapproved\thost_agent" in capsys.readouterr().out
    assert secroom(["nodes", "revoke", *db, "pc-01"]) == 0
    assert secroom(["nodes", "revoke", *db, "pc-01"]) == 2  # already revoked: said, not raised
    with make_sessionmaker(make_engine(url))() as s:
        assert s.get(Node, "pc-01").key_status == "revoked"
