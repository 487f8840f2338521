"""Enrolment of blank cards on the dashboard's signed command, end to end: the command comes
over a real Mosquitto, blank virtual DESFire EV2 and FeliCa Lite-S cards are presented through a
real pcscd + vpcd, the gateway personalises them with standard commands and journals the
outcome; forged, foreign and replayed commands are refused and counted; a card still on the old
site key is re-keyed at a tap during a changeover and opens after the old key is retired."""

from __future__ import annotations

from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controller.envelope import Event, format_ts, now_utc, topic_for
from controller.receipts import EnrolCommand, sign_enrol
from readers.verify import desfire, felica_lite
from readers.verify.enrol import FELICA_MARK
from readers.virtual import VirtualCard
from readers.virtual_cards import DesfireCard, FelicaLiteSCard
from tests.controller.gateway_kit import DOOR, SITE
from tests.controller.test_gateway_cards import (
    DESFIRE_UID,
    FELICA_IDM,
    K1,
    K2,
    Room,
    outcome,
    relay_unlocks,
)
from tests.controller.test_gateway_cards import room as room  # noqa: F401,PLC0414 - fixture

READER = "Virtual PCD 00 00"
BLANK_UID = bytes.fromhex("04C0FFEE112233")
BLANK_IDM = bytes.fromhex("012E4CD0FFEE0011")


def command(room: Room, request: str, counter: int, *, wait_s: int = 30, node: str = "gw1",
            key: Ed25519PrivateKey | None = None, reader: str = READER,
            issued: datetime | None = None) -> bytes:
    return sign_enrol(key or room.kit.admin_key, EnrolCommand(
        SITE, node, reader, request, wait_s, counter, format_ts(issued or now_utc())))


def send(room: Room, blob: bytes) -> int:
    mark = room.collector.mark()
    room.link.publish(topic_for(SITE, "gw1", "enrol"), blob)
    return mark


def enrolment(room: Room, request: str, outcome_: str, mark: int) -> Event:
    return room.collector.wait_for(
        lambda e: e.kind == "card.enrolment" and e.data["request"] == request
        and e.data["outcome"] == outcome_ and room.collector.arrivals.index(e) >= mark,
        timeout=30)


def personalise(room: Room, request: str, counter: int, uid: bytes, applet: object) -> Event:
    mark = send(room, command(room, request, counter))
    enrolment(room, request, "waiting", mark)
    card = VirtualCard(port=room.port, uid=uid, applet=applet,  # type: ignore[arg-type]
                       atr=applet.atr)  # type: ignore[attr-defined]
    card.insert()
    try:
        return room.collector.wait_for(
            lambda e: e.kind == "card.enrolment" and e.data["request"] == request
            and e.data["outcome"] != "waiting", timeout=30)
    finally:
        card.remove()


def test_blank_cards_are_personalised_at_the_reader_on_a_signed_command(room: Room) -> None:
    room.push(10, [K1])
    blank = DesfireCard.blank(BLANK_UID, factory_des=True)  # as NXP ships: DES PICC key
    done = personalise(room, "req-desfire", 1, BLANK_UID, blank)
    assert done.data | {"detail": ""} == {
        "request": "req-desfire", "reader": READER, "outcome": "personalised",
        "card": BLANK_UID.hex().upper(), "card_type": "desfire", "key_id": "k1", "detail": ""}
    # refused once: EV2First with an AES key on the DES PICC key, before AuthenticateISO
    assert blank.key == desfire.card_key(K1, BLANK_UID) and blank.refused == [0xAE]
    felica = FelicaLiteSCard.blank(BLANK_IDM)
    done = personalise(room, "req-felica", 2, BLANK_IDM, felica)
    assert (done.data["outcome"], done.data["card_type"], done.data["key_id"]) == (
        "personalised", "felica_lite_s", "k1")
    assert felica.card_key == felica_lite.card_key(K1, BLANK_IDM + FELICA_MARK)
    # nothing opened while enrolling; the cards now prove themselves at a plain tap
    assert not any(e.kind == "door.access" and e.data["card"] in (
        BLANK_UID.hex().upper(), BLANK_IDM.hex().upper()) for e in room.collector.arrivals)
    for uid, applet in ((BLANK_UID, blank), (BLANK_IDM, felica)):
        tap = room.present(uid, applet=applet)
        assert (tap.data["credential"], tap.data["credential_key"]) == ("verified", "k1")
    # a card that is not blank is not overwritten, and says why
    taken = personalise(room, "req-again", 3, BLANK_UID, blank)
    assert taken.data["outcome"] == "failed" and "not blank" in taken.data["detail"]
    assert blank.key == desfire.card_key(K1, BLANK_UID)
    for secret in (K1.secret, desfire.card_key(K1, BLANK_UID)):
        assert secret.hex() not in str([e.data for e in room.collector.arrivals]).lower()


