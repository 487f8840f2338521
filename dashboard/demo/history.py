"""A month of believable history for the demo office, stored through the real ingest path.

Every event is sealed and signed (controller.envelope.seal) by one of three history nodes and
handed to the dashboard's ``IngestCore`` (signature, chain, idempotence, projections); the number
system's log arrives as a CP932 CSV through ``numlog.service.import_csv``; then the dashboard's
set-based correlation re-run judges the whole month. The planted cases below leave exactly
eleven anomalies to review (tests/dashboard/demo/test_history.py).

Why separate node names ("gw1-history", "pc-01-history", "backup-history"): the live gateway
``gw1`` starts a fresh journal at seq 1 when the demo starts; history signed as ``gw1`` with
seq 1..N would be a fork of that chain (the dashboard rightly raises an anomaly). Generating the
live journal first would mean writing weeks of back-dated rows into the gateway's own journal
and keys; a node of its own per history source keeps both chains honest and the door log reads
the same (the node column says where an event came from).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel

from backup.events import BackupFailed, BackupPruned, BackupSnapshot
from controller import events as ev
from controller.envelope import GENESIS, Event, seal
from controller.events import payload_error
from controller.keys import public_b64
from controller.printing.events import PrintReleasePayload, ReleasedJob
from controller.schedule import is_japanese_holiday
from dashboard.demo import documents, seed
from usb_guard.events import UsbInserted, VerdictName

ZONE = ZoneInfo("Asia/Tokyo")
DAYS = 30
GW, USB, BACKUP = "gw1-history", "pc-01-history", "backup-history"
ROLES = {GW: ("door_gateway", "print_station"), USB: ("host_agent",), BACKUP: ("backup_job",)}
ACTOR = "demo-setup"
ORG, CLIENTS = seed.OFFICE, seed.CLIENTS
# a 12-digit value that passes the My Number check digit: typed into a purpose by mistake
LEAKED_NUMBER = "123456789018"
CSV_HEADER = ["NO", "事業所名", "日時", "画面", "処理", "利用目的", "処理者", "結果"]


class _Signer:
    def __init__(self, name: str) -> None:
        self.name, self.key, self.seq, self.prev = name, Ed25519PrivateKey.generate(), 0, GENESIS

    def event(self, kind: str, ts: datetime, data: dict[str, Any]) -> Event:
        self.seq += 1
        sealed = seal(self.key, node=self.name, site=seed.SITE, seq=self.seq, ts=ts,
                      boot="history", clock="synced", kind=kind, data=data, prev=self.prev)
        self.prev = sealed.hash
        return sealed


@dataclass
class Month:
    """The generated month: signed events per node and the number system's CSV rows."""

    signers: dict[str, _Signer] = field(default_factory=dict)
    pending: list[tuple[str, datetime, dict[str, Any]]] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)

    def add(self, node: str, kind: str, ts: datetime, data: BaseModel) -> None:
        """One event, as a node would emit it: the kind's own model (controller.events)."""
        refused = payload_error(kind, data)
        if refused is not None:
            raise ValueError(refused)
        self.pending.append((node, ts, {"kind": kind, "data": data.model_dump(mode="json")}))

    def events(self) -> list[Event]:
        """Sealed in time order per node (seq follows ts, as on a real node)."""
        out = []
        for node, ts, item in sorted(self.pending, key=lambda p: (p[1], p[0])):
            signer = self.signers.setdefault(node, _Signer(node))
            out.append(signer.event(item["kind"], ts, item["data"]))
        return out

    def row(self, ts: datetime, operator: str, screen: str, action: str, purpose: str,
            result: str, office: str = CLIENTS[0]) -> None:
        local = ts.astimezone(ZONE)
        self.rows.append([str(len(self.rows) + 1), office, f"{local:%Y/%m/%d %H:%M:%S}", screen,
                          action, purpose, operator, result])

    def csv(self) -> bytes:
        lines = [",".join(CSV_HEADER)] + [",".join(r) for r in self.rows]
        return ("\r\n".join(lines) + "\r\n").encode("cp932")


def _at(d: date, h: int, m: int = 0, s: int = 0) -> datetime:
    return datetime.combine(d, time(h, m, s), ZONE).astimezone(UTC)


def _door(m: Month, who: seed.StaffMember | None, direction: Literal["in", "out"],
          ts: datetime, *, granted: bool = True, reason: ev.DenialReason | None = None,
          card: str | None = None) -> None:
    m.add(GW, "door.access", ts, ev.DoorAccess(
        card=card or (who.uid if who else "0000"), direction=direction, door=seed.DOOR,
        granted=granted, person_id=who.id if who else None, policy_version=1,
        reader=f"{seed.DOOR}-{direction}", reason=reason))
    if granted:
        m.add(GW, "door.opened", ts + timedelta(seconds=2), ev.DoorOpened(
            door=seed.DOOR, via="grant", person_id=who.id if who else None, reason="access"))
        m.add(GW, "door.closed", ts + timedelta(seconds=6),
              ev.DoorClosed(door=seed.DOOR, open_s=4.0, via="grant"))


