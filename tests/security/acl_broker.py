"""A private Mosquitto with the deployment's password file and ACL (hardware/mosquitto/), on a
free loopback port, with one broker user per node and one for the dashboard."""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import tempfile
from pathlib import Path

from controller.envelope import topic_for
from controller.mqtt import MqttLink, MqttSettings
from tests.support import free_port, port_open, require_binary, stop_process, wait_until

KIT = Path(__file__).resolve().parents[2] / "hardware" / "mosquitto"
SITE = "tokyo-hq"  # the site name written in hardware/mosquitto/secroom.acl


class AclBroker:
    host = "127.0.0.1"

    def __init__(self, users: dict[str, str], *, acl: bool = True) -> None:
        self.binary = require_binary("mosquitto", "/usr/sbin/mosquitto")
        passwd = require_binary("mosquitto_passwd")
        # mosquitto started as root drops to its own user and must read these files: pytest's
        # tmp_path sits under a 0700 folder, so a folder of our own in /tmp
        self.dir = Path(tempfile.mkdtemp(prefix="secroom-sec-acl-"))
        self.dir.chmod(0o755)
        self.users = users
        pw = self.dir / "passwd"
        pw.touch(0o644)
        for user, secret in users.items():
            subprocess.run([passwd, "-b", str(pw), user, secret], check=True, timeout=10)
        pw.chmod(0o644)
        self.port = free_port()
        lines = [f"listener {self.port} 127.0.0.1", "persistence false", "log_dest none"]
        if acl:
            shutil.copy(KIT / "secroom.acl", self.dir / "secroom.acl")
            (self.dir / "secroom.acl").chmod(0o644)
            lines += [
                "allow_anonymous false",
                f"password_file {pw}",
                f"acl_file {self.dir / 'secroom.acl'}",
            ]
        else:  # the same users, no ACL: what the dashboard alone must withstand
            lines += ["allow_anonymous false", f"password_file {pw}"]
        conf = self.dir / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n")
        conf.chmod(0o644)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.dir / "mosquitto.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(
            lambda: port_open(self.port) or self.proc.poll() is not None, 10, "mosquitto to listen"
        )
        assert self.proc.poll() is None, "mosquitto did not start"

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)

    def link(self, user: str, client_id: str | None = None) -> MqttLink:
        """A connected link as broker user ``user`` (password read from a file)."""
        secret = self.dir / f"{user}.pw"
        secret.write_text(self.users[user] + "\n")
        settings = MqttSettings(
            host=self.host,
            port=self.port,
            username=user,
            password_file=secret,
            backoff_min_s=0.05,
            backoff_max_s=0.5,
        )
        link = MqttLink(settings, client_id=client_id or f"sec-{user}")
        link.start()
        assert link.connected.wait(30), link.last_error
        return link


class Acks:
    """A node's view of its retained ack topic."""

    def __init__(self, link: MqttLink, node: str) -> None:
        self.q: queue.Queue[int] = queue.Queue()
        link.subscribe(topic_for(SITE, node, "ack"), lambda t, p: self.q.put(json.loads(p)["seq"]))

    def reaching(self, seq: int, timeout: float = 30) -> int:
        while True:
            got = self.q.get(timeout=timeout)
            if got >= seq:
                return got
