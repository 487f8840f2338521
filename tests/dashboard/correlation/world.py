"""A realistic month for the correlation tests: 50 staff, their own PCs, a door gateway with a
printer, a USB agent, a nightly backup, and the number system's CSV export (CP932).

Everything goes through the real paths: signed events through ``IngestCore`` (events, door_access,
presence, node health), each stored event through ``Correlator.on_stored``, the CSV through
``numlog.service.import_csv``. Planted cases and their near-misses are listed in ``PLANTED`` and
``NEAR_MISS`` as (rule, subject) pairs the tests check against the findings.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.orm import Session

from controller.envelope import GENESIS, Event, seal
from controller.events import NODE_ROLES
from controller.keys import public_b64  # noqa: F401 - re-exported for tests
from dashboard.correlation import host_rules as HR
from dashboard.correlation import rules as R
from dashboard.correlation.engine import Correlator
from dashboard.correlation.types import LoanIn
from dashboard.ingest.core import IngestCore
from dashboard.models.nodes import Node
from dashboard.models.numlog import TerminalMap
from dashboard.models.people import Person
from dashboard.numlog.service import import_csv

SITE = "site1"
ZONE = ZoneInfo("Asia/Tokyo")
MONTH = "2026-10"
ORG = "株式会社 セルズ"
HOLIDAY = date(2026, 10, 12)  # スポーツの日
NOW = datetime(2026, 10, 31, 15, 30, tzinfo=UTC)  # 2026-11-01 00:30 JST
VALID_NUMBER = "123456789018"
VALID_NUMBER_FW = "１２３４－５６７８－９０１８"
INVALID_NUMBER = "123456789012"
HEADER = ["NO", "事業所名", "日時", "画面", "処理", "利用目的", "処理者", "結果", "端末"]


def L(d: date, h: int, m: int = 0, s: int = 0) -> datetime:  # noqa: N802 - local time helper
    return datetime.combine(d, time(h, m, s), ZONE).astimezone(UTC)


def ZONE_parse(text: str) -> datetime:  # noqa: N802 - the CSV's local time back to UTC
    return datetime.strptime(text, "%Y/%m/%d %H:%M:%S").replace(tzinfo=ZONE).astimezone(UTC)


def person(i: int) -> str:
    return f"P{i:02d}"


def workdays() -> list[date]:
    out, d = [], date(2026, 10, 1)
    while d.month == 10:
        if d.weekday() < 5 and d != HOLIDAY:
            out.append(d)
        d += timedelta(days=1)
    return out


class Signer:
    def __init__(self, name: str) -> None:
        self.name, self.key, self.seq, self.prev = name, Ed25519PrivateKey.generate(), 0, GENESIS

    def event(self, kind: str, ts: datetime, data: dict[str, Any], *, skip: int = 0,
              bad_prev: bool = False) -> Event:
        self.seq += 1 + skip
        ev = seal(self.key, node=self.name, site=SITE, seq=self.seq, ts=ts, boot="b1",
                  clock="synced", kind=kind, data=data,
                  prev=("f" * 64) if bad_prev else self.prev)
        self.prev = ev.hash
        return ev


@dataclass
class World:
    events: list[Event] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    loans: list[LoanIn] = field(default_factory=list)
    planted: set[tuple[str, str]] = field(default_factory=set)
    near_miss: set[tuple[str, str]] = field(default_factory=set)
    no: int = 0
    signers: dict[str, Signer] = field(default_factory=dict)

    def sig(self, name: str) -> Signer:
        return self.signers.setdefault(name, Signer(name))

    def ev(self, node: str, kind: str, ts: datetime, data: dict[str, Any], **kw: Any) -> None:
        self.events.append(self.sig(node).event(kind, ts, data, **kw))

    def door(self, p: str, direction: str, ts: datetime) -> None:
        self.ev("gw1", "door.access", ts, {"door": "room", "reader": f"room-{direction}",
                                           "direction": direction, "granted": True,
                                           "reason": None, "person_id": p, "card": "0102"})

    def row(self, p: str, ts: datetime, action: str, result: str, purpose: str = "",
            operator: str | None = None, screen: str = "個人情報") -> None:
        self.no += 1
        local = ts.astimezone(ZONE)
        self.rows.append([str(self.no), ORG, f"{local:%Y/%-m/%-d %-H:%M:%S}", screen, action,
                          purpose, operator or f"op-{p}", result, f"T-{p}"])

    def usb(self, host: str, ts: datetime, verdict: str = "allow", storage: bool = True,
            control_number: str | None = "USB-0001") -> None:
        self.ev("usbagent", "usb.inserted", ts, {
            "verdict": verdict, "phase": "token_check" if storage else "insert",
            "rule": "medium" if storage else "class:03", "host": host, "device": "1-2",
            "control_number": control_number if storage and verdict != "block" else None,
            "interfaces": ["08:06:50"] if storage else ["03:01:01"],
            "vendor_id": "0781", "product_id": "5567", "reason": ""})

    def pc(self, kind: str, ts: datetime, **data: Any) -> None:
        """An event of the room PCs' host agent (one node for the PCs of this world)."""
        body: dict[str, Any] = {"host": f"pc-{data.get('person_id') or 'X'}", **data}
        if kind in ("host.session", "host.sudo", "host.auth_failed", "host.file_access"):
            body.setdefault("at", ts.isoformat())
        self.ev("pcagent", kind, ts, body)

    def print_(self, p: str, ts: datetime, pages: int = 2) -> None:
        self.ev("gw1", "print.release", ts, {"printer": "room-printer", "person_id": p,
                                             "job_ids": [1], "copies": 1, "pages": pages})


