"""FeliCa Lite-S: read with MAC_A, the card key diversified from the site master key by the ID.

Crypto (``cryptography``'s TripleDES, 2-key for the card key and session key, 3-key for the
diversification master):

* ``felica_mac``: FeliCa Lite's MAC: each 8-byte block reversed, 3DES-CBC, last block reversed
  (nfcpy ``tt3_sony.generate_mac``; vectors in tests).
* ``session_key``: SK = 3DES-CBC(CK, IV 0)(RC1 || RC2).
* ``diversify``: the card key CK from a 24-byte master and the 16-byte ID block (a CMAC-like
  construction; the layout of creacorporation's mSCFelicaMac and ode1022/esp32_felica_lite),
  in the byte order written to block 0x87 (the cipher takes each half reversed).
* ``mac_a``: MAC_A over the block numbers read and their data, IV = RC1.

Protocol: FeliCa commands through the reader's pass-through. The reader writes a fresh random
challenge RC to block 0x80 (Write Without Encryption), then reads the ID block 0x82 with MAC_A
0x91 in one Read Without Encryption; the card computes MAC_A under SK, which only a card that
holds CK can. The ID block must carry the IDm read as the UID. ``passthrough`` wraps a FeliCa
frame (length byte first) in the reader's pseudo-APDU: the default is the PC/SC Direct Transmit
``FF 00 00 00 Lc`` that ACS ACR12xx readers take (answer: frame + 90 00).
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable, Sequence
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

try:  # cryptography >= 43 keeps 3DES among the "decrepit" algorithms
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:  # pragma: no cover - older cryptography
    from cryptography.hazmat.primitives.ciphers.algorithms import TripleDES

from readers.verify.base import CardType, Credential, SiteKey, Strength, Transmit

BLOCK_RC: Final[int] = 0x80
BLOCK_ID: Final[int] = 0x82
BLOCK_CK: Final[int] = 0x87
BLOCK_MAC_A: Final[int] = 0x91
SERVICE_READ: Final[bytes] = b"\x0b\x00"  # service code 0x000B (read-only), little endian
SERVICE_WRITE: Final[bytes] = b"\x09\x00"  # 0x0009 (read/write)
CMD_READ: Final[int] = 0x06
CMD_WRITE: Final[int] = 0x08


def _3des(key: bytes, data: bytes, iv: bytes | None) -> bytes:
    if len(key) == 16:  # 2-key 3DES is K1 K2 K1 (cryptography wants it spelt out)
        key = key + key[:8]
    # one block under CBC with a zero IV is that block's raw encryption (what ``diversify`` uses)
    enc = Cipher(TripleDES(key), modes.CBC(iv if iv is not None else bytes(8))).encryptor()
    return enc.update(data) + enc.finalize()


def _rev8(data: bytes) -> bytes:
    return b"".join(data[i:i + 8][::-1] for i in range(0, len(data), 8))


def felica_mac(data: bytes, key: bytes, iv: bytes, *, flip_key: bool = False) -> bytes:
    """FeliCa Lite(-S) MAC over ``data`` (a multiple of 8 bytes)."""
    if len(data) % 8 or len(key) != 16 or len(iv) != 8:
        raise ValueError("MAC needs 8-byte blocks, a 16-byte key and an 8-byte IV")
    if flip_key:
        key = key[8:] + key[:8]
    return _3des(key, _rev8(data), iv)[-8:][::-1]


def session_key(card_key: bytes, rc: bytes) -> bytes:
    if len(card_key) != 16 or len(rc) != 16:
        raise ValueError("card key and challenge have 16 bytes")
    return _3des(card_key, rc, bytes(8))


def _shift1(block: bytes) -> bytes:
    n = int.from_bytes(block, "big") << 1
    if block[0] & 0x80:
        n ^= 0x1B
    return (n & (2**64 - 1)).to_bytes(8, "big")


def diversify(master: bytes, id_block: bytes) -> bytes:
    """The card key CK (16 bytes) from a 24-byte 3-key 3DES master and the 16-byte ID block."""
    if len(master) != 24 or len(id_block) != 16:
        raise ValueError("diversification needs a 24-byte master and the 16-byte ID block")

    def e(block: bytes) -> bytes:  # one 8-byte block
        return _3des(master, block, None)

    k1 = _shift1(e(bytes(8)))
    m1 = id_block[:8]
    m2 = bytes(a ^ b for a, b in zip(id_block[8:], k1, strict=True))

    def t(first: bytes) -> bytes:
        return e(bytes(a ^ b for a, b in zip(e(first), m2, strict=True)))

    return t(m1) + t(bytes((m1[0] ^ 0x80,)) + m1[1:])


def mac_a(sk: bytes, rc: bytes, blocks: Sequence[int], data: bytes) -> bytes:
    """MAC_A over the blocks read (``blocks`` ends with 0x91) and their data (without MAC_A)."""
    if not 2 <= len(blocks) <= 4 or blocks[-1] != BLOCK_MAC_A:
        raise ValueError("MAC_A covers 2..4 blocks, the last one 0x91")
    head = bytearray(b"\xff" * 8)
    for i, blk in enumerate(blocks):
        head[2 * i:2 * i + 2] = bytes((blk, 0x00))
    return felica_mac(bytes(head) + data, sk, rc[:8])


def site_felica_master(site: SiteKey) -> bytes:
    return HKDF(hashes.SHA256(), 24, salt=None,
                info=b"secroom/v1 felica-lite-s 3des master").derive(site.secret)


def card_key(site: SiteKey, id_block: bytes) -> bytes:
    """The card key as written to block 0x87 (card byte order, as creacorporation writes the
    diversified key)."""
    return diversify(site_felica_master(site), id_block)


def session_key_from_block(ck_block: bytes, rc: bytes) -> bytes:
    """SK for a card whose block 0x87 holds ``ck_block``: the card keeps each 8-byte half
    byte-reversed, the cipher takes it in natural order."""
    return session_key(_rev8(ck_block), rc)


# -- commands ---------------------------------------------------------------------------------

def direct_transmit(frame: bytes) -> bytes:
    return bytes((0xFF, 0x00, 0x00, 0x00, len(frame))) + frame


def frame(cmd: int, idm: bytes, body: bytes) -> bytes:
    inner = bytes((cmd,)) + idm + body
    return bytes((len(inner) + 1,)) + inner


def write_rc(idm: bytes, rc_on_card: bytes) -> bytes:
    return frame(CMD_WRITE, idm, b"\x01" + SERVICE_WRITE + b"\x01" + bytes((0x80, BLOCK_RC))
                 + rc_on_card)


def read_blocks(idm: bytes, blocks: Sequence[int]) -> bytes:
    body = b"\x01" + SERVICE_READ + bytes((len(blocks),))
    body += b"".join(bytes((0x80, b)) for b in blocks)
    return frame(CMD_READ, idm, body)


def parse_answer(reply: bytes, code: int, idm: bytes) -> tuple[bytes | None, str]:
    """(payload after the status flags, "") or (None, why) for a pass-through answer."""
    if len(reply) < 2 or reply[-2:] != b"\x90\x00":
        sw = reply[-2:].hex().upper() if len(reply) >= 2 else "none"
        return None, f"pass-through SW {sw}"
    body = reply[:-2]
    if len(body) < 12 or body[0] != len(body) or body[1] != code or body[2:10] != idm:
        return None, f"malformed FeliCa answer ({len(body)} byte(s))"
    if body[10:12] != b"\x00\x00":
        return None, f"FeliCa status {body[10:12].hex().upper()}"
    return body[12:], ""


def verify(
    transmit: Transmit, idm: bytes, keys: Sequence[SiteKey], *,
    random: Callable[[int], bytes] = os.urandom,
    passthrough: Callable[[bytes], bytes] = direct_transmit,
) -> Credential:
    """Prove a FeliCa Lite-S card holds CK diversified from one of ``keys`` (newest first)."""
    if len(idm) != 8:
        return Credential(Strength.WEAK, CardType.UID_ONLY, "not a FeliCa IDm")
    rc = random(16)
    _, why = parse_answer(transmit(passthrough(write_rc(idm, _rev8(rc)))), CMD_WRITE + 1, idm)
    if why:
        return Credential(Strength.WEAK, CardType.FELICA_LITE_S, f"write RC: {why}")
    payload, why = parse_answer(
        transmit(passthrough(read_blocks(idm, (BLOCK_ID, BLOCK_MAC_A)))), CMD_READ + 1, idm)
    if payload is None:
        return Credential(Strength.FAILED, CardType.FELICA_LITE_S, f"read with MAC_A: {why}")
    if len(payload) != 1 + 32 or payload[0] != 2:
        return Credential(Strength.FAILED, CardType.FELICA_LITE_S,
                          f"read with MAC_A: {len(payload)} byte(s)")
    id_block, got = payload[1:17], payload[17:25]
    if id_block[:8] != idm:
        return Credential(Strength.FAILED, CardType.FELICA_LITE_S, "ID block is not the IDm")
    for site in keys:
        sk = session_key_from_block(card_key(site, id_block), rc)
        if hmac.compare_digest(mac_a(sk, rc, (BLOCK_ID, BLOCK_MAC_A), id_block), got):
            return Credential(Strength.VERIFIED, CardType.FELICA_LITE_S, "MAC_A", site.key_id)
    return Credential(Strength.FAILED, CardType.FELICA_LITE_S, "MAC_A does not match (wrong key)")
