"""`secroom nodes`: the nodes page on the dashboard host's command line: list the nodes (roles,
key, state), approve a pending one for its roles, change its roles, revoke it, approve the new
key it announces without a handover, revoke an old key. Every change is audited under
``--actor`` (the admin's user name)."""

from __future__ import annotations

import argparse
from typing import Any

from controller.events import NODE_ROLES
from dashboard.cli_support import add_db_options, fail, sessionmaker_of
from dashboard.settings import SettingsError


def add_subcommands(sub: Any) -> None:
    nodes = sub.add_parser("nodes", help="nodes: roles and keys (the nodes page)")
    nsub = nodes.add_subparsers(dest="nodes_command", required=True)
    p = nsub.add_parser("list", help="every node with its roles, key status and state")
    add_db_options(p)
    p.set_defaults(func=_list)
    roles_help = f"a role ({', '.join(sorted(NODE_ROLES))}); repeatable"
    for name, help_text, fn, extra in (
        ("approve", "approve a pending node's announced key for its roles", _approve,
         ("name", "key", "role")),
        ("roles", "change what an approved node may report", _roles, ("name", "role")),
        ("revoke", "revoke the node's key: its events are refused", _revoke, ("name",)),
        ("approve-key", "approve the new key an approved node announces (a lost key)",
         _approve_key, ("name", "key", "revoke_old")),
        ("revoke-key", "revoke one of the node's keys (an old one too)", _revoke_key,
         ("name", "key")),
    ):
        p = nsub.add_parser(name, help=help_text)
        add_db_options(p)
        p.add_argument("--actor", required=True, help="your dashboard user name (audited)")
        p.add_argument("name", help="the node's name")
        if "key" in extra:
            p.add_argument("--key", required=True, help="the public key as the node shows it")
        if "role" in extra:
            p.add_argument("--role", action="append", required=True, choices=sorted(NODE_ROLES),
                           help=roles_help)
        if "revoke_old" in extra:
            p.add_argument("--revoke-old", action="store_true",
                           help="the old key was lost or stolen: refuse its events too")
        p.set_defaults(func=fn)


def _change(args: argparse.Namespace, fn: Any, *a: Any, **kw: Any) -> int:
    from dashboard.services import ServiceError

    try:
        _, sm = sessionmaker_of(args)
        with sm.begin() as db:
            node = fn(db, args.actor, args.name, *a, **kw)
            print(f"{node.name}: {node.key_status}, roles {','.join(sorted(node.role_set)) or '-'}"
                  f", key {node.public_key} from seq {node.key_since_seq}")
    except (SettingsError, ServiceError) as exc:
        return fail(str(exc))
    return 0


def _approve(args: argparse.Namespace) -> int:
    from dashboard.services import approve_node

    return _change(args, approve_node, roles=args.role, public_key=args.key)


def _roles(args: argparse.Namespace) -> int:
    from dashboard.services import set_node_roles

    return _change(args, set_node_roles, args.role)


def _revoke(args: argparse.Namespace) -> int:
    from dashboard.services import revoke_node

    return _change(args, revoke_node)


def _approve_key(args: argparse.Namespace) -> int:
    from dashboard.services import approve_new_key

    return _change(args, approve_new_key, args.key, revoke_old=args.revoke_old)


def _revoke_key(args: argparse.Namespace) -> int:
    from dashboard.services import revoke_key

    return _change(args, revoke_key, args.key)


def _list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from dashboard.models import Node

    try:
        _, sm = sessionmaker_of(args)
        with sm() as db:
            for n in db.scalars(select(Node).order_by(Node.name)):
                extra = f" (announces {n.announced_key})" if n.announced_key else ""
                print(f"{n.name}\t{n.key_status}\t{','.join(sorted(n.role_set)) or '-'}\t"
                      f"{n.public_key or '-'}{extra}\t{n.state}")
    except SettingsError as exc:
        return fail(str(exc))
    return 0