def build(seed: int = 7) -> World:
    rnd = random.Random(seed)
    w = World()
    days = workdays()
    d1, d2, d3, d4 = days[2], days[5], days[8], days[11]
    # baseline: every person in the room 09:xx-18:xx on working days, 3 accesses inside
    for d in days:
        for i in range(1, 51):
            p = person(i)
            enter = L(d, 9, rnd.randrange(0, 30))
            leave = L(d, 18, rnd.randrange(0, 30))
            lunch = (d == d1 and p in ("P01", "P02"))
            late = (d == d1 and p in ("P03", "P04"))
            w.door(p, "in", enter)
            if lunch:
                w.door(p, "out", L(d, 12))
                w.door(p, "in", L(d, 13))
            if late:
                leave = L(d, 22) if p == "P03" else L(d, 20, 30)
            w.door(p, "out", leave)
            if p in ("P10", "P11", "P12") and d == d2:
                continue  # their log-ins that day are planted below
            t = L(d, 10, rnd.randrange(0, 59))
            w.row(p, t, "ログイン認証", "成功", screen="一覧入力")
            w.row(p, t + timedelta(minutes=2), "マイナンバー閲覧", "閲覧", "源泉徴収票作成")
            w.row(p, L(d, 15, rnd.randrange(0, 59)), "マイナンバー更新", "更新完了", "扶養控除申告")
    # holiday presence for P05 (and the day after)
    for d in (HOLIDAY, HOLIDAY + timedelta(days=1)):
        if d == HOLIDAY:
            w.door("P05", "in", L(d, 9))
            w.door("P05", "out", L(d, 17))
    # 1. access while not in the room / near-miss inside grace
    w.row("P01", L(d1, 12, 30), "マイナンバー閲覧", "閲覧", "年末調整")
    w.row("P02", L(d1, 12, 1), "マイナンバー閲覧", "閲覧", "年末調整")
    # 2. outside hours / near-miss; holiday / next day
    w.row("P03", L(d1, 21), "マイナンバー閲覧", "閲覧", "年末調整")
    w.row("P04", L(d1, 19, 59), "マイナンバー閲覧", "閲覧", "年末調整")
    w.row("P05", L(HOLIDAY, 10), "マイナンバー閲覧", "閲覧", "年末調整")
    w.row("P05", L(HOLIDAY + timedelta(days=1), 11), "マイナンバー閲覧", "閲覧", "年末調整")
    # 3. USB storage near an export / near-miss just outside the window
    w.row("P06", L(d2, 14), "CSV出力", "成功", "給与計算")
    w.usb("pc-P06", L(d2, 14, 10))
    w.row("P07", L(d2, 14), "CSV出力", "成功", "給与計算")
    w.usb("pc-P07", L(d2, 14, 31))
    w.usb("pc-P08", L(d2, 11), storage=False)  # a keyboard: not storage
    # 4. print without access / print after access (an output record)
    w.print_("P08", L(d3, 20, 0))  # P08's last access that day is before 15:59 (> 4 h)
    w.print_("P09", L(d3, 15, 59, 59))
    # 5. failed log-ins then success / two failures / three spread out
    for p, gaps in (("P10", (0, 1, 2)), ("P11", (0, 1)), ("P12", (0, 8, 16))):
        for m in gaps:
            w.row(p, L(d2, 10, m), "ログイン認証", "失敗", screen="一覧入力")
        w.row(p, L(d2, 10, gaps[-1] + 1), "ログイン認証", "成功", screen="一覧入力")
        w.row(p, L(d2, 10, gaps[-1] + 3), "マイナンバー閲覧", "閲覧", "源泉徴収票作成")
    # 6. unknown operator
    w.row("P13", L(d3, 11), "マイナンバー閲覧", "閲覧", "年末調整", operator="謎の処理者")
    # 7. door forced and held open at night
    w.ev("gw1", "door.forced", L(d4, 3), {"door": "room"})
    w.ev("gw1", "door.held_open", L(d4, 12), {"door": "room", "open_s": 60.0, "via": "forced"})
    w.ev("gw1", "door.opened", L(d4, 12, 30), {"door": "room", "via": "rex"})
    # 8. unregistered USB blocked / a registered one allowed far from any access
    w.usb("pc-P20", L(d4, 13), verdict="block")
    w.usb("pc-P21", L(d4, 6), verdict="allow")
    # 9. media: overdue, returned on time, due later
    w.loans += [LoanIn("USB-0003", "P22", L(date(2026, 10, 20), 18)),
                LoanIn("USB-0004", "P23", L(date(2026, 10, 20), 18), L(date(2026, 10, 20), 17)),
                LoanIn("USB-0005", "P24", L(date(2026, 11, 20), 18))]
    # 10. backups: nightly 02:00; none on 10-21 (missing), 10-23's came at 08:30 on 10-22
    #     instead (near-miss: 24.5 h old at the 10-23 check), 10-25 failed then retried ok
    d = date(2026, 9, 30)
    while d <= date(2026, 10, 31):
        if d == date(2026, 10, 21) or d == date(2026, 10, 23):
            pass
        elif d == date(2026, 10, 22):
            w.ev("bk1", "backup.snapshot", L(d, 8, 30), _snap())
        elif d == date(2026, 10, 25):
            w.ev("bk1", "backup.failed", L(d, 2), {"stage": "run", "result": "failed",
                                                   "error": "disk_full", "message": "full",
                                                   "exit_code": 3, "duration_s": 1.0})
            w.ev("bk1", "backup.snapshot", L(d, 3), _snap())
        else:
            w.ev("bk1", "backup.snapshot", L(d, 2), _snap())
        d += timedelta(days=1)
    # 11. node log: a gap in the USB agent's seq; a broken chain link on bk1? (keep bk1 clean:
    #     the chain break goes on a node of its own)
    w.ev("usbagent", "node.clock", L(d4, 20), {"state": "synced"}, skip=2)
    w.ev("lab1", "node.started", L(d4, 8), {"boot": "b1", "resumed_after": 0})
    w.ev("lab1", "node.clock", L(d4, 9), {"state": "synced"}, bad_prev=True)
    # 12. a number typed into the purpose (full-width) / a 12-digit value failing the check
    w.row("P14", L(d3, 11), "マイナンバー閲覧", "閲覧", f"確認 {VALID_NUMBER_FW}")
    w.row("P15", L(d3, 11), "マイナンバー閲覧", "閲覧", f"伝票 {INVALID_NUMBER}")

    # 13. room PCs: a log-on outside the room, at 20:00, presence unknown / one inside, in hours
    w.pc("host.logon", L(d4, 20), account="P30", service="gdm-password", granted=True,
         person_id="P30", presence="unknown", card="0102")
    w.pc("host.logon", L(d4, 10), account="P31", service="gdm-password", granted=True,
         person_id="P31", presence="in", card="0103")
    #     a session left open after its owner left / one closed before they left
    w.pc("host.session", L(d4, 10), action="opened", session_id="33", account="P33",
         person_id="P33")
    w.pc("host.session", L(d4, 10), action="opened", session_id="34", account="P34",
         person_id="P34")
    w.pc("host.session", L(d4, 17, 59), action="closed", session_id="34", account="P34",
         person_id="P34")
    #     one person on two PCs at once / one after the other
    for p, host_a, host_b, first_closes in (("P36", "pc-A", "pc-B", L(d4, 12)),
                                            ("P37", "pc-C", "pc-D", L(d4, 10, 30))):
        w.pc("host.session", L(d4, 10), action="opened", session_id=f"{p}a", account=p,
             person_id=p, host=host_a)
        w.pc("host.session", first_closes, action="closed", session_id=f"{p}a", account=p,
             person_id=p, host=host_a)
        w.pc("host.session", L(d4, 11), action="opened", session_id=f"{p}b", account=p,
             person_id=p, host=host_b)
        w.pc("host.session", L(d4, 12, 30), action="closed", session_id=f"{p}b", account=p,
             person_id=p, host=host_b)
    #     three failed log-ins / two
    for p, n in (("P38", 3), ("P39", 2)):
        for m in range(n):
            w.pc("host.auth_failed", L(d4, 11, m), service="login", account=p, person_id=p)
    #     sudo without / with the administrator's right
    for p, admin in (("P40", False), ("P41", True)):
        w.pc("host.sudo", L(d4, 11), tool="sudo", account=p, command="/usr/bin/apt upgrade",
             person_id=p, admin_right=admin)
    #     number-data files read far from / close to a number-system operation
    for p, at in (("P42", L(d4, 16, 30)), ("P43", L(d4, 15, 30))):
        w.pc("host.file_access", at, path_class="number_data", op="read",
             names=["employees.csv"], program="/usr/bin/libreoffice", account=p, person_id=p)
    #     the recovery account
    w.pc("host.logon", L(d4, 12), account="secroom-recovery", service="login", granted=True,
         break_glass=True)

    w.planted = {
        (R.NOT_IN_ROOM, "P01"), (R.OUTSIDE_HOURS, "P03"), (R.OUTSIDE_HOURS, "P05"),
        (R.USB_NEAR_ACCESS, "P06"), (R.PRINT_WITHOUT_ACCESS, "P08"),
        (R.FAILED_LOGINS, "P10"), (R.UNKNOWN_OPERATOR, "謎の処理者"), (R.DOOR_FORCED, "room"),
        (R.DOOR_HELD_OPEN, "room"), (R.USB_BLOCKED, "pc-P20"), (R.MEDIA_OVERDUE, "USB-0003"),
        (R.BACKUP_MISSING, "2026-10-21"), (R.BACKUP_FAILED, "bk1"), (R.LOG_GAP, "usbagent"),
        (R.LOG_CHAIN, "lab1"), (R.NUMBER_IN_LOG, "P14"),
        (HR.PC_NOT_IN_ROOM, "P30"), (HR.PC_OUTSIDE_HOURS, "P30"), (HR.PC_PRESENCE_UNKNOWN, "P30"),
        (HR.PC_AFTER_EXIT, "P33"), (HR.PC_TWO_HOSTS, "P36"), (HR.PC_FAILED_LOGINS, "P38"),
        (HR.PC_SUDO_NOT_ADMIN, "P40"), (HR.PC_FILES_WITHOUT_ACCESS, "P42"),
        (HR.PC_BREAK_GLASS, "secroom-recovery"),
    }
    w.near_miss = {
        (R.NOT_IN_ROOM, "P02"), (R.OUTSIDE_HOURS, "P04"), (R.USB_NEAR_ACCESS, "P07"),
        (R.PRINT_WITHOUT_ACCESS, "P09"), (R.FAILED_LOGINS, "P11"), (R.FAILED_LOGINS, "P12"),
        (R.USB_BLOCKED, "pc-P21"), (R.MEDIA_OVERDUE, "USB-0004"), (R.MEDIA_OVERDUE, "USB-0005"),
        (R.BACKUP_MISSING, "2026-10-23"), (R.LOG_GAP, "gw1"), (R.LOG_CHAIN, "bk1"),
        (R.NUMBER_IN_LOG, "P15"),
        (HR.PC_NOT_IN_ROOM, "P31"), (HR.PC_OUTSIDE_HOURS, "P31"), (HR.PC_PRESENCE_UNKNOWN, "P31"),
        (HR.PC_AFTER_EXIT, "P34"), (HR.PC_TWO_HOSTS, "P37"), (HR.PC_FAILED_LOGINS, "P39"),
        (HR.PC_SUDO_NOT_ADMIN, "P41"), (HR.PC_FILES_WITHOUT_ACCESS, "P43"),
    }
    return w


