from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from controller.policy import PolicyError, verify_policy
from dashboard import services
from dashboard.models import PolicyVersion
from dashboard.policy_signer import PolicySigner
from tests.dashboard.conftest import SITE, T0


class Clock:
    def __init__(self):
        self.now = T0

    def __call__(self):
        return self.now


class Sink:
    def __init__(self, fail: bool = False):
        self.sent: list[tuple[str, bytes, bool]] = []
        self.fail = fail

    def __call__(self, topic, blob, retain):
        if self.fail:
            raise ConnectionError("broker down")
        self.sent.append((topic, blob, retain))


@pytest.fixture
def key():
    return Ed25519PrivateKey.generate()


@pytest.fixture
def rights(sm):
    with sm() as s:
        services.create_door(
            s,
            "admin",
            {"id": "d1", "name": "Server room", "two_person": True, "anti_passback": True},
            now=T0,
        )
        services.create_printer(s, "admin", {"id": "p1", "name": "MFP"}, now=T0)
        services.create_group(
            s,
            "admin",
            {
                "id": "staff",
                "name": "Staff",
                "doors": ["d1"],
                "printers": ["p1"],
                "on_holidays": True,
                "hosts": ["pc-01"],
                "host_admin": True,
                "windows": [{"days": [0, 1, 2, 3, 4], "start": "08:00", "end": "20:00"}],
            },
            now=T0,
        )
        services.create_person(
            s,
            "admin",
            {
                "id": "alice",
                "name": "Alice",
                "groups": ["staff"],
                "operator_ids": ["op7"],
                "cups_users": ["alice"],
                "host_accounts": ["alice"],
            },
            now=T0,
        )
        services.enrol_card(s, "admin", "alice", "0102030405060708", now=T0)
        s.commit()


def test_signed_policy_verifies_and_matches_the_database(sm, key, rights):
    sink, clock = Sink(), Clock()
    signer = PolicySigner(sm, key, site=SITE, publish=sink, clock=clock)
    version = signer.publish_now()
    assert version == 1
    # no node declared a scope yet: only the old whole-site topic is cleared
    assert sink.sent == [(f"secroom/v1/{SITE}/policy", b"", True)]
    blob = signer.current()[1]  # the stored site policy the slices are cut from
    policy = verify_policy(blob, [key.public_key()], site=SITE)
    assert policy.version == 1 and policy.issued_at == T0
    alice = policy.person_for_card("0102030405060708")
    assert alice is not None and alice.id == "alice" and alice.groups == ["staff"]
    assert alice.operator_ids == ["op7"] and alice.cups_users == ["alice"]
    assert policy.person_for_account("alice") == alice
    staff = policy.group("staff")
    assert staff.doors == ["d1"] and staff.printers == ["p1"] and staff.on_holidays
    assert staff.hosts == ["pc-01"] and staff.host_admin
    assert staff.windows[0].days == [0, 1, 2, 3, 4]
    door = policy.door("d1")
    assert door.two_person and door.anti_passback
    with pytest.raises(PolicyError):
        verify_policy(blob, [Ed25519PrivateKey.generate().public_key()], site=SITE)


def test_revoked_card_is_gone_from_the_next_version(sm, key, rights):
    sink, clock = Sink(), Clock()
    signer = PolicySigner(sm, key, site=SITE, publish=sink, clock=clock)
    signer.publish_now()
    with sm() as s:
        services.revoke_card(s, "admin", "0102030405060708", now=T0)
        s.commit()
    clock.now = T0 + timedelta(seconds=5)
    assert signer.poll() == 2
    policy = verify_policy(signer.current()[1], [key.public_key()], site=SITE, min_version=2)
    assert policy.person_for_card("0102030405060708") is None
    assert policy.person("alice").cards == []


def test_unchanged_content_keeps_the_version(sm, key, rights):
    sink = Sink()
    signer = PolicySigner(sm, key, site=SITE, publish=sink, clock=Clock())
    assert signer.publish_now() == 1
    assert signer.publish_now() == 1
    assert signer.publish_now(force=True) == 2
    assert signer.poll() is None  # nothing dirty


def test_versions_persist_across_signers(sm, key, rights):
    PolicySigner(sm, key, site=SITE, publish=Sink(), clock=Clock()).publish_now()
    with sm() as s:
        services.update_door(s, "admin", "d1", {"two_person": False}, now=T0)
        s.commit()
    again = PolicySigner(sm, key, site=SITE, publish=Sink(), clock=Clock())
    assert again.publish_now() == 2
    with sm() as s:
        assert s.scalars(select(PolicyVersion.version).order_by(PolicyVersion.version)).all() == [
            1,
            2,
        ]


def test_debounce_waits_for_quiet(sm, key, rights):
    clock = Clock()
    signer = PolicySigner(sm, key, site=SITE, publish=Sink(), clock=clock, debounce_s=2)
    signer.publish_now()
    with sm() as s:
        services.update_person(s, "admin", "alice", {"name": "Alice A."}, now=T0)
        s.commit()
    clock.now = T0 + timedelta(seconds=1)
    assert signer.poll() is None
    clock.now = T0 + timedelta(seconds=2)
    assert signer.poll() == 2


def test_failed_publish_is_retried_with_the_same_blob(sm, key, rights):
    sink = Sink(fail=True)
    signer = PolicySigner(sm, key, site=SITE, publish=sink, clock=Clock())
    assert signer.publish_now() == 1
    assert "not published" in signer.last_error
    sink.fail = False
    assert signer.poll() == 1
    assert [t for t, _b, _r in sink.sent] == [f"secroom/v1/{SITE}/policy"]
    assert signer.last_error is None
    with sm() as s:
        assert s.get(PolicyVersion, 1).published_at is not None


def test_background_thread_publishes_after_a_change(sm, key, rights):
    import threading

    done = threading.Event()
    signer = PolicySigner(sm, key, site=SITE, publish=Sink(), debounce_s=0.05)
    signer.on_published(lambda v: done.set())
    signer.start()
    try:
        assert done.wait(10)
    finally:
        signer.stop()
    assert signer.published == [1]
