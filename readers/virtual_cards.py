"""Card personalities for the virtual card (readers.virtual): the card side of DESFire EV2
AuthenticateEV2First and of FeliCa Lite-S read with MAC_A, so the gateway is tested through a
real pcscd against cards that prove themselves, and clones (same UID, no key or a wrong key)
that cannot.

An applet answers every APDU but GET DATA; ``answer`` returns the reply and whether the reader's
check is finished (the virtual card then reports the read as done).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from readers.verify import desfire, felica_lite
from readers.verify.base import SiteKey
from readers.virtual import DEFAULT_ATR

SW_NOT_SUPPORTED = b"\x6d\x00"


def _aes(key: bytes, data: bytes, *, decrypt: bool = False) -> bytes:
    c = Cipher(algorithms.AES(key), modes.CBC(bytes(16)))
    op = c.decryptor() if decrypt else c.encryptor()
    return op.update(data) + op.finalize()


class DesfireCard:
    """A DESFire EV2 with (``key`` given) or without the secroom application; key 0 of the
    application is ``key`` (AES-128). ``personalise`` writes a key like an enrolment would."""

    atr = desfire.ATR

    def __init__(self, uid: bytes, key: bytes | None = None, *,
                 random: Callable[[int], bytes] = os.urandom) -> None:
        if len(uid) != 7:
            raise ValueError("a DESFire EV2 UID has 7 bytes")
        self.uid = uid
        self.key = key
        self._random = random
        self._selected = False
        self._rnd_b: bytes | None = None
        self.auths_ok = 0
        self._lock = threading.Lock()

    @classmethod
    def enrolled(cls, uid: bytes, site: SiteKey) -> DesfireCard:
        return cls(uid, desfire.card_key(site, uid))

    def personalise(self, site: SiteKey) -> None:
        with self._lock:
            self.key = desfire.card_key(site, self.uid)

    def answer(self, apdu: bytes) -> tuple[bytes, bool]:
        with self._lock:
            return self._answer(apdu)

    def _answer(self, apdu: bytes) -> tuple[bytes, bool]:
        if len(apdu) < 5 or apdu[0] != 0x90:
            return SW_NOT_SUPPORTED, False
        ins, data = apdu[1], apdu[5:5 + apdu[4]] if len(apdu) > 5 else b""
        if ins == desfire.CMD_SELECT_APP:
            self._selected = self.key is not None and data == desfire.SECROOM_AID
            self._rnd_b = None
            return (b"\x91\x00", False) if self._selected else (b"\x91\xa0", True)
        if ins == desfire.CMD_EV2_FIRST:
            if not self._selected or self.key is None or data[:1] != b"\x00":
                return b"\x91\x40", True  # no such key
            self._rnd_b = self._random(16)
            return _aes(self.key, self._rnd_b) + b"\x91\xaf", False
        if ins == desfire.CMD_MORE and self._rnd_b is not None and self.key is not None:
            rnd_b, self._rnd_b = self._rnd_b, None
            if len(data) != 32:
                return b"\x91\x7e", True  # length error
            plain = _aes(self.key, data, decrypt=True)
            if plain[16:] != desfire.rotl(rnd_b):
                return b"\x91\xae", True
            ti = self._random(4)
            self.auths_ok += 1
            return _aes(self.key, ti + desfire.rotl(plain[:16]) + bytes(12)) + b"\x91\x00", True
        return b"\x91\x1c", True  # illegal command code


class FelicaLiteSCard:
    """A FeliCa Lite-S answering through the reader's Direct Transmit pass-through. ``card_key``
    is block 0x87 as the card holds it; None: a card never given a secroom key (factory key 0).
    """

    def __init__(self, idm: bytes, card_key: bytes | None = None) -> None:
        if len(idm) != 8:
            raise ValueError("an IDm has 8 bytes")
        self.uid = idm
        self.atr = DEFAULT_ATR  # what a PaSoRi-like reader reports for FeliCa
        self.id_block = idm + bytes.fromhex("0000000000000000")
        self.card_key = card_key or bytes(16)
        self._rc: bytes | None = None
        self._lock = threading.Lock()

    @classmethod
    def enrolled(cls, idm: bytes, site: SiteKey) -> FelicaLiteSCard:
        card = cls(idm)
        card.personalise(site)
        return card

    def personalise(self, site: SiteKey) -> None:
        with self._lock:
            self.card_key = felica_lite.card_key(site, self.id_block)

    def answer(self, apdu: bytes) -> tuple[bytes, bool]:
        with self._lock:
            return self._answer(apdu)

    def _reply(self, code: int, body: bytes = b"", status: bytes = b"\x00\x00") -> bytes:
        inner = bytes((code,)) + self.uid + status + body
        return bytes((len(inner) + 1,)) + inner + b"\x90\x00"

    def _answer(self, apdu: bytes) -> tuple[bytes, bool]:
        if apdu[:4] != b"\xff\x00\x00\x00" or len(apdu) < 6:
            return SW_NOT_SUPPORTED, False
        frame = apdu[5:5 + apdu[4]]
        if len(frame) < 14 or frame[0] != len(frame) or frame[2:10] != self.uid:
            return b"\x6a\x80", True
        cmd, body = frame[1], frame[10:]
        if cmd == felica_lite.CMD_WRITE:
            if body[:5] != b"\x01\x09\x00\x01\x80" or body[5] != felica_lite.BLOCK_RC:
                return self._reply(cmd + 1, status=b"\x01\xa8"), True
            self._rc = felica_lite._rev8(body[6:22])
            return self._reply(cmd + 1), False
        if cmd == felica_lite.CMD_READ:
            n = body[3] if len(body) > 3 else 0
            blocks = [body[4 + 2 * i + 1] for i in range(n)] if len(body) >= 4 + 2 * n else []
            if not blocks:
                return self._reply(cmd + 1, status=b"\x01\xa2"), True
            data = b""
            for blk in blocks:
                if blk == felica_lite.BLOCK_ID:
                    data += self.id_block
                elif blk == felica_lite.BLOCK_MAC_A and self._rc is not None:
                    sk = felica_lite.session_key_from_block(self.card_key, self._rc)
                    data += felica_lite.mac_a(sk, self._rc, blocks, data) + bytes(8)
                else:
                    return self._reply(cmd + 1, status=b"\x01\xa8"), True
            return self._reply(cmd + 1, bytes((len(blocks),)) + data), True
        return self._reply(cmd + 1, status=b"\xff\xff"), True
