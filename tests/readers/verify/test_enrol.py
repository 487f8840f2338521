"""Personalising blank cards and re-keying, reader side against the virtual card's side
(readers.virtual_cards), with the EV2 secure-messaging pieces checked on their own."""

from __future__ import annotations

from readers.verify import desfire, enrol, felica_lite
from readers.verify.base import CardType, SiteKey, Strength
from readers.verify.desfire_sm import Ev2Session, change_key_cryptogram, pad, unpad
from readers.verify.select import CardVerifier
from readers.virtual import DEFAULT_ATR
from readers.virtual_cards import DesfireCard, FelicaLiteSCard

K1 = SiteKey("k1", bytes(range(32)))
K2 = SiteKey("k2", bytes(range(32, 64)))
UID = bytes.fromhex("04782E21801D80")
IDM = bytes.fromhex("012E4CD0A1B2C3D4")


def _tx(card):
    return lambda apdu: card.answer(apdu)[0]


def test_padding_is_method_2_always_added() -> None:
    assert pad(b"") == b"\x80" + bytes(15)
    assert len(pad(bytes(16))) == 32  # a full block still gets a padding block
    assert unpad(pad(b"\x01\x80")) == b"\x01\x80"


def test_change_key_cryptograms() -> None:
    new = bytes(range(16))
    assert change_key_cryptogram(new) == new + b"\x01"
    other = change_key_cryptogram(new, old_key=bytes(16), version=2)
    # DESFire's CRC32 (libfreefare desfire_crc32: no final inversion) of 00..0F
    assert other[:17] == new + b"\x02" and len(other) == 21


def test_full_mode_round_trip_uses_the_counter_in_the_iv() -> None:
    s = Ev2Session(bytes(16), bytes(range(16)), bytes.fromhex("E2D3AF69"))
    sealed = s.encipher(b"secret payload")
    assert s.decipher(sealed) == b"secret payload"
    s.counter += 1
    assert s.encipher(b"secret payload") != sealed


def test_a_blank_desfire_is_personalised_and_then_verifies() -> None:
    card = DesfireCard.blank(UID)
    cred = enrol.desfire_personalise(_tx(card), UID, K1)
    assert (cred.strength, cred.card_type, cred.key_id) == (Strength.VERIFIED, CardType.DESFIRE,
                                                            "k1")
    assert card.key == desfire.card_key(K1, UID) and card.key_version == 1
    assert desfire.verify(_tx(card), UID, [K1]).strength is Strength.VERIFIED
    assert card.refused == []


def test_a_card_already_enrolled_is_not_blank() -> None:
    card = DesfireCard.enrolled(UID, K1)
    cred = enrol.desfire_personalise(_tx(card), UID, K2)
    assert cred.strength is Strength.FAILED and "not blank" in cred.detail
    assert card.key == desfire.card_key(K1, UID)  # untouched


def test_a_card_with_another_picc_master_key_is_refused() -> None:
    card = DesfireCard(UID, picc_key=bytes(range(16)))
    cred = enrol.desfire_personalise(_tx(card), UID, K1)
    assert cred.strength is Strength.FAILED and "PICC master key" in cred.detail
    assert card.key is None


def test_a_forged_mac_changes_nothing_on_the_card() -> None:
    card = DesfireCard.enrolled(UID, K1)
    desfire.unwrap(card.answer(desfire.wrap(desfire.CMD_SELECT_APP, desfire.SECROOM_AID))[0])
    raw, why = desfire.authenticate_session(_tx(card), desfire.card_key(K1, UID))
    assert raw is not None, why
    s = Ev2Session(*raw)
    s.mac = bytes(16)  # a MAC under the wrong key
    assert enrol.change_own_key(_tx(card), s, bytes(16)) == 0x1E
    assert card.key == desfire.card_key(K1, UID)


def test_a_card_on_the_old_key_is_rekeyed_during_a_changeover() -> None:
    card = DesfireCard.enrolled(UID, K1)
    cred = enrol.desfire_verify_rekey(_tx(card), UID, [K2, K1])
    assert (cred.strength, cred.key_id, cred.rekeyed_from) == (Strength.VERIFIED, "k2", "k1")
    assert card.key == desfire.card_key(K2, UID)
    again = enrol.desfire_verify_rekey(_tx(card), UID, [K2, K1])
    assert (again.key_id, again.rekeyed_from) == ("k2", None)
    assert enrol.desfire_verify_rekey(_tx(card), UID, [K2]).strength is Strength.VERIFIED


def test_a_clone_is_not_rekeyed() -> None:
    clone = DesfireCard(UID, bytes(16))
    cred = enrol.desfire_verify_rekey(_tx(clone), UID, [K2, K1])
    assert cred.strength is Strength.FAILED and clone.key == bytes(16)
    assert enrol.desfire_verify_rekey(_tx(DesfireCard(UID)), UID, [K1]).strength is \
        Strength.WEAK  # no application: UID only


