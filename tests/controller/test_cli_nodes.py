"""The `secroom` CLI as an operator runs it: keys, policy signing, journal verify, and the
nightly backup journaled as its own node and delivered to the broker."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import tomli_w

from controller.cli import main
from controller.envelope import now_utc
from controller.journal import Journal
from controller.keys import load_private
from tests.controller.gateway_kit import EventCollector, make_kit, make_policy
from tests.support.mosquitto import Broker

SECROOM = [sys.executable, "-m", "controller.cli"]


def _run(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SECROOM, *args], cwd=cwd, input=stdin, capture_output=True,
                          text=True, timeout=120, check=False,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})


def test_keys_policy_sign_and_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "init", "--out", str(tmp_path / "admin.key")]) == 0
    assert main(["keys", "init", "--out", str(tmp_path / "admin.key")]) == 2, "never overwrites"
    (tmp_path / "policy.json").write_text(make_policy(version=3).model_dump_json())
    assert main(["policy", "sign", "--key", str(tmp_path / "admin.key"), "--in",
                 str(tmp_path / "policy.json"), "--out", str(tmp_path / "policy.signed")]) == 0
    assert main(["policy", "verify", str(tmp_path / "policy.signed"), "--trusted",
                 str(tmp_path / "admin.key.pub"), "--site", "hq"]) == 0
    assert "version 3" in capsys.readouterr().out


def test_journal_verify_exits_1_on_a_tampered_journal(tmp_path: Path, broker: Broker) -> None:
    kit = make_kit(tmp_path / "gw", mqtt_port=broker.port, backend="fake")
    journal = Journal(kit.config.journal_path, node="gw1", site="hq",
                      key=load_private(kit.config.key_file), boot="b1")
    for i in range(5):
        journal.append("test.tick", {"i": i}, now=now_utc(), clock="synced")
    journal.close()
    assert main(["journal", "verify", "--config", str(kit.config_path)]) == 0
    db = sqlite3.connect(kit.config.journal_path)
    tables = [r[0] for r in db.execute("select name from sqlite_master where type='table'")]
    table = next(t for t in tables if "event" in t)
    db.execute(f"DELETE FROM {table} WHERE seq = 3")  # noqa: S608 - test's own table name
    db.commit()
    db.close()
    assert main(["journal", "verify", "--config", str(kit.config_path)]) == 1


@pytest.mark.integration
def test_backup_run_is_journaled_as_its_own_node_and_reaches_the_broker(
    tmp_path: Path, broker: Broker
) -> None:
    kit = make_kit(tmp_path / "gw", mqtt_port=broker.port, backend="fake")
    vault = tmp_path / "vault"
    vault.mkdir()
    (vault / "給与.csv").write_text("a,b\n1,2\n")
    ops = tmp_path / "operators"
    (tmp_path / "pass").write_text("correct horse battery staple\n")
    keygen = _run("backup", "keygen", "--out", str(ops), "--passphrase-file",
                  str(tmp_path / "pass"), cwd=tmp_path)
    assert keygen.returncode == 0, keygen.stderr
    config = tomllib.loads(kit.config_path.read_text())
    config["backup"] = {"repository": str(tmp_path / "repo"), "vault_paths": [str(vault)],
                        "public_key_file": str(ops / "backup.pub"),
                        "dedup_key_file": str(tmp_path / "gw" / "dedup.key"),
                        "cache_dir": str(tmp_path / "gw" / "cache")}
    kit.config_path.write_text(tomli_w.dumps(config))
    collector = EventCollector(broker.port).start()
    try:
        result = _run("backup", "run", "--config", str(kit.config_path), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        event = collector.wait_for(lambda e: e.kind == "backup.snapshot", timeout=20)
        assert event.node == "gw1.backup"
        assert event.data["files"] == 1
        assert "給与" not in event.to_bytes().decode(), "no vault names in events by default"
    finally:
        collector.stop()
