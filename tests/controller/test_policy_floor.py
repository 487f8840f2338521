"""A node's policy can only move forward and does not outlive its expiry: the highest version
it applied is a floor kept on disk (an older signed policy, replayed on the broker or put back
as the stored file, is refused after a restart too), a policy past ``expires_at`` is refused,
and the one in force going past it makes the node stale (closed: it opens nothing, and says so
once in node.policy_stale). A hashed slice needs the node's card key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controller.access import AccessRequest, AccessState, Denial, Direction, decide
from controller.events import KINDS
from controller.policy import sign_policy
from controller.policy_store import PolicyStore
from tests.controller.door_fixtures import ALICE, BOB, SITE, Recorder, make_policy

ADMIN = Ed25519PrivateKey.generate()
NOW = datetime(2026, 11, 10, 3, 0, tzinfo=UTC)  # a Tuesday, 12:00 in Tokyo
DAY = timedelta(days=1)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def signed(version: int, **overrides: Any) -> bytes:
    return sign_policy(make_policy(version=version, **overrides), ADMIN)


def store(path: Path, events: Recorder, clock: Clock | None = None, **kw: Any) -> PolicyStore:
    return PolicyStore(path, [ADMIN.public_key()], site=SITE, emit=events,
                       clock=clock or Clock(), node="gw1", **kw)


def plain(path: Path, events: Recorder) -> PolicyStore:
    """A store as every release builds it (whole-site policies, no expiry)."""
    return PolicyStore(path, [ADMIN.public_key()], site=SITE, emit=events)


def test_an_older_signed_policy_is_refused_after_a_restart_too(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    events = Recorder()
    node = plain(path, events)
    assert node.offer(signed(3))
    assert node.offer(signed(5, lockdown=True))
    # the stored file put back from an older copy (or a disk image), then a restart
    path.write_bytes(signed(3))
    again = Recorder()
    restarted = plain(path, again)
    restarted.load()
    assert restarted.current is None  # v3 is below the floor 5: not applied
    assert [r["reason"] for r in again.of("policy.rejected")] == ["older_version"]
    # the same older policy replayed on the broker: refused, counted, nothing applied
    assert not restarted.offer(signed(3))
    assert not restarted.offer(signed(4))
    assert restarted.rejected == 3 and restarted.current is None
    # v5 as signed before is welcome again; a different v5 is not
    assert not restarted.offer(signed(5))  # same version, other content (no lockdown)
    assert restarted.offer(signed(5, lockdown=True)) and restarted.current.version == 5
    assert restarted.status()["floor"] == 5


def test_an_expired_policy_is_refused(tmp_path: Path) -> None:
    events = Recorder()
    node = store(tmp_path / "policy.json", events)
    assert not node.offer(signed(2, expires_at=NOW - timedelta(seconds=1)))
    (rejected,) = events.of("policy.rejected")
    assert rejected["reason"] == "expired" and rejected["version"] == 2
    KINDS["policy.rejected"].model.model_validate(rejected)
    assert node.current is None
    assert node.offer(signed(2, expires_at=NOW + DAY))


def test_the_policy_in_force_going_stale_closes_the_doors(tmp_path: Path) -> None:
    clock, events = Clock(), Recorder()
    node = store(tmp_path / "policy.json", events, clock)
    assert node.offer(signed(7, expires_at=NOW + DAY))
    request = AccessRequest(door="main", direction=Direction.IN, uid=ALICE, reader="r1")
    granted, _ = decide(node.applied, AccessState(), request, clock.now)
    assert granted.granted and node.status()["stale"] is False

    clock.now = NOW + DAY
    denied, _ = decide(node.applied, AccessState(), request, clock.now)
    assert (denied.granted, denied.reason) == (False, Denial.POLICY_STALE)
    assert node.current is None and node.current is None  # closed: nothing to decide on
    (stale,) = events.of("node.policy_stale")  # once per version
    assert stale["version"] == 7 and stale["mode"] == "closed"
    KINDS["node.policy_stale"].model.model_validate(stale)
    assert node.status()["stale"] is True

    keep = store(tmp_path / "other.json", Recorder(), clock, stale_mode="last_good")
    clock.now = NOW
    keep.offer(signed(7, expires_at=NOW + DAY))
    clock.now = NOW + DAY
    assert keep.current is not None  # the site chose to keep deciding on the last good one
    kept, _ = decide(keep.applied, AccessState(), request, clock.now, honour_expiry=False)
    assert kept.granted


def test_a_hashed_slice_needs_the_card_key_and_is_only_for_its_node(tmp_path: Path) -> None:
    from controller.policy_slice import NodeScope, card_key_for, slice_policy

    site = make_policy(version=4)
    key = card_key_for(ADMIN, SITE, "gw1")
    part = slice_policy(site, "gw1", NodeScope(doors=frozenset({"main"})), key,
                        expires_at=NOW + DAY)
    blob = sign_policy(part, ADMIN)
    assert ALICE.encode() not in blob and b"04:a1" not in blob.lower()
    events = Recorder()
    assert not store(tmp_path / "a.json", events).offer(blob)
    assert events.of("policy.rejected")[0]["reason"] == "no_card_key"
    other = PolicyStore(tmp_path / "b.json", [ADMIN.public_key()], site=SITE, emit=Recorder(),
                        clock=Clock(), node="gw2", card_key=key)
    assert not other.offer(blob)
    node = store(tmp_path / "c.json", Recorder(), card_key=key)
    assert node.offer(blob)
    assert node.current.person_for_card("04:a1:b2:c3:d4:e5:f6").id == "alice"
    assert node.current.person_for_card(BOB) is not None  # bob (admins) may use main too
    assert node.current.person_for_card("DEADBEEF") is None
