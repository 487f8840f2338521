from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from controller.envelope import b64u, canonical_json
from controller.events import KINDS
from controller.keys import generate, key_id, load_public
from controller.policy import (
    SIGNING_CONTEXT,
    Policy,
    PolicyError,
    sign_policy,
    verify_policy,
)
from controller.policy_store import PolicyStore
from tests.controller.door_fixtures import ALICE, SITE, Recorder, make_policy, policy_dict

ADMIN = Ed25519PrivateKey.generate()
OTHER = Ed25519PrivateKey.generate()
TRUSTED = [ADMIN.public_key()]


def signed(version: int = 1, key: Ed25519PrivateKey = ADMIN, **overrides: Any) -> bytes:
    return sign_policy(make_policy(version=version, **overrides), key)


def reason_of(blob: bytes, **kwargs: Any) -> str:
    with pytest.raises(PolicyError) as info:
        verify_policy(blob, kwargs.pop("trusted", TRUSTED), site=kwargs.pop("site", SITE), **kwargs)
    return info.value.reason


# --- the model ---------------------------------------------------------------------------


def test_policy_builds_card_lookup_once_with_normalised_uids() -> None:
    policy = make_policy()
    alice = policy.person_for_card(ALICE.lower())
    assert alice is not None and alice.id == "alice"
    assert alice.cards == [ALICE]  # "04:a1:..." in the source became uppercase hex
    assert policy.person_for_card("DEADBEEF") is None


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["people"][1].update(cards=[ALICE]), "held by both"),
        (lambda d: d["people"][0].update(groups=["ghosts"]), "unknown group"),
        (lambda d: d["groups"][0].update(doors=["vault"]), "unknown door"),
        (lambda d: d["groups"][0].update(printers=["prn9"]), "unknown printer"),
        (lambda d: d.update(lockdown_doors=["vault"]), "unknown door"),
        (lambda d: d["people"].append(dict(d["people"][0], cards=[])), "used twice"),
        (lambda d: d.update(timezone="Mars/Olympus"), "time zone"),
        (lambda d: d.update(issued_at="2026-11-01T00:00:00"), "time zone"),
        (lambda d: d.update(surprise=True), "Extra inputs"),
        (lambda d: d["people"][0].update(cards=["XYZ"]), "hexadecimal"),
        (
            lambda d: d["people"][0].update(valid_from="2026-12-01", valid_until="2026-11-01"),
            "before valid_from",
        ),
        (lambda d: d.update(version=0), "greater than or equal"),
        (lambda d: (d["people"][0].update(host_accounts=["shared"]),
                    d["people"][1].update(host_accounts=["shared"])), "host account shared"),
        (lambda d: d["people"][0].update(host_accounts=["Alice Root"]), "should match pattern"),
    ],
)
def test_inconsistent_policies_are_rejected(mutate: Any, message: str) -> None:
    data = policy_dict()
    mutate(data)
    with pytest.raises(ValidationError, match=message):
        Policy.model_validate(data)


def test_host_accounts_map_to_their_holder_and_groups_name_hosts() -> None:
    data = policy_dict()
    data["people"][0]["host_accounts"] = ["alice", "alice-adm"]
    data["groups"][0].update(hosts=["pc-01", "pc-02"], host_admin=True)
    policy = Policy.model_validate(data)
    assert policy.person_for_account("alice-adm").id == "alice"
    assert policy.person_for_account("bob") is None
    staff = policy.group("staff")
    assert staff.hosts == ["pc-01", "pc-02"] and staff.host_admin
    assert policy.group("admins").hosts == [] and not policy.group("admins").host_admin


# --- signing -----------------------------------------------------------------------------


def test_signed_policy_round_trips() -> None:
    blob = signed(version=3)
    wire = json.loads(blob)
    assert set(wire) == {"policy", "key_id", "sig"}
    assert wire["key_id"] == key_id(ADMIN.public_key())
    assert blob == canonical_json(wire)  # canonical JSON on the wire
    policy = verify_policy(blob, TRUSTED, site=SITE)
    assert policy == make_policy(version=3)
    assert policy.person_for_card(ALICE) is not None


def test_bare_policy_is_unsigned() -> None:
    bare = canonical_json(make_policy().model_dump(mode="json"))
    assert reason_of(bare) == "unsigned"


