"""The `secroom` command line.

The node's commands (gateway, keys, policy, card, journal, backup, usb, host) live here; the
dashboard's (db, user, dashboard, numlog, report, demo) come through the ``secroom.commands``
entry points, so a gateway-only Pi never loads the dashboard to start.

Exit codes: 0 success, 1 the operation failed (e.g. a journal that does not verify), 2 bad usage
or configuration, 3 a required service (reader, broker, database) is unavailable.
"""

from __future__ import annotations

import argparse
import faulthandler
import importlib
import importlib.metadata
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from controller import feature_node
from controller.sdnotify import ServiceNotifier

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3
PLUGIN_GROUP = "secroom.commands"
PLUGIN_COMMANDS = ("db", "user", "dashboard", "broker", "numlog", "report", "demo")
NODE_COMMANDS = ("check-config", "keys", "policy", "gateway", "card", "journal", "backup", "usb",
                 "host", "doctor")
DOCTOR_GROUP = "secroom.doctor"  # the dashboard's checks (dashboard.doctor), a floor above


def _config_arg(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--config", "-c", type=Path, required=required, help="node config (TOML)")


def _load(path: Path) -> Any:
    from controller.config import load_config

    return load_config(path)


# -- check-config -----------------------------------------------------------------------------
def cmd_check_config(args: argparse.Namespace) -> int:
    config = _load(args.config)
    print(f"{args.config}: ok (node {config.node.name}, site {config.node.site}, "
          f"{len(config.doors)} door(s), {len(config.readers.bindings)} reader binding(s))")
    return EXIT_OK


# -- keys ---------------------------------------------------------------------------------------
def cmd_keys_init(args: argparse.Namespace) -> int:
    from controller.keys import generate, public_b64

    if args.out is None and args.config is None:
        print("keys init: give --config (node key) or --out FILE", file=sys.stderr)
        return EXIT_USAGE
    path = args.out if args.out is not None else _load(args.config).key_file
    key = generate(path, overwrite=args.force)
    print(f"wrote {path} (private, mode 0600) and {path}.pub")
    print(f"public key: {public_b64(key.public_key())}")
    return EXIT_OK


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    from controller.keys import previous_path, public_b64, rotate

    path = _load(args.config).key_file
    old, new = rotate(path)
    print(f"old key {public_b64(old.public_key())} kept as {previous_path(path)} (mode 0600)")
    print(f"new key {public_b64(new.public_key())} written to {path}")
    print("restart the node (and let its backup job run): each journal then signs with the new "
          "key from its next seq, and announces the handover signed by the old key; the "
          "dashboard accepts it without a new approval. Events already journaled keep the old "
          f"key's signatures. Delete {previous_path(path)} once the nodes page shows the new key "
          "for every node using this key file.")
    return EXIT_OK


# -- policy -------------------------------------------------------------------------------------
def cmd_policy_sign(args: argparse.Namespace) -> int:
    from controller.keys import load_private
    from controller.policy import Policy, sign_policy

    policy = Policy.model_validate_json(args.input.read_bytes())
    blob = sign_policy(policy, load_private(args.key))
    args.out.write_bytes(blob)
    print(f"signed policy version {policy.version} for site {policy.site} -> {args.out}")
    return EXIT_OK


def cmd_policy_verify(args: argparse.Namespace) -> int:
    from controller.keys import load_public
    from controller.policy import verify_policy

    policy = verify_policy(args.file.read_bytes(), [load_public(k) for k in args.trusted],
                           site=args.site)
    print(f"ok: policy version {policy.version}, {len(policy.people)} people")
    return EXIT_OK


def cmd_policy_card_key(args: argparse.Namespace) -> int:
    """Write a node's card key (run where the dashboard's policy key is; copy the file to the
    node's ``[policy] card_key_file``, default data_dir/card.key, mode 0600)."""
    import os

    from controller.keys import load_private
    from controller.policy_slice import card_key_for

    key = card_key_for(load_private(args.key), args.site, args.node)
    fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key.hex() + "\n")
    print(f"card key of node {args.node} (site {args.site}) -> {args.out}")
    return EXIT_OK


# -- gateway ------------------------------------------------------------------------------------
def _serve_metrics(config: Any, runtime: Any, **sources: Any) -> Any:
    """The node's metrics endpoint when ``[metrics] listen`` is set (controller.metrics)."""
    if config.metrics.listen is None:
        return None
    from controller.metrics import NodeCollector, serve_node

    return serve_node(config.metrics.listen, NodeCollector(runtime, **sources))


