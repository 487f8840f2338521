"""``secroom card osdp-install``: give a new OSDP reader its own secure channel key;
``secroom card osdp-rekey``: replace it (under the current key).

The key file named in the reader's binding is created (16 random bytes as hex, mode 0600) if it
does not exist yet; the reader, in install mode, then receives the key over a channel opened
with the default install key (readers.osdp_keyset.install_key). From then on the gateway talks to it
only under that key. Neither the key nor its file's content is ever printed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from controller.config import ConfigError, ReaderBinding, load_config
from readers.base import ReaderError


def _binding(args: argparse.Namespace) -> ReaderBinding:
    config = load_config(args.config)
    binding = next((b for b in config.readers.bindings
                    if b.kind == "osdp" and b.name == args.reader), None)
    if binding is None:
        names = [b.name for b in config.readers.bindings if b.kind == "osdp"]
        raise ConfigError(f"{args.config}: no OSDP reader named {args.reader!r} "
                          f"(OSDP readers: {', '.join(names) or 'none'})")
    assert binding.port is not None and binding.address is not None
    assert binding.key_file is not None
    return binding


def cmd_osdp_install(args: argparse.Namespace) -> int:
    from readers.osdp import OsdpReaderSpec
    from readers.osdp_keys import load_scbk, write_new_scbk
    from readers.osdp_keyset import install_key

    binding = _binding(args)
    assert binding.port is not None and binding.address is not None
    assert binding.key_file is not None
    created = not binding.key_file.exists()
    try:
        key = write_new_scbk(binding.key_file) if created else load_scbk(binding.key_file)
    except OSError as exc:
        raise ConfigError(f"cannot create the key file {binding.key_file}: {exc.strerror}") from exc
    spec = OsdpReaderSpec(name=binding.name, port=str(binding.port), address=binding.address,
                          scbk=key, baud=binding.baud)
    print(f"{'created' if created else 'using'} key file {binding.key_file}; waiting for "
          f"reader {binding.name} (address {binding.address} on {binding.port}) in install "
          "mode...", file=sys.stderr, flush=True)
    try:
        install_key(spec, timeout=args.timeout)
    except ReaderError as exc:
        print(f"secroom: {exc}", file=sys.stderr)
        return 1
    print(f"reader {binding.name} holds its key; restart the gateway to use it")
    return 0


def cmd_osdp_rekey(args: argparse.Namespace) -> int:
    from readers.osdp import OsdpReaderSpec
    from readers.osdp_keys import load_scbk, write_new_scbk
    from readers.osdp_keyset import KeyChangeUncertain, rekey

    binding = _binding(args)
    assert binding.port is not None and binding.address is not None
    assert binding.key_file is not None
    current = load_scbk(binding.key_file)
    pending = binding.key_file.with_name(binding.key_file.name + ".new")
    try:
        new = write_new_scbk(pending)  # on disk before the reader has it: never lost
    except FileExistsError:
        print(f"secroom: {pending} exists: an earlier key change did not finish. If the reader "
              f"refuses {binding.key_file}, it holds the key in {pending}: move it over; else "
              "delete it and run this again", file=sys.stderr)
        return 1
    spec = OsdpReaderSpec(name=binding.name, port=str(binding.port), address=binding.address,
                          scbk=current, baud=binding.baud)
    try:
        rekey(spec, new, timeout=args.timeout)
    except KeyChangeUncertain as exc:
        print(f"secroom: {exc}. {binding.key_file} is unchanged; the new key waits in "
              f"{pending} (if the reader now refuses the old key, move it over)", file=sys.stderr)
        return 1
    except ReaderError as exc:  # nothing was sent: the reader keeps its key
        pending.unlink()
        print(f"secroom: {exc}; the reader keeps its key", file=sys.stderr)
        return 1
    pending.replace(binding.key_file)
    print(f"reader {binding.name} holds its new key ({binding.key_file}); start the gateway")
    return 0


def add_parser(card: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = card.add_parser("osdp-install", help="give an OSDP reader in install mode its own key "
                        "(the key file is created if missing)")
    p.add_argument("--config", "-c", type=Path, required=True, help="node config (TOML)")
    p.add_argument("--reader", required=True, help="the binding's name")
    p.add_argument("--timeout", type=float, default=30.0)
    p.set_defaults(func=cmd_osdp_install)
    p = card.add_parser("osdp-rekey", help="replace an OSDP reader's key under its current key "
                        "(stop the gateway first: one control panel per line)")
    p.add_argument("--config", "-c", type=Path, required=True, help="node config (TOML)")
    p.add_argument("--reader", required=True, help="the binding's name")
    p.add_argument("--timeout", type=float, default=30.0)
    p.set_defaults(func=cmd_osdp_rekey)
