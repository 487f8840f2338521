"""The verifier step picks its check by the ATR the reader reports."""

from __future__ import annotations

from readers.verify import desfire
from readers.verify.base import CardType, SiteKey, Strength
from readers.verify.select import CardVerifier, card_type
from readers.virtual import DEFAULT_ATR, pcsc_storage_atr
from readers.virtual_cards import DesfireCard

K1 = SiteKey("k1", bytes(range(32)))
UID = bytes.fromhex("04A1B2C3D4E5F6")


def test_card_type_by_atr() -> None:
    assert card_type(desfire.ATR) is CardType.DESFIRE
    assert card_type(DEFAULT_ATR) is CardType.FELICA_LITE_S
    assert card_type(pcsc_storage_atr(0x03, 0x0001)) is CardType.UID_ONLY  # MIFARE Classic 1K
    assert card_type(b"\x3b\x00") is CardType.UID_ONLY


def test_without_keys_every_card_is_weak_and_nothing_is_sent() -> None:
    sent: list[bytes] = []
    cred = CardVerifier().verify(lambda a: sent.append(a) or b"", UID, desfire.ATR)
    assert (cred.strength, cred.card_type) == (Strength.WEAK, CardType.DESFIRE) and not sent


def test_keys_set_later_are_used() -> None:
    verifier = CardVerifier()
    card = DesfireCard.enrolled(UID, K1)
    verifier.set_keys([K1])
    cred = verifier.verify(lambda a: card.answer(a)[0], UID, desfire.ATR)
    assert cred.strength is Strength.VERIFIED and verifier.key_ids == ["k1"]
    assert K1.secret.hex() not in repr(K1)
