"""Many sites: one Mosquitto per site, each bridged over TLS to a central Mosquitto, with the
configuration `secroom broker config --bridge` writes (its CA, certificates, bridge files and
central ACL), all on free loopback ports and started by the test.

Each bridge dials the centre through a ``Link`` (a TCP relay of the test's own) that the test can
cut and restore, as a WAN line going down and up. Site brokers keep their queue on disk
(persistence), the central broker too, so each can be killed or restarted as in production.
Nodes connect to their site broker anonymously (the room ACL is tested in test_broker_config);
dashboards connect to the centre with the dashboard's certificate (``central_settings``).
Usable with any number of dashboards on the centre.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

from controller.mqtt import MqttSettings, TlsSettings
from dashboard.bridge_config import central_text, write_bridge_config
from tests.support import free_port, port_open, require_binary, stop_process, wait_until


class Link:
    """A TCP relay 127.0.0.1:``port`` -> 127.0.0.1:``target`` that can be cut (every open
    connection reset, new ones refused at once) and restored."""

    def __init__(self, target: int) -> None:
        self.target = target
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._cut = False
        self._closed = False
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True, name=f"link-{self.port}").start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                if self._cut or self._closed:
                    conn.close()
                    continue
                try:
                    up = socket.create_connection(("127.0.0.1", self.target), timeout=5)
                except OSError:
                    conn.close()
                    continue
                up.settimeout(None)
                self._open += [conn, up]
                self.accepted += 1
            for a, b in ((conn, up), (up, conn)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            for s in self._open:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self._open.clear()

    def restore(self) -> None:
        with self._lock:
            self._cut = False

    def close(self) -> None:
        self.cut()
        self._closed = True
        self._server.close()


class Mosquitto:
    """One broker process from a config file, restartable on the same port."""

    def __init__(self, name: str, conf: Path, port: int) -> None:
        self.name, self.conf, self.port = name, conf, port
        self.binary = require_binary("mosquitto", "/usr/sbin/mosquitto")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        proc = self.proc
        wait_until(lambda: port_open(self.port) or proc.poll() is not None, 30,
                   f"{self.name} broker to listen")
        assert proc.poll() is None, f"{self.name} broker did not start ({self.conf})"

    def stop(self) -> None:
        """A clean shutdown (SIGTERM: the broker saves its queues)."""
        if self.proc is not None:
            stop_process(self.proc, timeout=15)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()


class BridgedSites:
    host = "127.0.0.1"

    def __init__(self, sites: list[str], *, site_queue: int = 100_000) -> None:
        require_binary("mosquitto", "/usr/sbin/mosquitto")
        # mosquitto started as root drops to its own user and must read these files
        self.dir = Path(tempfile.mkdtemp(prefix="secroom-bridges-"))
        self.dir.chmod(0o755)
        self.kit = self.dir / "kit"
        self.sites = list(sites)
        self.central_port = free_port()
        self.links = {site: Link(self.central_port) for site in sites}
        central = self.dir / "central"
        central.mkdir()
        for site in sites:
            write_bridge_config(self.kit, sites=[site],
                                central=[f"127.0.0.1:{self.links[site].port}"],
                                central_names=["127.0.0.1", "localhost"],
                                site_tls_dir=self.kit / "sites" / site / "certs",
                                site_queue=site_queue)
        certs = self.kit / "central" / "certs"
        text = central_text(port=self.central_port, tls_dir=certs,
                            acl_file=self.kit / "central" / "secroom_central.acl",
                            persistence_dir=central)
        text = text.replace(f"listener {self.central_port}\n",
                            f"listener {self.central_port} 127.0.0.1\n")
        (central / "mosquitto.conf").write_text(text + "log_dest none\n")
        self.central = Mosquitto("central", central / "mosquitto.conf", self.central_port)
        self.site_brokers: dict[str, Mosquitto] = {}
        for site in sites:
            folder = self.dir / f"site-{site}"
            folder.mkdir()
            port = free_port()
            bridge = (self.kit / "sites" / site / "secroom_bridge.conf").read_text()
            (folder / "mosquitto.conf").write_text(
                f"listener {port} 127.0.0.1\nallow_anonymous true\nlog_dest none\n"
                f"max_inflight_messages 1000\npersistence_location {folder}/\n" + bridge)
            self.site_brokers[site] = Mosquitto(site, folder / "mosquitto.conf", port)
        for path in self.dir.rglob("*"):  # readable by the mosquitto user (test files only)
            path.chmod(0o755 if path.is_dir() else 0o644)
        for path in (self.dir / "central", *(self.dir / f"site-{s}" for s in sites)):
            path.chmod(0o777)  # the broker writes its persistence file here

    def start(self) -> None:
        self.central.start()
        for broker in self.site_brokers.values():
            broker.start()

    def stop(self) -> None:
        for link in self.links.values():
            link.close()
        for broker in (*self.site_brokers.values(), self.central):
            broker.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def site_settings(self, site: str) -> MqttSettings:
        """A node's settings at ``site``'s broker."""
        return MqttSettings(host=self.host, port=self.site_brokers[site].port,
                            backoff_min_s=0.05, backoff_max_s=0.5, keepalive_s=5)

    def central_settings(self) -> MqttSettings:
        """A dashboard's settings at the central broker (the dashboard's certificate)."""
        certs = self.kit / "dashboard" / "certs"
        return MqttSettings(host=self.host, port=self.central_port, backoff_min_s=0.05,
                            backoff_max_s=0.5, keepalive_s=5,
                            tls=TlsSettings(ca_file=certs / "ca.crt",
                                            cert_file=certs / "dashboard.crt",
                                            key_file=certs / "dashboard.key"))

    def bridge_cert(self, site: str) -> tuple[Path, Path, Path]:
        """(ca, cert, key) of ``site``'s bridge: a test can dial the centre as that site."""
        c = self.kit / "sites" / site / "certs"
        return c / "ca.crt", c / "bridge.crt", c / "bridge.key"
