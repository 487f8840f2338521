"""The broker as it runs in a room: Mosquitto with TLS (a test CA made here), per-node users and
the ACL that `secroom broker config` generates, on a free loopback port. ``acl=False`` keeps the
users and drops the ACL (what the dashboard alone must withstand)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from controller.mqtt import MqttLink, MqttSettings, TlsSettings
from dashboard.broker_config import DASHBOARD_USER, acl_text, update_password_file
from tests.support import free_port, port_open, require_binary, stop_process, wait_until
from tests.support.tls import make_ca

SITE = "tokyo-hq"


class SecureBroker:
    host = "127.0.0.1"

    def __init__(self, users: dict[str, str], *, site: str = SITE, acl: bool = True,
                 tls: bool = True, generated: Path | None = None) -> None:
        """``generated``: a folder `secroom broker config` wrote; its password file and ACL are
        used as they are (``users`` then only says which passwords the test knows)."""
        self.binary = require_binary("mosquitto", "/usr/sbin/mosquitto")
        require_binary("mosquitto_passwd")
        # mosquitto started as root drops to its own user and must read these files: pytest's
        # tmp_path sits under a 0700 folder, so a folder of our own in /tmp
        self.dir = Path(tempfile.mkdtemp(prefix="secroom-broker-"))
        self.dir.chmod(0o755)
        self.users, self.site, self.tls, self.acl = users, site, tls, acl
        self.ca = make_ca(self.dir / "certs")
        nodes = sorted(u for u in users if u != DASHBOARD_USER)
        passwd, acl_file = self.dir / "secroom.passwd", self.dir / "secroom.acl"
        if generated is not None:
            shutil.copy(generated / "secroom.passwd", passwd)
            shutil.copy(generated / "secroom.acl", acl_file)
        else:
            update_password_file(passwd, [*nodes, DASHBOARD_USER], chosen=users)
            acl_file.write_text(acl_text(site, nodes))
        self.port = free_port()
        lines = [f"listener {self.port} 127.0.0.1", "persistence false", "log_dest none",
                 "allow_anonymous false", f"password_file {passwd}"]
        if tls:
            lines += [f"cafile {self.ca.ca_file}", f"certfile {self.ca.cert_file}",
                      f"keyfile {self.ca.key_file}", "tls_version tlsv1.2"]
        if acl:
            lines.append(f"acl_file {acl_file}")
        (self.dir / "mosquitto.conf").write_text("\n".join(lines) + "\n")
        for path in self.dir.rglob("*"):  # readable by the mosquitto user (test files only)
            path.chmod(0o755 if path.is_dir() else 0o644)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([self.binary, "-c", str(self.dir / "mosquitto.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: port_open(self.port) or self.proc.poll() is not None, 10,
                   "mosquitto to listen")
        assert self.proc.poll() is None, "mosquitto did not start"

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)

    def settings(self, user: str | None, *, tls: bool | None = None,
                 password: str | None = None) -> MqttSettings:
        """Client settings as broker user ``user`` (None: anonymous)."""
        secret = None
        if user is not None:
            secret = self.dir / f"{user}.pw"
            secret.write_text((password or self.users[user]) + "\n")
        use_tls = self.tls if tls is None else tls
        return MqttSettings(host=self.host, port=self.port, username=user,
                            password_file=secret, backoff_min_s=0.05, backoff_max_s=0.5,
                            tls=TlsSettings(ca_file=self.ca.ca_file) if use_tls else None)

    def link(self, user: str | None, client_id: str | None = None, *, connect: bool = True,
             **kw: object) -> MqttLink:
        """A started link as ``user``; with ``connect`` it is connected before it is returned."""
        link = MqttLink(self.settings(user, **kw), client_id=client_id or f"sec-{user}")  # type: ignore[arg-type]
        link.start()
        if connect:
            assert link.connected.wait(30), link.last_error
        return link
