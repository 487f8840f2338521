"""Site card master keys: generated here, sealed at rest, never in a log, an event or a page.

A key is 32 random bytes (controller.card_keys.new_site_key). The row keeps it sealed with
AES-256-GCM under a key derived from the dashboard's policy signing key, so a copy of the
database alone opens none. Nodes receive the keys only inside their signed slice, sealed again
to each node (controller.card_keys). Rotation: ``rotate`` makes a new active key and keeps the
old one as ``previous``; both go to the nodes, so cards still on the old key keep opening while
they are re-keyed at a reader; ``retire_previous`` ends the changeover (the secret is wiped).
Every change is audited by key id.
"""

from __future__ import annotations

import os
from datetime import datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.card_keys import new_site_key
from controller.envelope import b64u, unb64u
from controller.keys import derive_secret
from dashboard.audit import append_audit
from dashboard.models.cardkeys import CardMasterKey
from dashboard.services.base import mark_policy_dirty
from readers.verify.base import SiteKey


class CardKeyError(ValueError):
    """A key action is not possible now (say which and what to do)."""


def _aead(signing_key: Ed25519PrivateKey) -> AESGCM:
    return AESGCM(derive_secret(signing_key, "card-master-keys at rest"))


def _seal(signing_key: Ed25519PrivateKey, key: SiteKey) -> str:
    nonce = os.urandom(12)
    return b64u(nonce + _aead(signing_key).encrypt(nonce, key.secret, key.key_id.encode()))


def _open(signing_key: Ed25519PrivateKey, row: CardMasterKey) -> SiteKey:
    raw = unb64u(row.sealed or "")
    try:
        secret = _aead(signing_key).decrypt(raw[:12], raw[12:], row.key_id.encode())
    except (InvalidTag, ValueError) as exc:
        raise CardKeyError(f"card key {row.key_id} does not open with this dashboard's signing "
                           "key (restored with another key?)") from exc
    return SiteKey(row.key_id, secret)


def _rows(session: Session, *states: str) -> list[CardMasterKey]:
    return list(session.scalars(select(CardMasterKey).where(CardMasterKey.state.in_(states))
                                .order_by(CardMasterKey.created_at.desc())))


def key_ids(session: Session) -> list[str]:
    """Ids of the keys the nodes get, newest first (active, then previous)."""
    return [r.key_id for r in sorted(_rows(session, "active", "previous"),
                                     key=lambda r: r.state != "active")]


def site_keys(session: Session, signing_key: Ed25519PrivateKey,
              ids: list[str] | None = None) -> list[SiteKey]:
    """The keys (active first) to seal into the slices; only ``ids`` when given."""
    wanted = key_ids(session) if ids is None else ids
    rows = {r.key_id: r for r in _rows(session, "active", "previous")}
    return [_open(signing_key, rows[i]) for i in wanted if i in rows]


def rotate(session: Session, signing_key: Ed25519PrivateKey, *, actor: str,
           now: datetime) -> str:
    """A new active key (the first one, or a rotation: the active one becomes previous)."""
    if _rows(session, "previous"):
        raise CardKeyError("a changeover is still running: re-key the cards still on the "
                           "previous key, then retire it before the next rotation")
    before = key_ids(session)
    for row in _rows(session, "active"):
        row.state = "previous"
    key = new_site_key()
    session.add(CardMasterKey(key_id=key.key_id, state="active", sealed=_seal(signing_key, key),
                              created_at=now, created_by=actor))
    session.flush()
    append_audit(session, actor=actor, action="card_key.rotate", target_type="card_key",
                 target_id=key.key_id, before={"keys": before},
                 after={"keys": key_ids(session)}, now=now)
    mark_policy_dirty(session, now)  # the next version carries the new key
    return key.key_id


def retire_previous(session: Session, *, actor: str, now: datetime) -> str:
    """End the changeover: the previous key is no longer sent; its secret is wiped."""
    rows = _rows(session, "previous")
    if not rows:
        raise CardKeyError("no previous card key to retire")
    for row in rows:
        row.state, row.sealed, row.retired_at = "retired", None, now
        append_audit(session, actor=actor, action="card_key.retire", target_type="card_key",
                     target_id=row.key_id, before={"state": "previous"},
                     after={"state": "retired"}, now=now)
    mark_policy_dirty(session, now)
    return rows[0].key_id
