"""Site card master keys inside a node's policy slice, sealed to that node.

The dashboard generates each site card master key (32 random bytes, ``new_site_key``) and keeps
it off every log and event. A node that verifies cards receives the keys in its signed slice,
each sealed with AES-256-GCM under a wrapping key derived (HKDF-SHA256) from the node's card key
(``controller.policy_slice.card_key_for``: handed to the node once at installation, held by the
node and the dashboard only). The associated data binds a sealed key to its site, node and key
id, so a sealed key copied into another node's slice, or renamed, does not open. The signature
over the slice makes the list itself tamper-evident; the seal keeps it secret on the broker and
on the node's disk (the stored slice holds only ciphertext).

Rotation: the slice lists the keys newest first; during a changeover it carries the new and the
old key, and a card verifies under either (readers.verify), until the old one is retired.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import BaseModel, ConfigDict, Field

from controller.envelope import b64u, unb64u
from readers.verify.base import SiteKey

KEY_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,32}$"


class CardKeyError(Exception):
    """A sealed card key could not be opened (wrong node key, tampered, malformed)."""


class SealedCardKey(BaseModel):
    """One site card master key as a slice carries it: only the id is readable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key_id: str = Field(pattern=KEY_ID_PATTERN)
    nonce: str = Field(min_length=16, max_length=16)  # 12 bytes, base64url
    sealed: str = Field(min_length=64, max_length=64)  # 32-byte key + 16-byte tag, base64url


def new_site_key(key_id: str | None = None) -> SiteKey:
    """A fresh site card master key (its id is random unless given)."""
    return SiteKey(key_id or f"ck-{secrets.token_hex(4)}", os.urandom(32))


def _wrap_key(card_key: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt=None,
                info=b"secroom card master key wrap v1").derive(card_key)


def _aad(site: str, node: str, key_id: str) -> bytes:
    return f"secroom/v1 card-key {site}/{node}/{key_id}".encode()


def seal(card_key: bytes, site: str, node: str, key: SiteKey) -> SealedCardKey:
    nonce = os.urandom(12)
    ct = AESGCM(_wrap_key(card_key)).encrypt(nonce, key.secret, _aad(site, node, key.key_id))
    return SealedCardKey(key_id=key.key_id, nonce=b64u(nonce), sealed=b64u(ct))


def unseal_all(card_key: bytes, site: str, node: str,
               sealed: Sequence[SealedCardKey]) -> list[SiteKey]:
    """The site keys of a slice, newest first; CardKeyError if any does not open."""
    aead = AESGCM(_wrap_key(card_key))
    keys: list[SiteKey] = []
    for item in sealed:
        try:
            secret = aead.decrypt(unb64u(item.nonce), unb64u(item.sealed),
                                  _aad(site, node, item.key_id))
        except (InvalidTag, ValueError) as exc:
            raise CardKeyError(f"card key {item.key_id} does not open with this node's card "
                               "key (another node's slice, or tampered)") from exc
        keys.append(SiteKey(item.key_id, secret))
    return keys
