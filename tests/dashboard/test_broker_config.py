"""`secroom broker config`: the password file and ACL come from the node registry, and the
broker they configure (TLS, a test CA made here) keeps every node to its own topics: a node
publishes only its own events and state, reads only its own acks, resend requests and the
policy; anonymous and clear-text clients are refused; a revoked node loses its user."""

from __future__ import annotations

import queue
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from controller.cli import main
from controller.envelope import topic_for
from controller.mqtt import MqttLink
from dashboard.broker_config import BrokerConfigError, acl_text
from dashboard.models.nodes import Node
from tests.support.secure_broker import SecureBroker

SITE = "tokyo-hq"
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def test_the_acl_names_each_node_and_its_backup_job_only() -> None:
    text = acl_text(SITE, ["gw1", "pc-01"])
    gw1 = text.split("user gw1\n")[1].split("\n\n")[0]
    assert "topic write secroom/v1/tokyo-hq/gw1/events/#" in gw1
    assert "topic write secroom/v1/tokyo-hq/gw1.backup/events/#" in gw1
    assert "pc-01" not in gw1 and "%" not in gw1
    # the one wildcard: every node reads the doors' access events (host agents lock the
    # sessions of who leaves); nothing is written outside the node's own prefix
    assert [ln for ln in gw1.splitlines() if "+" in ln] == [
        "topic read secroom/v1/tokyo-hq/+/events/door.access"]
    assert "topic read secroom/v1/tokyo-hq/presence" in gw1
    assert "topic write" not in "".join(ln for ln in gw1.splitlines() if "/ack" in ln)
    with pytest.raises(BrokerConfigError):
        acl_text(SITE, ["gw1\ntopic write #"])  # a name cannot add rules


def test_the_shipped_examples_are_what_the_command_writes() -> None:
    from dashboard.broker_config import listener_text

    kit = Path(__file__).resolve().parents[2] / "hardware" / "mosquitto"
    assert (kit / "secroom.acl").read_text() == acl_text(SITE, ["gw1", "pc-01", "pc-02"])
    folder = Path("/etc/mosquitto/secroom")
    assert (kit / "secroom.conf").read_text() == listener_text(
        port=8883, tls_dir=Path("/etc/mosquitto/certs"),
        password_file=folder / "secroom.passwd", acl_file=folder / "secroom.acl")


@pytest.fixture
def registry(tmp_path: Path, sm: sessionmaker[Session]) -> Iterator[Path]:
    """A dashboard config over the test database, with gw1 approved and pc-01 pending."""
    with sm.begin() as s:
        s.add(Node(name="gw1", site=SITE, key_status="approved", public_key="k1",
                   first_seen_at=NOW))
        s.add(Node(name="gw1.backup", site=SITE, key_status="approved", public_key="k2",
                   first_seen_at=NOW))
    url = sm.kw["bind"].url.render_as_string(hide_password=False)
    config = tmp_path / "dashboard.toml"
    config.write_text(f'[dashboard]\ndata_dir = "{tmp_path}"\ndatabase_url = "{url}"\n'
                      f'site = "{SITE}"\n', encoding="utf-8")
    yield config


