"""A generator of random and hostile MQTT payloads aimed at the ingest (shared by tests/bench)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controller.envelope import Event, b64u, body_hash, canonical_json, seal

KINDS = (
    "garbage",
    "huge",
    "not_object",
    "wrong_types",
    "missing",
    "extra",
    "bad_version",
    "tampered",
    "forged_sig",
    "random_sig",
    "other_key",
    "replay",
    "unknown_node",
    "wrong_site",
    "topic_mismatch",
    "bad_topic",
    "deep",
    "bad_state",
    "huge_seq",
    "bad_date",
)


def _resign_free(body: dict) -> bytes:
    """A payload whose hash matches its body but whose signature is random bytes."""
    body = dict(body)
    body.pop("hash", None)
    body.pop("sig", None)
    digest = body_hash(body)
    return canonical_json({**body, "hash": digest, "sig": b64u(random.randbytes(64))})


def hostile_payloads(
    rng: random.Random, real: list[Event], site: str, count: int
) -> Iterator[tuple[str, bytes, str]]:
    """Yield (topic, payload, category). ``real`` are genuine events of the enrolled node."""
    stranger = Ed25519PrivateKey.generate()
    base = real[0]
    node = base.node
    topic = base.topic()
    for i in range(count):
        cat = KINDS[i % len(KINDS)]
        ev = rng.choice(real)
        body = ev.model_dump()
        if cat == "garbage":
            yield topic, rng.randbytes(rng.randint(0, 2000)), cat
        elif cat == "huge":
            yield topic, b"{" + b" " * (64 * 1024 + rng.randint(1, 4096)) + b"}", cat
        elif cat == "not_object":
            yield topic, json.dumps(rng.choice([[1, 2], "x", 3, None, True, 1.5])).encode(), cat
        elif cat == "wrong_types":
            field = rng.choice(["seq", "node", "data", "ts", "clock", "prev", "v"])
            body[field] = rng.choice([[], {}, "x", -1, None, 1.5, "９"])
            yield topic, json.dumps(body).encode(), cat
        elif cat == "missing":
            body.pop(rng.choice(list(body)))
            yield topic, canonical_json(body), cat
        elif cat == "extra":
            body["extra"] = "x"
            yield topic, canonical_json(body), cat
        elif cat == "bad_version":
            body["v"] = 2
            yield topic, _resign_free(body), cat
        elif cat == "tampered":  # data changed, hash and signature left as they were
            body["data"] = {"granted": True, "door": "d1", "n": i}
            yield topic, canonical_json(body), cat
        elif cat == "forged_sig":  # new content, hash recomputed, signature random
            body["data"] = {"forged": i}
            body["seq"] = ev.seq + rng.randint(1, 5) * 1000
            body["id"] = f"{node}:{body['seq']}"
            yield topic, _resign_free(body), cat
        elif cat == "random_sig":  # a replayed real event with its signature replaced
            body["sig"] = b64u(rng.randbytes(64))
            yield topic, canonical_json(body), cat
        elif cat == "other_key":  # a well-formed event signed by a key that is not enrolled
            forged = seal(
                stranger,
                node=node,
                site=site,
                seq=ev.seq + 100_000,
                ts=ev.when,
                boot="evil",
                clock="synced",
                kind="door.access",
                data={"door": "d1", "granted": True, "direction": "in", "person_id": "mallory"},
                prev=ev.hash,
            )
            yield forged.topic(), forged.to_bytes(), cat
        elif cat == "replay":
            yield topic, ev.to_bytes(), cat
        elif cat == "unknown_node":
            name = f"ghost{rng.randint(0, 10**6)}"
            forged = seal(
                stranger,
                node=name,
                site=site,
                seq=1,
                ts=ev.when,
                boot="b",
                clock="synced",
                kind="node.started",
                data={},
                prev="0" * 64,
            )
            yield forged.topic(), forged.to_bytes(), cat
        elif cat == "wrong_site":
            body["site"] = "elsewhere"
            yield topic, _resign_free(body), cat
        elif cat == "topic_mismatch":
            yield f"secroom/v1/{site}/{node}/events/door.forced", ev.to_bytes(), cat
        elif cat == "bad_topic":
            yield (
                rng.choice(
                    [
                        f"secroom/v1/{site}/{node}/other",
                        f"secroom/v1/{site}/x",
                        "secroom/v2/a/b/events/c.d",
                    ]
                ),
                ev.to_bytes(),
                cat,
            )
        elif cat == "deep":
            yield topic, b"[" * 30_000 + b"]" * 30_000, cat
        elif cat == "bad_state":
            yield (
                f"secroom/v1/{site}/{node}/state",
                rng.choice(
                    [
                        b"{",
                        b"[]",
                        b'{"state":"dancing"}',
                        b'{"state":"online","public_key":"x"}',
                        rng.randbytes(100),
                    ]
                ),
                cat,
            )
        elif cat == "huge_seq":
            body["seq"] = 10**30
            body["id"] = f"{node}:{body['seq']}"
            yield topic, _resign_free(body), cat
        elif cat == "bad_date":
            body["ts"] = "2026-13-45T25:61:61.000000Z"
            yield topic, _resign_free(body), cat
