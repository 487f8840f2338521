"""hardware/mosquitto/secroom.acl on a real Mosquitto: a node publishes only under its own prefix
(and its backup job's, "<node>.backup"); it cannot speak for another node nor publish the
policy; the dashboard reads every node's events."""

from __future__ import annotations

import queue
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

from tests.support import free_port, port_open, require_binary, stop_process, wait_until

KIT = Path(__file__).resolve().parents[3] / "hardware" / "mosquitto"
SITE = "tokyo-hq"


@pytest.mark.integration
def test_acl_keeps_each_node_under_its_own_prefix() -> None:
    mosquitto = require_binary("mosquitto", "/usr/sbin/mosquitto")
    pub = require_binary("mosquitto_pub")
    sub = require_binary("mosquitto_sub")
    passwd = require_binary("mosquitto_passwd")
    # mosquitto started as root drops to its own user and must read the files: pytest's
    # tmp_path sits under a 0700 folder, so a folder of our own in /tmp
    tmp_path = Path(tempfile.mkdtemp(prefix="secroom-acl-"))
    try:
        _run(tmp_path, mosquitto, pub, sub, passwd)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


def _run(tmp_path: Path, mosquitto: str, pub: str, sub: str, passwd: str) -> None:
    tmp_path.chmod(0o755)
    pw = tmp_path / "passwd"
    pw.touch(0o644)
    users = {"gw1": "pw-gw1", "gw2": "pw-gw2", "dashboard": "pw-dash"}
    for user, secret in users.items():
        subprocess.run([passwd, "-b", str(pw), user, secret], check=True, timeout=10)
    pw.chmod(0o644)
    acl = tmp_path / "secroom.acl"
    shutil.copy(KIT / "secroom.acl", acl)
    acl.chmod(0o644)
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {pw}\n"
                    f"acl_file {acl}\nlog_dest stdout\nlog_type all\n")
    conf.chmod(0o644)
    log = tmp_path / "broker.log"
    with log.open("wb") as out:
        broker = subprocess.Popen([mosquitto, "-c", str(conf)], stdout=out,
                                  stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: port_open(port) or broker.poll() is not None, 10,
                   "mosquitto to listen")
        assert broker.poll() is None, log.read_text(errors="replace")
        # line-buffered: mosquitto_sub's stdout is block-buffered into a pipe
        reader = subprocess.Popen(
            [*(["stdbuf", "-oL"] if shutil.which("stdbuf") else []), sub, "-p", str(port),
             "-u", "dashboard", "-P", users["dashboard"], "-v",
             "-t", f"secroom/v1/{SITE}/+/events/#", "-t", f"secroom/v1/{SITE}/policy",
             "-W", "4", "-d"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines: queue.Queue[str] = queue.Queue()
        seen: list[str] = []

        def pump() -> None:
            assert reader.stdout is not None
            for line in reader.stdout:
                lines.put(line)

        pumper = threading.Thread(target=pump, daemon=True)
        pumper.start()
        while not any("SUBACK" in line for line in seen):
            seen.append(lines.get(timeout=10))  # mosquitto_sub -d reports the SUBACK

        def publish(user: str, topic: str) -> None:
            r = subprocess.run([pub, "-p", str(port), "-u", user, "-P", users[user], "-q", "1",
                            "-t", topic, "-m", f"from {user}"], timeout=10, check=False,
                           capture_output=True, text=True)
            assert r.returncode == 0, r.stderr  # QoS 1 is acknowledged even when dropped

        publish("gw1", f"secroom/v1/{SITE}/gw1/events/door.access")
        publish("gw1", f"secroom/v1/{SITE}/gw1.backup/events/backup.snapshot")
        publish("gw1", f"secroom/v1/{SITE}/gw2/events/door.access")  # another node: refused
        publish("gw1", f"secroom/v1/{SITE}/gw1x/events/door.access")  # a look-alike prefix
        publish("gw1", f"secroom/v1/{SITE}/policy")  # only the dashboard signs policy
        publish("gw2", f"secroom/v1/{SITE}/gw2/events/door.access")
        reader.wait(15)
        pumper.join(5)
        assert reader.stdout is not None
        reader.stdout.close()
        while not lines.empty():
            seen.append(lines.get())
    finally:
        stop_process(broker)
    got = sorted(line.strip() for line in seen if line.startswith("secroom/"))
    assert got == sorted([
        f"secroom/v1/{SITE}/gw1/events/door.access from gw1",
        f"secroom/v1/{SITE}/gw1.backup/events/backup.snapshot from gw1",
        f"secroom/v1/{SITE}/gw2/events/door.access from gw2",
    ]), got
