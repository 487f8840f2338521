"""Card personalities for the virtual card (readers.virtual): the card side of DESFire EV2
AuthenticateEV2First and of FeliCa Lite-S read with MAC_A, so the gateway is tested through a
real pcscd against cards that prove themselves, and clones (same UID, no key or a wrong key)
that cannot.

An applet answers every APDU but GET DATA; ``answer`` returns the reply and whether the reader's
check is finished (the virtual card then reports the read as done).
"""

from __future__ import annotations

import hmac
import os
import threading
from collections.abc import Callable

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from readers.verify import desfire, felica_lite
from readers.verify.base import SiteKey
from readers.verify.desfire_sm import (
    APP_KEY_SETTINGS,
    CMD_AUTH_ISO,
    CMD_CHANGE_KEY,
    CMD_CREATE_APP,
    PICC_AID,
    Ev2Session,
    SecureMessagingError,
    TripleDES,
    des_cbc,
)
from readers.virtual import DEFAULT_ATR

SW_NOT_SUPPORTED = b"\x6d\x00"


def _aes(key: bytes, data: bytes, *, decrypt: bool = False) -> bytes:
    c = Cipher(algorithms.AES(key), modes.CBC(bytes(16)))
    op = c.decryptor() if decrypt else c.encryptor()
    return op.update(data) + op.finalize()


