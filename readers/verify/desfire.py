"""MIFARE DESFire EV2/EV3: AES mutual authentication (AuthenticateEV2First) with a per-card key.

Crypto (all through ``cryptography``):

* ``an10922_aes128``: NXP AN10922 AES-128 key diversification, which is AES-CMAC over
  ``01 || UID || AID || system identifier`` (17..32 bytes, so CMAC's padding is AN10922's).
* ``ev2_session_keys``: AN12343 session vectors SV1/SV2 -> SesAuthENC, SesAuthMAC.
* ``ev2_mac``: the EV2 secure-messaging MAC (CMAC under SesAuthMAC, odd bytes).

Protocol: DESFire native commands wrapped in ISO 7816-4 APDUs (``90 INS 00 00 Lc data 00``,
answers end in ``91 xx``). The reader selects the secroom application, runs EV2First with key
0 diversified from the site master key by the card's UID, and accepts the card only when the
card's answer proves it decrypted our challenge (RndA rotated). A clone with the same UID and
no key cannot produce it; a fresh RndA each tap makes a recorded answer worthless.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from readers.verify.base import (
    CardType,
    Credential,
    SiteKey,
    Strength,
    Transmit,
)

SECROOM_AID: Final[bytes] = bytes.fromhex("5253F0")  # sent as on the wire (LSB first)
SYSTEM_ID: Final[bytes] = b"secroom-site"  # AN10922 system identifier (keeps M in 17..32)
ATR: Final[bytes] = bytes.fromhex("3B8180018080")  # what PC/SC readers report for DESFire

CMD_SELECT_APP: Final[int] = 0x5A
CMD_EV2_FIRST: Final[int] = 0x71
CMD_MORE: Final[int] = 0xAF
ST_OK: Final[int] = 0x00
ST_MORE: Final[int] = 0xAF
ST_AUTH_ERROR: Final[int] = 0xAE
ST_APP_NOT_FOUND: Final[int] = 0xA0


def _cbc0(key: bytes, data: bytes, *, decrypt: bool = False) -> bytes:
    """AES-CBC with a zero IV (how EV2First enciphers its challenges)."""
    cipher = Cipher(algorithms.AES(key), modes.CBC(bytes(16)))
    op = cipher.decryptor() if decrypt else cipher.encryptor()
    return op.update(data) + op.finalize()


def aes_cmac(key: bytes, data: bytes) -> bytes:
    c = CMAC(algorithms.AES(key))
    c.update(data)
    return c.finalize()


def an10922_aes128(master: bytes, uid: bytes, aid: bytes, system_id: bytes) -> bytes:
    """The card's AES-128 key diversified from ``master`` (AN10922 section 2.2)."""
    if len(master) != 16:
        raise ValueError("AN10922 AES-128 needs a 16-byte master key")
    m = b"\x01" + uid + aid + system_id
    if not 17 <= len(m) <= 32:
        raise ValueError(f"diversification input has {len(m)} bytes (AN10922 wants 17..32 here)")
    return aes_cmac(master, m)


def site_desfire_master(site: SiteKey) -> bytes:
    """The DESFire AES master key of a site key (HKDF, so no two card types share a key)."""
    return HKDF(hashes.SHA256(), 16, salt=None,
                info=b"secroom/v1 desfire an10922 master").derive(site.secret)


def card_key(site: SiteKey, uid: bytes) -> bytes:
    return an10922_aes128(site_desfire_master(site), uid, SECROOM_AID, SYSTEM_ID)


def rotl(b: bytes) -> bytes:
    return b[1:] + b[:1]


def ev2_session_keys(key: bytes, rnd_a: bytes, rnd_b: bytes) -> tuple[bytes, bytes]:
    """(SesAuthENC, SesAuthMAC) after AuthenticateEV2First (AN12343 section 6.4)."""
    tail = rnd_a[0:2] + bytes(x ^ y for x, y in zip(rnd_a[2:8], rnd_b[0:6], strict=True))
    tail += rnd_b[6:16] + rnd_a[8:16]
    return (aes_cmac(key, bytes.fromhex("A55A00010080") + tail),
            aes_cmac(key, bytes.fromhex("5AA500010080") + tail))


