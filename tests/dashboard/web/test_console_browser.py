"""The security admin's console in real Chromium over the demo office, in Japanese and English:
review an item from the queue to resolved; a tap shows in presence and the door log without a
reload (the count agreeing with the list); lockdown with a reason, its banner and the inside
list; a backup operator acknowledges a backup alarm; an auditor can change nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from dashboard.models import Anomaly, SiteSettings
from tests.dashboard.web.conftest import PASSWORD, chromium

pytestmark = pytest.mark.integration
WAIT = 30_000  # ms: browser tests wait for events, generously (the machine is shared)
TEXT = {
    "ja": {"resolve": "解決済みにする", "resolved": "解決済み", "ack": "確認済みにする",
           "banner": "ロックダウン中", "inside": "在室者一覧"},
    "en": {"resolve": "Resolve", "resolved": "Resolved", "ack": "Acknowledge",
           "banner": "Lockdown in force", "inside": "Who is inside"},
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from dashboard.demo import world

    w = world.build(tmp_path_factory.mktemp("console") / "data", password=PASSWORD)
    with world.serve(w) as s:
        yield s


def log_in(page: Any, base: str, user: str, lang: str) -> None:
    page.goto(f"{base}/lang/{lang}?next=/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("#login-form button[type=submit]")
    assert page.locator("html").get_attribute("lang") == lang


def item_id(served: Any, kind: str) -> int:
    with served.world.sessionmaker() as db:
        found = db.scalar(select(Anomaly.id).where(Anomaly.kind == kind))
        assert found is not None, kind
        return int(found)


@pytest.mark.parametrize(("lang", "kind"), [("ja", "corr.access_not_in_room"),
                                            ("en", "corr.access_outside_hours")])
def test_review_an_item_from_the_queue_to_resolved(served: Any, lang: str, kind: str) -> None:
    aid = item_id(served, kind)
    with chromium(f"{lang}-JP" if lang == "ja" else "en-GB") as page:
        log_in(page, served.base_url, "anzen", lang)
        assert page.url.endswith("/review")  # a security admin lands on the queue
        page.click(f"#item-{aid} a.sentence-link")
        page.wait_for_selector("#evidence tr.trigger")
        assert page.locator("#rule-explanation").is_visible()
        page.fill("#ack-form textarea[name=reason]", "本人に確認済み" if lang == "ja" else
                  "asked the person")
        page.click(f"#ack-form button:has-text('{TEXT[lang]['ack']}')")
        page.wait_for_selector("#resolve-form")
        page.fill("#resolve-form textarea[name=reason]", "業務上の操作" if lang == "ja" else
                  "business reason")
        page.click(f"#resolve-form button:has-text('{TEXT[lang]['resolve']}')")
        page.wait_for_selector(f"#item-state:has-text('{TEXT[lang]['resolved']}')",
                               timeout=WAIT)
        history = page.inner_text("#history")
        assert ("業務上の操作" if lang == "ja" else "business reason") in history
    with served.world.sessionmaker() as db:
        row = db.get(Anomaly, aid)
        assert row is not None and row.state == "resolved" and row.acknowledged_by == "anzen"


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_a_tap_shows_in_presence_and_the_door_log_without_a_reload(served: Any,
                                                                   lang: str) -> None:
    person = "s007" if lang == "ja" else "s008"
    with chromium() as page:
        log_in(page, served.base_url, "anzen", lang)
        page.goto(served.base_url + "/presence")
        page.wait_for_function("() => document.body.dataset.liveState === 'open'", timeout=WAIT)
        page.evaluate("window.__noReload = 1")
        before = int(page.locator("#inside tbody tr[data-person]").count())
        started = time.monotonic()
        served.world.tap(person, "in")
        page.wait_for_selector(f"#inside tr[data-person='{person}']", timeout=WAIT)
        latency = time.monotonic() - started
        count_text = page.inner_text("#inside-count")
        rows = page.locator("#inside tbody tr[data-person]").count()
        assert rows == before + 1 and str(rows) in count_text  # the count is the list's
        assert page.evaluate("window.__noReload") == 1
        page.goto(served.base_url + "/door-log")
        page.wait_for_function("() => document.body.dataset.liveState === 'open'", timeout=WAIT)
        first = page.locator("#door-log tbody tr").first.get_attribute("data-event")
        ev = served.world.tap(person, "out")
        page.wait_for_selector(f"#door-log tr[data-event='{ev['node']}:{ev['seq']}']",
                               timeout=WAIT)
        assert first != f"{ev['node']}:{ev['seq']}"
        print(f"tap -> presence row in the browser: {latency * 1000:.0f} ms ({lang})")


def test_a_new_item_appears_in_the_open_queue_without_a_reload(served: Any) -> None:
    with chromium() as page:
        log_in(page, served.base_url, "anzen", "ja")
        page.wait_for_function("() => document.body.dataset.liveState === 'open'", timeout=WAIT)
        page.evaluate("window.__noReload = 1")
        open_before = page.inner_text("[data-count-state=open]")
        served.world.event("door.forced", {"door": "server-room", "lockdown": False})
        page.wait_for_function(
            "(before) => document.querySelector('[data-count-state=open]').textContent "
            "!== before", arg=open_before, timeout=WAIT)
        assert "サーバールーム" in page.inner_text("#review tbody tr >> nth=0")
        assert page.evaluate("window.__noReload") == 1
        assert page.inner_text("#live-state") == "ライブ"


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_lockdown_with_reason_banner_and_inside_list(served: Any, lang: str) -> None:
    with chromium() as page:
        log_in(page, served.base_url, "anzen", lang)
        page.goto(served.base_url + "/lockdown")
        page.on("dialog", lambda d: d.accept())
        page.check("#lockdown-form input[value=site]")
        page.click("#lockdown-form button[type=submit]")  # no reason: refused, nothing kept
        assert page.evaluate("document.querySelector('#lockdown-form textarea').validity"
                             ".valueMissing")
        page.fill("#lockdown-form textarea[name=reason]", "不審者の通報" if lang == "ja"
                  else "intruder reported")
        page.click("#lockdown-form button[type=submit]")
        page.wait_for_selector("#lockdown-banner", timeout=WAIT)
        page.goto(served.base_url + "/review")  # the banner is on every page
        assert TEXT[lang]["banner"] in page.inner_text("#lockdown-banner")
        page.click("#lockdown-banner a")
        page.wait_for_selector("#inside-list")
        assert TEXT[lang]["inside"] in page.inner_text("h1")
        page.goto(served.base_url + "/lockdown")
        page.fill("#lockdown-end input[name=reason]", "解除" if lang == "ja" else "all clear")
        page.click("#lockdown-end button[type=submit]")
        page.wait_for_selector("#lockdown-form", timeout=WAIT)
        assert page.locator("#lockdown-banner").count() == 0
    with served.world.sessionmaker() as db:
        site = db.get(SiteSettings, served.world.settings.site)
        assert site is not None and not site.lockdown
        from dashboard.models import AuditRecord

        last = db.scalars(select(AuditRecord).where(AuditRecord.action == "site.lockdown")
                          .order_by(AuditRecord.seq.desc()).limit(2)).all()
        assert last[0].after["lockdown"] is False and last[1].after["lockdown"] is True
        assert last[1].after["lockdown_reason"] in ("不審者の通報", "intruder reported")


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_backup_operator_acknowledges_a_backup_alarm(served: Any, lang: str) -> None:
    with served.world.sessionmaker() as db:
        aid = db.scalars(select(Anomaly.id).where(
            Anomaly.kind.in_(("corr.backup_missing", "corr.backup_failed")),
            Anomaly.state == "open").order_by(Anomaly.id)).first()
    assert aid is not None
    with chromium() as page:
        log_in(page, served.base_url, "backup", lang)
        assert page.url.endswith("/backups")  # lands on last night's backups
        form = f"li[data-alarm='{aid}'] form.alarm-confirm"
        page.fill(f"{form} input[name=reason]", "NAS を再起動" if lang == "ja"
                  else "restarted the NAS")
        page.click(f"{form} button")
        page.wait_for_selector(f"li[data-alarm='{aid}']", state="detached", timeout=WAIT)
        assert page.goto(served.base_url + "/people").status == 403  # not their work
    with served.world.sessionmaker() as db:
        row = db.get(Anomaly, aid)
        assert row is not None and row.state == "acknowledged" and row.acknowledged_by == "backup"


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_auditor_can_change_nothing(served: Any, lang: str) -> None:
    aid = item_id(served, "corr.number_in_log")
    with chromium() as page:
        log_in(page, served.base_url, "kansa", lang)
        assert page.url.endswith("/door-log")  # lands on the records
        for path in (f"/review/{aid}", "/lockdown", "/people/s001", "/media", "/review"):
            page.goto(served.base_url + path)
            forms = page.eval_on_selector_all(
                "main form[method=post]", "fs => fs.map(f => f.getAttribute('action'))")
            assert forms == [], (path, forms)
        csrf = page.eval_on_selector("header input[name=csrf_token]", "e => e.value")
        status = page.evaluate(
            """async ([url, csrf]) => (await fetch(url, {method: 'POST', headers:
               {'content-type': 'application/x-www-form-urlencoded'},
               body: 'reason=x&csrf_token=' + csrf})).status""",
            [f"{served.base_url}/review/{aid}/acknowledge", csrf])
        assert status == 403


def test_live_pages_reconnect_after_a_dashboard_restart(served: Any) -> None:
    """Stop the dashboard under an open presence page, start it again on the same port: the
    page says it is reconnecting, then live again, and shows the next tap without a reload."""
    import threading

    import uvicorn

    from controller.localbroker import free_port
    from dashboard.app import create_app
    from dashboard.bus import Bus

    world = served.world
    port = free_port()

    def start() -> tuple[Any, threading.Thread, Bus]:
        bus = Bus()
        app = create_app(world.settings, sessionmaker=world.sessionmaker, bus=bus)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                               log_level="warning", lifespan="on",
                                               timeout_graceful_shutdown=1))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:  # uvicorn sets it once listening
            thread.join(0.05)
        return server, thread, bus

    def stop(server: Any, thread: threading.Thread, bus: Bus) -> None:
        bus.close()
        server.should_exit = True
        thread.join(10)

    base = f"http://127.0.0.1:{port}"
    first = start()
    saved = world.bus
    try:
        with chromium() as page:
            log_in(page, base, "anzen", "ja")
            page.goto(base + "/presence")
            page.wait_for_function("() => document.body.dataset.liveState === 'open'",
                                   timeout=WAIT)
            page.evaluate("window.__noReload = 1")
            stop(*first)
            page.wait_for_function("() => document.body.dataset.liveState === 'retrying'",
                                   timeout=WAIT)
            assert page.inner_text("#live-state") == "再接続中"
            second = start()
            try:
                page.wait_for_function("() => document.body.dataset.liveState === 'open'",
                                       timeout=60_000)
                world.bus = second[2]
                world.tap("s009", "in")
                page.wait_for_selector("#inside tr[data-person='s009']", timeout=WAIT)
                assert page.evaluate("window.__noReload") == 1
            finally:
                stop(*second)
    finally:
        world.bus = saved