def test_a_blank_felica_lite_s_is_personalised_and_then_verifies() -> None:
    card = FelicaLiteSCard.blank(IDM)
    cred = enrol.felica_personalise(_tx(card), IDM, K1)
    assert (cred.strength, cred.card_type, cred.key_id) == (
        Strength.VERIFIED, CardType.FELICA_LITE_S, "k1")
    assert card.id_block == IDM + enrol.FELICA_MARK and card.ckv[:2] == b"\x01\x00"
    assert felica_lite.verify(_tx(card), IDM, [K1]).strength is Strength.VERIFIED
    assert felica_lite.verify(_tx(card), IDM, [K2]).strength is Strength.FAILED


def test_a_felica_card_with_a_key_takes_no_plain_key_write() -> None:
    card = FelicaLiteSCard.enrolled(IDM, K1)
    before = card.card_key
    cred = enrol.felica_personalise(_tx(card), IDM, K2)
    assert cred.strength is Strength.FAILED and "write CK" in cred.detail
    assert card.card_key == before


def test_the_verifier_personalises_the_next_card_at_the_armed_reader_only(monkeypatch) -> None:
    verifier = CardVerifier([K1])
    verifier.arm("door-in", "req-1", until=float("inf"))
    other = DesfireCard.enrolled(UID, K1)
    assert verifier.verify(_tx(other), UID, desfire.ATR, reader="door-out").enrolment is None
    blank = FelicaLiteSCard.blank(IDM)
    cred = verifier.verify(_tx(blank), IDM, DEFAULT_ATR, reader="door-in")
    assert (cred.enrolment, cred.strength) == ("req-1", Strength.VERIFIED)
    assert verifier.armed("door-in") is None and not verifier.disarm("door-in", "req-1")
    verifier.arm("door-in", "req-2", until=0.0)  # already past: the next tap is a plain tap
    assert verifier.verify(_tx(blank), IDM, DEFAULT_ATR, reader="door-in").enrolment is None
    assert CardVerifier().verify(_tx(blank), IDM, DEFAULT_ATR, reader="x").strength is \
        Strength.WEAK
    verifier = CardVerifier()
    verifier.arm("door-in", "req-3", until=float("inf"))
    nokey = verifier.verify(_tx(FelicaLiteSCard.blank(IDM)), IDM, DEFAULT_ATR, reader="door-in")
    assert (nokey.strength, nokey.enrolment) == (Strength.FAILED, "req-3")


def test_a_felica_card_on_the_old_key_is_rekeyed_with_a_mac_write() -> None:
    card = FelicaLiteSCard.blank(IDM)
    assert enrol.felica_personalise(_tx(card), IDM, K1).strength is Strength.VERIFIED
    cred = enrol.felica_verify_rekey(_tx(card), IDM, [K2, K1])
    assert (cred.strength, cred.key_id, cred.rekeyed_from) == (Strength.VERIFIED, "k2", "k1")
    assert card.card_key == felica_lite.card_key(K2, card.id_block) and card.wcnt == 1
    assert enrol.felica_verify_rekey(_tx(card), IDM, [K2]).key_id == "k2"
    assert felica_lite.verify(_tx(card), IDM, [K1]).strength is Strength.FAILED


def test_a_mac_write_under_the_wrong_key_changes_nothing() -> None:
    card = FelicaLiteSCard.enrolled(IDM, K1)
    before = card.card_key
    rc = bytes(range(16))
    card.answer(felica_lite.direct_transmit(felica_lite.write_rc(IDM, felica_lite._rev8(rc))))
    wrong = felica_lite.session_key_from_block(felica_lite.card_key(K2, card.id_block), rc)
    frame = enrol.write_with_mac(IDM, felica_lite.BLOCK_CK, bytes(16), wrong, rc, b"\0\0\0")
    reply, _ = card.answer(felica_lite.direct_transmit(frame))
    assert felica_lite.parse_answer(reply, felica_lite.CMD_WRITE + 1, IDM)[0] is None
    assert card.card_key == before and card.wcnt == 0


def test_a_factory_desfire_with_the_des_picc_key_is_personalised() -> None:
    card = DesfireCard.blank(UID, factory_des=True)
    cred = enrol.desfire_personalise(_tx(card), UID, K1)
    assert (cred.strength, cred.key_id) == (Strength.VERIFIED, "k1"), cred.detail
    assert card.key == desfire.card_key(K1, UID)
    # the handshake itself: the card proves the DES key, and refuses a wrong one
    desfire.unwrap(card.answer(desfire.wrap(desfire.CMD_SELECT_APP, bytes(3)))[0])
    assert enrol.authenticate_iso_des(_tx(card), bytes(16)) == ""
    desfire.unwrap(card.answer(desfire.wrap(desfire.CMD_SELECT_APP, bytes(3)))[0])
    assert "step 2: status 0xae" in enrol.authenticate_iso_des(_tx(card), bytes(range(16)))
