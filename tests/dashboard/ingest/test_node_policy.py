"""Through the ingest: a node whose state message says it runs an expired policy, or a version
older than the one the dashboard published (past a grace), is raised as policy_stale; a clock
off by more than the ``clock_skew_s`` setting is raised as clock_skew."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from controller.envelope import canonical_json, format_ts
from dashboard.ingest.core import IngestCore
from dashboard.models import Anomaly
from dashboard.models.policy import PolicyVersion
from dashboard.settings import DashboardSettings
from tests.dashboard.conftest import SITE, T0

SCOPE = {"doors": ["d1"], "printers": [], "hosts": [], "usb": False}


def state(node: Any, *, ts=T0, policy: dict[str, Any] | None = None) -> tuple[str, bytes]:
    body: dict[str, Any] = {"state": "online", "public_key": node.public, "boot": "b1",
                            "ts": format_ts(ts), "health": {}}
    if policy is not None:
        body["policy"] = policy
    return (f"secroom/v1/{SITE}/{node.name}/state", canonical_json(body))


def feed(core: IngestCore, session: Any, msg: tuple[str, bytes], now: Any) -> None:
    core.process(session, [msg], now)
    session.commit()


def raised(session: Any, kind: str) -> list[Anomaly]:
    return list(session.scalars(select(Anomaly).where(Anomaly.kind == kind)))


def published(session: Any, version: int, at: Any) -> None:
    session.add(PolicyVersion(version=version, site=SITE, issued_at=at, sha256="0" * 64,
                              blob=b"{}", published_at=at))
    session.commit()


def test_a_node_behind_or_expired_is_raised_as_policy_stale(session, core, node) -> None:
    node.enrol(session)
    published(session, 4, T0)
    current = {"version": 4, "stale": False, "scope": SCOPE}
    feed(core, session, state(node, policy=current), T0 + timedelta(seconds=300))
    # just published: a node still on 3 is only catching up
    feed(core, session, state(node, ts=T0 + timedelta(seconds=5), policy={
        **current, "version": 3}), T0 + timedelta(seconds=5))
    assert raised(session, "policy_stale") == []
    published(session, 5, T0 + timedelta(seconds=10))
    later = T0 + timedelta(seconds=600)
    feed(core, session, state(node, ts=later, policy=current), later)
    (behind,) = raised(session, "policy_stale")
    assert behind.node == "gw1" and behind.detail["reason"] == "behind"
    assert (behind.detail["version"], behind.detail["latest"]) == (4, 5)

    node2 = type(node)(name="gw2")
    node2.enrol(session)
    feed(core, session, state(node2, ts=later, policy={**current, "version": 5, "stale": True}),
         later)
    expired = [a for a in raised(session, "policy_stale") if a.node == "gw2"]
    assert [a.detail["reason"] for a in expired] == ["expired"]
    node3 = type(node)(name="gw3")
    node3.enrol(session)
    feed(core, session, state(node3, ts=later, policy={"version": None, "scope": SCOPE}), later)
    assert [a.detail["reason"] for a in raised(session, "policy_stale") if a.node == "gw3"] == [
        "missing"]


def test_clock_skew_follows_the_setting(session, core, node) -> None:
    core.state.clock_skew_s = 30.0  # what the dashboard's runtime sets from its settings
    node.enrol(session)
    for i in range(2):  # two messages with their own ts: a skew seen twice is the node's clock
        now = T0 + timedelta(seconds=15 * i)
        feed(core, session, state(node, ts=now + timedelta(seconds=60)), now)
    (skew,) = raised(session, "clock_skew")
    assert skew.detail["offset_s"] == 60.0
    assert DashboardSettings().clock_skew_s == 120.0  # the default
