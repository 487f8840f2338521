"""Finding 4: a node reports only the kinds its approved roles may emit. Every (kind, role) pair
of the registry through the ingest core: allowed kinds are stored, the others refused
(``kind_not_allowed``), stored nowhere, counted and raised; a node without a role is refused
everything; the roles are in the signed policy."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from controller.events import KINDS, NODE_ROLES
from controller.policy import open_policy
from dashboard import services
from dashboard.ingest.core import IngestCore
from dashboard.models import Anomaly, Node, StoredEvent
from tests.dashboard.conftest import SITE, T0, FakeNode, msg

ROLE_SETS = [frozenset({r}) for r in sorted(NODE_ROLES)] + [
    frozenset({"door_gateway", "print_station"}),  # a gateway with a print station
    frozenset(),  # approved before roles and nothing to infer them from
]


def _stored_kinds(session: Session, node: str) -> set[str]:
    return set(session.scalars(select(StoredEvent.kind).where(StoredEvent.node == node)))


@pytest.mark.parametrize("roles", ROLE_SETS, ids=lambda r: "+".join(sorted(r)) or "no-role")
def test_every_kind_against_the_roles(session: Session, core: IngestCore,
                                      roles: frozenset[str]) -> None:
    node = FakeNode("n1")
    node.enrol(session, roles=roles)
    events = [node.event(kind) for kind in KINDS]  # one of each registered kind
    result = core.process(session, [msg(e) for e in events], T0)
    session.commit()
    allowed = {k for k, spec in KINDS.items() if not spec.roles.isdisjoint(roles)}
    refused = set(KINDS) - allowed
    assert _stored_kinds(session, "n1") == allowed
    assert result.counts["kind_not_allowed"] == len(refused)
    assert core.counters.snapshot()["kind_not_allowed"] == len(refused)
    by_seq = {e.seq: e.kind for e in events}
    outcomes = {by_seq[o.seq]: (o.status, o.reason) for o in result.outcomes}
    for kind in refused:
        assert outcomes[kind] == ("rejected", "kind_not_allowed"), kind
    for kind in allowed:
        assert outcomes[kind] == ("stored", None), kind
    raised = session.scalars(select(Anomaly).where(Anomaly.kind == "kind_not_allowed")).all()
    if refused:
        assert len(raised) == 1 and raised[0].node == "n1" and raised[0].severity == "critical"
        assert raised[0].count == len(refused)
        assert raised[0].detail["roles"] == sorted(roles)
    else:
        assert raised == []


def test_a_host_agent_cannot_report_a_door_access(session: Session, core: IngestCore) -> None:
    pc = FakeNode("pc-01")
    pc.enrol(session, roles={"host_agent"})
    result = core.process(session, [msg(pc.access("alice"))], T0)
    session.commit()
    assert result.counts["kind_not_allowed"] == 1 and result.acks == {}
    assert session.scalar(select(func.count()).select_from(StoredEvent)) == 0
    assert session.get(Node, "pc-01").contiguous_seq == 0  # kept by the node, not acked


def test_a_kind_refused_is_stored_once_the_admin_fixes_the_role(session: Session,
                                                                core: IngestCore) -> None:
    """The refused event stays in the node's journal (not acked): after the role is set, the
    node's re-send is stored; nothing is lost."""
    gw = FakeNode("gw9")
    gw.enrol(session, roles={"door_gateway"})
    first = gw.event("print.release")
    assert core.process(session, [msg(first)], T0).counts["kind_not_allowed"] == 1
    session.commit()
    services.set_node_roles(session, "admin", "gw9", ["door_gateway", "print_station"], now=T0)
    session.commit()
    assert core.process(session, [msg(first)], T0).counts["stored"] == 1
    session.commit()
    assert _stored_kinds(session, "gw9") == {"print.release"}


def test_approval_takes_roles_and_the_policy_lists_them(session: Session) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from dashboard.policy_signer import PolicySigner

    node = FakeNode("pc-02")
    node.enrol(session, status="pending", roles=())
    with pytest.raises(services.ServiceError, match="role"):
        services.approve_node(session, "admin", "pc-02", roles=[], public_key=node.public)
    with pytest.raises(services.ServiceError, match="unknown node role"):
        services.approve_node(session, "admin", "pc-02", roles=["door"], public_key=node.public)
    services.approve_node(session, "admin", "pc-02", roles=["host_agent"], public_key=node.public,
                          now=T0)
    session.commit()
    key = Ed25519PrivateKey.generate()
    signer = PolicySigner(lambda: session, key, site=SITE, publish=None)  # type: ignore[arg-type]
    policy = signer.build(session, version=1, issued_at=T0)
    assert [(g.name, g.roles, g.public_key) for g in policy.nodes] == [
        ("pc-02", ["host_agent"], node.public)]
    from controller.policy import sign_policy
    opened = open_policy(sign_policy(policy, key), [key.public_key()], site=SITE)
    assert opened.policy.nodes[0].roles == ["host_agent"]  # signed: the node can check it