def _print(m: Month, who: seed.StaffMember, ts: datetime, job: int, pages: int) -> None:
    m.add(GW, "print.release", ts, PrintReleasePayload(
        printer=seed.PRINTER, person_id=who.id, job_ids=[job], copies=1, pages=pages,
        jobs=[ReleasedJob(job_id=job, cups_user=who.cups_user, copies=1, pages=pages,
                          sheets=pages)]))


def _usb(m: Month, ts: datetime, number: str | None, verdict: VerdictName, reason: str) -> None:
    m.add(USB, "usb.inserted", ts, UsbInserted(
        control_number=number, device="1-1", host="pc-01", interfaces=("08:06:50",),
        phase="token_check" if number else "insert", product_id="5583", reason=reason,
        rule=f"medium:{number}" if number else "unregistered",
        serial_masked="****" + (number or "XXXX")[-4:], serial_sha256="0" * 16,
        vendor_id="0781", verdict=verdict))


def _backup(m: Month, d: date, rnd: random.Random, *, fail: bool = False) -> None:
    ts = _at(d, 2, 0, rnd.randrange(0, 59))
    if fail:
        m.add(BACKUP, "backup.failed", ts, BackupFailed(
            stage="run", error="io", message="the NAS did not answer", exit_code=1,
            duration_s=31.0))
        return
    m.add(BACKUP, "backup.snapshot", ts, BackupSnapshot(
        snapshot_id=f"{rnd.getrandbits(64):016x}",
        started=ts.strftime("%Y-%m-%dT%H:%M:%S.000000Z"), duration_s=40.0 + rnd.random() * 20,
        files=1800 + d.day, dirs=120, symlinks=0, files_new=rnd.randrange(0, 40),
        files_changed=rnd.randrange(0, 60), files_unchanged=1700, files_removed=0,
        bytes_total=2_400_000_000, bytes_read=80_000_000, bytes_new=12_000_000,
        bytes_stored=5_000_000, repo_bytes=3_100_000_000 + d.toordinal(), skipped=0))


def clients_of(who: seed.StaffMember) -> tuple[str, ...]:
    """The clients a member of staff works for (two each, by turns)."""
    n = int(who.id[1:])
    return CLIENTS[n % len(CLIENTS)], CLIENTS[(n + 1) % len(CLIENTS)]


