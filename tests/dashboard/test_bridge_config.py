"""`secroom broker config --bridge`: the central CA and certificates, each site's bridge and the
central ACL (brokers running these files: tests/dashboard/ingest/test_bridged_sites.py)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from controller.cli import main
from dashboard.bridge_config import (
    BRIDGED,
    bridge_text,
    central_acl_text,
    central_text,
)
from dashboard.broker_config import BrokerConfigError

KIT = Path(__file__).resolve().parents[2] / "hardware" / "central"


def test_the_shipped_examples_are_what_the_command_writes() -> None:
    assert (KIT / "secroom_central.acl").read_text() == central_acl_text(
        ["osaka", "nagoya", "fukuoka"])
    assert (KIT / "secroom_central.conf").read_text() == central_text(
        port=8883, tls_dir=Path("/etc/mosquitto/certs"),
        acl_file=Path("/etc/mosquitto/secroom/secroom_central.acl"))
    assert (KIT / "secroom_bridge.conf").read_text() == bridge_text(
        "osaka", ["central.example.jp:8883"])


def test_the_bridge_carries_the_site_subtree_one_way_per_topic() -> None:
    text = bridge_text("osaka", ["c1:8883", "c2:8883"])
    topics = [ln.split() for ln in text.splitlines() if ln.startswith("topic ")]
    assert all(t[1].startswith("secroom/v1/osaka/") and t[3] == "1" for t in topics)
    assert {t[2] for t in topics} == {"in", "out"}  # never "both": nothing can loop
    assert [t[1] for t in topics if t[2] == "out"] == [
        "secroom/v1/osaka/+/events/#", "secroom/v1/osaka/+/state"]
    assert "cleansession false" in text and "address c1:8883 c2:8883" in text
    assert "bridge_insecure false" in text and "remote_clientid site-osaka" in text
    with pytest.raises(BrokerConfigError):
        bridge_text("osaka/#", ["c:1"])  # a name cannot widen the subtree


def test_the_central_acl_keeps_each_site_to_its_own_subtree() -> None:
    acl = central_acl_text(["osaka", "nagoya"])
    blocks = {b.splitlines()[0]: b for b in acl.split("\n\n") if b.startswith("user ")}
    osaka = blocks["user site-osaka"]
    assert len(osaka.splitlines()) == 2 + len(BRIDGED)  # + its "link up" notification
    assert "topic write secroom/v1/osaka/bridge/link" in osaka
    assert all("secroom/v1/osaka/" in ln for ln in osaka.splitlines()[1:])
    assert "nagoya" not in osaka and "#" not in osaka.replace("events/#", "")
    assert "topic write secroom/v1/osaka/+/ack" not in osaka  # acks come from the dashboard
    assert "topic read secroom/v1/+/+/events/#" in blocks["user dashboard"]


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_cli_writes_the_kit_and_keeps_the_ca_for_later_sites(tmp_path: Path) -> None:
    out = tmp_path / "kit"
    cfg = tmp_path / "dashboard.toml"
    cfg.write_text(f'[dashboard]\ndata_dir = "{tmp_path}"\nsite = "osaka"\n')
    base = ["broker", "config", "--bridge", "--config", str(cfg), "--out", str(out)]
    assert main([*base]) == 2  # no --central: refused with what to give
    assert main([*base, "--central", "central.example.jp:8883"]) == 0  # the config's site
    ca_before = (out / "ca" / "ca.crt").read_bytes()
    assert main([*base, "--central", "central.example.jp:8883", "--site", "nagoya"]) == 0
    assert (out / "ca" / "ca.crt").read_bytes() == ca_before  # osaka's certificate stays valid
    for key in (out / "ca" / "ca.key", out / "sites" / "osaka" / "certs" / "bridge.key",
                out / "central" / "certs" / "central.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    ca = _cert(out / "ca" / "ca.crt")
    for site in ("osaka", "nagoya"):
        cert = _cert(out / "sites" / site / "certs" / "bridge.crt")
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == f"site-{site}"
        pub = ca.public_key()
        assert isinstance(pub, ec.EllipticCurvePublicKey)
        cert.verify_directly_issued_by(ca)
        assert (out / "sites" / site / "certs" / "ca.crt").read_bytes() == ca_before
    server = _cert(out / "central" / "certs" / "central.crt")
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["central.example.jp"]
    acl = (out / "central" / "secroom_central.acl").read_text()
    assert "user site-osaka" in acl and "user site-nagoya" in acl
    assert not (out / "sites" / "osaka" / "certs" / "ca.key").exists()  # never at a site


def test_the_central_dashboard_example_loads() -> None:
    from dashboard.settings import load_settings
    from dashboard.sites_runtime import other_sites

    s = load_settings(KIT / "dashboard-central.toml")
    assert s.database_url.startswith("postgresql+psycopg://") and s.https
    assert s.mqtt is not None and s.mqtt.tls is not None and s.mqtt.username is None
    assert other_sites(s) == ["fukuoka", "nagoya"]


def test_each_sites_room_broker_gets_only_its_nodes_from_a_central_registry(
        tmp_path: Path, sm) -> None:
    from datetime import UTC, datetime

    from dashboard.models.nodes import Node

    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    with sm.begin() as s:
        for name, site in (("osaka-gw1", "osaka"), ("nagoya-gw1", "nagoya")):
            s.add(Node(name=name, site=site, key_status="approved", public_key="k",
                       first_seen_at=t0))
    url = sm.kw["bind"].url.render_as_string(hide_password=False)
    cfg = tmp_path / "central.toml"
    cfg.write_text(f'[dashboard]\ndata_dir = "{tmp_path}"\ndatabase_url = "{url}"\n'
                   'site = "osaka"\nsites = ["nagoya"]\n')
    out = tmp_path / "nagoya-room"
    assert main(["broker", "config", "--config", str(cfg), "--site", "nagoya",
                 "--out", str(out)]) == 0
    acl = (out / "secroom.acl").read_text()
    assert "user nagoya-gw1" in acl and "osaka" not in acl
    assert (out / "passwords" / "nagoya-gw1.pw").exists()
    assert not (out / "passwords" / "osaka-gw1.pw").exists()
    assert main(["broker", "config", "--config", str(cfg), "--site", "a", "--site", "b",
                 "--out", str(out)]) == 2
