"""`python -m backup <subcommand>`: the backup CLI on its own, events printed to stderr."""

from __future__ import annotations

import argparse
import json
import sys

from pydantic import BaseModel

from backup.cli import add_subcommands


def print_emit(kind: str, data: BaseModel, /) -> None:
    payload = data.model_dump(mode="json")
    print(f"event {kind} {json.dumps(payload, sort_keys=True)}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backup", description="secroom backups")
    sub = parser.add_subparsers(dest="command", required=True)
    add_subcommands(sub)
    args = parser.parse_args(argv)
    return int(args.handler(args, print_emit))


if __name__ == "__main__":
    sys.exit(main())
