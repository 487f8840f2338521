"""Personalising a blank card at a reader, and re-keying a card still on an old site key.

Standard commands only, through the same ``Transmit`` as the verifier:

* DESFire EV2/EV3 (``desfire_personalise``): select the PICC, authenticate with the PICC master
  key (EV2First with an AES zero key, else AuthenticateISO with the factory DES zero key),
  CreateApplication (secroom's AID, AES, one key; MACed after EV2First, plain after the ISO
  handshake), select it, authenticate with its default zero key, ChangeKey key 0 to the card's
  AN10922 key (CommMode.Full), then prove it with a fresh EV2First.
* FeliCa Lite-S (``felica_personalise``): write the ID block (IDm, DFC, secroom's mark), the
  card key version CKV and the card key CK diversified from the site key by that ID block, a
  data block, then read the data block and the ID with MAC_A under the new key (the proof).
* Re-keying (``desfire_verify_rekey``, ``felica_verify_rekey``): a card that proves an older
  site key during a changeover is moved to the newest one (DESFire: ChangeKey inside the session
  of that proof; FeliCa Lite-S: CK written with MAC_A under the old key's session key, as the
  Lite-S external authentication writes, nfcpy tt3_sony); the tap is then judged on the new
  key. A re-key that fails leaves the card on the old key (still accepted until that key is
  retired) and says so in the detail. No published vector covers the Lite-S write with MAC_A:
  the reader and the virtual card share ``write_with_mac``'s layout.

Every outcome is a ``Credential``; a detail names the step and status, never a key.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Final

from readers.verify import desfire, felica_lite
from readers.verify.base import CardType, Credential, SiteKey, Strength, Transmit
from readers.verify.desfire_sm import (
    APP_KEY_SETTINGS,
    CMD_AUTH_ISO,
    CMD_CHANGE_KEY,
    CMD_CREATE_APP,
    PICC_AID,
    Ev2Session,
    SecureMessagingError,
    change_key_cryptogram,
    des_cbc,
)

ST_DUPLICATE: Final[int] = 0xDE
BLANK_AES: Final[bytes] = bytes(16)
FELICA_MARK: Final[bytes] = b"\x00\x00" + b"secrm1"  # DFC 0000 + 6 bytes of the ID block
BLOCK_CKV: Final[int] = 0x86
BLOCK_WCNT: Final[int] = 0x90
BLOCK_DATA: Final[int] = 0x00
FELICA_KEY_VERSION: Final[int] = 1

Random = Callable[[int], bytes]


def _failed(kind: CardType, detail: str) -> Credential:
    return Credential(Strength.FAILED, kind, detail[:160])


# -- DESFire --------------------------------------------------------------------------------

def _session(transmit: Transmit, key: bytes, random: Random) -> tuple[Ev2Session | None, str]:
    raw, why = desfire.authenticate_session(transmit, key, random=random)
    return (Ev2Session(*raw), "") if raw is not None else (None, why)


def mac_command(transmit: Transmit, s: Ev2Session, cmd: int, data: bytes) -> int:
    """A CommMode.MAC command; its status (the answer's MAC checked when it is 00)."""
    reply = transmit(desfire.wrap(cmd, data + s.command_mac(cmd, data)))
    status, body = desfire.unwrap(reply)
    s.counter += 1
    if status != desfire.ST_OK:
        return status
    if len(body) != 8 or not hmac.compare_digest(body, s.answer_mac(status, b"")):
        raise SecureMessagingError(f"command {cmd:#04x}: the answer's MAC does not check")
    return status


def change_own_key(transmit: Transmit, s: Ev2Session, new_key: bytes, *,
                   key_no: int = 0) -> int:
    """ChangeKey of the key the session was opened with; the card's status (00: changed, and
    the session is over)."""
    header = bytes((key_no,))
    payload = header + s.encipher(change_key_cryptogram(new_key))
    reply = transmit(desfire.wrap(CMD_CHANGE_KEY, payload + s.command_mac(CMD_CHANGE_KEY,
                                                                          payload)))
    s.counter += 1
    return desfire.unwrap(reply)[0]


def authenticate_iso_des(transmit: Transmit, key: bytes, *, key_no: int = 0,
                         random: Random = os.urandom) -> str:
    """AuthenticateISO with a DES/2K3DES key; "" when the card proved it, else why."""
    status, ek_rnd_b = desfire.unwrap(transmit(desfire.wrap(CMD_AUTH_ISO, bytes((key_no,)))))
    if status != desfire.ST_MORE or len(ek_rnd_b) != 8:
        return f"AuthenticateISO step 1: status {status:#04x}, {len(ek_rnd_b)} byte(s)"
    rnd_b = des_cbc(key, bytes(8), ek_rnd_b, decrypt=True)
    rnd_a = random(8)
    token = des_cbc(key, ek_rnd_b, rnd_a + desfire.rotl(rnd_b))
    status, ek_rnd_a = desfire.unwrap(transmit(desfire.wrap(desfire.CMD_MORE, token)))
    if status != desfire.ST_OK or len(ek_rnd_a) != 8:
        return f"AuthenticateISO step 2: status {status:#04x}"
    if des_cbc(key, token[-8:], ek_rnd_a, decrypt=True) != desfire.rotl(rnd_a):
        return "AuthenticateISO step 2: the card did not prove the key"
    return ""


def _create_app(transmit: Transmit, random: Random) -> tuple[int, str]:
    """Authenticate to the PICC master key (AES zero key, else the factory DES zero key) and
    create secroom's application: (status, "") or (-1, why)."""
    data = desfire.SECROOM_AID + APP_KEY_SETTINGS
    picc, why = _session(transmit, BLANK_AES, random)
    if picc is not None:
        return mac_command(transmit, picc, CMD_CREATE_APP, data), ""
    if (st := _select(transmit, PICC_AID)) != desfire.ST_OK:  # a failed attempt: start over
        return -1, f"select PICC: status {st:#04x}"
    why_des = authenticate_iso_des(transmit, bytes(16), random=random)
    if why_des:
        return -1, f"PICC master key is not a blank card's AES or DES zero key ({why}; {why_des})"
    return desfire.unwrap(transmit(desfire.wrap(CMD_CREATE_APP, data)))[0], ""


def _select(transmit: Transmit, aid: bytes) -> int:
    return desfire.unwrap(transmit(desfire.wrap(desfire.CMD_SELECT_APP, aid)))[0]


def desfire_personalise(transmit: Transmit, uid: bytes, site: SiteKey, *,
                        random: Random = os.urandom) -> Credential:
    """Give a blank DESFire the secroom application with its key diversified from ``site``."""
    kind = CardType.DESFIRE
    try:
        if (st := _select(transmit, PICC_AID)) != desfire.ST_OK:
            return _failed(kind, f"select PICC: status {st:#04x}")
        st, why = _create_app(transmit, random)
        if why:
            return _failed(kind, why)
        if st == ST_DUPLICATE:
            return _failed(kind, "the card already holds a secroom application (not blank)")
        if st != desfire.ST_OK:
            return _failed(kind, f"CreateApplication: status {st:#04x}")
        if (st := _select(transmit, desfire.SECROOM_AID)) != desfire.ST_OK:
            return _failed(kind, f"select the new application: status {st:#04x}")
        app, why = _session(transmit, BLANK_AES, random)
        if app is None:
            return _failed(kind, f"the new application's default key: {why}")
        if (st := change_own_key(transmit, app, desfire.card_key(site, uid))) != desfire.ST_OK:
            return _failed(kind, f"ChangeKey: status {st:#04x}")
    except SecureMessagingError as exc:
        return _failed(kind, str(exc))
    proof = desfire.verify(transmit, uid, [site], random=random)
    if proof.strength is not Strength.VERIFIED:
        return _failed(kind, f"the new key does not verify: {proof.detail}")
    return replace(proof, detail="personalised")


def desfire_verify_rekey(transmit: Transmit, uid: bytes, keys: Sequence[SiteKey], *,
                         random: Random = os.urandom) -> Credential:
    """``desfire.verify``, and a card proving an older key is re-keyed to ``keys[0]``."""
    reply = transmit(desfire.wrap(desfire.CMD_SELECT_APP, desfire.SECROOM_AID))
    status, _ = desfire.unwrap(reply)
    if status != desfire.ST_OK:  # no application, or not a card: the plain verdict on the
        # answer already in hand (verify stops at its select, which gets this same answer)
        return desfire.verify(lambda _apdu: reply, uid, keys, random=random)
    why = "no site key"
    for n, site in enumerate(keys):
        session, why = _session(transmit, desfire.card_key(site, uid), random)
        if session is None:
            continue
        done = Credential(Strength.VERIFIED, CardType.DESFIRE, "EV2First AES", site.key_id)
        if n == 0:
            return done
        newest = keys[0]
        st = change_own_key(transmit, session, desfire.card_key(newest, uid))
        if st != desfire.ST_OK:
            return replace(done, detail=f"re-key to {newest.key_id} failed: status {st:#04x}")
        proof = desfire.verify(transmit, uid, [newest], random=random)
        if proof.strength is not Strength.VERIFIED:  # the card took a key it cannot prove
            return _failed(CardType.DESFIRE, f"re-keyed, then: {proof.detail}")
        return replace(proof, detail="re-keyed", rekeyed_from=site.key_id)
    return _failed(CardType.DESFIRE, why)


# -- FeliCa Lite-S --------------------------------------------------------------------------

def write_block(idm: bytes, block: int, data: bytes) -> bytes:
    """Write Without Encryption of one block (service 0x0009)."""
    if len(data) != 16:
        raise ValueError("a FeliCa block has 16 bytes")
    return felica_lite.frame(felica_lite.CMD_WRITE, idm, b"\x01" + felica_lite.SERVICE_WRITE
                             + b"\x01" + bytes((0x80, block)) + data)


def data_mark(site: SiteKey) -> bytes:
    """What secroom writes to the data block: its name and the key id (no person, no secret)."""
    return (b"secroom:" + site.key_id.encode())[:16].ljust(16, b"\x00")


def felica_personalise(transmit: Transmit, idm: bytes, site: SiteKey, *,
                       random: Random = os.urandom,
                       passthrough: Callable[[bytes], bytes] = felica_lite.direct_transmit,
                       ) -> Credential:
    """Give a blank FeliCa Lite-S its ID block, card key (from ``site``) and data block."""
    kind = CardType.FELICA_LITE_S
    if len(idm) != 8:
        return _failed(kind, "not a FeliCa IDm")
    id_block = idm + FELICA_MARK
    ckv = FELICA_KEY_VERSION.to_bytes(2, "little") + bytes(14)
    steps = (("ID", felica_lite.BLOCK_ID, id_block), ("CKV", BLOCK_CKV, ckv),
             ("CK", felica_lite.BLOCK_CK, felica_lite.card_key(site, id_block)),
             ("data", BLOCK_DATA, data_mark(site)))
    for name, block, data in steps:
        _, why = felica_lite.parse_answer(transmit(passthrough(write_block(idm, block, data))),
                                          felica_lite.CMD_WRITE + 1, idm)
        if why:
            return _failed(kind, f"write {name}: {why}")
    # the proof: the data block and the ID read with MAC_A under the new key
    rc = random(16)
    _, why = felica_lite.parse_answer(
        transmit(passthrough(felica_lite.write_rc(idm, felica_lite._rev8(rc)))),
        felica_lite.CMD_WRITE + 1, idm)
    if why:
        return _failed(kind, f"write RC: {why}")
    blocks = (BLOCK_DATA, felica_lite.BLOCK_ID, felica_lite.BLOCK_MAC_A)
    payload, why = felica_lite.parse_answer(
        transmit(passthrough(felica_lite.read_blocks(idm, blocks))), felica_lite.CMD_READ + 1,
        idm)
    if payload is None or len(payload) != 1 + 48 or payload[0] != 3:
        return _failed(kind, f"read with MAC_A: {why or 'wrong length'}")
    data, got = payload[1:33], payload[33:41]
    if data != data_mark(site) + id_block:
        return _failed(kind, "the blocks read back are not those written")
    sk = felica_lite.session_key_from_block(felica_lite.card_key(site, id_block), rc)
    if not hmac.compare_digest(felica_lite.mac_a(sk, rc, blocks, data), got):
        return _failed(kind, "MAC_A under the new key does not match")
    return Credential(Strength.VERIFIED, kind, "personalised", site.key_id)


def write_with_mac(idm: bytes, block: int, data: bytes, sk: bytes, rc: bytes,
                   wcnt: bytes) -> bytes:
    """Write one block with MAC_A (Lite-S): the block, then MAC_A 0x91 = MAC || WCNT || 0^5,
    the MAC under SK2||SK1 with IV RC1 over WCNT || 00 || block || 00 || 91 00 || data."""
    head = wcnt + bytes((0x00, block, 0x00, felica_lite.BLOCK_MAC_A, 0x00))
    mac = felica_lite.felica_mac(head + data, sk, rc[:8], flip_key=True)
    body = b"\x01" + felica_lite.SERVICE_WRITE + b"\x02" + bytes((0x80, block, 0x80,
                                                                  felica_lite.BLOCK_MAC_A))
    return felica_lite.frame(felica_lite.CMD_WRITE, idm, body + data + mac + wcnt + bytes(5))


def felica_verify_rekey(transmit: Transmit, idm: bytes, keys: Sequence[SiteKey], *,
                        random: Random = os.urandom,
                        passthrough: Callable[[bytes], bytes] = felica_lite.direct_transmit,
                        ) -> Credential:
    """``felica_lite.verify``, and a card proving an older key is given the newest one: a
    fresh challenge, the ID and write counter WCNT read with MAC_A under the old key, then CK
    written with MAC_A (the card takes it only from a reader that holds the old key)."""
    cred = felica_lite.verify(transmit, idm, keys, random=random, passthrough=passthrough)
    if cred.strength is not Strength.VERIFIED or not keys or cred.key_id == keys[0].key_id:
        return cred
    old = next(k for k in keys if k.key_id == cred.key_id)
    newest, kind = keys[0], CardType.FELICA_LITE_S
    rc = random(16)
    _, why = felica_lite.parse_answer(
        transmit(passthrough(felica_lite.write_rc(idm, felica_lite._rev8(rc)))),
        felica_lite.CMD_WRITE + 1, idm)
    blocks = (felica_lite.BLOCK_ID, BLOCK_WCNT, felica_lite.BLOCK_MAC_A)
    payload, why2 = felica_lite.parse_answer(
        transmit(passthrough(felica_lite.read_blocks(idm, blocks))), felica_lite.CMD_READ + 1,
        idm) if not why else (None, why)
    if payload is None or len(payload) != 1 + 48:
        return replace(cred, detail=f"re-key to {newest.key_id} failed: {why2 or 'length'}")
    id_block, wcnt_block, got = payload[1:17], payload[17:33], payload[33:41]
    sk = felica_lite.session_key_from_block(felica_lite.card_key(old, id_block), rc)
    if not hmac.compare_digest(felica_lite.mac_a(sk, rc, blocks, payload[1:33]), got):
        return _failed(kind, "MAC_A of the re-key read does not match")
    frame = write_with_mac(idm, felica_lite.BLOCK_CK, felica_lite.card_key(newest, id_block),
                           sk, rc, wcnt_block[:3])
    _, why = felica_lite.parse_answer(transmit(passthrough(frame)), felica_lite.CMD_WRITE + 1,
                                      idm)
    if why:
        return replace(cred, detail=f"re-key to {newest.key_id} failed: write CK: {why}")
    proof = felica_lite.verify(transmit, idm, [newest], random=random, passthrough=passthrough)
    if proof.strength is not Strength.VERIFIED:
        return _failed(kind, f"re-keyed, then: {proof.detail}")
    return replace(proof, detail="re-keyed", rekeyed_from=old.key_id)


def personalise(transmit: Transmit, uid: bytes, kind: CardType, site: SiteKey) -> Credential:
    if kind is CardType.DESFIRE:
        return desfire_personalise(transmit, uid, site)
    if kind is CardType.FELICA_LITE_S:
        return felica_personalise(transmit, uid, site)
    return Credential(Strength.FAILED, kind, "this card type cannot be personalised (UID only)")