def cmd_gateway_run(args: argparse.Namespace) -> int:
    from controller.adapters import for_gateway
    from controller.gateway import Gateway

    config = _load(args.config)
    parts = for_gateway(config)
    gateway = Gateway(config, reader=parts.reader, pin_factory=parts.pins, cups=parts.cups)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    # `kill -USR1` prints every thread's stack to stderr (the journal): what a stop that hangs
    # is waiting for, without stopping the door
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    scheduler = None
    if config.backup is not None and config.node.run_backups:
        from controller.backup_scheduler import BackupScheduler

        scheduler = BackupScheduler(args.config.resolve(), config.backup, clock=gateway.clock)
    gateway.start()
    if scheduler is not None:
        scheduler.start()
    metrics = _serve_metrics(config, gateway.runtime, clock_state=gateway.clock_state,
                             policy=lambda: gateway.policies.current, gateway=gateway)
    notifier = ServiceNotifier(healthy=gateway.alive)
    print(f"gateway {config.node.name} running (site {config.node.site}); Ctrl-C stops it",
          flush=True)
    notifier.ready(f"gateway {config.node.name} running")
    notifier.run(stop)  # the main loop: pings systemd's watchdog while the gateway is alive
    notifier.stopping()
    if metrics is not None:
        metrics.stop()
    if scheduler is not None:
        scheduler.stop()  # ends a backup child that is running
    gateway.stop()
    return EXIT_OK


# -- card read ----------------------------------------------------------------------------------
class _FirstTap:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.tap: Any = None

    def on_tap(self, tap: Any) -> None:
        self.tap = tap
        self.done.set()

    def on_status(self, status: Any) -> None:
        state = "connected" if status.connected else "disconnected"
        print(f"reader {status.reader}: {state}", file=sys.stderr, flush=True)

    def on_failure(self, failure: Any) -> None:
        print(f"reader {failure.reader}: read failed ({failure.reason}: {failure.detail})",
              file=sys.stderr, flush=True)


def cmd_card_read(args: argparse.Namespace) -> int:
    from readers.pcsc import PcscReaders

    sink = _FirstTap()
    reader = PcscReaders()
    reader.start(sink)
    print("tap a card...", file=sys.stderr, flush=True)
    try:
        if not sink.done.wait(args.timeout):
            print(f"no card within {args.timeout:g} s", file=sys.stderr)
            return EXIT_FAIL
    finally:
        reader.stop()
    print(json.dumps({"reader": sink.tap.reader, "uid": sink.tap.uid, "atr": sink.tap.atr}))
    return EXIT_OK


# -- journal ------------------------------------------------------------------------------------
def cmd_journal_verify(args: argparse.Namespace) -> int:
    from controller.journal import verify_journal
    from controller.keys import load_private, load_public

    if args.config is not None:
        config = _load(args.config)
        journal = args.journal or config.journal_path
        public = load_private(config.key_file).public_key()
    elif args.journal and args.public_key:
        journal, public = args.journal, load_public(args.public_key)
    else:
        print("journal verify: give --config, or --journal and --public-key", file=sys.stderr)
        return EXIT_USAGE
    report = verify_journal(journal, public)
    print(f"{journal}: {report.count} event(s), seq {report.first}..{report.last}: "
          + ("ok" if report.ok else "BROKEN"))
    for problem in report.problems:
        print(f"  {problem}")
    return EXIT_OK if report.ok else EXIT_FAIL


# -- doctor -------------------------------------------------------------------------------------
def cmd_doctor(args: argparse.Namespace) -> int:
    """Check a node's or the dashboard's installation; exit 0 when nothing failed."""
    import tomllib

    from controller.doctor import Check, report

    path: Path = args.config
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        checks = [Check("fail", f"config {path}", f"cannot be read as TOML ({exc})",
                        "give the node's or the dashboard's config file")]
    else:
        if isinstance(data.get("node"), dict):
            from controller.doctor_node import checks as node_checks

            checks = node_checks(path)
        else:
            checks = _dashboard_doctor(path)
    text, code = report(checks)
    print(text)
    return code


def _dashboard_doctor(path: Path) -> list[Any]:
    from controller.doctor import Check

    for entry in importlib.metadata.entry_points(group=DOCTOR_GROUP):
        try:
            return list(entry.load()(path))
        except ImportError as exc:
            return [Check("fail", "dashboard", f"its checks cannot be loaded ({exc})",
                          "install the dashboard (pip install -e . in the source folder)")]
    return [Check("fail", f"config {path}", "no [node] table, and the dashboard is not "
                  "installed here to check a dashboard config",
                  "give a node config, or install the dashboard")]


