"""The dashboard's side of the receipts contract for tests that play the dashboard: a key the
node under test pins, and signed acks and resend requests with rising counters."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controller.keys import public_b64
from controller.receipts import Ack, Resend, sign_ack, sign_resend


class DashboardSigner:
    def __init__(self, key: Ed25519PrivateKey | None = None) -> None:
        self.key = key or Ed25519PrivateKey.generate()
        self._counter = itertools.count(1)

    def write_public(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(public_b64(self.key.public_key()) + "\n")
        return path

    def ack(self, site: str, node: str, seq: int, digest: str) -> bytes:
        return sign_ack(self.key, Ack(site, node, seq, digest, next(self._counter)))

    def resend(self, site: str, node: str, first: int, last: int) -> bytes:
        return sign_resend(self.key, Resend(site, node, first, last, next(self._counter)))


def ack_seq(payload: bytes) -> int:
    """The seq of a signed ack as the dashboard published it (no signature check: tests that
    only wait for an ack; the nodes' own checks are tested in tests/controller)."""
    return int(json.loads(payload)["ack"]["seq"])


def resend_body(payload: bytes) -> dict[str, int]:
    body = json.loads(payload)["resend"]
    return {"from": int(body["from"]), "to": int(body["to"])}
