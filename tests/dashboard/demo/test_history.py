"""The demo's month of history goes through the real ingest and correlation and leaves the
planted anomalies to review; no individual number is stored anywhere."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from dashboard.db import make_engine, make_sessionmaker
from dashboard.demo import history, seed
from dashboard.demo.dashboard import enter_office
from dashboard.demo.usb import seed_media
from dashboard.migrate import upgrade
from dashboard.models.events import StoredEvent
from dashboard.models.nodes import Node

NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)  # 12:00 in Tokyo, a Friday


@pytest.fixture
def sm(tmp_path: Path):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'demo.sqlite3'}"
    upgrade(url)
    maker = make_sessionmaker(make_engine(url))
    enter_office(maker, seed.policy(now=NOW), NOW)
    return maker


def test_month_is_ingested_signed_and_leaves_the_planted_anomalies(sm, tmp_path: Path) -> None:
    from dashboard.models import Anomaly

    month = history.build(NOW)
    counts = history.store(sm, month, NOW)
    generated = len(month.pending)
    assert counts["events"] == generated > 1000
    with sm() as db:
        assert db.scalar(select(func.count()).select_from(StoredEvent)) == generated
        nodes = {n.name: n for n in db.scalars(select(Node))}
        assert set(nodes) == {history.GW, history.USB, history.BACKUP}  # never the live "gw1"
        assert all(n.key_status == "approved" and n.contiguous_seq == n.max_seq
                   for n in nodes.values())
        kinds = list(db.scalars(select(Anomaly.kind)))
        # exactly the planted cases: a few to review, not hundreds of false alarms
        assert sorted(k for k in kinds if k.startswith("corr.")) == sorted([
            "corr.door_forced", "corr.door_held_open", "corr.usb_blocked",
            "corr.unknown_operator", "corr.number_in_log", "corr.backup_failed",
            "corr.backup_missing", "corr.backup_missing",  # the skipped night, the failed one
            "corr.access_outside_hours", "corr.access_not_in_room",
            "corr.print_without_access",
        ]), kinds
        # nothing about the chain or signatures: every history event verified
        assert not {k for k in kinds if "gap" in k or "signature" in k or "fork" in k}
    raw = b"".join(f.read_bytes() for f in tmp_path.glob("demo.sqlite3*"))  # with any WAL
    assert history.LEAKED_NUMBER.encode() not in raw


def test_media_ledger_has_a_dozen_numbered_media(sm) -> None:
    from dashboard.models.media import Medium

    sticks = seed_media(sm, NOW)
    with sm() as db:
        rows = {m.control_number: m for m in db.scalars(select(Medium))}
    assert len(rows) == 12 and "USB-0001" in rows and "USB-0012" in rows
    keys = {s.key for s in sticks}
    assert {"unknown", "clone", "USB-0001"} <= keys