def _snap() -> dict[str, Any]:
    return {"snapshot_id": "s", "result": "ok", "started": "x", "duration_s": 1.0, "files": 1}


def subject_of(f: Any) -> str:
    """The planted-table subject of a finding (person, operator, door, host, number, day, node)."""
    ev = f.evidence
    if f.rule == R.UNKNOWN_OPERATOR:
        return ev["operator"]
    if f.rule in (R.DOOR_FORCED, R.DOOR_HELD_OPEN):
        return ev["door"]
    if f.rule == R.USB_BLOCKED:
        return ev["host"]
    if f.rule == R.MEDIA_OVERDUE:
        return ev["control_number"]
    if f.rule == R.BACKUP_MISSING:
        return f.dedupe_key.split(":")[1] if hasattr(f, "dedupe_key") else f.key.split(":")[1]
    if f.rule in (R.BACKUP_FAILED, R.LOG_GAP, R.LOG_CHAIN):
        return f.node
    if f.rule == HR.PC_BREAK_GLASS:
        return ev["account"]
    return f.person_id or "?"


def setup_people(session: Session) -> None:
    for i in range(1, 51):
        p = person(i)
        session.add(Person(id=p, name=f"職員{i:02d}", operator_ids=[f"op-{p}"], cups_users=[],
                           created_at=NOW))
        session.add(TerminalMap(terminal=f"T-{p}", host=f"pc-{p}"))
    for name in ("gw1", "usbagent", "bk1", "lab1", "pcagent"):
        # approved for every role: this world tests the rules, tests/dashboard/ingest the roles
        session.add(Node(name=name, site=SITE, public_key=None, key_status="approved",
                         roles=",".join(sorted(NODE_ROLES)), first_seen_at=NOW,
                         contiguous_seq=0, max_seq=0, events_stored=0, state="unknown",
                         health={}))
    session.commit()


