"""`secroom doctor` for a node (gateway, USB agent host): config, key, journal and policy files,
the card readers, the broker, the clock, the stored policy and the metrics port."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

from controller import doctor
from controller.config import ConfigError, GatewayConfig, ReaderBinding, load_config
from controller.doctor import Check, ok
from controller.envelope import now_utc
from controller.keys import KeyFileError, load_private, load_public

POLICY_OLD_DAYS = 30


def checks(path: Path, *, now: datetime | None = None) -> list[Check]:
    try:
        config = load_config(path)
    except ConfigError as exc:
        return [Check("fail", f"config {path}", str(exc).replace("\n", " "),
                      "correct the file (secroom check-config --config ... shows the same)")]
    out = [ok(f"config {path}", f"node {config.node.name}, site {config.node.site}")]
    out += key_checks(config, path)
    out += doctor.data_dir(config.node.data_dir)
    out += record_checks(config)
    out += reader_checks(config)
    out += doctor.broker(config.mqtt, client_id=f"secroom-doctor-{config.node.name}-"
                                                 f"{os.getpid()}")
    out.append(doctor.clock(config.node.clock))
    out += policy_checks(config, now or now_utc())
    if config.metrics.listen is not None:
        out.append(metrics_check(config.metrics.listen))
    return out


def key_checks(config: GatewayConfig, path: Path) -> list[Check]:
    key = doctor.private_file(config.key_file, "node key",
                              missing_fix=f"secroom keys init --config {path}, then approve "
                                          "the printed key on the dashboard")
    if key.status == "fail":
        return [key]
    try:
        load_private(config.key_file)
    except KeyFileError as exc:
        return [Check("fail", f"node key {config.key_file}", str(exc),
                      "restore the key from the node's backup, or make a new one and "
                      "approve it again on the dashboard")]
    return [key]


def record_checks(config: GatewayConfig) -> list[Check]:
    """The journal (and its WAL files) and the stored policy: records, owner-only."""
    out = []
    journal = config.journal_path
    for path in (journal, journal.with_name(journal.name + "-wal"),
                 journal.with_name(journal.name + "-shm")):
        if path == journal or path.exists():
            out.append(doctor.private_file(
                path, "journal", missing="warn",
                missing_fix="start the node once; it creates the journal"))
    if config.policy_store.exists():
        out.append(doctor.private_file(config.policy_store, "stored policy"))
    return out


def reader_checks(config: GatewayConfig) -> list[Check]:
    bindings = config.readers.bindings
    if not bindings:
        return []
    if config.readers.backend == "fake":
        return [Check("warn", "card readers", "backend = \"fake\" (for tests only)",
                      'set [readers] backend = "pcsc"')]
    out = osdp_checks([b for b in bindings if b.kind == "osdp"])
    pcsc = [b for b in bindings if b.kind == "pcsc"]
    if not pcsc:
        return out
    from readers.base import ReaderError
    from readers.pcsc import list_reader_names

    try:
        present = list_reader_names()
    except ReaderError as exc:
        return [*out, Check("fail", "pcscd", str(exc),
                            "start it: systemctl enable --now pcscd (package pcscd)")]
    out.append(ok("pcscd", f"{len(present)} reader(s): {', '.join(present) or 'none'}"))
    for binding in pcsc:
        what = f"reader {binding.name!r} ({binding.role.value})"
        matching = [name for name in present if binding.matches(name)]
        if matching:
            out.append(ok(what, f"present as {matching[0]!r}"))
        else:
            out.append(Check("fail", what, "no such reader is connected",
                             "plug it in (pcsc_scan lists what pcscd sees), or correct the "
                             "name in [[readers.bindings]]"))
    return out


def osdp_checks(bindings: list[ReaderBinding]) -> list[Check]:
    """Each OSDP reader's key file (loadable, owner-only; never shown) and serial port."""
    import stat

    from readers.base import ReaderError
    from readers.osdp_keys import load_scbk

    out = []
    for b in bindings:
        what = f"OSDP reader {b.name!r} ({b.role.value})"
        assert b.key_file is not None and b.port is not None
        try:
            load_scbk(b.key_file)
        except ReaderError as exc:
            out.append(Check("fail", what, str(exc), "see hardware/OSDP.md"))
            continue
        try:
            is_tty = stat.S_ISCHR(b.port.stat().st_mode)
        except OSError:
            is_tty = False
        if not is_tty:
            out.append(Check("fail", what, f"serial port {b.port} not found",
                             "plug in the RS-485 adapter, or correct port in "
                             "[[readers.bindings]] (see hardware/OSDP.md for a udev name)"))
        else:
            out.append(ok(what, f"key file ok, port {b.port}, address {b.address}"))
    return out


def policy_checks(config: GatewayConfig, now: datetime) -> list[Check]:
    from controller.policy import PolicyError, open_policy

    out, trusted = [], []
    for key_path in config.policy.trusted_keys:
        try:
            trusted.append(load_public(key_path))
        except KeyFileError as exc:
            out.append(Check("fail", f"trusted key {key_path}", str(exc),
                             "copy the dashboard's policy public key (policy.key.pub) here"))
    if out:
        return out
    out.append(ok("trusted keys", f"{len(trusted)} loaded"))
    path = config.policy_store
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        source = config.policy.file
        if source is not None and source.exists():
            path, blob = source, source.read_bytes()
        else:
            return [*out, Check("warn", "policy", f"none stored yet ({path})",
                                "approve the node on the dashboard; it then receives the "
                                "signed policy (every card is refused until it has one)")]
    try:
        verified = open_policy(blob, trusted, site=config.node.site)
    except PolicyError as exc:
        return [*out, Check("fail", f"policy {path}", f"does not verify: {exc}",
                            "check that trusted_keys holds the dashboard's policy key; the "
                            "node replaces the file when a valid policy arrives")]
    policy = verified.policy
    age = (now - policy.issued_at).total_seconds() / 86400
    detail = (f"version {policy.version}, signed {age:.1f} day(s) ago, "
              f"{len(policy.people)} people, {len(policy.doors)} door(s)")
    if age > POLICY_OLD_DAYS:
        return [*out, Check("warn", "policy", detail,
                            "the dashboard re-signs on every change: if rights changed since, "
                            "this node is not receiving them (check its approval and the "
                            "broker's ACL)")]
    return [*out, ok("policy", detail)]


def metrics_check(listen: str) -> Check:
    from controller.metrics import parse_listen

    host, port = parse_listen(listen)
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our own URL
            body = response.read(1 << 20)
    except (urllib.error.URLError, OSError) as exc:
        return Check("warn", f"metrics {url}", f"no answer ({exc})",
                     "start the node (the endpoint runs inside it), or free the port")
    if b"secroom_node_info" not in body:
        return Check("warn", f"metrics {url}", "something else answers there",
                     "choose a free port for [metrics] listen")
    return ok(f"metrics {url}", "answering")
