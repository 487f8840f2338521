"""The console's manners: errors are pages in the reader's language that say what to do next
(the API keeps JSON); a failed form keeps what was typed; sensible defaults (a group with no
windows says 24 hours, the add-window form starts empty, a check-out is due back later than
now); lockdown needs a reason; names replace ids."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from dashboard import services
from dashboard.media.web import due_default
from tests.dashboard.web.conftest import WebApp

HTML = {"accept": "text/html"}


def test_errors_are_pages_in_the_readers_language(webapp: WebApp) -> None:
    auditor, _ = webapp.as_role("auditor")
    r = auditor.get("/users", headers=HTML)
    assert r.status_code == 403 and "この画面を開く権限がありません" in r.text
    assert "管理者にロールの変更を依頼" in r.text and 'lang="ja"' in r.text
    assert auditor.get("/users").json() == {"detail": "forbidden for your role"}  # API callers
    r = auditor.get("/review/424242", headers=HTML)
    assert r.status_code == 404 and "ページが見つかりません" in r.text
    auditor.get("/lang/en")
    r = auditor.get("/review/424242", headers=HTML)
    assert r.status_code == 404 and "Page not found" in r.text
    assert auditor.get("/api/v1/review/424242").json()["detail"] == "no such review item"


def test_a_failed_form_keeps_what_was_typed_and_says_why_in_japanese(webapp: WebApp) -> None:
    client, csrf = webapp.as_role("admin")
    client.post("/people", data={"id": "p1", "name": "山田 太郎", "csrf_token": csrf})
    r = client.post("/people", data={"id": "p1", "name": "山田 花子", "csrf_token": csrf})
    assert r.status_code == 409
    assert "その識別子はすでに使われています" in r.text
    assert 'value="山田 花子"' in r.text and 'value="p1"' in r.text
    r = client.post("/lockdown", data={"scope": "site", "reason": "", "csrf_token": csrf})
    assert r.status_code == 400 and "理由を入力してください" in r.text


def test_group_without_windows_reads_24_hours_and_new_window_form_starts_empty(
        webapp: WebApp) -> None:
    now = datetime.now(UTC)
    with webapp.sm.begin() as db:
        services.create_group(db, "t", {"id": "night", "name": "夜間"}, now=now)
    client, _ = webapp.as_role("admin")
    html = client.get("/groups").text
    assert "24時間" in html
    form = html[html.index('action="/groups/night/windows"'):]
    form = form[:form.index("</form>")]
    assert "checked" not in form and 'name="start" value=' not in form


def test_a_check_out_is_due_back_the_next_working_day() -> None:
    zone = ZoneInfo("Asia/Tokyo")
    friday = datetime(2026, 12, 4, 1, 0, tzinfo=UTC)  # Friday 10:00 in Tokyo
    due = due_default(friday, zone)
    assert due.astimezone(zone).strftime("%a %H:%M") == "Mon 18:00"


def test_names_replace_ids_on_the_pages(webapp: WebApp) -> None:
    now = datetime.now(UTC)
    with webapp.sm.begin() as db:
        services.create_door(db, "t", {"id": "server-room", "name": "サーバールーム"}, now=now)
    client, csrf = webapp.as_role("admin")
    r = client.post("/names", data={"kind": "reader", "ident": "Virtual PCD 00 00",
                                    "name": "入口リーダー", "csrf_token": csrf})
    assert r.status_code == 200 and "入口リーダー" in r.text
    r = client.post("/names", data={"kind": "site", "ident": webapp.settings.site,
                                    "name": "東京本社", "csrf_token": csrf})
    assert "東京本社" in client.get("/door-log").text
    assert "lab</small>" not in client.get("/door-log").text