def ingest(session: Session, w: World, correlator: Correlator, batch: int = 200) -> None:
    """Ingest every event (ts order) and correlate each stored one at once."""
    for name, s in w.signers.items():
        node = session.get(Node, name)
        assert node is not None
        node.public_key = public_b64(s.key.public_key())
    session.commit()
    core = IngestCore(site=SITE)
    evs = sorted(w.events, key=lambda e: (e.ts, e.node, e.seq))
    for i in range(0, len(evs), batch):
        part = evs[i : i + batch]
        res = core.process(session, [(e.topic(), e.to_bytes()) for e in part], NOW)
        for topic, data in res.messages:
            if topic == "event":
                correlator.on_stored(session, data["node"], data["seq"], NOW)
        session.commit()


def csv_bytes(w: World, encoding: str = "cp932") -> bytes:
    lines = [",".join(HEADER)] + [",".join(r) for r in w.rows]
    return ("\r\n".join(lines) + "\r\n").encode(encoding)


def load(session: Session, w: World, correlator: Correlator | None = None) -> Correlator:
    c = correlator or Correlator()
    setup_people(session)
    ingest(session, w, c)
    import_csv(session, csv_bytes(w), source="cells", now=NOW, zone=ZONE, actor="test",
               filename="cells-2026-10.csv", correlator=c)
    session.commit()
    c.tick(session, NOW, w.loans, lookback=NOW - L(date(2026, 10, 1), 0))
    session.commit()
    return c