# -- parser -------------------------------------------------------------------------------------
def build_parser(plugins: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="secroom", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("check-config", help="validate a node config and exit")
    _config_arg(p)
    p.set_defaults(func=cmd_check_config)

    keys = sub.add_parser("keys", help="signing keys").add_subparsers(dest="sub", required=True)
    p = keys.add_parser("init", help="create the node key (--config) or a key file (--out)")
    _config_arg(p, required=False)
    p.add_argument("--out", type=Path)
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_keys_init)
    p = keys.add_parser("rotate", help="replace the node key; the old one signs the handover")
    _config_arg(p)
    p.set_defaults(func=cmd_keys_rotate)

    pol = sub.add_parser("policy", help="signed access policy").add_subparsers(dest="sub",
                                                                                required=True)
    p = pol.add_parser("sign", help="sign a policy JSON file with an admin key")
    p.add_argument("--key", type=Path, required=True)
    p.add_argument("--in", dest="input", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_policy_sign)
    p = pol.add_parser("verify", help="verify a signed policy file")
    p.add_argument("file", type=Path)
    p.add_argument("--trusted", type=Path, action="append", required=True)
    p.add_argument("--site", required=True)
    p.set_defaults(func=cmd_policy_verify)
    p = pol.add_parser("card-key", help="write a node's card key (from the dashboard's "
                       "policy key): the node matches tapped cards against its hashed policy")
    p.add_argument("--key", type=Path, required=True, help="the dashboard's policy.key")
    p.add_argument("--site", required=True)
    p.add_argument("--node", required=True)
    p.add_argument("--out", type=Path, required=True, help="a new file (0600)")
    p.set_defaults(func=cmd_policy_card_key)

    gw = sub.add_parser("gateway", help="the door gateway").add_subparsers(dest="sub",
                                                                         required=True)
    p = gw.add_parser("run", help="run the gateway node")
    _config_arg(p)
    p.set_defaults(func=cmd_gateway_run)

    card = sub.add_parser("card", help="card readers").add_subparsers(dest="sub", required=True)
    p = card.add_parser("read", help="wait for a tap and print the card's UID")
    p.add_argument("--timeout", type=float, default=30.0)
    p.set_defaults(func=cmd_card_read)
    from controller.osdp_cli import add_parser as add_osdp_install

    add_osdp_install(card)

    jr = sub.add_parser("journal", help="the node's event journal").add_subparsers(dest="sub",
                                                                                 required=True)
    p = jr.add_parser("verify", help="verify chain and signatures; exit 1 on any break")
    _config_arg(p, required=False)
    p.add_argument("--journal", type=Path)
    p.add_argument("--public-key", type=Path)
    p.set_defaults(func=cmd_journal_verify)

    p = sub.add_parser("doctor", help="check this installation end to end and say what to fix")
    _config_arg(p)
    p.set_defaults(func=cmd_doctor)

    _add_feature(sub, "backup", "encrypted backups of the vault", "backup.cli",
                 feature_node.backup_command)
    _add_feature(sub, "usb", "USB media enforcement and export", "usb_guard.cli",
                 feature_node.usb_command, own_group=True)
    from controller import host_agent

    host_agent.add_subcommands(sub)
    if plugins:
        _add_plugin_commands(sub)
    return parser


def _add_feature(sub: Any, name: str, help_text: str, module: str,
                 run: Callable[[argparse.Namespace], int], own_group: bool = False) -> None:
    """A feature package's commands, each run by ``run`` (which builds the node around it)."""
    add_subcommands = importlib.import_module(module).add_subcommands
    if own_group:  # the feature adds its own top-level parser
        add_subcommands(sub)
        group = sub.choices[name]
    else:
        group = sub.add_parser(name, help=help_text)
        add_subcommands(group.add_subparsers(dest="sub", required=True))
    inner = next(a for a in group._actions if isinstance(a, argparse._SubParsersAction))
    for choice in inner.choices.values():
        if not any(a.dest == "config" for a in choice._actions):
            _config_arg(choice, required=False)
        choice.set_defaults(func=run)


def _add_plugin_commands(sub: Any) -> None:
    """Commands of the packages above this one (the dashboard's ``db``, ``user``, ``dashboard``,
    ``numlog``, ``report``, ``demo``), found through the ``secroom.commands`` entry points. If
    none can be loaded, those names still answer, with what to install."""
    problem = "secroom is not installed as a package here"
    found = False
    for entry in importlib.metadata.entry_points(group=PLUGIN_GROUP):
        try:
            entry.load()(sub)
            found = True
        except ImportError as exc:  # e.g. the dashboard's libraries missing on a gateway Pi
            problem = f"the {entry.name} commands could not be loaded ({exc})"
    if found:
        return
    for name in PLUGIN_COMMANDS:
        p = sub.add_parser(name, help="(not installed here)", add_help=False)
        p.add_argument("rest", nargs=argparse.REMAINDER)
        p.set_defaults(func=lambda _a, why=problem: _not_installed(why))


def _not_installed(why: str) -> int:
    print(f"secroom: {why}.\nInstall the dashboard with `pip install -e .` in the source folder "
          "(or `make venv`), then run the command again.", file=sys.stderr)
    return EXIT_UNAVAILABLE


def _is_node_command(argv: Sequence[str]) -> bool:
    first = next((a for a in argv if not a.startswith("-")), None)
    return first in NODE_COMMANDS


def main(argv: Sequence[str] | None = None) -> int:
    from controller.config import ConfigError
    from controller.keys import KeyFileError
    from readers.base import ReaderError

    argv = list(sys.argv[1:] if argv is None else argv)
    # a node's own command never loads the dashboard's code
    args = build_parser(plugins=not _is_node_command(argv)).parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from controller.numguard import install_log_guard

    install_log_guard()  # every record of every logger (uvicorn's too): no individual number
    try:
        return int(args.func(args))
    except (ConfigError, KeyFileError, ReaderError) as exc:  # e.g. an OSDP key file open to all
        print(f"secroom: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_FAIL


if __name__ == "__main__":
    sys.exit(main())