def test_envelope_without_signature_is_unsigned() -> None:
    wire = json.loads(signed())
    del wire["sig"]
    assert reason_of(canonical_json(wire)) == "unsigned"


def test_policy_signed_by_an_untrusted_key_is_refused() -> None:
    assert reason_of(signed(key=OTHER)) == "unknown_key"
    assert reason_of(signed(), trusted=[]) == "unknown_key"


def test_forged_signature_under_a_trusted_key_id_is_refused() -> None:
    wire = json.loads(signed(key=OTHER))
    wire["key_id"] = key_id(ADMIN.public_key())
    assert reason_of(canonical_json(wire)) == "bad_signature"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda p: p.update(lockdown=True),
        lambda p: p["people"][0].update(groups=["staff"], active=True, name="Alicia"),
        lambda p: p["people"][6].update(groups=["admins"]),
        lambda p: p.update(version=p["version"] + 1),
    ],
)
def test_tampered_policy_is_refused(tamper: Any) -> None:
    wire = json.loads(signed())
    tamper(wire["policy"])
    assert reason_of(canonical_json(wire)) == "bad_signature"


def test_signature_over_the_raw_body_without_context_is_refused() -> None:
    body = make_policy().model_dump(mode="json")
    raw_sig = b64u(ADMIN.sign(canonical_json(body)))  # no SIGNING_CONTEXT
    wire = {"key_id": key_id(ADMIN.public_key()), "policy": body, "sig": raw_sig}
    assert reason_of(canonical_json(wire)) == "bad_signature"
    good = b64u(ADMIN.sign(SIGNING_CONTEXT + canonical_json(body)))
    assert verify_policy(canonical_json(dict(wire, sig=good)), TRUSTED, site=SITE).version == 1


def test_older_version_is_refused() -> None:
    assert reason_of(signed(version=4), min_version=5) == "older_version"
    assert verify_policy(signed(version=5), TRUSTED, site=SITE, min_version=5).version == 5


def test_policy_for_another_site_is_refused() -> None:
    assert reason_of(signed(), site="branch-2") == "wrong_site"


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"not json",
        b"[1,2]",
        b'{"x":1}',
        b'{"policy":[],"key_id":"a","sig":"b"}',
        b'{"policy":{"version":NaN},"key_id":"a","sig":"b"}',
        b"\xff\xfe",
    ],
)
def test_garbage_is_malformed(blob: bytes) -> None:
    assert reason_of(blob) == "malformed"


def test_signed_but_invalid_policy_is_malformed() -> None:
    body = policy_dict()
    body["people"][1]["cards"] = [ALICE]  # two people, one card
    sig = b64u(ADMIN.sign(SIGNING_CONTEXT + canonical_json(body)))
    blob = canonical_json({"key_id": key_id(ADMIN.public_key()), "policy": body, "sig": sig})
    with pytest.raises(PolicyError) as info:
        verify_policy(blob, TRUSTED, site=SITE)
    assert info.value.reason == "malformed" and "held by both" in info.value.detail


def test_signing_with_key_files(tmp_path: Path) -> None:
    key = generate(tmp_path / "admin.key")
    blob = sign_policy(make_policy(version=2), key)
    assert verify_policy(blob, [load_public(tmp_path / "admin.key.pub")], site=SITE).version == 2


# --- the store ---------------------------------------------------------------------------


def make_store(path: Path, emit: Recorder | None = None, **kw: Any) -> PolicyStore:
    return PolicyStore(path, TRUSTED, site=SITE, emit=emit or Recorder(), **kw)


def test_store_applies_persists_and_reloads(tmp_path: Path) -> None:
    events, changes = Recorder(), list[Policy]()
    path = tmp_path / "state" / "policy.signed"
    store = make_store(path, events, on_change=changes.append)
    assert store.current is None
    assert store.offer(signed(version=2))
    assert store.current is not None and store.current.version == 2
    assert path.read_bytes() == signed(version=2)
    assert [c.version for c in changes] == [2]
    (applied,) = events.of("policy.applied")
    assert applied["version"] == 2 and applied["persisted"] is True and applied["source"] == "mqtt"
    KINDS["policy.applied"].model.model_validate(applied)

    restarted_events = Recorder()
    restarted = make_store(path, restarted_events)
    restarted.load()
    assert restarted.current == store.current
    assert restarted_events.of("policy.applied")[0]["source"] == "stored"