def test_forged_foreign_and_replayed_commands_are_refused_and_counted(room: Room) -> None:
    room.push(10, [K1])
    mark = send(room, command(room, "req-ok", 5, wait_s=1))
    enrolment(room, "req-ok", "waiting", mark)
    enrolment(room, "req-ok", "timeout", mark)  # nobody presented a card within 1 s
    forged = [
        b'{"enrol":{"site":"hq","node":"gw1","reader":"Virtual PCD 00 00","request":"x",'
        b'"wait_s":30,"issued_at":"","counter":9}}',  # unsigned
        command(room, "req-foreign", 6, key=Ed25519PrivateKey.generate()),  # unknown signer
        command(room, "req-gw2", 7, node="gw2"),  # another node's
        command(room, "req-replay", 4),  # an older counter: a replay
    ]
    mark = room.collector.mark()
    for blob in forged:
        send(room, blob)
    reasons = set()
    while reasons != {"unsigned", "unknown_key", "wrong_node", "replayed"}:
        event = room.collector.wait_for(
            lambda e: e.kind == "node.receipt_refused" and e.data["what"] == "enrol"
            and e.data["reason"] not in reasons and room.collector.arrivals.index(e) >= mark,
            timeout=20)
        reasons.add(event.data["reason"])
    assert room.gateway.counters["enrol_refused"] == 4
    assert room.gateway.counters["enrol_commands"] == 1
    # a command for a reader this node does not have is answered, not armed
    mark = send(room, command(room, "req-nowhere", 8, reader="Nowhere 00 00"))
    assert enrolment(room, "req-nowhere", "refused", mark).data["detail"]
    # so is one that waited in the broker's queue past its wait (this node's clock is synced)
    late = now_utc() - timedelta(minutes=10)
    mark = send(room, command(room, "req-late", 9, issued=late))
    assert "after its wait" in enrolment(room, "req-late", "refused", mark).data["detail"]
    assert not any(e.kind == "card.enrolment" and e.data["request"] in (
        "x", "req-foreign", "req-gw2", "req-replay") for e in room.collector.arrivals)


def test_a_card_on_the_old_key_is_rekeyed_and_opens_after_the_old_key_is_retired(
    room: Room,
) -> None:
    card = DesfireCard.enrolled(DESFIRE_UID, K1)
    room.push(10, [K1])
    room.push(11, [K2, K1])  # the dashboard rotated: the new key first, the old one accepted
    mark = room.collector.mark()
    first = room.present(DESFIRE_UID, applet=card)
    assert outcome(first) == (True, None, "verified")
    assert first.data["credential_key"] == "k2"  # re-keyed at this very tap
    rekeyed = room.collector.wait_for(
        lambda e: e.kind == "card.rekeyed" and room.collector.arrivals.index(e) >= mark)
    assert rekeyed.data == {"reader": READER, "card": DESFIRE_UID.hex().upper(),
                            "card_type": "desfire", "key_id": "k2", "previous_key": "k1"}
    assert card.key == desfire.card_key(K2, DESFIRE_UID)
    room.push(12, [K2])  # the old key retired
    after = room.present(DESFIRE_UID, applet=card)
    assert outcome(after) == (True, None, "verified") and after.data["credential_key"] == "k2"
    assert relay_unlocks(room.gateway, DOOR)
    # a FeliCa Lite-S the same way (CK written with MAC_A under the old key)
    felica = FelicaLiteSCard.enrolled(FELICA_IDM, K1)
    room.push(13, [K2, K1])
    mark = room.collector.mark()
    assert room.present(FELICA_IDM, applet=felica).data["credential_key"] == "k2"
    assert room.collector.wait_for(
        lambda e: e.kind == "card.rekeyed" and room.collector.arrivals.index(e) >= mark
    ).data["card_type"] == "felica_lite_s"
    room.push(14, [K2])
    assert outcome(room.present(FELICA_IDM, applet=felica)) == (True, None, "verified")
