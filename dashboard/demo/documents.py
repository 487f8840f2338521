"""The demo office's paperwork: its profile as the issuer of the reports, its client companies
(each mapped from the 事業所名 the number system logs), a register of its personal-data files and
a periodic wipe interval for its USB sticks. Entered through the audited services, as an admin
would."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dashboard.demo import seed as office

ACTOR = "demo-setup"
ADDRESSES = ("東京都千代田区神田錦町1-2-3", "埼玉県川口市本町4-5-6",
             "神奈川県横浜市西区みなとみらい2-3-4", "千葉県船橋市本町7-8-9")


def seed(sm: Any, now: datetime) -> dict[str, int]:
    from dashboard.media.wipes import set_type_interval
    from dashboard.reports import clients, register
    from dashboard.reports.inputs import parse

    with sm.begin() as db:
        clients.save_office(db, parse(clients.OfficeIn, {
            "name": office.OFFICE, "address": "東京都新宿区西新宿2-8-1 デモビル5階",
            "phone": "03-0000-0000", "representative": "社会保険労務士 山本 恵",
            "date_style": "era", "subcontracting": "無し",
            **clients.DEFAULT_MEASURES}), actor=ACTOR, now=now)
        ids = []
        for i, name in enumerate(office.CLIENTS):
            row = clients.save_client(db, parse(clients.ClientIn, {
                "name": name, "address": ADDRESSES[i], "contact": "総務部 人事課",
                "phone": f"0{i + 3}-1234-56{i}{i}", "reporting_day": 10}), actor=ACTOR, now=now)
            clients.map_office(db, name, row.id, actor=ACTOR, now=now)
            ids.append(row.id)
        register.save(db, register.parse({
            "kind": "給与・源泉徴収事務ファイル", "name": "委託元従業員の個人番号(番号システム)",
            "client_id": None, "responsible_person_id": "s001", "department": "給与計算チーム",
            "purpose": "源泉徴収票作成、社会保険・雇用保険の届出",
            "retention": "退職後7年", "deletion_status": "保存期間満了の都度削除(削除証明書を発行)",
            "access_groups": ["payroll", "parttime"]}), actor=ACTOR, now=now)
        set_type_interval(db, ACTOR, "USBメモリ", 90, now=now)
    return {"clients": len(ids)}