class DesfireCard:
    """A DESFire EV2 with (``key`` given) or without the secroom application; key 0 of the
    application is ``key`` (AES-128). The PICC master key is ``picc_key`` (a blank card's AES
    zero key by default). It takes the personalisation commands a reader sends
    (readers.verify.enrol): CreateApplication (CommMode.MAC, after authenticating to the PICC
    master key) and ChangeKey (CommMode.Full) under EV2 secure messaging; a MAC or cryptogram
    that does not check is refused (status 1E) and changes nothing. ``personalise`` writes a key
    directly, as a card issued elsewhere would hold it."""

    atr = desfire.ATR

    def __init__(self, uid: bytes, key: bytes | None = None, *,
                 picc_key: bytes = bytes(16), picc_des: bool = False,
                 random: Callable[[int], bytes] = os.urandom) -> None:
        if len(uid) != 7:
            raise ValueError("a DESFire EV2 UID has 7 bytes")
        self.uid = uid
        self.key = key
        self.key_version = 0
        self.picc_key = picc_key
        self.picc_des = picc_des  # the PICC master key is DES (a factory card): AuthenticateISO
        self._iso: tuple[bytes, bytes] | None = None  # (ek(RndB), RndB) of an ISO handshake
        self._iso_session: bytes | None = None
        self._random = random
        self._level: str | None = None  # "picc" or "app" once selected
        self._rnd_b: bytes | None = None
        self._session: Ev2Session | None = None
        self.auths_ok = 0
        self.refused: list[int] = []  # status codes of refused commands
        self._lock = threading.Lock()

    @classmethod
    def blank(cls, uid: bytes, *, factory_des: bool = False) -> DesfireCard:
        """A card as delivered: no application; the PICC master key the AES zero key, or (as
        NXP ships them) the DES zero key."""
        return cls(uid, picc_des=factory_des)

    @classmethod
    def enrolled(cls, uid: bytes, site: SiteKey) -> DesfireCard:
        return cls(uid, desfire.card_key(site, uid))

    def personalise(self, site: SiteKey) -> None:
        with self._lock:
            self.key = desfire.card_key(site, self.uid)

    def answer(self, apdu: bytes) -> tuple[bytes, bool]:
        with self._lock:
            reply, done = self._answer(apdu)
            if reply[-2:-1] == b"\x91" and reply[-1] not in (0x00, 0xAF):
                self.refused.append(reply[-1])
            return reply, done

    def _level_key(self) -> bytes | None:
        return self.picc_key if self._level == "picc" else self.key if self._level else None

    def _answer(self, apdu: bytes) -> tuple[bytes, bool]:
        if len(apdu) < 5 or apdu[0] != 0x90:
            return SW_NOT_SUPPORTED, False
        ins, data = apdu[1], apdu[5:5 + apdu[4]] if len(apdu) > 5 else b""
        if ins == desfire.CMD_SELECT_APP:
            self._rnd_b, self._session, self._iso, self._iso_session = None, None, None, None
            if data == PICC_AID:
                self._level = "picc"
            elif self.key is not None and data == desfire.SECROOM_AID:
                self._level = "app"
            else:
                self._level = None
                return b"\x91\xa0", True
            return b"\x91\x00", False
        if ins == desfire.CMD_EV2_FIRST:
            self._session = self._iso_session = None
            key = self._level_key()
            if key is None or data[:1] != b"\x00":
                return b"\x91\x40", True  # no such key
            if self._level == "picc" and self.picc_des:
                return b"\x91\xae", True  # not an AES key: EV2First cannot use it
            self._rnd_b = self._random(16)
            return _aes(key, self._rnd_b) + b"\x91\xaf", False
        if ins == CMD_AUTH_ISO:
            return self._iso_step1(data)
        if ins == desfire.CMD_MORE and self._iso is not None:
            return self._iso_step2(data)
        if ins == desfire.CMD_MORE and self._rnd_b is not None:
            return self._auth_step2(data)
        if ins == CMD_CREATE_APP:
            return self._create_app(data)
        if ins == CMD_CHANGE_KEY:
            return self._change_key(data)
        return b"\x91\x1c", True  # illegal command code

    def _auth_step2(self, data: bytes) -> tuple[bytes, bool]:
        key = self._level_key()
        rnd_b, self._rnd_b = self._rnd_b, None
        assert rnd_b is not None
        if key is None or len(data) != 32:
            return b"\x91\x7e", True  # length error
        plain = _aes(key, data, decrypt=True)
        if plain[16:] != desfire.rotl(rnd_b):
            return b"\x91\xae", True
        ti = self._random(4)
        self.auths_ok += 1
        rnd_a = plain[:16]
        self._session = Ev2Session(*desfire.ev2_session_keys(key, rnd_a, rnd_b), ti)
        # the check is finished unless a personalisation follows (the reader goes on anyway)
        return _aes(key, ti + desfire.rotl(rnd_a) + bytes(12)) + b"\x91\x00", self._level == "app"

    def _iso_step1(self, data: bytes) -> tuple[bytes, bool]:
        self._session = self._iso_session = None
        if self._level != "picc" or not self.picc_des or data[:1] != b"\x00":
            return b"\x91\xae", True
        rnd_b = self._random(8)
        ek = des_cbc(self.picc_key, bytes(8), rnd_b)
        self._iso = (ek, rnd_b)
        return ek + b"\x91\xaf", False

    def _iso_step2(self, data: bytes) -> tuple[bytes, bool]:
        assert self._iso is not None
        (ek_rnd_b, rnd_b), self._iso = self._iso, None
        if len(data) != 16:
            return b"\x91\x7e", True
        plain = des_cbc(self.picc_key, ek_rnd_b, data, decrypt=True)
        if plain[8:] != desfire.rotl(rnd_b):
            return b"\x91\xae", True
        rnd_a = plain[:8]
        self._iso_session = rnd_a[:4] + rnd_b[:4]  # DES: K1 = K2
        self.auths_ok += 1
        return des_cbc(self.picc_key, data[-8:], desfire.rotl(rnd_a)) + b"\x91\x00", False

    def _macced(self, cmd: int, data: bytes) -> bytes | None:
        """The command's data when its MACt checks (the counter then moves on), else None."""
        s = self._session
        if s is None or len(data) < 8:
            return None
        body, mact = data[:-8], data[-8:]
        if not hmac.compare_digest(s.command_mac(cmd, body), mact):
            return None
        return body

    def _create_app(self, data: bytes) -> tuple[bytes, bool]:
        if self._level == "picc" and self._iso_session is not None:  # after AuthenticateISO
            if data[:3] != desfire.SECROOM_AID or data[3:5] != APP_KEY_SETTINGS \
                    or len(data) != 5:
                return b"\x91\x9e", True
            if self.key is not None:
                return b"\x91\xde", True
            self.key = bytes(16)
            cmac = CMAC(TripleDES(self._iso_session * 3))  # EV1: the answer's CMAC
            cmac.update(b"\x00")
            return cmac.finalize() + b"\x91\x00", False
        if self._level != "picc" or self._session is None:
            return b"\x91\xae", True  # authentication error: the PICC master key first
        body = self._macced(CMD_CREATE_APP, data)
        if body is None or len(body) != 5:
            self._session = None
            return b"\x91\x1e", True  # integrity error
        s = self._session
        s.counter += 1
        if body[:3] != desfire.SECROOM_AID or body[3:] != APP_KEY_SETTINGS:
            return b"\x91\x9e", True  # parameter error (this card takes secroom's only)
        if self.key is not None:
            return b"\x91\xde", True  # duplicate
        self.key = bytes(16)  # a new application's keys are the AES zero key
        return s.answer_mac(0x00, b"") + b"\x91\x00", False

    def _change_key(self, data: bytes) -> tuple[bytes, bool]:
        if self._level != "app" or self._session is None:
            return b"\x91\xae", True
        body = self._macced(CMD_CHANGE_KEY, data)
        s, self._session = self._session, None  # changing the session's own key ends it
        if body is None or len(body) != 33 or body[0] != 0x00:
            return b"\x91\x1e", True
        try:
            plain = s.decipher(body[1:])
        except SecureMessagingError:
            return b"\x91\x1e", True
        if len(plain) != 17:
            return b"\x91\x7e", True
        self.key, self.key_version = plain[:16], plain[16]
        return b"\x91\x00", True


