"""The demo's display names (Japanese, as an office would give them): the site, its nodes,
the room PC, the readers and the printer, each set through the audited name service."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dashboard.demo import history, seed

ACTOR = "demo-setup"
SITE_NAME = "東京本社"
PRINTER_NAME = "複合機"
NAMES: dict[str, dict[str, str]] = {
    "site": {seed.SITE: SITE_NAME},
    "node": {"gw1": "入退室ゲートウェイ", history.GW: "入退室ゲートウェイ(過去分)",
             history.USB: "総務部PC-01 の USB 監視(過去分)",
             history.BACKUP: "夜間バックアップ(過去分)", "pc-01": "総務部PC-01 の USB 監視"},
    "host": {"pc-01": "総務部PC-01"},
    "reader": {f"{seed.DOOR}-in": "サーバールーム 入口リーダー",
               f"{seed.DOOR}-out": "サーバールーム 出口リーダー",
               "Rack reader A": "ラック A", "Rack reader B": "ラック B",
               "Printer reader": "複合機のリーダー"},
}


def seed_names(sm: Any, now: datetime, readers: dict[str, str] | None = None) -> None:
    """Name everything the demo's nodes report by id (``readers``: more reader names, e.g. the
    PC/SC names of the live gateway's door readers)."""
    from dashboard.names import set_name

    table = {k: dict(v) for k, v in NAMES.items()}
    table["reader"].update(readers or {})
    with sm.begin() as db:
        for kind, names in table.items():
            for ident, name in names.items():
                set_name(db, ACTOR, kind, ident, name, now)
