"""The bus listener correlates each stored event as the ingest publishes it."""

from __future__ import annotations

import threading

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dashboard.bus import Bus
from dashboard.correlation.listener import CorrelationListener
from dashboard.ingest.core import IngestCore
from dashboard.models.correlation import Finding
from tests.dashboard.correlation import world as W


def test_forced_door_event_on_the_bus_becomes_a_finding(db: sessionmaker[Session]) -> None:
    w = W.World()
    w.ev("gw1", "door.forced", W.L(W.workdays()[0], 3), {"door": "room"})
    with db() as s:
        W.setup_people(s)
        for name, sig in w.signers.items():
            node = s.get(W.Node, name)
            assert node is not None
            node.public_key = W.public_b64(sig.key.public_key())
        s.commit()
        res = IngestCore(site=W.SITE).process(s, [(e.topic(), e.to_bytes()) for e in w.events],
                                              W.NOW)
        s.commit()
    bus = Bus()
    got = threading.Event()
    keys: list[str] = []

    def seen(new: list[str]) -> None:
        keys.extend(new)
        got.set()

    listener = CorrelationListener(bus, db, clock=lambda: W.NOW, tick_s=3600, on_findings=seen)
    stop = threading.Event()
    t = threading.Thread(target=listener.run, args=(stop,))
    t.start()
    try:
        while bus.subscribers == 0:
            stop.wait(0.01)
        for topic, data in res.messages:
            if topic == "event":
                bus.publish("event", data)
        assert got.wait(10)
    finally:
        stop.set()
        t.join()
    assert keys == ["door_forced:gw1:1"] and listener.errors == 0
    with db() as s:
        f = s.scalars(select(Finding).where(Finding.rule == "door_forced")).one()
        assert f.rule == "door_forced" and "present: -" in f.explanation_en
