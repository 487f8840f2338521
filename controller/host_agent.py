"""``secroom host ...``: a room PC's agent as one node (one key, one journal, one process) with
its features: card log-on (PAM), the operations log, and the USB feature when ``[usb]`` is set.

``secroom host agent --config host.toml`` runs it; ``secroom host audit-rules`` prints (or
installs) the auditd watch rules of ``[host].watches``; ``secroom host check-config``
validates. ``secroom usb agent`` still runs the USB feature alone; on a room PC the host agent
replaces it (both would share the node's journal).
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3


def add_subcommands(sub: Any) -> None:
    host = sub.add_parser("host", help="a room PC's host agent (card log-on, operations log)")
    inner = host.add_subparsers(dest="sub", required=True)
    p = inner.add_parser("agent", help="run the host agent of this PC")
    p.add_argument("--config", "-c", type=Path, required=True, help="node config (TOML)")
    p.add_argument("--no-usb", action="store_true", help="do not run the [usb] feature")
    p.set_defaults(func=cmd_agent)
    p = inner.add_parser("audit-rules", help="print the auditd watch rules of [host].watches")
    p.add_argument("--config", "-c", type=Path, required=True)
    p.add_argument("--install", action="store_true",
                   help="write /etc/audit/rules.d/60-secroom.rules and load it (augenrules)")
    p.set_defaults(func=cmd_audit_rules)


def _host_config(path: Path) -> tuple[Any, Any]:
    from controller.config import ConfigError, load_config

    config = load_config(path)
    if config.host is None:
        raise ConfigError(f"{path}: no [host] table: this node is not a room PC's host agent")
    return config, config.host


def cmd_audit_rules(args: argparse.Namespace) -> int:
    from controller.host.audit_rules import RULES_FILE, audit_rules

    _config, host = _host_config(args.config)
    text = audit_rules(host.watches)
    if not args.install:
        sys.stdout.write(text)
        return EXIT_OK
    Path(RULES_FILE).write_text(text, encoding="utf-8")
    done = subprocess.run(["augenrules", "--load"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"secroom host audit-rules: augenrules --load failed: {done.stderr.strip()}",
              file=sys.stderr)
        return EXIT_FAIL
    print(f"wrote {RULES_FILE} and loaded it")
    return EXIT_OK


class HostNode:
    """The parts of a running host agent, built from the node config (for the CLI and tests).

    ``reader`` and ``logind`` default to the real PC/SC readers and logind on the system bus;
    tests pass the bus of a logind stand-in and run the readers against a private pcscd."""

    def __init__(self, config: Any, *, reader: Any = None, logind: Any = None,
                 usb: bool = True, usb_source: Any = None,
                 clock: Callable[[], Any] | None = None) -> None:
        from controller.clock import ClockStateSource
        from controller.envelope import now_utc
        from controller.host.agent import HostAgent
        from controller.host.logind import DbusLogind
        from controller.host.oplog import OperationsLog
        from controller.keys import load_public
        from controller.runtime import NodeRuntime

        self.config = config
        host = config.host
        self.clock = clock or now_utc
        self.runtime = NodeRuntime(config.runtime_settings(), clock=self.clock,
                                   clock_state=ClockStateSource(config.node.clock))
        self.trusted = [load_public(k) for k in config.policy.trusted_keys]
        self.store: Any = None
        self.state_dir = host.state_dir or config.node.data_dir
        self.agent = HostAgent(host, site=config.node.site, emit=self._emit,
                               policy=self._policy, trusted=self.trusted,
                               logind=logind or DbusLogind(host.logind_bus), clock=self.clock,
                               state_dir=self.state_dir)
        self.oplog = OperationsLog(host, emit_many=self._emit_many, resolve=self.agent.resolve,
                                   journal=None, state_dir=self.state_dir, clock=self.clock)
        self.reader = reader
        self.usb = usb and config.usb is not None
        self.usb_source = usb_source  # default: udev (pyudev); tests pass a simulated one
        self.threads: list[threading.Thread] = []
        self.stopping = threading.Event()
        self.policy_ready = threading.Event()  # set once a signed policy is applied
        self.errors: list[str] = []

    def _emit(self, kind: str, data: Any) -> Any:
        return self.runtime.emit(kind, data)

    def _emit_many(self, items: Any) -> Any:
        return self.runtime.emit_many(items)

    def _policy(self) -> Any:
        return self.store.current if self.store is not None else None

    def start(self) -> None:
        config = self.config
        self.runtime.start()
        self.oplog.node_journal = self.runtime.journal
        from controller.policy_slice import NodeScope
        from controller.policy_store import store_for

        # this node's slice: its host's rules, and the media when it runs the USB agent too
        scope = NodeScope(hosts=frozenset({config.host.host}), usb=self.usb)
        self.store = store_for(config, scope, emit=self.runtime.emit, clock=self.clock,
                               on_change=lambda _p: self.policy_ready.set(),
                               runtime=self.runtime)
        self.store.follow(self.runtime.subscribe)
        self.agent.subscribe(self.runtime.subscribe)
        self.agent.start()
        if self.reader is None:
            from readers.pcsc import PcscReaders

            self.reader = PcscReaders()
        self.reader.start(self.agent)
        host = config.host
        if host.journal.enabled:
            self._thread("oplog-journal", self.oplog.run_journal)
        if host.audit.enabled and host.watches:
            self._thread("oplog-audit", self.oplog.run_audit)
        if self.usb:
            self._thread("usb-agent", self._run_usb)

    def _thread(self, name: str, run: Callable[[threading.Event], None]) -> None:
        def body() -> None:
            try:
                run(self.stopping)
            except Exception as exc:  # said on stderr and in the health counters
                self.errors.append(f"{name}: {type(exc).__name__}: {exc}")
                self.agent.counters[f"{name}.failed"] += 1
                print(f"secroom host agent: {name} stopped: {exc}", file=sys.stderr)

        t = threading.Thread(target=body, name=name, daemon=True)
        t.start()
        self.threads.append(t)

    def _run_usb(self, stop: threading.Event) -> None:
        from usb_guard.agent import Agent
        from usb_guard.udev import PyudevSource

        def usb_policy() -> Any:
            policy = self._policy()
            return policy.usb if policy is not None else None

        source = self.usb_source or PyudevSource()
        try:
            Agent(self.config.usb, emit=self._emit, policy_provider=usb_policy,
                  source=source).run(stop)
        finally:
            if self.usb_source is None:
                source.close()

    def stop(self) -> None:
        self.stopping.set()
        if self.reader is not None:
            self.reader.stop()
        for t in self.threads:
            t.join(15)
        self.agent.stop()
        self.runtime.stop()


def cmd_agent(args: argparse.Namespace) -> int:
    from controller.sdnotify import wait_for_stop

    config, host = _host_config(args.config)
    node = HostNode(config, usb=not args.no_usb)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    node.start()
    print(f"host agent {config.node.name} for host {host.host} running (PAM socket "
          f"{host.socket}); Ctrl-C stops it", flush=True)
    wait_for_stop(stop)  # in slices: a signal's handler runs only on the main thread
    node.stop()
    return EXIT_OK if not node.errors else EXIT_FAIL
