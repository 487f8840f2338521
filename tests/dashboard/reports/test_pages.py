"""The pages behind the reports, through the real app: the issuing office, clients chosen from a
list and the 事業所名 mapped to them, the handling-status register (access rights from the
groups, as a page and a PDF), and the incident classification that section 4 of the report
counts (not raw anomalies)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select

from dashboard import services
from dashboard.anomalies import raise_anomaly
from dashboard.models.reports import Client, ClientOffice, OfficeProfile
from dashboard.numlog.service import import_csv
from dashboard.reports.monthly import issue
from tests.dashboard.reports.test_monthly import pdf_text
from tests.dashboard.web.conftest import WebApp

ZONE = ZoneInfo("Asia/Tokyo")
IN_OCTOBER = datetime(2026, 10, 14, 2, 0, tzinfo=UTC)


def test_office_and_clients_by_forms(webapp: WebApp) -> None:
    c, csrf = webapp.as_role("admin")
    r = c.post("/reports/office", data={
        "csrf_token": csrf, "name": "さくら社会保険労務士事務所", "address": "愛知県小牧市",
        "phone": "0568-00-0000", "representative": "社会保険労務士 田邊 里美",
        "date_style": "western", "subcontracting": "無し",
        "technical": "アクセス制御\n不正アクセスの防止\n"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    with webapp.sm() as s:
        p = s.get(OfficeProfile, 1)
        assert p is not None and p.date_style == "western"
        assert p.measures["technical"] == ["アクセス制御", "不正アクセスの防止"]
    r = c.post("/reports/clients", data={"csrf_token": csrf, "new": "true",
                                         "name": "株式会社 セルズ", "reporting_day": "10"},
               follow_redirects=False)
    assert r.status_code == 303, r.text
    bad = c.post("/reports/clients", data={"csrf_token": csrf, "new": "true",
                                           "name": "番号 1234 5678 9018"})
    assert bad.status_code == 400 and "individual number" in bad.text and "9018" not in bad.text
    with webapp.sm() as s:
        import_csv(s, ("NO,事業所名,日時,画面,処理,利用目的,処理者,結果\r\n"
                       "1,セルズ本社,2026/10/5 10:00,個人情報,マイナンバー閲覧,年末調整,op1,"
                       "閲覧\r\n").encode(), source="cells", now=IN_OCTOBER, zone=ZONE)
        s.commit()
        cid = s.scalars(select(Client.id)).one()
    page = c.get("/reports/clients").text
    assert "セルズ本社" in page  # listed as not mapped yet
    r = c.post("/reports/offices", data={"csrf_token": csrf, "office": "セルズ本社",
                                         "client_id": str(cid)}, follow_redirects=False)
    assert r.status_code == 303
    with webapp.sm() as s:
        assert s.get(ClientOffice, "セルズ本社").client_id == cid
    assert 'id="unmapped">なし' in c.get("/reports/clients").text
    auditor, token = webapp.as_role("auditor")
    assert auditor.post("/reports/clients", data={"csrf_token": token, "name": "x",
                                                  "new": "true"}).status_code == 403
    r = c.get("/reports")
    assert f'<option value="{cid}">株式会社 セルズ</option>' in r.text


def test_register_derives_access_rights_from_the_groups(webapp: WebApp,
                                                       tmp_path: Path) -> None:
    now = datetime.now(UTC)
    with webapp.sm.begin() as db:
        services.create_group(db, "seed", {"id": "payroll", "name": "給与計算チーム"}, now=now)
        services.create_person(db, "seed", {"id": "p1", "name": "井上 通", "groups": ["payroll"],
                                            "operator_ids": ["OP0001"]}, now=now)
        services.create_person(db, "seed", {"id": "p2", "name": "佐藤 花子",
                                            "groups": ["payroll"]}, now=now)
        services.create_person(db, "seed", {"id": "p3", "name": "来訪 太郎"}, now=now)
    c, csrf = webapp.as_role("admin")
    r = c.post("/reports/register", data={
        "csrf_token": csrf, "kind": "給与・源泉徴収事務ファイル", "name": "従業員の個人番号",
        "responsible_person_id": "p1", "department": "給与計算チーム",
        "purpose": "源泉徴収票作成", "retention": "退職後7年", "deletion_status": "都度削除",
        "access_groups": ["payroll"]}, follow_redirects=False)
    assert r.status_code == 303, r.text
    page = c.get("/reports/register").text
    assert "井上 通(番号システム利用者)" in page and "佐藤 花子" in page
    assert "来訪 太郎" not in page.split('id="register"')[1].split("</table>")[0]
    assert c.post("/reports/register", data={
        "csrf_token": csrf, "kind": "k", "name": "n", "access_groups": ["nope"]}
    ).status_code == 400
    t = pdf_text(c.get("/reports/register.pdf?lang=ja").content, tmp_path)
    for word in ("特定個人情報ファイル管理台帳", "ファイルの種類", "責任者", "取扱部署", "利用目的",
                 "保存期間", "削除・廃棄状況", "アクセス権を有する者", "退職後7年",
                 "井上 通(番号システム利用者)"):
        assert word in t or word.replace(" ", "") in "".join(t.split()), word


def test_section_4_counts_what_an_admin_classified_as_an_incident(webapp: WebApp) -> None:
    with webapp.sm.begin() as db:
        a, _ = raise_anomaly(db, "corr.door_forced", dedupe_key="x", now=IN_OCTOBER,
                             severity="critical", subject="door forced")
        b, _ = raise_anomaly(db, "corr.usb_blocked", dedupe_key="y", now=IN_OCTOBER)
        ids = (a.id, b.id)

    def leak() -> list[str]:
        with webapp.sm() as s:
            out = issue(s, month="2026-10", client_id=None, lang="ja", zone=ZONE,
                        now=datetime(2026, 11, 2, tzinfo=UTC))
            s.rollback()
        return out.doc.sections[2][1]

    assert leak() == ["無し。 調査中の確認事項 2 件(別紙8)。"]  # raw anomalies are no leak
    c, csrf = webapp.as_role("admin")
    page = c.get("/reports/reviews?month=2026-10").text
    assert "扉のこじ開け" in page and "未分類" in page
    r = c.post(f"/reports/reviews/{ids[0]}", data={"csrf_token": csrf, "incident": "yes",
                                                   "note": "", "month": "2026-10"})
    assert r.status_code == 400 and "say what happened" in r.text
    for aid, verdict, note in ((ids[0], "yes", "書類の持出しを確認、委託元へ報告済み"),
                               (ids[1], "no", "")):
        r = c.post(f"/reports/reviews/{aid}", data={"csrf_token": csrf, "incident": verdict,
                                                    "note": note, "month": "2026-10"},
                   follow_redirects=False)
        assert r.status_code == 303, r.text
    assert leak() == ["有り(1 件、別紙8)。"]
    auditor, token = webapp.as_role("auditor")
    assert auditor.post(f"/reports/reviews/{ids[1]}", data={
        "csrf_token": token, "incident": "yes", "note": "x"}).status_code == 403
