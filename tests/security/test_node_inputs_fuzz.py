"""The node's side of the trust boundary under fuzzing: whatever arrives on its ack, resend and
policy topics (random bytes, mutations of genuine signed receipts and policies, other signers,
replays, other addressees, deep nesting), a node raises only its own refusal errors, counts
each refusal, prunes nothing it has not been told to by a genuine receipt, keeps its journal
verifiable and its policy unchanged.

Property-based (hypothesis) over the parsers, and a seeded campaign of 3,000 hostile inputs
through a real publisher thread and policy store."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.envelope import canonical_json
from controller.journal import Journal, verify_journal
from controller.mqtt import MqttLink, MqttSettings
from controller.policy import Policy, PolicyError, open_policy, sign_policy
from controller.policy_store import PolicyStore
from controller.publisher import Publisher
from controller.receipts import Ack, ReceiptRefused, open_ack, open_resend, sign_ack
from tests.support.receipts import DashboardSigner

SITE, NODE = "tokyo-hq", "gw1"
NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
DASH = DashboardSigner()
TRUSTED = (DASH.key.public_key(),)
GOOD_ACK = DASH.ack(SITE, NODE, 3, "a" * 64)
GOOD_RESEND = DASH.resend(SITE, NODE, 1, 5)


def _bare(version: int, site: str) -> Policy:
    return Policy(version=version, issued_at=NOW, site=site, people=[], groups=[], doors=[])


def _policy(version: int) -> bytes:
    return sign_policy(_bare(version, SITE), DASH.key)


def _mutate(rng: random.Random, blob: bytes) -> bytes:
    data = bytearray(blob)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(4)
        if op == 0 and data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif op == 1 and data:
            del data[rng.randrange(len(data)):][: rng.randint(1, 8)]
        elif op == 2:
            data[rng.randrange(len(data) + 1):0] = rng.randbytes(rng.randint(1, 8))
        else:
            data = bytearray(data[: rng.randrange(len(data) + 1)])
    return bytes(data)


def _json_mutation(rng: random.Random, blob: bytes, kind: str) -> bytes:
    raw = json.loads(blob)
    body = raw[kind]
    field = rng.choice(list(body))
    body[field] = rng.choice([None, -1, 2**70, "x", [], {}, 1.5, True, "９", "a" * 5000])
    return canonical_json(raw)


def hostile(rng: random.Random, n: int) -> list[tuple[str, bytes]]:
    """(topic kind, payload): ack, resend or policy inputs, none of them genuine and new."""
    other = DashboardSigner(Ed25519PrivateKey.generate())
    out: list[tuple[str, bytes]] = []
    for i in range(n):
        what = ("ack", "resend", "policy")[i % 3]
        good = {"ack": GOOD_ACK, "resend": GOOD_RESEND, "policy": _policy(5)}[what]
        case = i // 3 % 8
        if case == 0:
            blob = rng.randbytes(rng.randint(0, 300))
        elif case == 1:
            blob = _mutate(rng, good)
        elif case == 2 and what != "policy":
            blob = _json_mutation(rng, good, what)
        elif case == 3:  # another signer
            blob = {"ack": other.ack(SITE, NODE, 2, "a" * 64),
                    "resend": other.resend(SITE, NODE, 1, 2),
                    "policy": sign_policy(_bare(9, SITE),
                                          other.key)}[what]
        elif case == 4:  # addressed elsewhere, or another kind's signature
            blob = {"ack": DASH.ack(SITE, "gw2", 2, "a" * 64),
                    "resend": DASH.ack(SITE, NODE, 1, "a" * 64),
                    "policy": sign_policy(_bare(9, "other"),
                                          DASH.key)}[what]
        elif case == 5:  # deep nesting
            blob = b"[" * 5000 + b"]" * 5000
        elif case == 6:  # replays of genuine old ones (counter 1..3 after a newer one)
            blob = {"ack": sign_ack(DASH.key, Ack(SITE, NODE, 1, "a" * 64, 1)),
                    "resend": GOOD_RESEND, "policy": _policy(1)}[what]
        else:
            blob = canonical_json(rng.choice([[], 1, "x", None, {"seq": 10}, {"from": 1}]))
        out.append((what, blob))
    return out


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_raise_only_refusals(blob: bytes) -> None:
    for opener in (open_ack, open_resend):
        with pytest.raises(ReceiptRefused):
            opener(blob, TRUSTED, site=SITE, node=NODE)
    with pytest.raises(PolicyError):
        open_policy(blob, TRUSTED, site=SITE)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_genuine_receipts_are_refused_or_intact(data: st.DataObject) -> None:
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    for good, opener in ((GOOD_ACK, open_ack), (GOOD_RESEND, open_resend)):
        blob = _mutate(rng, good)
        try:
            got = opener(blob, TRUSTED, site=SITE, node=NODE)
        except ReceiptRefused:
            continue
        # a mutation that still verifies changed nothing signed (e.g. whitespace)
        assert got == opener(good, TRUSTED, site=SITE, node=NODE)


def test_three_thousand_hostile_inputs_change_nothing(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    journal = Journal(tmp_path / "j.sqlite", node=NODE, site=SITE, key=key, boot="b")
    journal.append_many([("door.rex", {"i": i}) for i in range(30)], now=NOW, clock="synced")
    refused: list[tuple[str, str]] = []
    publisher = Publisher(journal, MqttLink(MqttSettings(), client_id="fuzz"),
                          clock=lambda: NOW + timedelta(days=1), trusted=TRUSTED,
                          on_refused=lambda what, why: refused.append((what, why)))
    events: list[tuple[str, object]] = []
    store = PolicyStore(tmp_path / "policy.json", TRUSTED, site=SITE,
                        emit=lambda kind, data: events.append((kind, data)))
    # a genuine newer state first: the replays below are older than it
    genuine = DashboardSigner(DASH.key)
    for _ in range(3):
        ack = genuine.ack(SITE, NODE, 2, journal.hash_at(2) or "")
    assert store.offer(_policy(5))
    publisher.on_ack_message("ack", ack)
    publisher.start()
    try:
        inputs = hostile(random.Random(20261207), 3000)
        before = store.current
        kept = 0  # a mutation that still verifies (whitespace) is the same policy: a no-op
        for what, blob in inputs:
            if what == "policy":
                kept += store.offer(blob)
                assert store.current is before
            elif what == "ack":
                publisher.on_ack_message("t", blob)
            else:
                publisher.on_resend_message("t", blob)
        publisher.on_ack_message("t", genuine.ack(SITE, NODE, 30, journal.hash_at(30) or ""))
        assert publisher.wait_acked(30, 30)
    finally:
        publisher.stop()
    receipts = sum(1 for what, _ in inputs if what != "policy")
    stats = publisher.stats
    assert stats["acks"] == 2  # the two genuine acks, nothing else
    # every receipt is accounted for: refused, dropped (queue full), or a genuine resend
    # request (the module's own, replayed: taken once, then a repeat)
    assert stats["acks_refused"] + stats["resends_refused"] + stats["receipts_dropped"] \
        + stats["acks_repeated"] + stats["resends_repeated"] + stats["resends"] \
        + stats["resend_throttled"] == receipts
    assert stats["resends"] <= 1
    assert len(refused) == stats["acks_refused"] + stats["resends_refused"]
    assert journal.ack == 30 and verify_journal(tmp_path / "j.sqlite", key.public_key()).ok
    assert store.current is not None and store.current.version == 5
    rejections = [k for k, _ in events if k == "policy.rejected"]
    assert len(rejections) == sum(1 for what, _ in inputs if what == "policy") - kept
    journal.close()
