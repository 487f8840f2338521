"""The demo office: staff, groups, doors, printers, media. Deterministic (seeded), no real data."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, time

from controller.policy import DoorRule, Group, Person, Policy, TimeWindow

SITE = "tokyo-hq"
DOOR = "server-room"
RACK = "rack-1"
PRINTER = "room-printer"
PRINTER_NAMES = {PRINTER: "複合機"}

_FAMILY = ["佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村", "小林", "加藤",
           "吉田", "山田", "佐々木", "山口", "松本", "井上", "木村", "林", "斎藤", "清水",
           "山崎", "森", "池田", "橋本", "阿部", "石川", "山下", "中島", "石井", "小川"]
_GIVEN = ["陽子", "健一", "美咲", "大輔", "由美", "翔太", "恵", "拓也", "直子", "誠",
          "彩", "和也", "裕子", "亮", "明美", "浩二", "真由美", "剛", "千尋", "悟",
          "香織", "隆", "優子", "学", "久美子", "修", "愛", "徹", "智子", "聡"]


@dataclass(frozen=True)
class StaffMember:
    id: str
    name: str
    uid: str
    group: str
    cups_user: str
    operator_id: str


def staff(count: int = 30) -> list[StaffMember]:
    people = []
    for i in range(count):
        uid = hashlib.sha256(f"demo-card-{i}".encode()).hexdigest()[:16].upper()
        group = "payroll" if i < 16 else "parttime" if i < 20 else "it" if i < 26 else "visitors"
        people.append(StaffMember(
            id=f"s{i + 1:03d}", name=f"{_FAMILY[i % 30]} {_GIVEN[i % 30]}", uid=uid, group=group,
            cups_user=f"user{i + 1:03d}", operator_id=f"OP{i + 1:04d}",
        ))
    return people


def policy(version: int = 1, now: datetime | None = None) -> Policy:
    weekdays = TimeWindow(days=[0, 1, 2, 3, 4], start=time(7, 0), end=time(21, 0))
    every_day = TimeWindow(days=[0, 1, 2, 3, 4, 5, 6], start=time(6, 0), end=time(0, 0))
    members = staff()
    return Policy(
        version=version,
        issued_at=now or datetime.now(UTC),
        site=SITE,
        people=[
            Person(id=m.id, name=m.name, cards=[m.uid], groups=[m.group],
                   cups_users=[m.cups_user], operator_ids=[m.operator_id],
                   active=m.group != "visitors" or m.id != "s030")
            for m in members
        ],
        groups=[
            Group(id="payroll", name="給与計算チーム", doors=[DOOR], printers=[PRINTER],
                  windows=[every_day]),
            Group(id="parttime", name="パート（平日のみ）", doors=[DOOR], printers=[PRINTER],
                  windows=[weekdays]),
            Group(id="it", name="情報システム", doors=[DOOR, RACK], printers=[PRINTER]),
            Group(id="visitors", name="来訪者", doors=[], printers=[]),
        ],
        doors=[
            DoorRule(id=DOOR, name="サーバールーム", anti_passback=True),
            DoorRule(id=RACK, name="サーバーラック", two_person=True, two_person_window_s=15),
        ],
        printers=[PRINTER],
    )
