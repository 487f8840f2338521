"""DESFire crypto against published vectors, and the EV2First step against the card side."""

from __future__ import annotations

import pytest

from readers.verify import desfire
from readers.verify.base import CardType, SiteKey, Strength
from readers.virtual_cards import DesfireCard

SITE = SiteKey("k1", bytes(range(32)))
NEW_SITE = SiteKey("k2", bytes(range(32, 64)))
UID = bytes.fromhex("04782E21801D80")


def test_an10922_aes128_vector() -> None:
    # NXP AN10922 section 2.2.1 (as in libfreefare test/test_mifare_key_deriver_an10922.c):
    # K = 00112233..EEFF, M = 01 || UID 04782E21801D80 || AID 3042F5 || "NXP Abu"
    got = desfire.an10922_aes128(bytes.fromhex("00112233445566778899AABBCCDDEEFF"), UID,
                                 bytes.fromhex("3042F5"), b"NXP Abu")
    assert got.hex().upper() == "A8DD63A3B89D54B37CA802473FDA9175"


def test_an10922_refuses_an_input_outside_17_to_32_bytes() -> None:
    with pytest.raises(ValueError, match="17..32"):
        desfire.an10922_aes128(bytes(16), b"\x01\x02\x03\x04", b"\x00\x00\x01", b"")


def test_ev2first_session_keys_vector() -> None:
    # AN12343 pp. 33-34 (as in proxmark3 client/src/mifare/desfiretest.c): K = 0^16
    rnd_a = bytes.fromhex("B04D0787C93EE0CC8CACC8E86F16C6FE")
    rnd_b = bytes.fromhex("FA659AD0DCA738DD65DC7DC38612AD81")
    enc, mac = desfire.ev2_session_keys(bytes(16), rnd_a, rnd_b)
    assert enc.hex().upper() == "63DC07286289A7A6C0334CA31C314A04"
    assert mac.hex().upper() == "774F26743ECE6AF5033B6AE8522946F6"


def test_ev2_mac_vector() -> None:
    # AN12343 p. 54: MACt over Cmd 8D, CmdCtr 0, TI E2D3AF69, data 00000000190000 + 25 x 22
    data = bytes.fromhex("00000000190000") + b"\x22" * 25
    mac = desfire.ev2_mac(bytes.fromhex("9366FA195EB566F5BD2BAD4020B83002"), 0x8D, 0,
                          bytes.fromhex("E2D3AF69"), data)
    assert mac.hex().upper() == "68F2C28C575A1628"


def _transmit(card: DesfireCard):
    return lambda apdu: card.answer(apdu)[0]


def test_an_enrolled_card_verifies_and_names_the_key() -> None:
    card = DesfireCard.enrolled(UID, SITE)
    cred = desfire.verify(_transmit(card), UID, [SITE])
    assert (cred.strength, cred.card_type, cred.key_id) == (Strength.VERIFIED, CardType.DESFIRE,
                                                            "k1")
    assert card.auths_ok == 1


def test_a_clone_with_the_uid_and_a_wrong_key_fails() -> None:
    clone = DesfireCard(UID, bytes(16))
    cred = desfire.verify(_transmit(clone), UID, [SITE])
    assert cred.strength is Strength.FAILED and "wrong key" in cred.detail


def test_a_card_presenting_another_uid_fails() -> None:
    # the key is diversified by the UID read: a real card's key under a copied UID is wrong
    card = DesfireCard.enrolled(UID, SITE)
    other = bytes.fromhex("04000000000001")
    assert desfire.verify(_transmit(card), other, [SITE]).strength is Strength.FAILED


def test_a_card_without_the_application_is_weak() -> None:
    cred = desfire.verify(_transmit(DesfireCard(UID)), UID, [SITE])
    assert cred.strength is Strength.WEAK


def test_during_a_changeover_the_old_key_still_verifies() -> None:
    card = DesfireCard.enrolled(UID, SITE)
    cred = desfire.verify(_transmit(card), UID, [NEW_SITE, SITE])
    assert (cred.strength, cred.key_id) == (Strength.VERIFIED, "k1")
    card.personalise(NEW_SITE)
    assert desfire.verify(_transmit(card), UID, [NEW_SITE, SITE]).key_id == "k2"
    assert desfire.verify(_transmit(card), UID, [SITE]).strength is Strength.FAILED


def test_a_replayed_answer_does_not_verify() -> None:
    # record a good session, then play the card's answers back to a fresh challenge
    card = DesfireCard.enrolled(UID, SITE)
    recorded: list[bytes] = []

    def record(apdu: bytes) -> bytes:
        reply = card.answer(apdu)[0]
        recorded.append(reply)
        return reply

    assert desfire.verify(record, UID, [SITE]).strength is Strength.VERIFIED
    replay = iter(recorded)
    cred = desfire.verify(lambda _apdu: next(replay), UID, [SITE])
    assert cred.strength is Strength.FAILED
