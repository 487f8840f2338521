"""The backups page and its JSON API: calendar, last snapshot, checks in ja and en; roles."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from dashboard.auth.roles import Role
from dashboard.backups.check import check_backup_age
from tests.dashboard.backups.seed import NOW, ONLY_FAILED, last_snapshot, november
from tests.dashboard.printing.conftest import Feed
from tests.dashboard.web.conftest import WebApp


def seeded(pages: WebApp, feed: Feed):  # type: ignore[no-untyped-def]
    events, expect = november()
    feed.store([feed.event(k, p, ts) for k, p, ts in events], NOW)
    pages.clock.now = NOW
    return events, expect


def statuses(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-day="([\d-]+)" data-status="(\w+)"', html))


def test_page_in_japanese_and_english(pages: WebApp, feed: Feed) -> None:
    events, expect = seeded(pages, feed)
    snap, _ = last_snapshot(events)
    client, _ = pages.as_role("backup_operator")
    html = client.get("/backups").text  # this month by default (site time)
    assert statuses(html) == {d.isoformat(): s for d, s in expect.items()}
    assert "夜間バックアップ" in html and "リストア訓練" in html and "✗ 失敗" in html
    assert "夜間実行" in html and "世代整理" in html
    assert snap.snapshot_id in html and f"{snap.files}" in html
    assert f'data-bytes="{snap.repo_bytes}"' in html
    assert 'id="backup-overdue"' not in html
    done = sum(s == "done" for s in expect.values())
    assert f"完了 {done} · 失敗 1 · なし 2" in html

    client.cookies.set("secroom_lang", "en")
    en = client.get("/backups").text
    client.cookies.delete("secroom_lang")
    assert "Nightly backups" in en and "Restore drill" in en and "夜間" not in en
    assert f"done {done} · failed 1 · missing 2" in en
    october = client.get("/backups", params={"month": "2026-10"}).text
    assert set(statuses(october).values()) == {"missing"}
    assert client.get("/backups", params={"month": "2026-13"}).status_code == 422


def test_overdue_alarm_is_shown(pages: WebApp, feed: Feed) -> None:
    events, _ = seeded(pages, feed)
    _, ts = last_snapshot(events)
    later = ts + timedelta(hours=26, seconds=1)
    with pages.sm.begin() as db:
        assert check_backup_age(db, later).new
    pages.clock.now = later
    client, _ = pages.as_role("backup_operator")
    html = client.get("/backups").text
    assert 'id="backup-overdue"' in html and 'id="backup-alarms"' in html
    assert "時間以内の正常なバックアップがありません" in html


def test_json_api(pages: WebApp, feed: Feed) -> None:
    events, expect = seeded(pages, feed)
    token = pages.token("backup_operator", {"read"})
    h = {"authorization": f"Bearer {token}"}
    client = pages.client()
    cal = client.get("/api/v1/backups/calendar", headers=h, params={"month": "2026-11"}).json()
    assert {n["day"]: n["status"] for n in cal["nights"]} == {
        d.isoformat(): s for d, s in expect.items()}
    night = next(n for n in cal["nights"] if n["day"] == ONLY_FAILED.isoformat())
    assert night["errors"] == ["disk_full"]
    st = client.get("/api/v1/backups/status", headers=h).json()
    snap, _ = last_snapshot(events)
    assert st["last_snapshot"]["snapshot"]["snapshot_id"] == snap.snapshot_id
    assert st["last_checks"]["drill"]["result"] == "failed"
    assert st["overdue"] is False
    assert client.get("/api/v1/backups/calendar", headers=h,
                      params={"month": "nov"}).status_code == 422


@pytest.mark.parametrize("role", list(Role))
def test_every_role_reads_backups(pages: WebApp, role: Role) -> None:
    client, _ = pages.as_role(role.value)
    for path in ("/backups", "/api/v1/backups/calendar", "/api/v1/backups/status"):
        assert client.get(path).status_code == 200, (role, path)
    assert client.post("/backups").status_code in (403, 405)


def test_anonymous_is_refused(pages: WebApp) -> None:
    client = pages.client()
    r = client.get("/backups", headers={"accept": "text/html"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    assert client.get("/api/v1/backups/status").status_code == 401
