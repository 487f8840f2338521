"""Crawl the demo office in Japanese as each role, at 390 px: every page the navigation offers
and one level of links from each (at most three pages of one shape, e.g. three people). No page
may answer >= 400, show a raw identifier (dotted kinds, slugs, key=value, JSON, ids the
database knows, staff numbers without the person's name) or an English word outside
``crawl.ALLOWED_WORDS``, or scroll sideways. Prints its counts per role."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.dashboard.web import crawl
from tests.dashboard.web.conftest import PASSWORD, chromium

pytestmark = pytest.mark.integration
PER_SHAPE = 3
ROLES = ("admin", "security_admin", "backup_operator", "auditor")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from dashboard.demo import world as demo_world

    w = demo_world.build(tmp_path_factory.mktemp("crawl") / "data", password=PASSWORD)
    with demo_world.serve(w, correlate=False) as s:
        yield s


def known(served: Any) -> tuple[set[str], dict[str, str]]:
    from dashboard.models import Door, Group, Node, Person, Printer
    from dashboard.models.events import DoorAccess, StoredEvent

    with served.world.sessionmaker() as db:
        ids = set(db.scalars(select(Door.id))) | set(db.scalars(select(Printer.id)))
        ids |= set(db.scalars(select(Group.id))) | set(db.scalars(select(Node.name)))
        ids |= {r for r in db.scalars(select(DoorAccess.reader).distinct()) if r}
        hosts = db.scalars(select(StoredEvent.data).where(StoredEvent.kind == "usb.inserted")
                           .limit(50))
        ids |= {h.get("host") for h in hosts if isinstance(h, dict) and h.get("host")}
        people = {p.id: p.name for p in db.scalars(select(Person))}
    ids |= {served.world.settings.site, served.world.settings.timezone}
    return ids, people


def log_in(page: Any, base: str, username: str) -> None:
    page.goto(base + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("#login-form button[type=submit]")


# What people typed (reasons, notes, file names, product names) is theirs, not the console's
# words; the names page and the users page show the ids being named on purpose.
TEXT_JS = """() => {
  const marked = document.querySelectorAll('[data-user-text], [data-raw-id]');
  marked.forEach(e => { e.textContent = ''; });
  return [document.body.innerText, marked.length];
}"""
LINKS_JS = """(sel) => Array.from(document.querySelectorAll(sel))
  .filter(a => !a.hasAttribute('download')).map(a => a.href)"""
OVERFLOW_JS = """() => document.documentElement.scrollWidth -
  document.documentElement.clientWidth"""


def crawl_role(page: Any, base: str, username: str, ids: set[str], people: dict[str, str]
               ) -> dict[str, Any]:
    log_in(page, base, username)
    nav: list[str] = []
    for href in page.evaluate(LINKS_JS, "header nav a[href]"):
        url = crawl.followable(href, base)
        if url and url not in nav:
            nav.append(url)
    seen: set[str] = set()
    shapes: Counter[tuple[str, int, tuple[str, ...]]] = Counter()
    found = crawl.Findings()
    bad_status: list[str] = []
    overflow: list[str] = []
    exempt = [0]

    def visit(url: str) -> list[str]:
        seen.add(url)
        shapes[crawl.route_shape(url)] += 1
        response = page.goto(base + url)
        status = response.status if response is not None else 0
        if status >= 400:
            bad_status.append(f"{status} {url}")
        links = [u for u in (crawl.followable(h, base)
                             for h in page.evaluate(LINKS_JS, "main a[href]")) if u]
        if page.evaluate(OVERFLOW_JS) > 1:
            overflow.append(url)
        text, marked = page.evaluate(TEXT_JS)
        exempt[0] += marked
        result = crawl.analyse(text, ids, people)
        result.examples = [f"{url}: {e}" for e in result.examples]
        found.add(result)
        return links

    children: list[str] = []
    for url in nav:
        children += visit(url)
    for url in children:
        if url in seen or shapes[crawl.route_shape(url)] >= PER_SHAPE:
            continue
        visit(url)
    return {"pages": len(seen), "nav": len(nav), "status": bad_status, "overflow": overflow,
            "found": found, "exempt": exempt[0]}


def test_every_page_reads_in_japanese_without_ids_or_sideways_scrolling(served: Any) -> None:
    ids, people = known(served)
    results: dict[str, dict[str, Any]] = {}
    with chromium("ja-JP") as first:
        browser = first.context.browser
        for role in ROLES:
            context = browser.new_context(viewport={"width": 390, "height": 844},
                                          locale="ja-JP")
            page = context.new_page()
            page.set_default_timeout(30000)
            try:
                results[role] = crawl_role(page, served.base_url, served.world.users[role],
                                           ids, people)
            finally:
                context.close()
    total = crawl.Findings()
    lines = ["role             pages  >=400  ids  english  overflow  user-text"]
    for role, r in results.items():
        f = r["found"]
        total.add(f)
        lines.append(f"{role:16} {r['pages']:5} {len(r['status']):6} "
                     f"{sum(f.identifiers.values()):4} {sum(f.english.values()):8} "
                     f"{len(r['overflow']):9}  {r['exempt']:9}")
    lines.append(f"identifiers by kind: {dict(total.identifiers)}")
    lines.append(f"english words (top 30): {total.english.most_common(30)}")
    lines += [f"  {e}" for e in total.examples[:40]]
    for role, r in results.items():
        lines += [f"  {role} status: {s}" for s in r["status"][:10]]
        lines += [f"  {role} overflow: {u}" for u in r["overflow"][:15]]
    report = "\n".join(lines)
    print(report)
    Path(crawl_report_path()).write_text(report, encoding="utf-8")
    assert all(r["pages"] >= r["nav"] >= 2 for r in results.values()), report
    assert not any(r["status"] for r in results.values()), report
    assert not total.identifiers, report
    assert not total.english, report
    assert not any(r["overflow"] for r in results.values()), report


def crawl_report_path() -> str:
    from tests.dashboard.web.conftest import artifacts_dir

    return str(artifacts_dir() / "crawl-report.txt")