@pytest.mark.integration
def test_broker_config_from_the_registry_on_a_tls_broker(
    registry: Path, tmp_path: Path, sm: sessionmaker[Session]
) -> None:
    out = tmp_path / "broker"
    assert main(["broker", "config", "--config", str(registry), "--out", str(out),
                 "--add", "pc-01"]) == 0
    pw = {u: (out / "passwords" / f"{u}.pw").read_text().strip()
          for u in ("gw1", "pc-01", "dashboard")}
    assert all(stat.S_IMODE((out / "passwords" / f"{u}.pw").stat().st_mode) == 0o600 for u in pw)
    assert not (out / "passwords" / "gw1.backup.pw").exists()  # the job uses gw1's user
    broker = SecureBroker(pw, generated=out)
    broker.start()
    links: list[MqttLink] = []
    try:
        dash = broker.link("dashboard")
        seen: queue.Queue[tuple[str, bytes]] = queue.Queue()
        dash.subscribe(f"secroom/v1/{SITE}/#", lambda t, p: seen.put((t, p)))
        gw1, pc = broker.link("gw1"), broker.link("pc-01")
        links += [dash, gw1, pc]
        acks: queue.Queue[str] = queue.Queue()
        pc.subscribe(topic_for(SITE, "gw1", "ack"), lambda t, p: acks.put(t))
        pc.subscribe(topic_for(SITE, "pc-01", "ack"), lambda t, p: acks.put(t))

        def delivered(topic: str) -> set[str]:
            """Publish ``topic`` then a marker on gw1's own events: the broker keeps a client's
            order, so whatever arrived before the marker is all that got through."""
            gw1.publish(topic, b"{}")
            marker = topic_for(SITE, "gw1", f"events/marker.{seen.qsize()}")
            gw1.publish(marker, b"{}")
            got: set[str] = set()
            while (t := seen.get(timeout=15)[0]) != marker:
                got.add(t)
            return got

        own = topic_for(SITE, "gw1", "events/door.access")
        assert delivered(own) == {own}
        assert delivered(topic_for(SITE, "gw1.backup", "events/backup.snapshot"))
        for forbidden in (topic_for(SITE, "pc-01", "events/usb.inserted"),
                          topic_for(SITE, "pc-01", "state"),
                          topic_for(SITE, "gw1", "ack"), topic_for(SITE, "gw1", "resend"),
                          f"secroom/v1/{SITE}/policy", topic_for(SITE, "gw1", "policy")):
            assert delivered(forbidden) == set(), forbidden
        dash.publish(topic_for(SITE, "pc-01", "ack"), b'{"seq":1}', retain=False)
        dash.publish(topic_for(SITE, "gw1", "ack"), b'{"seq":1}', retain=False)
        assert acks.get(timeout=15) == topic_for(SITE, "pc-01", "ack")  # its own only
        assert delivered(own)  # the ack to gw1 would have arrived before this
        assert acks.empty()

        anonymous = broker.link(None, connect=False)
        clear = broker.link("gw1", client_id="clear", connect=False, tls=False)
        links += [anonymous, clear]
        assert not anonymous.connected.wait(2) and not clear.connected.wait(0.5)
    finally:
        for link in links:
            link.stop()
        broker.stop()

    # a second run keeps the passwords; a revoked node loses its user
    before = (out / "secroom.passwd").read_text().splitlines()
    with sm.begin() as s:
        s.execute(update(Node).where(Node.name == "pc-01").values(key_status="revoked"))
    assert main(["broker", "config", "--config", str(registry), "--out", str(out)]) == 0
    after = (out / "secroom.passwd").read_text().splitlines()
    assert [ln for ln in before if not ln.startswith("pc-01:")] == after
    assert "pc-01" not in (out / "secroom.acl").read_text()


@pytest.mark.integration
def test_a_node_reads_only_its_own_policy_slice(registry: Path, tmp_path: Path) -> None:
    """Subscribed to every policy topic, pc-01 gets its own slice only: not gw1's, and not the
    whole-site policy older releases published (the broker keeps one publisher's order, so
    what was withheld would have arrived before pc-01's own)."""
    out = tmp_path / "broker"
    assert main(["broker", "config", "--config", str(registry), "--out", str(out),
                 "--add", "pc-01"]) == 0
    pw = {u: (out / "passwords" / f"{u}.pw").read_text().strip()
          for u in ("gw1", "pc-01", "dashboard")}
    broker = SecureBroker(pw, generated=out)
    broker.start()
    links: list[MqttLink] = []
    try:
        dash = broker.link("dashboard")
        links.append(dash)
        pc = MqttLink(broker.settings("pc-01"), client_id="pc-01-policy")
        links.append(pc)
        got: queue.Queue[str] = queue.Queue()
        pc.subscribe(f"secroom/v1/{SITE}/policy", lambda t, p: got.put(t))
        pc.subscribe(f"secroom/v1/{SITE}/+/policy", lambda t, p: got.put(t))
        pc.start()
        assert pc.wait_subscribed(30), pc.last_error
        for topic in (f"secroom/v1/{SITE}/policy", topic_for(SITE, "gw1", "policy"),
                      topic_for(SITE, "pc-01", "policy")):
            dash.publish(topic, b"{}")
        assert got.get(timeout=15) == topic_for(SITE, "pc-01", "policy")
        assert got.empty()
    finally:
        for link in links:
            link.stop()
        broker.stop()
