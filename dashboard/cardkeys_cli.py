"""`secroom card-keys`: the site card master keys on the dashboard host's command line: list
them (ids, states and how many cards are on each, every site's; never a secret), rotate (a
new active key; the old one stays accepted until retired), retire the previous key after the
cards were re-keyed. Audited under ``--actor`` (the same rows as the console's card keys
page). The running dashboard publishes the next policy version within its poll."""

from __future__ import annotations

import argparse
from typing import Any

from dashboard.cli_support import add_db_options, fail, sessionmaker_of
from dashboard.settings import SettingsError


def add_subcommands(sub: Any) -> None:
    keys = sub.add_parser("card-keys", help="site card master keys (cards that prove themselves)")
    ksub = keys.add_subparsers(dest="card_keys_command", required=True)
    p = ksub.add_parser("list", help="key ids, states and the number of cards on each")
    add_db_options(p)
    p.set_defaults(func=_list)
    for name, help_text, fn in (
        ("rotate", "generate a new active key (the first one, or a rotation)", _rotate),
        ("retire", "retire the previous key (end the changeover)", _retire),
    ):
        p = ksub.add_parser(name, help=help_text)
        add_db_options(p)
        p.add_argument("--actor", required=True, help="your dashboard user name (audited)")
        p.set_defaults(func=fn)


def _rotate(args: argparse.Namespace) -> int:
    from controller.envelope import now_utc
    from controller.keys import load_private
    from dashboard.cardkeys import CardKeyError, rotate

    try:
        settings, sm = sessionmaker_of(args)
        assert settings.policy_key_file is not None
        key = load_private(settings.policy_key_file)
        with sm.begin() as db:
            key_id = rotate(db, key, actor=args.actor, now=now_utc())
    except (SettingsError, CardKeyError, OSError) as exc:
        return fail(str(exc))
    print(f"new active card key {key_id}; the next policy carries it to the door nodes")
    return 0


def _retire(args: argparse.Namespace) -> int:
    from controller.envelope import now_utc
    from dashboard.cardkeys import CardKeyError, card_counts, retire_previous

    try:
        _, sm = sessionmaker_of(args)
        with sm.begin() as db:
            key_id = retire_previous(db, actor=args.actor, now=now_utc())
            left = card_counts(db).get(key_id, 0)
    except (SettingsError, CardKeyError) as exc:
        return fail(str(exc))
    print(f"card key {key_id} retired; the {left} cards still on it no longer open "
          "verified-only doors")
    return 0


def _list(args: argparse.Namespace) -> int:
    from dashboard.cardkeys import key_statuses

    try:
        _, sm = sessionmaker_of(args)
        with sm() as db:
            for row in reversed(key_statuses(db)):  # oldest first; every site's cards
                print(f"{row.key_id}\t{row.state}\t{row.created_at:%Y-%m-%d %H:%M}\t"
                      f"{row.created_by}\t{row.cards} cards")
    except SettingsError as exc:
        return fail(str(exc))
    return 0
