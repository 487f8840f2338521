"""Offline verification of a node's journal (``secroom journal verify``): contiguous seq, the
prev links, each row's stored hash and the node's signature, and the ack and delivered marks."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel

from controller.envelope import GENESIS, EnvelopeError, parse, verify_signature
from controller.keys import KeyFileError, open_rotation, public_b64, public_from_b64

MAX_PROBLEMS = 100


class VerifyReport(BaseModel, extra="forbid"):
    ok: bool
    first: int
    last: int
    count: int
    problems: list[str]



def verify_journal(path: Path, public_key: Ed25519PublicKey) -> VerifyReport:
    """Check every stored event: contiguous seq, prev links, hashes and signatures."""
    if not path.is_file():
        return VerifyReport(ok=False, first=0, last=0, count=0,
                            problems=[f"no journal at {path}"])
    try:
        db = sqlite3.connect(f"file:{path}?mode=rw", uri=True)
        try:
            meta = dict(db.execute("SELECT name, value FROM meta").fetchall())
            problems, first, last, count = _verify_rows(db, meta, public_key)
        finally:
            db.close()
    except sqlite3.Error as exc:
        return VerifyReport(ok=False, first=0, last=0, count=0,
                            problems=[f"cannot read journal {path}: {exc}"])
    shown = problems[:MAX_PROBLEMS]
    if len(problems) > MAX_PROBLEMS:
        shown.append(f"... and {len(problems) - MAX_PROBLEMS} more problems")
    return VerifyReport(ok=not problems, first=first, last=last, count=count, problems=shown)


def _verify_rows(
    db: sqlite3.Connection, meta: dict[str, str], public_key: Ed25519PublicKey
) -> tuple[list[str], int, int, int]:
    problems: list[str] = []
    if meta.get("public_key") not in (None, public_b64(public_key)):
        problems.append("the journal was written with a different key than the one given")
    # after ``secroom keys rotate`` the events below the handover stay signed by the old key,
    # which the rotation statement (signed by it) names
    old_key, from_seq = public_key, 1
    if meta.get("rotation"):
        try:
            old, _, from_seq = open_rotation(json.loads(meta["rotation"]),
                                             node=meta.get("node", ""), site=meta.get("site", ""))
            old_key = public_from_b64(old)
        except (KeyFileError, ValueError):
            problems.append("the journal's key rotation statement does not verify")
    expected = int(meta.get("pruned_below", "1"))
    prev = meta.get("pruned_hash", GENESIS)
    first = last = count = 0
    cur = db.execute("SELECT seq, hash, body FROM events ORDER BY seq")
    while batch := cur.fetchmany(2000):
        for seq, row_hash, body in batch:
            count += 1
            first = first or seq
            last = seq
            if seq != expected:
                problems.append(f"events {expected}..{seq - 1} are missing")
            try:
                event = parse(bytes(body))
            except EnvelopeError as exc:
                problems.append(f"row {seq}: {exc} (edited or damaged)")
                expected, prev = seq + 1, row_hash
                continue
            if event.seq != seq:
                problems.append(f"row {seq} holds event {event.seq} (rows reordered)")
            if event.hash != row_hash:
                problems.append(f"row {seq}: stored hash differs from the event's hash")
            if (event.node, event.site) != (meta.get("node"), meta.get("site")):
                problems.append(f"row {seq}: event of {event.site}/{event.node}, not this node")
            if event.prev != prev:
                problems.append(f"chain broken at {seq}: prev does not match event {seq - 1}")
            try:
                verify_signature(event, public_key if seq >= from_seq else old_key)
            except EnvelopeError:
                problems.append(f"row {seq}: bad signature")
            expected, prev = seq + 1, event.hash
    for mark in ("ack", "delivered"):
        if int(meta.get(mark, "0")) > last:
            problems.append(f"events after {last} are missing ({mark} mark is {meta[mark]})")
    return problems, first, last, count
