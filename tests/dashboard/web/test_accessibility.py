"""axe-core (fetched from the npm registry for this test session with ``npm pack``, never
committed, served to the page by the test from the dashboard's own origin so the CSP allows it)
finds no serious or critical accessibility violation on the console's main pages, in Japanese
and at a phone's width."""

from __future__ import annotations

import subprocess
import tarfile
from collections.abc import Iterator
from typing import Any

import pytest

from tests.dashboard.web.conftest import PASSWORD, chromium
from tests.support import unavailable

pytestmark = pytest.mark.integration
PAGES = ["/", "/review", "/review/{item}", "/presence", "/door-log",
         "/people/s002/timeline?day={day}", "/people", "/numlog", "/lockdown", "/backups",
         "/audit", "/media", "/nodes", "/names"]


@pytest.fixture(scope="module")
def axe_js(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    where = tmp_path_factory.mktemp("axe")
    try:
        out = subprocess.run(["npm", "pack", "axe-core", "--pack-destination", str(where)],
                             capture_output=True, text=True, timeout=300, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        unavailable(f"npm pack axe-core failed: {exc}")
    tgz = where / out.stdout.strip().splitlines()[-1]
    with tarfile.open(tgz) as tar:
        member = tar.extractfile("package/axe.min.js")
        assert member is not None
        return member.read()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from dashboard.demo import world

    w = world.build(tmp_path_factory.mktemp("a11y") / "data", password=PASSWORD)
    with world.serve(w, correlate=False) as s:
        yield s


def first_item(served: Any) -> tuple[int, str]:
    from sqlalchemy import select

    from dashboard.models import Anomaly

    with served.world.sessionmaker() as db:
        a = db.scalar(select(Anomaly).where(Anomaly.kind == "corr.access_not_in_room"))
        assert a is not None and a.at is not None
        return a.id, a.at.astimezone(served.world.settings.zone).date().isoformat()


@pytest.mark.parametrize("width", [1280, 390])
def test_no_serious_or_critical_violation(served: Any, axe_js: bytes, width: int) -> None:
    item, day = first_item(served)
    base = served.base_url
    problems: list[str] = []
    with chromium() as page:
        page.set_viewport_size({"width": width, "height": 900})
        page.route(f"{base}/__axe__.js", lambda route: route.fulfill(
            status=200, body=axe_js, content_type="application/javascript"))
        page.goto(base + "/login")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation():
            page.click("#login-form button[type=submit]")
        for path in PAGES:
            url = base + path.format(item=item, day=day)
            page.goto(url)
            page.add_script_tag(url=f"{base}/__axe__.js")
            found = page.evaluate("""async () => {
                const r = await axe.run(document, {resultTypes: ['violations']});
                return r.violations.filter(v => ['serious', 'critical'].includes(v.impact))
                  .map(v => v.id + ' (' + v.impact + '): ' +
                       v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | '));
            }""")
            problems += [f"{path}: {v}" for v in found]
    assert problems == [], "\n".join(problems)
