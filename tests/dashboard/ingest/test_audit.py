"""Chain mode stores events authenticated by their hash chain, then audits each signature."""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import select

from controller.envelope import Event, b64u, parse
from dashboard.ingest.core import IngestCore
from dashboard.ingest.verify import SignatureAudit, SignatureVerifier
from dashboard.models import Anomaly, StoredEvent
from tests.dashboard.conftest import SITE, T0, msg


def resigned(event: Event) -> Event:
    """The same content with a signature that is not the node's (right length, wrong bytes)."""
    return parse(event.to_bytes().replace(event.sig.encode(), b64u(os.urandom(64)).encode()))


def test_audit_in_a_worker_process_names_exactly_the_bad_signatures(node):
    evs = node.events(300)
    bad = {17, 250}
    evs = [resigned(e) if e.seq in bad else e for e in evs]
    key = SignatureVerifier().key(node.public)
    audit = SignatureAudit(processes=1)
    try:
        audit.submit([(key, e) for e in evs])
        assert sorted(audit.poll(wait=True)) == [("gw1", 17), ("gw1", 250)]
        assert audit.checked == 300 and audit.pending == 0
    finally:
        audit.close()


def test_chain_mode_stores_an_inner_bad_signature_then_raises_it(session, node):
    core = IngestCore(site=SITE, verifier=SignatureVerifier(mode="chain"))
    node.enrol(session)
    evs = node.events(6)
    evs[2] = resigned(evs[2])  # content authentic through the chain, its own sig is not
    result = core.process(session, [msg(e) for e in evs], T0)
    session.commit()
    assert result.counts["stored"] == 6
    # every stored event but each run's verified tail is left for the audit
    assert sorted(e.seq for _, e in result.unchecked) == [1, 2, 3, 4, 5]
    audit = SignatureAudit(processes=0)
    audit.submit(result.unchecked)
    failures = audit.poll()
    assert failures == [("gw1", 3)]
    core.signature_failures(session, failures, T0)
    session.commit()
    found = session.scalars(select(Anomaly).where(Anomaly.kind == "bad_signature")).all()
    assert [(a.node, a.detail["last_seq"], a.severity) for a in found] == [("gw1", 3, "critical")]
    assert core.counters.snapshot()["bad_signature_stored"] == 1
    # nothing already stored is dropped by the finding
    assert len(session.scalars(select(StoredEvent.seq)).all()) == 6


def test_every_mode_leaves_nothing_to_audit(session, node):
    core = IngestCore(site=SITE, verifier=SignatureVerifier(mode="every"))
    node.enrol(session)
    evs = node.events(4)
    evs[1] = resigned(evs[1])
    result = core.process(session, [msg(e) for e in evs], T0)
    session.commit()
    assert result.unchecked == []
    assert result.counts["stored"] == 3 and result.counts["bad_signature"] == 1


def _report_sigint(conn: Any) -> None:
    """In a spawned helper: is SIGINT held from the start, and ignored after worker_init?"""
    import signal

    from dashboard.ingest.verify import worker_init

    held = signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, [])
    worker_init()
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    conn.send((held, ignored, signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, [])))


def test_helpers_start_with_ctrl_c_held_then_ignore_it():
    """A Ctrl-C reaches the whole process group: a helper still starting up (importing) must
    not print a KeyboardInterrupt traceback, and a started one leaves stopping to its parent."""
    import multiprocessing
    import signal

    from dashboard.ingest.verify import sigint_blocked

    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    with sigint_blocked():
        proc = ctx.Process(target=_report_sigint, args=(child,), daemon=True)
        proc.start()
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])  # ours restored
    try:
        assert parent.poll(60)
        assert parent.recv() == (True, True, False)
    finally:
        proc.join(30)