def test_store_load_without_file_is_empty(tmp_path: Path) -> None:
    events = Recorder()
    store = make_store(tmp_path / "none.signed", events)
    store.load()
    assert store.current is None and events.events == []


def test_store_refuses_older_and_keeps_the_newer(tmp_path: Path) -> None:
    events = Recorder()
    store = make_store(tmp_path / "p.signed", events)
    assert store.offer(signed(version=5))
    assert not store.offer(signed(version=4, lockdown=True))
    assert store.current is not None and store.current.version == 5
    assert not store.current.lockdown
    (rejected,) = events.of("policy.rejected")
    assert rejected["reason"] == "older_version" and rejected["version"] == 4
    KINDS["policy.rejected"].model.model_validate(rejected)
    assert json.loads((tmp_path / "p.signed").read_bytes())["policy"]["version"] == 5
    assert store.rejected == 1


@pytest.mark.parametrize(
    ("blob", "reason"),
    [
        (canonical_json(make_policy(version=9).model_dump(mode="json")), "unsigned"),
        (signed(version=9, key=OTHER), "unknown_key"),
        (b"{", "malformed"),
    ],
)
def test_store_rejects_and_keeps_working_on_the_last_good(
    tmp_path: Path, blob: bytes, reason: str
) -> None:
    events = Recorder()
    store = make_store(tmp_path / "p.signed", events)
    store.offer(signed(version=1))
    assert not store.offer(blob)
    assert store.current is not None and store.current.version == 1
    assert events.of("policy.rejected")[0]["reason"] == reason


def test_same_version_same_content_is_a_silent_no_op(tmp_path: Path) -> None:
    events = Recorder()
    store = make_store(tmp_path / "p.signed", events)
    blob = signed(version=3)
    assert store.offer(blob)
    assert store.offer(blob)  # the retained message again, after a reconnect
    assert events.kinds() == ["policy.applied"]


def test_same_version_different_content_is_a_conflict(tmp_path: Path) -> None:
    events = Recorder()
    store = make_store(tmp_path / "p.signed", events)
    store.offer(signed(version=3))
    assert not store.offer(signed(version=3, lockdown=True))
    assert events.of("policy.rejected")[0]["reason"] == "version_conflict"
    assert store.current is not None and not store.current.lockdown


def test_tampered_file_on_disk_is_rejected_at_load(tmp_path: Path) -> None:
    path = tmp_path / "p.signed"
    make_store(path).offer(signed(version=2))
    wire = json.loads(path.read_bytes())
    wire["policy"]["lockdown"] = True
    path.write_bytes(canonical_json(wire))
    events = Recorder()
    store = make_store(path, events)
    store.load()
    assert store.current is None
    rejected = events.of("policy.rejected")[0]
    assert rejected["reason"] == "bad_signature" and rejected["source"] == "stored"
    assert path.exists()  # nothing stored is thrown away


def test_store_applies_in_memory_when_the_disk_refuses(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the directory should be")
    events = Recorder()
    store = make_store(blocker / "p.signed", events)
    assert store.offer(signed(version=7, lockdown=True))  # a lockdown must not wait for disk
    assert store.current is not None and store.current.lockdown
    assert events.of("policy.applied")[0]["persisted"] is False


def test_concurrent_offers_end_on_the_highest_version(tmp_path: Path) -> None:
    events = Recorder()
    path = tmp_path / "p.signed"
    store = make_store(path, events)
    blobs = [signed(version=v) for v in range(1, 21)]
    start = threading.Barrier(len(blobs))

    def offer(blob: bytes) -> None:
        start.wait()
        store.offer(blob)

    threads = [threading.Thread(target=offer, args=(b,)) for b in reversed(blobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.current is not None and store.current.version == 20
    assert path.read_bytes() == blobs[-1]
    applied = [d["version"] for d in events.of("policy.applied")]
    assert applied == sorted(applied) and applied[-1] == 20
    assert len(applied) + len(events.of("policy.rejected")) == 20
