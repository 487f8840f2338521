"""Receipts from the dashboard to a node: acks (prune below this seq) and resend requests.

Both are signed by the dashboard with the key the nodes already pin for the policy
(``[policy] trusted_keys``), and bound to one node of one site. Wire format, canonical JSON::

    {"key_id": "<16 chars>", "ack": {...}, "sig": "<base64url Ed25519>"}      (or "resend")

``sig`` is the Ed25519 signature over ``CONTEXT[kind] + canonical_json(body)``; the contexts
keep an ack signature from passing as a policy or a resend request and back.

An ack body is ``{"site", "node", "seq", "hash", "counter"}``: the highest contiguous seq the
dashboard stored, the hash of the event it stored at that seq (so an ack can only acknowledge
the very events this node produced: not a seq it never wrote, nor another journal's), and a
counter the dashboard raises with every new receipt of that kind for that node (an older
receipt is refused as a replay; the retained ack re-delivered on reconnect repeats the same
counter and is a no-op). A resend body is ``{"site", "node", "from", "to", "counter"}``.
An enrol command (personalise the next card at one of the node's readers, controller.card_enrol)
is ``{"site", "node", "reader", "request", "wait_s", "issued_at", "counter"}`` (``issued_at``:
when the dashboard sent it, so a node with a synchronised clock refuses one delivered late).

A node refuses anything else (unsigned, unknown signer, bad signature, wrong node or site, an
old counter, a seq beyond its head, a hash that is not its own), counts it, and prunes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from controller.envelope import b64u, canonical_json, unb64u
from controller.keys import key_id

ReceiptKind = Literal["ack", "resend", "enrol"]
CONTEXT: dict[str, bytes] = {"ack": b"secroom/v1/ack\n", "resend": b"secroom/v1/resend\n",
                             "enrol": b"secroom/v1/enrol\n"}
ENROL_WAIT_MAX_S = 120
MAX_RECEIPT_BYTES = 2048
MAX_SEQ = 2**62

RefusalReason = Literal["malformed", "unsigned", "unknown_key", "bad_signature", "wrong_node",
                        "replayed", "beyond_head", "not_ours", "too_large_range"]


class ReceiptRefused(Exception):
    def __init__(self, reason: RefusalReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: RefusalReason = reason
        self.detail = detail


@dataclass(frozen=True)
class Ack:
    site: str
    node: str
    seq: int
    hash: str
    counter: int


@dataclass(frozen=True)
class EnrolCommand:
    site: str
    node: str
    reader: str
    request: str
    wait_s: int
    counter: int
    issued_at: str = ""  # canonical UTC timestamp (controller.envelope.format_ts)


@dataclass(frozen=True)
class Resend:
    site: str
    node: str
    first: int
    last: int
    counter: int


def _seal(kind: ReceiptKind, body: dict[str, object], key: Ed25519PrivateKey) -> bytes:
    sig = b64u(key.sign(CONTEXT[kind] + canonical_json(body)))
    return canonical_json({"key_id": key_id(key.public_key()), kind: body, "sig": sig})


def sign_ack(key: Ed25519PrivateKey, ack: Ack) -> bytes:
    return _seal("ack", {"site": ack.site, "node": ack.node, "seq": ack.seq, "hash": ack.hash,
                         "counter": ack.counter}, key)


def sign_resend(key: Ed25519PrivateKey, req: Resend) -> bytes:
    return _seal("resend", {"site": req.site, "node": req.node, "from": req.first,
                            "to": req.last, "counter": req.counter}, key)


def sign_enrol(key: Ed25519PrivateKey, cmd: EnrolCommand) -> bytes:
    return _seal("enrol", {"site": cmd.site, "node": cmd.node, "reader": cmd.reader,
                           "request": cmd.request, "wait_s": cmd.wait_s,
                           "issued_at": cmd.issued_at, "counter": cmd.counter}, key)


def _int(body: dict[str, object], name: str, low: int) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= MAX_SEQ:
        raise ReceiptRefused("malformed", f"{name} is not a whole number >= {low}")
    return value


def _open(kind: ReceiptKind, blob: bytes, trusted: Sequence[Ed25519PublicKey], *, site: str,
          node: str) -> dict[str, object]:
    if len(blob) > MAX_RECEIPT_BYTES:
        raise ReceiptRefused("malformed", f"{len(blob)} bytes")
    try:
        raw = json.loads(blob)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # absurd nesting too
        raise ReceiptRefused("malformed", "not JSON") from exc
    if not isinstance(raw, dict):
        raise ReceiptRefused("malformed", "not a JSON object")
    if "sig" not in raw or "key_id" not in raw:
        raise ReceiptRefused("unsigned", f"an {kind} without a signature")
    body, sig, kid = raw.get(kind), raw["sig"], raw["key_id"]
    if set(raw) != {kind, "sig", "key_id"} or not isinstance(body, dict) \
            or not isinstance(sig, str) or not isinstance(kid, str):
        raise ReceiptRefused("malformed", f"not a signed {kind}")
    key = next((k for k in trusted if key_id(k) == kid), None)
    if key is None:
        raise ReceiptRefused("unknown_key", f"signer {kid[:16]!r} is not trusted")
    try:
        key.verify(unb64u(sig), CONTEXT[kind] + canonical_json(body))
    except (InvalidSignature, ValueError) as exc:
        raise ReceiptRefused("bad_signature", "signature does not match") from exc
    if body.get("site") != site or body.get("node") != node:
        raise ReceiptRefused("wrong_node", f"addressed to {str(body.get('node'))[:64]!r}")
    return body


def open_ack(blob: bytes, trusted: Sequence[Ed25519PublicKey], *, site: str, node: str) -> Ack:
    """Shape, signer, signature and addressee; the node then checks counter, seq and hash."""
    body = _open("ack", blob, trusted, site=site, node=node)
    digest = body.get("hash")
    if not isinstance(digest, str) or len(digest) > 128:
        raise ReceiptRefused("malformed", "hash is not a string")
    if set(body) != {"site", "node", "seq", "hash", "counter"}:
        raise ReceiptRefused("malformed", "unexpected ack fields")
    return Ack(site, node, _int(body, "seq", 1), digest, _int(body, "counter", 1))


def open_resend(blob: bytes, trusted: Sequence[Ed25519PublicKey], *, site: str,
                node: str) -> Resend:
    body = _open("resend", blob, trusted, site=site, node=node)
    if set(body) != {"site", "node", "from", "to", "counter"}:
        raise ReceiptRefused("malformed", "unexpected resend fields")
    first, last = _int(body, "from", 1), _int(body, "to", 1)
    if first > last:
        raise ReceiptRefused("malformed", "from is after to")
    return Resend(site, node, first, last, _int(body, "counter", 1))


def open_enrol(blob: bytes, trusted: Sequence[Ed25519PublicKey], *, site: str,
               node: str) -> EnrolCommand:
    body = _open("enrol", blob, trusted, site=site, node=node)
    if set(body) != {"site", "node", "reader", "request", "wait_s", "issued_at", "counter"}:
        raise ReceiptRefused("malformed", "unexpected enrol fields")
    reader, request, issued = body.get("reader"), body.get("request"), body.get("issued_at")
    if not isinstance(issued, str) or len(issued) > 40:
        raise ReceiptRefused("malformed", "issued_at is not a timestamp")
    if not isinstance(reader, str) or not 1 <= len(reader) <= 128:
        raise ReceiptRefused("malformed", "reader is not a reader name")
    if not isinstance(request, str) or not 1 <= len(request) <= 64:
        raise ReceiptRefused("malformed", "request is not an id")
    wait_s = _int(body, "wait_s", 1)
    if wait_s > ENROL_WAIT_MAX_S:
        raise ReceiptRefused("malformed", f"wait_s above {ENROL_WAIT_MAX_S}")
    return EnrolCommand(site, node, reader, request, wait_s, _int(body, "counter", 1), issued)
