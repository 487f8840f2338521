"""``secroom usb agent``, ``export-rules`` and ``init-medium``; the controller wires them.

Each handler is called as ``args.handler(args, emit, policy_provider)`` and returns an exit code.
Run from a node config, ``args.usb_config`` holds its ``[usb]`` section (read once by the node).
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

from usb_guard.agent import Agent, PolicyProvider
from usb_guard.config import ConfigError, UsbAgentConfig, load_config
from usb_guard.errors import UsbGuardError
from usb_guard.events import Emit
from usb_guard.medium_token import DEFAULT_TOKEN_OFFSET
from usb_guard.registration import initialise_medium
from usb_guard.usbguard_rules import export_rules


def add_subcommands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    usb = sub.add_parser("usb", help="USB media enforcement and export")
    usb_sub = usb.add_subparsers(dest="usb_command", required=True)

    agent = usb_sub.add_parser("agent", help="run the USB enforcement agent on this host")
    agent.add_argument("--config", type=Path, help="agent settings (TOML or JSON)")
    agent.add_argument("--host", help="this host's name in the policy (default: hostname)")
    agent.add_argument("--sysfs-root", type=Path, help="sysfs root (default /sys)")
    agent.add_argument("--check-config", action="store_true",
                       help="validate the settings and exit")
    agent.set_defaults(handler=agent_handler)

    rules = usb_sub.add_parser("export-rules", help="print the whitelist as USBGuard rules")
    rules.add_argument("--host", help="only media allowed on this host (default: any host)")
    rules.add_argument("--output", type=Path, help="write to this file instead of stdout")
    rules.set_defaults(handler=export_rules_handler)

    init = usb_sub.add_parser("init-medium",
                              help="write a new medium token and print the ledger identity")
    init.add_argument("--disk", required=True, help="block device name, e.g. sdb")
    init.add_argument("--control-number", required=True, help="allocated by the dashboard")
    init.add_argument("--sysfs-root", type=Path, default=Path("/sys"))
    init.add_argument("--dev-root", type=Path, default=Path("/dev"))
    init.add_argument("--token-offset", type=int, default=DEFAULT_TOKEN_OFFSET)
    init.set_defaults(handler=init_medium_handler)


def agent_config(args: argparse.Namespace) -> UsbAgentConfig:
    overrides = {"host": args.host, "sysfs_root": args.sysfs_root}
    handed = getattr(args, "usb_config", None)  # the [usb] section of the node config, read once
    if isinstance(handed, UsbAgentConfig):
        return handed.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    if args.config is not None:
        return load_config(args.config, **overrides)
    try:
        return UsbAgentConfig(host=args.host or socket.gethostname(),
                              **({"sysfs_root": args.sysfs_root} if args.sysfs_root else {}))
    except ValueError as exc:
        raise ConfigError(f"invalid USB agent settings: {exc}") from exc


def agent_handler(args: argparse.Namespace, emit: Emit, policy_provider: PolicyProvider) -> int:
    try:
        config = agent_config(args)
    except ConfigError as exc:
        print(f"secroom usb agent: {exc}", file=sys.stderr)
        return 2
    if args.check_config:
        print(f"USB agent settings OK (host {config.host}, sysfs {config.sysfs_root})")
        return 0
    from usb_guard.udev import PyudevSource

    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    try:
        source = PyudevSource()
        try:
            Agent(config, emit=emit, policy_provider=policy_provider, source=source).run(stop)
        finally:
            source.close()
    except UsbGuardError as exc:
        print(f"secroom usb agent: {exc} (the agent needs root to write sysfs "
              "and a udev netlink socket)", file=sys.stderr)
        return 1
    return 0


def export_rules_handler(args: argparse.Namespace, emit: Emit,
                         policy_provider: PolicyProvider) -> int:
    policy = policy_provider()
    if policy is None:
        print("secroom usb export-rules: no signed policy received yet; start the node "
              "runtime so it fetches the dashboard's policy, then retry", file=sys.stderr)
        return 2
    text = export_rules(policy, args.host, datetime.now(UTC))
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        args.output.write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"secroom usb export-rules: cannot write {args.output}: {exc.strerror}",
              file=sys.stderr)
        return 1
    return 0


def init_medium_handler(args: argparse.Namespace, emit: Emit,
                        policy_provider: PolicyProvider) -> int:
    try:
        done = initialise_medium(args.sysfs_root, args.dev_root, args.disk,
                                 args.control_number, args.token_offset)
    except UsbGuardError as exc:
        print(f"secroom usb init-medium: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({
        "control_number": done.control_number,
        "usb_device": done.usb_device,
        "identity": done.identity.model_dump(mode="json"),
        "token_digest": done.token_digest,
        "capacity_sectors": done.sectors,
    }, indent=2))
    if done.weakly_bound:
        print("secroom usb init-medium: warning: this stick has no serial number; its token is "
              "bound to its model and capacity only, so a full copy onto another stick of the "
              "same model and capacity would pass. Prefer media with serial numbers.",
              file=sys.stderr)
    return 0