def build(now: datetime, rnd_seed: int = 11) -> Month:
    """The ``DAYS`` days before ``now``'s local date."""
    today = now.astimezone(ZONE).date()
    rnd = random.Random(rnd_seed)
    m = Month()
    staff = seed.staff()
    regulars = [s for s in staff if s.group in ("payroll", "parttime", "it")]
    days = [today - timedelta(days=n) for n in range(DAYS, 0, -1)]
    workdays = [d for d in days if d.weekday() < 5 and not is_japanese_holiday(d)]
    job = 100
    for d in [*days, today]:  # the nightly run at 02:00, this morning's included
        if d == days[9]:
            continue  # no backup that night: "backup missing" at the morning check
        if d != today or _at(d, 2, 5) < now:
            _backup(m, d, rnd, fail=d == days[17])
    for n, d in enumerate(workdays):
        present = rnd.sample(regulars, k=rnd.randrange(10, 16))
        for who in present:
            enter = _at(d, 8, 30 + rnd.randrange(0, 29), rnd.randrange(60))
            leave = _at(d, 17, 30 + rnd.randrange(0, 29), rnd.randrange(60))
            lunch = who.id == "s002" and n == 4  # goes out for lunch; accesses meanwhile
            office = clients_of(who)[(n + int(who.id[1:])) % 2]
            _door(m, who, "in", enter)
            if lunch:
                _door(m, who, "out", _at(d, 12, 0))
                _door(m, who, "in", _at(d, 13, 0))
                m.row(_at(d, 12, 30), who.operator_id, "個人番号照会", "閲覧", "年末調整", "成功",
                      office)
            _door(m, who, "out", leave)
            login = enter + timedelta(minutes=rnd.randrange(5, 40))
            m.row(login, who.operator_id, "ログイン", "ログイン認証", "", "成功", office)
            at = login
            for _ in range(rnd.randrange(1, 4)):
                at = login + timedelta(minutes=rnd.randrange(5, 400))
                m.row(at, who.operator_id, "個人番号照会", "閲覧",
                      rnd.choice(["源泉徴収票作成", "社会保険手続", "年末調整"]), "成功", office)
                if rnd.random() < 0.15:  # an output record right after the access
                    job += 1
                    _print(m, who, at + timedelta(minutes=rnd.randrange(2, 20)), job,
                           rnd.randrange(1, 8))
            if n == 8 and who is present[0]:  # a retiree's number deleted after retention
                m.row(at + timedelta(minutes=1), who.operator_id, "個人番号管理",
                      "マイナンバー削除", "保存期間満了", "削除完了", office)
        it = next(s for s in present if s.group == "it") if any(
            s.group == "it" for s in present) else None
        if it and rnd.random() < 0.4:
            _usb(m, _at(d, 14, rnd.randrange(60)), f"USB-000{rnd.randrange(1, 4)}", "allow",
                 "medium token verified")
    # planted cases to review
    d = workdays[6 % len(workdays)]
    _door(m, None, "in", _at(d, 10, 12), granted=False, reason="unknown_card", card="04A1B2C3")
    visitor = next(s for s in staff if s.group == "visitors")
    _door(m, visitor, "in", _at(d, 11, 3), granted=False, reason="not_permitted")
    late = next(s for s in staff if s.id == "s005")
    d = workdays[11 % len(workdays)]
    _door(m, late, "in", _at(d, 21, 40))
    m.row(_at(d, 22, 5), late.operator_id, "個人番号照会", "閲覧", "給与計算", "成功",
          CLIENTS[1])
    _door(m, late, "out", _at(d, 22, 30))
    d = workdays[14 % len(workdays)]
    for minute in (0, 1, 2):
        m.row(_at(d, 9, 50 + minute), "OP0007", "ログイン", "ログイン認証", "", "失敗", CLIENTS[2])
    m.row(_at(d, 10, 15), "OP9999", "個人番号照会", "閲覧", "年末調整", "成功",  # unknown operator
          CLIENTS[3])
    m.row(_at(d, 11, 0), "OP0003", "個人番号照会", "閲覧", f"確認 {LEAKED_NUMBER}", "成功")
    d = workdays[16 % len(workdays)]
    m.add(GW, "door.forced", _at(d, 3, 12), ev.DoorForced(door=seed.DOOR))
    m.add(GW, "door.closed", _at(d, 3, 13), ev.DoorClosed(door=seed.DOOR, open_s=55.0,
                                                          via="forced"))
    d = workdays[18 % len(workdays)]
    m.add(GW, "door.held_open", _at(d, 15, 1), ev.DoorHeldOpen(
        door=seed.DOOR, open_s=30.0, via="grant", person_id="s010"))
    _usb(m, _at(workdays[-3], 13, 20), None, "block", "mass storage not in the media ledger")
    # a leaver's file purged from every backup snapshot (deletion duty): certifiable
    m.add(BACKUP, "backup.pruned", _at(workdays[-4], 18, 40), BackupPruned(
        mode="purge", result="ok", duration_s=12.5, snapshots_removed=0, snapshots_kept=21,
        snapshots_changed=[f"{i:012x}->{i + 99:012x}" for i in range(3)], packs_deleted=2,
        packs_rewritten=3, blobs_removed=7, bytes_freed=81_920, repo_bytes=3_100_000_000))
    # an output record with no number access before it
    _print(m, next(s for s in staff if s.id == "s012"), _at(workdays[-2], 8, 20), 999, 42)
    return m


def store(sm: Any, month: Month, now: datetime) -> dict[str, int]:
    """Enrol the history nodes (audited approvals), ingest every event, correlate, import the
    CSV. Returns counts for the banner."""
    from dashboard.correlation.rerun import rerun
    from dashboard.ingest.core import IngestCore
    from dashboard.models.nodes import Node
    from dashboard.numlog.service import import_csv
    from dashboard.services import approve_node

    events = month.events()
    first = min(e.when for e in events) if events else now
    with sm.begin() as db:
        for name, signer in month.signers.items():
            db.add(Node(name=name, site=seed.SITE, public_key=public_b64(signer.key.public_key()),
                        key_status="pending", first_seen_at=first, contiguous_seq=0, max_seq=0,
                        events_stored=0, state="offline", health={}))
            db.flush()
            approve_node(db, ACTOR, name, roles=ROLES[name],
                         public_key=public_b64(signer.key.public_key()))
    # Store everything first, then correlate the whole month at once with the dashboard's
    # set-based re-run: the number log arrives as a file after the events it must be judged
    # with, and a print or an access is judged against the other side only when both are in.
    core = IngestCore(site=seed.SITE)
    stored = 0
    for i in range(0, len(events), 500):
        with sm.begin() as db:
            result = core.process(db, [(e.topic(), e.to_bytes()) for e in events[i:i + 500]],
                                  now)
            stored += result.stored
    with sm.begin() as db:
        report = import_csv(db, month.csv(), source="number-system", now=now, zone=ZONE,
                            actor=ACTOR, filename="number-system-access.csv")
    with sm.begin() as db:
        rerun(db, first, now, now)
    documents.seed(sm, now)
    return {"events": stored, "numlog_rows": getattr(report, "stored", len(month.rows))}
