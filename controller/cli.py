"""The `secroom` command line: the composition root for every node and tool.

Exit codes: 0 success, 1 the operation failed (e.g. a journal that does not verify), 2 bad usage
or configuration, 3 a required service (reader, broker, database) is unavailable.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3
ACK_WAIT_S = 30.0  # a feature run (backup) waits at most this long for the dashboard's ack,
ACK_QUIET_S = 2.0  # and no longer than this while the dashboard says nothing


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


# -- gateway ------------------------------------------------------------------------------------
def build_reader(config: Any) -> Any:
    if config.readers.backend == "fake":
        from readers.fake import FakeReader

        return FakeReader()
    from readers.pcsc import PcscReaders

    bound: Callable[[str], bool] = lambda name: config.binding_for(name) is not None  # noqa: E731
    return PcscReaders(reader_filter=bound if config.readers.bindings else None)


def cmd_gateway_run(args: argparse.Namespace) -> int:
    from controller.gateway import Gateway
    from controller.gpio import make_pin_factory

    config = _load(args.config)
    gateway = Gateway(config, reader=build_reader(config),
                      pin_factory=make_pin_factory(config.gpio.backend))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    scheduler = None
    if config.backup is not None and config.node.run_backups:
        from controller.backup_scheduler import BackupScheduler

        scheduler = BackupScheduler(args.config.resolve(), config.backup, clock=gateway.clock)
    gateway.start()
    if scheduler is not None:
        scheduler.start()
    print(f"gateway {config.node.name} running (site {config.node.site}); Ctrl-C stops it",
          flush=True)
    stop.wait()
    if scheduler is not None:
        scheduler.stop()
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


# -- feature nodes (backup job, USB agent) --------------------------------------------------------
class _PrintingEmit:
    """Emit for a tool run without a node config: events go to stdout as JSON lines."""

    def __call__(self, kind: str, data: Any) -> None:
        payload = data.model_dump(mode="json") if hasattr(data, "model_dump") else dict(data)
        print(json.dumps({"kind": kind, "data": payload}, ensure_ascii=False), flush=True)


def _node_config(args: argparse.Namespace) -> Any | None:
    """The node config behind ``--config`` if it describes a node ([node] table), else None.

    A backup operator's workstation (restore, drill with the private key) has a config with a
    [backup] section only: its events are printed, not journaled.
    """
    path = getattr(args, "config", None)
    if path is None:
        return None
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return None  # the feature's own loader reports what is wrong with the file
    return _load(Path(path)) if "node" in data else None


def _with_node_runtime(args: argparse.Namespace, suffix: str,
                       body: Callable[[Callable[..., Any]], int]) -> int:
    """Run ``body(emit)`` as a node of its own (journal, signing, MQTT delivery)."""
    config = _node_config(args)
    if config is None:
        return body(_PrintingEmit())
    from controller.runtime import NodeRuntime

    settings = config.runtime_settings(
        node=f"{config.node.name}.{suffix}",
        journal=config.journal_path.with_name(f"journal-{suffix}.sqlite"),
    )
    runtime = NodeRuntime(settings)
    runtime.start()
    try:
        return body(runtime.emit)
    finally:
        head, _ = runtime.journal.head()
        if not runtime.wait_delivered(head, timeout=10.0):
            print(f"secroom: events up to seq {head} are journaled and will be delivered on "
                  "the next run (broker unreachable now)", file=sys.stderr)
        elif not _wait_for_dashboard(runtime, head):
            print(f"secroom: the dashboard has not confirmed events up to seq {head}; they "
                  "stay journaled and are re-sent when it asks", file=sys.stderr)
        runtime.stop()


def _wait_for_dashboard(runtime: Any, head: int) -> bool:
    """Stay until the dashboard acknowledges ``head``, as long as it is talking to us.

    A short-lived node (the backup job) must not leave while the dashboard asks for events it
    missed (it was down, or the node was not yet approved): they are asked for again only when
    a later event reveals the gap, and only a running node can answer. So when the ack does not
    come, the node re-offers everything above the dashboard's last ack once, and waits while the
    dashboard answers (acks, resend requests); silent for ``ACK_QUIET_S``, it gives up.
    """
    if runtime.wait_acked(head, timeout=ACK_QUIET_S):
        return True
    # not confirmed: offer once more everything the dashboard has not acknowledged (events of
    # an earlier run it missed included; it drops what it already has by (node, seq))
    runtime.publisher.resend(runtime.journal.ack + 1, head)
    stats = runtime.publisher.stats
    seen = stats["acks"] + stats["resent"]
    deadline = time.monotonic() + ACK_WAIT_S
    while not runtime.wait_acked(head, timeout=ACK_QUIET_S):
        now_seen = stats["acks"] + stats["resent"]
        if now_seen == seen or time.monotonic() > deadline:
            return False
        seen = now_seen
    return True


def _feature_handler(suffix: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        return _with_node_runtime(args, suffix, lambda emit: args.handler(args, emit))

    return run


# -- parser -------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
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

    gw = sub.add_parser("gateway", help="the door gateway").add_subparsers(dest="sub",
                                                                         required=True)
    p = gw.add_parser("run", help="run the gateway node")
    _config_arg(p)
    p.set_defaults(func=cmd_gateway_run)

    card = sub.add_parser("card", help="card readers").add_subparsers(dest="sub", required=True)
    p = card.add_parser("read", help="wait for a tap and print the card's UID")
    p.add_argument("--timeout", type=float, default=30.0)
    p.set_defaults(func=cmd_card_read)

    jr = sub.add_parser("journal", help="the node's event journal").add_subparsers(dest="sub",
                                                                                 required=True)
    p = jr.add_parser("verify", help="verify chain and signatures; exit 1 on any break")
    _config_arg(p, required=False)
    p.add_argument("--journal", type=Path)
    p.add_argument("--public-key", type=Path)
    p.set_defaults(func=cmd_journal_verify)

    _add_feature(sub, "backup", "encrypted backups of the vault", "backup.cli", "backup")
    _add_usb(sub)
    _add_dashboard(sub)

    p = sub.add_parser("demo", help="run the whole room on this machine with simulated hardware")
    p.add_argument("--workdir", type=Path, default=Path(".demo"))
    p.add_argument("--no-input", action="store_true", help="do not read taps from stdin")
    p.set_defaults(func=lambda a: __import__("controller.demo", fromlist=["run"]).run(a))
    return parser


def _add_feature(sub: Any, name: str, help_text: str, module: str, suffix: str) -> None:
    import importlib

    group = sub.add_parser(name, help=help_text)
    inner = group.add_subparsers(dest="sub", required=True)
    importlib.import_module(module).add_subcommands(inner)
    for choice in inner.choices.values():
        if not any(a.dest == "config" for a in choice._actions):
            _config_arg(choice, required=False)
        choice.set_defaults(func=_feature_handler(suffix))


def _add_usb(sub: Any) -> None:
    from usb_guard.cli import add_subcommands

    add_subcommands(sub)
    usb = sub.choices["usb"]
    inner = next(a for a in usb._actions if isinstance(a, argparse._SubParsersAction))
    for choice in inner.choices.values():
        if not any(a.dest == "config" for a in choice._actions):
            _config_arg(choice, required=False)
        choice.set_defaults(func=cmd_usb)


def cmd_usb(args: argparse.Namespace) -> int:
    """The USB agent runs as the host's own node: journal, signed policy from the dashboard."""
    config = _node_config(args)
    if config is None:
        return int(args.handler(args, _PrintingEmit(), lambda: None))
    from controller.keys import load_public
    from controller.policy import PolicyStore
    from controller.runtime import NodeRuntime

    runtime = NodeRuntime(config.runtime_settings())
    runtime.start()
    store = PolicyStore(config.policy_store, [load_public(k) for k in config.policy.trusted_keys],
                        site=config.node.site, emit=runtime.emit)
    store.follow(runtime.subscribe)

    def usb_policy() -> Any:
        policy = store.current
        return policy.usb if policy is not None else None

    try:
        return int(args.handler(args, runtime.emit, usb_policy))
    finally:
        runtime.stop()


def _add_dashboard(sub: Any) -> None:
    from dashboard.cli import add_subcommands
    from dashboard.numlog_cli import add_subcommands as add_numlog_subcommands

    add_subcommands(sub)
    add_numlog_subcommands(sub)
    # `db`, `user` and `dashboard` set ``handler(args)``; main() dispatches on ``func``
    for name in ("db", "user", "dashboard"):
        inner = next(a for a in sub.choices[name]._actions
                     if isinstance(a, argparse._SubParsersAction))
        for choice in inner.choices.values():
            choice.set_defaults(func=lambda a: a.handler(a))


def main(argv: Sequence[str] | None = None) -> int:
    from controller.config import ConfigError
    from controller.keys import KeyFileError

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except (ConfigError, KeyFileError) as exc:
        print(f"secroom: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_FAIL


if __name__ == "__main__":
    sys.exit(main())