class FelicaLiteSCard:
    """A FeliCa Lite-S answering through the reader's Direct Transmit pass-through. ``card_key``
    is block 0x87 as the card holds it; None: a card never given a secroom key (factory key 0).

    It takes the writes of a personalisation (Write Without Encryption of the ID block's user
    part, CKV 0x86, CK 0x87 and the data blocks 0x00..0x0D) and reads data blocks with MAC_A.
    CK takes a plain write only while it is the factory key (what the MC lock does on a real
    card once issued); after that only a write with MAC_A under the current key (the re-key of
    a changeover), which also raises WCNT (0x90); CK itself never reads back.
    """

    def __init__(self, idm: bytes, card_key: bytes | None = None) -> None:
        if len(idm) != 8:
            raise ValueError("an IDm has 8 bytes")
        self.uid = idm
        self.atr = DEFAULT_ATR  # what a PaSoRi-like reader reports for FeliCa
        self.id_block = idm + bytes.fromhex("0000000000000000")
        self.card_key = card_key or bytes(16)
        self.ckv = bytes(16)
        self.wcnt = 0  # writes with MAC_A so far (block 0x90)
        self.blocks: dict[int, bytes] = {}
        self._rc: bytes | None = None
        self._lock = threading.Lock()

    @classmethod
    def blank(cls, idm: bytes) -> FelicaLiteSCard:
        return cls(idm)

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

    def _write(self, block: int, data: bytes) -> bool:
        if block == felica_lite.BLOCK_RC:
            self._rc = felica_lite._rev8(data)
        elif block == felica_lite.BLOCK_ID:
            self.id_block = self.uid + data[8:]  # the IDm part stays the card's
        elif block == 0x86:
            self.ckv = data
        elif block == felica_lite.BLOCK_CK:
            if self.card_key != bytes(16):
                return False
            self.card_key = data
        elif 0x00 <= block <= 0x0D:
            self.blocks[block] = data
        else:
            return False
        return True

    def _write_with_mac(self, cmd: int, body: bytes) -> tuple[bytes, bool]:
        """Two blocks: the target and MAC_A (MAC || WCNT || 0^5), MAC under the session key's
        halves swapped over WCNT || 00 || block || 00 || 91 00 || data (IV RC1)."""
        if len(body) != 8 + 32 or body[4] != 0x80 or body[6:8] != b"\x80\x91" \
                or self._rc is None:
            return self._reply(cmd + 1, status=b"\x01\xa8"), True
        block, data, mac, wcnt = body[5], body[8:24], body[24:32], body[32:35]
        sk = felica_lite.session_key_from_block(self.card_key, self._rc)
        head = wcnt + bytes((0x00, block, 0x00, felica_lite.BLOCK_MAC_A, 0x00))
        want = felica_lite.felica_mac(head + data, sk, self._rc[:8], flip_key=True)
        if wcnt != self.wcnt.to_bytes(3, "little") or not hmac.compare_digest(mac, want):
            return self._reply(cmd + 1, status=b"\x01\xa9"), True  # MAC / counter refused
        if block == felica_lite.BLOCK_CK:
            self.card_key = data
        elif not self._write(block, data):
            return self._reply(cmd + 1, status=b"\x01\xa8"), True
        self.wcnt += 1
        return self._reply(cmd + 1), True

    def _answer(self, apdu: bytes) -> tuple[bytes, bool]:
        if apdu[:4] != b"\xff\x00\x00\x00" or len(apdu) < 6:
            return SW_NOT_SUPPORTED, False
        frame = apdu[5:5 + apdu[4]]
        if len(frame) < 14 or frame[0] != len(frame) or frame[2:10] != self.uid:
            return b"\x6a\x80", True
        cmd, body = frame[1], frame[10:]
        if cmd == felica_lite.CMD_WRITE and body[:4] == b"\x01\x09\x00\x02":
            return self._write_with_mac(cmd, body)
        if cmd == felica_lite.CMD_WRITE:
            if body[:4] != b"\x01\x09\x00\x01" or body[4] != 0x80 or len(body) != 22 \
                    or not self._write(body[5], body[6:22]):
                return self._reply(cmd + 1, status=b"\x01\xa8"), True
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
                elif blk == 0x86:
                    data += self.ckv
                elif blk == 0x90:
                    data += self.wcnt.to_bytes(3, "little") + bytes(13)
                elif 0x00 <= blk <= 0x0D:
                    data += self.blocks.get(blk, bytes(16))
                elif blk == felica_lite.BLOCK_MAC_A and self._rc is not None:
                    sk = felica_lite.session_key_from_block(self.card_key, self._rc)
                    data += felica_lite.mac_a(sk, self._rc, blocks, data) + bytes(8)
                else:
                    return self._reply(cmd + 1, status=b"\x01\xa8"), True
            return self._reply(cmd + 1, bytes((len(blocks),)) + data), True
        return self._reply(cmd + 1, status=b"\xff\xff"), True
