"""An OSDP reader's tamper and power-failure reports and a refused secure channel become
review items, read with the reader's name; the all-clear raises nothing."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.events import ReaderPower, ReaderSecureRefused, ReaderTamper
from dashboard.i18n import Translator
from dashboard.ingest.core import IngestCore
from dashboard.models import Anomaly
from dashboard.names import Names
from dashboard.review.sentences import Evidence, sentence
from tests.dashboard.conftest import FakeNode, msg


def _items(session: Session, kind: str) -> list[Anomaly]:
    return list(session.scalars(select(Anomaly).where(Anomaly.kind == kind)))


def test_reader_tamper_and_refusal_raise_items_and_clearing_raises_none(
    session: Session, core: IngestCore, node: FakeNode
) -> None:
    node.enrol(session)
    events = [
        node.event("reader.tamper", ReaderTamper(reader="osdp-in", active=False)),
        node.event("reader.secure_refused", ReaderSecureRefused(reader="osdp-in", active=False)),
        node.event("reader.power", ReaderPower(reader="osdp-in", failed=False)),
    ]
    core.process(session, [msg(e) for e in events], node.ts)
    session.commit()
    assert _items(session, "reader_tamper") == [] and _items(session, "reader_refused") == []
    assert _items(session, "reader_power") == []

    events = [
        node.event("reader.tamper", ReaderTamper(reader="osdp-in", active=True)),
        node.event("reader.secure_refused", ReaderSecureRefused(reader="osdp-in", active=True)),
        node.event("reader.power", ReaderPower(reader="osdp-in", failed=True)),
    ]
    core.process(session, [msg(e) for e in events], node.ts)
    session.commit()
    [tamper] = _items(session, "reader_tamper")
    [refused] = _items(session, "reader_refused")
    assert tamper.severity == refused.severity == "critical"
    [power] = _items(session, "reader_power")
    assert power.severity == "warning" and power.detail["reader"] == "osdp-in"
    assert tamper.detail["reader"] == "osdp-in" and tamper.node == "gw1"

    names = Names.load(session)
    ev = Evidence.load(session, [tamper, refused])
    ja = sentence(refused, ev, Translator("ja", ZoneInfo("Asia/Tokyo")), names)
    en = sentence(tamper, ev, Translator("en", ZoneInfo("Asia/Tokyo")), Names.load(session, "en"))
    assert "osdp-in" in ja and "暗号化通信" in ja
    assert "Reader osdp-in" in en and "tamper" in en