def ev2_mac(ses_mac: bytes, cmd: int, counter: int, ti: bytes, data: bytes) -> bytes:
    """EV2 MACt: CMAC(SesAuthMAC, Cmd || CmdCtr (LE) || TI || data), its odd bytes."""
    full = aes_cmac(ses_mac, bytes((cmd,)) + counter.to_bytes(2, "little") + ti + data)
    return full[1::2]


def wrap(cmd: int, data: bytes = b"") -> bytes:
    """A DESFire native command as an ISO 7816-4 APDU."""
    if data:
        return bytes((0x90, cmd, 0x00, 0x00, len(data))) + data + b"\x00"
    return bytes((0x90, cmd, 0x00, 0x00, 0x00))


def unwrap(reply: bytes) -> tuple[int, bytes]:
    """(DESFire status, data) of a wrapped answer; status -1 when it is not ``91 xx``."""
    if len(reply) < 2 or reply[-2] != 0x91:
        return -1, b""
    return reply[-1], reply[:-2]


def _sw(reply: bytes) -> str:
    return reply[-2:].hex().upper() if len(reply) >= 2 else f"{len(reply)}-byte reply"


def authenticate(
    transmit: Transmit, key: bytes, *, key_no: int = 0,
    random: Callable[[int], bytes] = os.urandom,
) -> tuple[bool, str]:
    """Run AuthenticateEV2First with ``key``; (True, "") when the card proved it, else
    (False, why) with a safe detail."""
    session, why = authenticate_session(transmit, key, key_no=key_no, random=random)
    return session is not None, why


def authenticate_session(
    transmit: Transmit, key: bytes, *, key_no: int = 0,
    random: Callable[[int], bytes] = os.urandom,
) -> tuple[tuple[bytes, bytes, bytes] | None, str]:
    """AuthenticateEV2First; ((SesAuthENC, SesAuthMAC, TI), "") when the card proved ``key``,
    else (None, why). The session is for ``readers.verify.desfire_sm``."""
    status, ek_rnd_b = unwrap(transmit(wrap(CMD_EV2_FIRST, bytes((key_no, 0x00)))))
    if status != ST_MORE or len(ek_rnd_b) != 16:
        return None, f"EV2First step 1: status {status:#04x}, {len(ek_rnd_b)} byte(s)"
    rnd_b = _cbc0(key, ek_rnd_b, decrypt=True)
    rnd_a = random(16)
    reply = transmit(wrap(CMD_MORE, _cbc0(key, rnd_a + rotl(rnd_b))))
    status, answer = unwrap(reply)
    if status == ST_AUTH_ERROR:
        return None, "EV2First step 2: authentication error (wrong key)"
    if status != ST_OK or len(answer) != 32:
        return None, f"EV2First step 2: SW {_sw(reply)}, {len(answer)} byte(s)"
    plain = _cbc0(key, answer, decrypt=True)
    if plain[4:20] != rotl(rnd_a):
        return None, "EV2First step 2: the card did not prove the key (RndA' mismatch)"
    enc, mac = ev2_session_keys(key, rnd_a, rnd_b)
    return (enc, mac, plain[:4]), ""


def verify(
    transmit: Transmit, uid: bytes, keys: Sequence[SiteKey], *,
    random: Callable[[int], bytes] = os.urandom,
) -> Credential:
    """Prove a DESFire card holds key 0 of the secroom application under one of ``keys``
    (newest first: during a changeover the old key still verifies)."""
    reply = transmit(wrap(CMD_SELECT_APP, SECROOM_AID))
    status, _ = unwrap(reply)
    if status == ST_APP_NOT_FOUND:
        return Credential(Strength.WEAK, CardType.DESFIRE, "no secroom application on the card")
    if status != ST_OK:
        return Credential(Strength.FAILED, CardType.DESFIRE,
                          f"select application: SW {_sw(reply)}")
    why = "no site key"
    for site in keys:
        ok, why = authenticate(transmit, card_key(site, uid), random=random)
        if ok:
            return Credential(Strength.VERIFIED, CardType.DESFIRE, "EV2First AES", site.key_id)
    return Credential(Strength.FAILED, CardType.DESFIRE, why)
