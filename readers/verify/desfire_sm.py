"""MIFARE DESFire EV2 secure messaging after AuthenticateEV2First, and the personalisation
commands built on it (CreateApplication, ChangeKey), for both sides: the reader (``readers.verify``)
and the virtual card (``readers.virtual_cards``) use the same functions, so each checks the other.

As the DESFire EV2 datasheet (MF3DHx2) and NXP AN12343 ("MIFARE DESFire Light Features and
Hints", section 6: secure messaging) describe it, all crypto through ``cryptography``:

* a session holds SesAuthENC, SesAuthMAC (``desfire.ev2_session_keys``), the transaction id TI
  the card chose, and the command counter CmdCtr (0 after the authentication, +1 per command);
* CommMode.MAC: the command carries MACt = CMAC(SesAuthMAC, Cmd || CmdCtr || TI || header ||
  data), odd bytes (``desfire.ev2_mac``); the answer MACt covers RC || CmdCtr+1 || TI || data;
* CommMode.Full: the data is padded (ISO/IEC 9797-1 method 2: always 80 then zeros) and
  enciphered with AES-CBC under SesAuthENC, IV = E(SesAuthENC, A5 5A || TI || CmdCtr || 0^8),
  then MACed as above over the ciphertext;
* a factory card's PICC master key is the DES zero key: AuthenticateISO (1A) with 2-key 3DES
  (the EV1 handshake: ek(RndB), then ek(RndA || RndB') chained on it, then ek(RndA')), after
  which CreateApplication goes plain (the card appends an EV1 CMAC that the reader does not
  check: the personalisation's last step, EV2First with the new key, proves the result);
* ChangeKey (C4) is Full: the cryptogram is NewKey || KeyVer when the key changed is the one
  authenticated with (the card then ends the session and answers 91 00 without a MAC), else
  (NewKey xor OldKey) || KeyVer || CRC32(NewKey) (DESFire's CRC32: no final inversion).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

try:  # cryptography >= 43 keeps 3DES among the "decrepit" algorithms
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:  # pragma: no cover - older cryptography
    from cryptography.hazmat.primitives.ciphers.algorithms import TripleDES

from readers.verify.desfire import ev2_mac

CMD_CREATE_APP: Final[int] = 0xCA
CMD_CHANGE_KEY: Final[int] = 0xC4
CMD_AUTH_ISO: Final[int] = 0x1A
PICC_AID: Final[bytes] = bytes(3)
APP_KEY_SETTINGS: Final[bytes] = bytes((0x0B, 0x81))  # KS1: master key changeable, config
# changeable, directory list free; ChangeKey needs the app master key. KS2: AES, one key.
KEY_VERSION: Final[int] = 0x01


class SecureMessagingError(Exception):
    """An answer that does not check out (bad MAC, wrong length): the card is not trusted."""


def _cbc(key: bytes, iv: bytes, data: bytes, *, decrypt: bool = False) -> bytes:
    cipher = Cipher(algorithms.AES(key), modes.CBC(iv))
    op = cipher.decryptor() if decrypt else cipher.encryptor()
    return op.update(data) + op.finalize()


def pad(data: bytes) -> bytes:
    """ISO/IEC 9797-1 padding method 2: 80, then zeros to a multiple of 16 (always added)."""
    return data + b"\x80" + bytes(-(len(data) + 1) % 16)


def unpad(data: bytes) -> bytes:
    end = data.rstrip(b"\x00")
    if not end or end[-1] != 0x80:
        raise SecureMessagingError("padding is not 80 00..")
    return end[:-1]


@dataclass
class Ev2Session:
    """One EV2 secure-messaging session (either side)."""

    enc: bytes
    mac: bytes
    ti: bytes
    counter: int = 0

    def _iv(self, label: bytes, counter: int) -> bytes:
        block = label + self.ti + counter.to_bytes(2, "little") + bytes(8)
        return _cbc(self.enc, bytes(16), block)

    def encipher(self, plain: bytes) -> bytes:
        """The command's data, padded and enciphered (IV from A5 5A, this CmdCtr)."""
        return _cbc(self.enc, self._iv(b"\xa5\x5a", self.counter), pad(plain))

    def decipher(self, cipher: bytes) -> bytes:
        if not cipher or len(cipher) % 16:
            raise SecureMessagingError(f"{len(cipher)} enciphered byte(s)")
        return unpad(_cbc(self.enc, self._iv(b"\xa5\x5a", self.counter), cipher, decrypt=True))

    def command_mac(self, cmd: int, data: bytes) -> bytes:
        return ev2_mac(self.mac, cmd, self.counter, self.ti, data)

    def answer_mac(self, status: int, data: bytes) -> bytes:
        """The MACt of an answer (the counter already raised for it)."""
        return ev2_mac(self.mac, status, self.counter, self.ti, data)


def change_key_cryptogram(new_key: bytes, *, version: int = KEY_VERSION,
                          old_key: bytes | None = None) -> bytes:
    """ChangeKey's plaintext: the key authenticated with (``old_key`` None) or another one."""
    if len(new_key) != 16:
        raise ValueError("an AES key has 16 bytes")
    if old_key is None:
        return new_key + bytes((version,))
    mixed = bytes(a ^ b for a, b in zip(new_key, old_key, strict=True))
    crc = zlib.crc32(new_key) ^ 0xFFFFFFFF  # DESFire's CRC32 has no final inversion
    return mixed + bytes((version,)) + crc.to_bytes(4, "little")


def des_cbc(key: bytes, iv: bytes, data: bytes, *, decrypt: bool = False) -> bytes:
    """2-key 3DES-CBC (a 16-byte DESFire DES/2K3DES key; K1 = K2 is single DES)."""
    cipher = Cipher(TripleDES(key + key[:8]), modes.CBC(iv))
    op = cipher.decryptor() if decrypt else cipher.encryptor()
    return op.update(data) + op.finalize()
