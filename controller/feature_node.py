"""Run a feature's command (backup job, USB agent) as a node of its own.

With a node config (``--config`` naming a file with a ``[node]`` table) the command gets a node
runtime (journal, signing, MQTT delivery) and its section of that config, read once here; without
one (a backup operator's workstation) its events are printed as JSON lines and the feature reads
its own settings file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel

    from controller.config import GatewayConfig
    from controller.events import Emit

ACK_WAIT_S = 30.0  # a feature run (backup) waits at most this long for the dashboard's ack,
ACK_QUIET_S = 2.0  # and no longer than this while the dashboard says nothing


class PrintingEmit:
    """Emit for a tool run without a node config: events go to stdout as JSON lines."""

    def __call__(self, kind: str, data: BaseModel, /) -> None:
        from controller.numguard import redact_data

        payload = redact_data(data.model_dump(mode="json"))[0]  # as the journal would store it
        print(json.dumps({"kind": kind, "data": payload}, ensure_ascii=False), flush=True)


def node_config(args: argparse.Namespace) -> GatewayConfig | None:
    """The node config behind ``--config``, or None (no option, or not a node's file)."""
    from controller.config import load_node_config

    path = getattr(args, "config", None)
    return None if path is None else load_node_config(Path(path))


def with_node_runtime(config: GatewayConfig, suffix: str,
                      body: Callable[[Emit], int]) -> int:
    """Run ``body(emit)`` as the node ``<name>.<suffix>`` (its own journal, same key)."""
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
        elif not wait_for_dashboard(runtime, head):
            print(f"secroom: the dashboard has not confirmed events up to seq {head}; they "
                  "stay journaled and are re-sent when it asks", file=sys.stderr)
        runtime.stop()


def wait_for_dashboard(runtime: Any, head: int) -> bool:
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


def backup_command(args: argparse.Namespace) -> int:
    """``secroom backup ...``: the backup job is the node ``<name>.backup``."""
    config = node_config(args)
    if config is None:
        return int(args.handler(args, PrintingEmit()))
    args.backup_config = config.backup  # the section, read once with the node's config
    return with_node_runtime(config, "backup", lambda emit: args.handler(args, emit))


def usb_command(args: argparse.Namespace) -> int:
    """``secroom usb ...``: the USB agent runs as the host's own node (journal, signed policy
    from the dashboard)."""
    config = node_config(args)
    if config is None:
        return int(args.handler(args, PrintingEmit(), lambda: None))
    from controller.policy_slice import NodeScope
    from controller.policy_store import store_for
    from controller.runtime import NodeRuntime

    args.usb_config = config.usb
    runtime = NodeRuntime(config.runtime_settings())
    runtime.start()
    store = store_for(config, NodeScope(usb=True), emit=runtime.emit, runtime=runtime)
    store.follow(runtime.subscribe)

    from controller.sdnotify import LoopBeat, notify

    is_agent = getattr(args, "usb_command", None) == "agent"  # not export-rules, init-medium
    metrics = _usb_metrics(config, runtime, store) if is_agent else None
    # the agent's loop asks for the policy on every pass: that is its heartbeat for systemd
    beat = LoopBeat(f"USB agent {config.node.name} running", healthy=runtime.alive)

    def usb_policy() -> Any:
        if is_agent:
            beat.beat()
        policy = store.current
        return policy.usb if policy is not None else None

    try:
        return int(args.handler(args, runtime.emit, usb_policy))
    finally:
        if is_agent:
            notify("STOPPING=1")
        if metrics is not None:
            metrics.stop()
        runtime.stop()


def _usb_metrics(config: GatewayConfig, runtime: Any, store: Any) -> Any:
    """The USB agent's metrics endpoint when ``[metrics] listen`` is set."""
    if config.metrics.listen is None:
        return None
    from controller.clock import ClockStateSource
    from controller.metrics import NodeCollector, serve_node

    return serve_node(config.metrics.listen, NodeCollector(
        runtime, clock_state=ClockStateSource(config.node.clock),
        policy=lambda: store.current))
