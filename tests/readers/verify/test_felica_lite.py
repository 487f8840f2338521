"""FeliCa Lite-S crypto against published vectors, and read with MAC_A against the card side."""

from __future__ import annotations

from readers.verify import felica_lite as fl
from readers.verify.base import CardType, SiteKey, Strength
from readers.virtual_cards import FelicaLiteSCard

SITE = SiteKey("k1", bytes(range(32)))
NEW_SITE = SiteKey("k2", bytes(range(32, 64)))
IDM = bytes.fromhex("012E4CD0A1B2C3D4")


def test_mac_vectors() -> None:
    # nfcpy tests/test_tag_tt3_sony.py: data 00..1F, key 00..0F, iv 00..07 (and key halves
    # swapped, the write MAC)
    data, key, iv = bytes(range(32)), bytes(range(16)), bytes(range(8))
    assert fl.felica_mac(data, key, iv).hex() == "0b1268d7a4ac6932"
    assert fl.felica_mac(data, key, iv, flip_key=True).hex() == "18cdd33c0fb25dd7"


def test_session_key_and_internal_auth_mac_vectors() -> None:
    # nfcpy FelicaLite authenticate test: CK "0123456789abcdef", RC 00..0F; MAC over an
    # all-zero ID block with iv = RC1
    rc = bytes(range(16))
    sk = fl.session_key(b"0123456789abcdef", rc)
    assert sk.hex() == "b636d955a9f0e2cc48b106f95506c3f6"
    assert fl.felica_mac(bytes(16), sk, rc[:8]).hex() == "cc97f1b97b8bbc79"


def test_diversification_depends_on_master_and_id() -> None:
    # no published vector exists (REFERENCES.md s.3: Sony's are not public); check its shape
    master = bytes(range(24))
    a = fl.diversify(master, IDM + bytes(8))
    assert len(a) == 16
    assert a != fl.diversify(master, bytes(8) + bytes(8))
    assert a != fl.diversify(bytes(24), IDM + bytes(8))
    assert a[:8] != a[8:]


def _transmit(card: FelicaLiteSCard):
    return lambda apdu: card.answer(apdu)[0]


def test_an_enrolled_card_verifies() -> None:
    card = FelicaLiteSCard.enrolled(IDM, SITE)
    cred = fl.verify(_transmit(card), IDM, [SITE])
    assert (cred.strength, cred.card_type, cred.key_id) == (
        Strength.VERIFIED, CardType.FELICA_LITE_S, "k1")


def test_a_clone_with_the_factory_key_fails() -> None:
    cred = fl.verify(_transmit(FelicaLiteSCard(IDM)), IDM, [SITE])
    assert cred.strength is Strength.FAILED and "MAC_A" in cred.detail


def test_a_card_that_does_not_take_the_passthrough_is_weak() -> None:
    cred = fl.verify(lambda _apdu: b"\x6d\x00", IDM, [SITE])
    assert cred.strength is Strength.WEAK


def test_a_replayed_read_does_not_verify() -> None:
    card = FelicaLiteSCard.enrolled(IDM, SITE)
    answers: list[bytes] = []

    def record(apdu: bytes) -> bytes:
        answers.append(card.answer(apdu)[0])
        return answers[-1]

    assert fl.verify(record, IDM, [SITE]).strength is Strength.VERIFIED
    replay = iter(answers)
    assert fl.verify(lambda _apdu: next(replay), IDM, [SITE]).strength is Strength.FAILED


def test_old_and_new_keys_during_a_changeover() -> None:
    card = FelicaLiteSCard.enrolled(IDM, SITE)
    assert fl.verify(_transmit(card), IDM, [NEW_SITE, SITE]).key_id == "k1"
    card.personalise(NEW_SITE)
    assert fl.verify(_transmit(card), IDM, [NEW_SITE, SITE]).key_id == "k2"


def test_mac_a_layout_follows_the_published_implementation() -> None:
    # creacorporation Crypto/mSCFelicaMac.cpp ValidateMacA, spelt out step by step: first
    # plaintext FF FF FF FF 00 <blk2> 00 <blk1> for two blocks, then each data block's halves
    # byte-reversed, 3DES-CBC under SK with IV = RC1, MAC_A = last cipher block reversed
    from cryptography.hazmat.primitives.ciphers import Cipher, modes

    sk, rc = bytes(range(16, 32)), bytes(range(100, 116))
    block = bytes(range(0x40, 0x50))
    plain = bytes.fromhex("FFFFFFFF00910082") + block[7::-1] + block[15:7:-1]
    enc = Cipher(fl.TripleDES(sk + sk[:8]), modes.CBC(rc[:8])).encryptor()
    expected = (enc.update(plain) + enc.finalize())[-8:][::-1]
    assert fl.mac_a(sk, rc, (fl.BLOCK_ID, fl.BLOCK_MAC_A), block) == expected
