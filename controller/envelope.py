"""The event envelope: the versioned wire format every node publishes.

One event is canonical JSON (sorted keys, no spaces, UTF-8). ``hash`` is the SHA-256 over the
canonical JSON of every field except ``hash`` and ``sig``; ``prev`` is the previous event's
``hash`` (``GENESIS`` for seq 1); ``sig`` is Ed25519 by the node key over the 32 raw hash bytes,
base64url without padding.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

SCHEMA_VERSION = 1  # the envelope this code writes
# the envelopes this code reads: its own and the one before (controller.compat: "adjacent")
READ_ENVELOPES = range(max(1, SCHEMA_VERSION - 1), SCHEMA_VERSION + 1)
GENESIS = "0" * 64
MAX_EVENT_BYTES = 64 * 1024
TOPIC_ROOT = "secroom/v1"

ClockState = Literal["synced", "unsynced"]


class EnvelopeError(ValueError):
    """A payload is not a valid event: malformed, oversized, badly hashed or badly signed."""


class UnsupportedEnvelope(EnvelopeError):
    """A well-formed event in an envelope version this code does not read."""

    def __init__(self, version: int) -> None:
        super().__init__(f"unsupported schema version {version}")
        self.version = version


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def b64u(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def format_ts(when: datetime) -> str:
    """UTC with microseconds, e.g. 2026-11-22T07:25:28.123456Z."""
    if when.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


class Event(BaseModel):
    """A signed, hash-chained event as it travels on MQTT and is stored by the dashboard."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: int = SCHEMA_VERSION
    node: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    site: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    seq: int = Field(ge=1)
    id: str
    ts: str = Field(pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
    boot: str = Field(min_length=1, max_length=64)
    clock: ClockState
    kind: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+\.[a-z0-9_]+$")
    data: dict[str, Any]
    prev: str = Field(pattern=r"^[0-9a-f]{64}$")
    hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    sig: str = Field(min_length=86, max_length=86)

    def body(self) -> dict[str, Any]:
        return self.model_dump(exclude={"hash", "sig"})

    def to_bytes(self) -> bytes:
        return canonical_json(self.model_dump())

    @property
    def when(self) -> datetime:
        return parse_ts(self.ts)

    def topic(self) -> str:
        return f"{TOPIC_ROOT}/{self.site}/{self.node}/events/{self.kind}"


def body_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(body)).hexdigest()


def seal(
    key: Ed25519PrivateKey,
    *,
    node: str,
    site: str,
    seq: int,
    ts: datetime,
    boot: str,
    clock: ClockState,
    kind: str,
    data: dict[str, Any],
    prev: str,
) -> Event:
    """Build, hash and sign an event."""
    body: dict[str, Any] = {
        "v": SCHEMA_VERSION,
        "node": node,
        "site": site,
        "seq": seq,
        "id": f"{node}:{seq}",
        "ts": format_ts(ts),
        "boot": boot,
        "clock": clock,
        "kind": kind,
        "data": data,
        "prev": prev,
    }
    digest = body_hash(body)
    sig = b64u(key.sign(bytes.fromhex(digest)))
    return Event(**body, hash=digest, sig=sig)


def _fast_hash_ok(raw: dict[str, Any], claimed: Any) -> bool:
    """orjson's canonical bytes of the body (sorted keys, compact, UTF-8) hashed to ``claimed``.

    A match proves the body (those exact bytes are what the node hashed); a miss proves nothing,
    because orjson formats some values (floats, huge ints) differently from ``canonical_json``,
    so the caller then checks with ``canonical_json``.
    """
    try:
        body = orjson.dumps(
            {k: v for k, v in raw.items() if k != "hash" and k != "sig"},
            option=orjson.OPT_SORT_KEYS,
        )
    except (TypeError, ValueError):  # orjson.JSONEncodeError is a TypeError
        return False
    return hashlib.sha256(body).hexdigest() == claimed


def parse(payload: bytes) -> Event:
    """Parse wire bytes into an Event; checks size, shape, id and hash (not the signature)."""
    if len(payload) > MAX_EVENT_BYTES:
        raise EnvelopeError(f"event of {len(payload)} bytes exceeds {MAX_EVENT_BYTES}")
    try:
        raw = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raw = None  # orjson is stricter (huge ints, lone surrogates): the stdlib decides
    fast = isinstance(raw, dict) and _fast_hash_ok(raw, raw.get("hash"))
    if not fast:
        try:
            raw = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EnvelopeError(f"event is not JSON: {getattr(exc, 'msg', exc)}") from exc
    if not isinstance(raw, dict):
        raise EnvelopeError("event is not a JSON object")
    try:
        # strict on the fast path: the bytes hashed are the bytes given, so no coercion may
        # turn them into a different event (the stdlib path re-hashes the coerced model instead)
        event = Event.model_validate(raw, strict=fast)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) or "event" for e in exc.errors())
        raise EnvelopeError(f"event has invalid fields: {fields}") from exc
    if event.v not in READ_ENVELOPES:
        raise UnsupportedEnvelope(event.v)
    if event.id != f"{event.node}:{event.seq}":
        raise EnvelopeError("event id does not match node:seq")
    if not fast and body_hash(event.body()) != event.hash:
        raise EnvelopeError("event hash does not match its body")
    return event


def verify_signature(event: Event, public_key: Ed25519PublicKey) -> None:
    """Raise EnvelopeError unless ``sig`` is the node key's signature over ``hash``."""
    try:
        public_key.verify(unb64u(event.sig), bytes.fromhex(event.hash))
    except (InvalidSignature, ValueError) as exc:
        raise EnvelopeError(f"bad signature on {event.id}") from exc


def verify_chain(events: list[Event], public_key: Ed25519PublicKey, prev: str = GENESIS) -> None:
    """Verify contiguous seq, prev links and signatures of events in seq order."""
    expected_seq = events[0].seq if events else 1
    for event in events:
        if event.seq != expected_seq:
            raise EnvelopeError(f"gap: expected seq {expected_seq}, found {event.seq}")
        if event.prev != prev:
            raise EnvelopeError(f"chain broken at {event.id}")
        if body_hash(event.body()) != event.hash:
            raise EnvelopeError(f"hash mismatch at {event.id}")
        verify_signature(event, public_key)
        prev = event.hash
        expected_seq += 1


def topic_for(site: str, node: str, leaf: str) -> str:
    """secroom/v1/{site}/{node}/{leaf} for leaf in state, ack, resend, events/{kind}."""
    return f"{TOPIC_ROOT}/{site}/{node}/{leaf}"


def policy_topic(site: str, node: str) -> str:
    """Where ``node``'s own signed policy slice is retained (only it may read there)."""
    return f"{TOPIC_ROOT}/{site}/{node}/policy"


def legacy_policy_topic(site: str) -> str:
    """Where the whole-site policy was published before slices (the dashboard clears it)."""
    return f"{TOPIC_ROOT}/{site}/policy"


def now_utc() -> datetime:
    return datetime.now(UTC)
