"""Site card master keys sealed to one node inside its slice (controller.card_keys)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from controller.card_keys import CardKeyError, SealedCardKey, new_site_key, seal, unseal_all
from controller.policy import DoorRule, Group, Person, Policy, PolicyError
from controller.policy_slice import NodeScope, slice_policy

CARD_KEY = bytes(range(32))


def test_a_sealed_key_opens_only_for_its_site_node_and_id() -> None:
    key = new_site_key("k1")
    sealed = seal(CARD_KEY, "hq", "gw1", key)
    assert key.secret.hex() not in sealed.model_dump_json()
    assert unseal_all(CARD_KEY, "hq", "gw1", [sealed])[0].secret == key.secret
    for site, node, card_key in (("hq", "gw2", CARD_KEY), ("lab", "gw1", CARD_KEY),
                                 ("hq", "gw1", bytes(32))):
        with pytest.raises(CardKeyError, match="does not open"):
            unseal_all(card_key, site, node, [sealed])
    renamed = SealedCardKey(key_id="k2", nonce=sealed.nonce, sealed=sealed.sealed)
    with pytest.raises(CardKeyError):
        unseal_all(CARD_KEY, "hq", "gw1", [renamed])
    assert "secret=<hidden>" in repr(key)


def _site() -> Policy:
    return Policy(
        version=1, issued_at=datetime(2026, 12, 1, tzinfo=UTC), site="hq",
        people=[Person(id="a", name="A", cards=["04A1B2C3D4E5F6"],
                       verified_cards=["04A1B2C3D4E5F6"], groups=["g"])],
        groups=[Group(id="g", name="G", doors=["d1"], printers=["p1"])],
        doors=[DoorRule(id="d1", name="D1", require_verified=True)], printers=["p1"])


def test_a_slice_carries_the_keys_only_to_door_nodes_and_a_wrong_card_key_is_refused() -> None:
    keys = [new_site_key("k2"), new_site_key("k1")]
    door = slice_policy(_site(), "gw1", NodeScope(doors=frozenset({"d1"})), CARD_KEY,
                        site_keys=keys)
    printer = slice_policy(_site(), "ps1", NodeScope(printers=frozenset({"p1"})), CARD_KEY,
                           site_keys=keys)
    assert printer.card_keys == [] and printer.card_key_ids == []
    assert door.card_key_ids == ["k2", "k1"]
    door.bind_card_key(CARD_KEY)
    assert [(k.key_id, k.secret) for k in door.site_keys] == [(k.key_id, k.secret) for k in keys]
    assert door.card_enrolled_verified("04:A1:B2:C3:D4:E5:F6")
    assert not door.card_enrolled_verified("0102030405060708")
    again = Policy.model_validate(door.model_dump())
    with pytest.raises(PolicyError) as exc:
        again.bind_card_key(bytes(32))  # a node installed with the wrong card key
    assert exc.value.reason == "card_keys_unreadable"


def test_a_verified_card_must_be_one_of_the_persons_cards() -> None:
    with pytest.raises(ValueError, match="verified card is not among the cards"):
        Person(id="a", name="A", cards=["01020304"], verified_cards=["05060708"])
