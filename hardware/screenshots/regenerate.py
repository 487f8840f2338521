#!/usr/bin/env python3
"""Regenerate the README's screenshots from the demo office (dashboard/demo/world.py: the
demo's month of history, media ledger and display names, served without broker or readers),
in Japanese, with Debian's Chromium through Playwright.

Usage (from the repository root): .venv/bin/python hardware/screenshots/regenerate.py [--out DIR]
The simulator panel's screenshot needs the live room (`make demo`) and is not regenerated here.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

PASSWORD = "screenshot password 1"  # noqa: S105 - a throwaway office in a temp folder
CHROMIUM = "/usr/bin/chromium"
SHOTS = {  # file -> (user, path, wait for)
    "overview.png": ("admin", "/", "#overview-tiles"),
    "review.png": ("anzen", "/review", "#review"),
    "review-item.png": ("anzen", "/review/{item}", "#evidence"),
    "person-day.png": ("anzen", "/people/s002/timeline?day={day}", "#timeline"),
    "door-log.png": ("anzen", "/door-log", "#door-log"),
    "media.png": ("admin", "/media", "#media"),
    "backups.png": ("backup", "/backups", "#backup-calendar"),
    "phone-review.png": ("anzen", "/review", "#review"),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright
    from sqlalchemy import select

    from dashboard.demo import world
    from dashboard.models import Anomaly

    with tempfile.TemporaryDirectory(prefix="secroom-shots-") as tmp:
        office = world.build(Path(tmp) / "data", password=PASSWORD)
        with office.sessionmaker() as db:
            item = db.scalar(select(Anomaly).where(Anomaly.kind == "corr.access_not_in_room"))
            assert item is not None and item.at is not None
            ids = {"item": item.id,
                   "day": item.at.astimezone(office.settings.zone).date().isoformat()}
        with world.serve(office) as served, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM,
                                         args=["--no-sandbox", "--disable-gpu"])
            for name, (user, path, selector) in SHOTS.items():
                phone = name.startswith("phone-")
                context = browser.new_context(
                    viewport={"width": 390, "height": 844} if phone else
                    {"width": 1280, "height": 800}, locale="ja-JP")
                page = context.new_page()
                page.goto(served.base_url + "/login")
                page.fill("input[name=username]", office.users.get(user, user))
                page.fill("input[name=password]", PASSWORD)
                with page.expect_navigation():
                    page.click("#login-form button[type=submit]")
                page.goto(served.base_url + path.format(**ids))
                page.wait_for_selector(selector)
                if page.evaluate("() => document.body.dataset.live") == "1":
                    page.wait_for_function("() => document.body.dataset.liveState === 'open'")
                if page.locator("[data-chart]").count():
                    page.wait_for_selector("[data-chart] .uplot")
                page.screenshot(path=str(args.out / name),
                                full_page=name in ("review-item.png", "person-day.png"))
                context.close()
                print(f"wrote {args.out / name}")
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
