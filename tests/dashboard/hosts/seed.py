"""A day of a room PC's events, as its host agent signs them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from controller.host import events as H
from dashboard.models import Person
from tests.dashboard.printing.conftest import Feed

NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)  # Monday 15:00 JST
HOST = "pc-01"


def at(minutes: float) -> datetime:
    return NOW - timedelta(minutes=minutes)


def store_day(feed: Feed, sm) -> None:  # type: ignore[no-untyped-def]
    with sm.begin() as db:
        db.add_all([Person(id="hana", name="中村 花", active=True, operator_ids=[],
                           cups_users=[], host_accounts=["hana"], created_at=NOW),
                    Person(id="kenji", name="佐藤 健二", active=True, operator_ids=[],
                           cups_users=[], host_accounts=["kenji"], created_at=NOW)])
    events = [
        (H.KIND_HEALTH, H.HostHealth(host=HOST, disks=[H.DiskUse(mount="/", used_pct=41.5,
                                                                   free_mb=52000)],
                                     failed_units=["cups.service"], clock_synced=True,
                                     readers=["Virtual PCD 00 00"], presence_fresh=True),
         at(300)),
        (H.KIND_LOGON, H.HostLogon(host=HOST, account="kenji", service="gdm-password",
                                   granted=False, reason="not_in_room", person_id="kenji",
                                   card="1112131415161718", presence="out"), at(240)),
        (H.KIND_LOGON, H.HostLogon(host=HOST, account="hana", service="gdm-password",
                                   granted=True, stage="password", person_id="hana",
                                   card="0102030405060708", presence="in"), at(230)),
        (H.KIND_SESSION, H.HostSession(host=HOST, action="opened", session_id="4",
                                       account="hana", person_id="hana", at=at(229)), at(229)),
        (H.KIND_FILE_ACCESS, H.HostFileAccess(
            host=HOST, path_class="number_data", op="copy", count=1200,
            names=[f"slip-{i}.pdf" for i in range(100)], names_omitted=1100,
            program="/usr/bin/cp", account="hana", person_id="hana", at=at(200),
            last_at=at(199)), at(199)),
        (H.KIND_SUDO, H.HostSudo(host=HOST, tool="sudo", account="hana", command="/usr/bin/id",
                                 ok=False, person_id="hana", admin_right=False, at=at(190)),
         at(190)),
        (H.KIND_LOCKED, H.HostLocked(host=HOST, account="hana", person_id="hana",
                                     reason="card_removed", sessions=["4"]), at(100)),
        (H.KIND_SESSION, H.HostSession(host=HOST, action="closed", session_id="4",
                                       account="hana", person_id="hana", at=at(60)), at(60)),
        (H.KIND_SESSION, H.HostSession(host=HOST, action="opened", session_id="5",
                                       account="kenji", person_id="kenji", at=at(30)), at(30)),
    ]
    feed.store([feed.event(k, m, ts) for k, m, ts in events], NOW)
