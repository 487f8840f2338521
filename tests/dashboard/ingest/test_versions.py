"""Adjacent versions (controller.compat): the dashboard reads the envelopes of its release and
the one before and supports nodes one release older; a node it cannot serve is refused with a
``node_version_unsupported`` item (never silently: ``bad_version`` used to be only counted),
its events not stored and not acknowledged (they wait in its journal), and accepted again once
it announces a supported version. A node of the release before announcements is served."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from controller import compat
from controller.envelope import (
    READ_ENVELOPES,
    SCHEMA_VERSION,
    Event,
    UnsupportedEnvelope,
    b64u,
    body_hash,
    canonical_json,
    format_ts,
    parse,
)
from dashboard.ingest.core import IngestCore
from dashboard.models import Anomaly, Node, StoredEvent
from tests.dashboard.conftest import SITE, T0, FakeNode, msg

KIND = "node_version_unsupported"


def with_envelope(node: FakeNode, v: int) -> Event:
    """The node's next event, hashed and signed properly, in envelope version ``v``."""
    ev = node.event()
    body = {**ev.body(), "v": v}
    digest = body_hash(body)
    node.prev = digest
    return Event.model_construct(**body, hash=digest,
                                 sig=b64u(node.key.sign(bytes.fromhex(digest))))


def wire(ev: Event) -> tuple[str, bytes]:
    return ev.topic(), canonical_json(ev.model_dump())


def state(node: FakeNode, version: Any = None) -> tuple[str, bytes]:
    doc: dict[str, Any] = {"state": "online", "public_key": node.public, "ts": format_ts(T0)}
    if version is not None:
        doc[compat.ANNOUNCE_KEY] = version
    return f"secroom/v1/{SITE}/{node.name}/state", json.dumps(doc).encode()


def items(session: Session) -> list[Anomaly]:
    return list(session.scalars(select(Anomaly).where(Anomaly.kind == KIND)))


def stored(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(StoredEvent)) or 0


@pytest.mark.parametrize(("announced", "problem"), [
    (None, None),  # the release before announcements
    ({"software": compat.software_version(), "envelope": SCHEMA_VERSION, "policy": [1]}, None),
    ({"software": "0.1.7"}, None),
    ({"software": "0.0.9"}, "older than"),
    ({"software": "banana"}, "no readable software version"),
    ({"software": "0.2.0", "envelope": READ_ENVELOPES.stop}, "newer than"),
    ({"software": "0.2.0", "policy": [2]}, "cannot apply policy format 1"),
    ("0.1.0", "malformed"),
])
def test_node_problem(announced: Any, problem: str | None) -> None:
    got = compat.node_problem(announced)
    assert (got is None) if problem is None else (problem in (got or ""))


def test_the_envelope_read_range_is_adjacent() -> None:
    assert SCHEMA_VERSION in READ_ENVELOPES
    assert READ_ENVELOPES.start >= max(1, SCHEMA_VERSION - 1)
    node = FakeNode()
    with pytest.raises(UnsupportedEnvelope) as refused:
        parse(wire(with_envelope(node, SCHEMA_VERSION + 1))[1])
    assert refused.value.version == SCHEMA_VERSION + 1


@pytest.mark.parametrize("v", [0, SCHEMA_VERSION + 1])
def test_an_unreadable_envelope_is_refused_with_an_item(session: Session, core: IngestCore,
                                                        node: FakeNode, v: int) -> None:
    node.enrol(session)
    result = core.process(session, [wire(with_envelope(node, v))], T0)
    session.commit()
    assert result.counts["bad_version"] == 1 and result.acks == {}
    [item] = items(session)
    assert item.node == "gw1" and item.severity == "critical"
    assert item.detail["envelope"] == v
    assert ("older" if v == 0 else "newer") in item.subject
    assert stored(session) == 0


def test_an_old_node_is_refused_until_it_is_upgraded(session: Session, core: IngestCore,
                                                     node: FakeNode) -> None:
    node.enrol(session)
    core.process(session, [state(node, {"software": "0.0.3", "envelope": 1})], T0)
    session.commit()
    [item] = items(session)
    assert "0.0.3" in item.subject
    evs = node.events(3)
    result = core.process(session, [msg(e) for e in evs], T0)
    session.commit()
    assert result.counts[KIND] == 3 and result.acks == {} and stored(session) == 0
    # upgraded: it announces a supported version and its journal's events are taken
    core.process(session, [state(node, compat.announcement())], T0)
    result = core.process(session, [msg(e) for e in evs], T0)
    session.commit()
    assert result.counts["stored"] == 3 and result.acks["gw1"].seq == 3


def test_a_node_of_the_release_before_announcements_is_served(session: Session,
                                                              core: IngestCore,
                                                              node: FakeNode) -> None:
    node.enrol(session)
    core.process(session, [state(node)], T0)
    result = core.process(session, [msg(e) for e in node.events(2)], T0)
    session.commit()
    assert result.counts["stored"] == 2 and items(session) == []
    n = session.get(Node, "gw1")
    assert n is not None and compat.ANNOUNCE_KEY not in n.health
