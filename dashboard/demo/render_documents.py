"""Render the first pages of the demo office's documents to PNG, for the README: the monthly
handling report to a client (ja), the internal report's annex, and a deletion certificate issued
from the demo's backup purge.

    python -m dashboard.demo.render_documents hardware/screenshots

It builds the demo's month (the real ingest path, as `make demo` does) in a temporary SQLite
database, issues the documents through the same code as the dashboard, and rasterises page 1
of each PDF with pdftoppm (poppler-utils). The month ends on a fixed date, so the pictures only
change when the documents do.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

NOW = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)  # 12:00 in Tokyo: the month before is November
RESOLUTION = 60  # dpi: an A4 page of 496 x 702 pixels, readable and small


def build(workdir: Path) -> dict[str, bytes]:
    """The demo's documents as PDF bytes: report-ja, report-en, certificate-ja."""
    from sqlalchemy import select

    from dashboard.db import make_engine, make_sessionmaker
    from dashboard.demo import history, seed
    from dashboard.demo.dashboard import enter_office
    from dashboard.demo.usb import seed_media
    from dashboard.migrate import upgrade
    from dashboard.models.reports import Client
    from dashboard.reports.certificates import candidates, issue_certificate, parse_certificate
    from dashboard.reports.dates import previous_month
    from dashboard.reports.monthly import issue

    url = f"sqlite:///{workdir / 'demo.sqlite3'}"
    upgrade(url)
    sm = make_sessionmaker(make_engine(url))
    enter_office(sm, seed.policy(now=NOW), NOW)
    seed_media(sm, NOW)
    history.store(sm, history.build(NOW), NOW)
    month = previous_month(NOW, history.ZONE)
    out: dict[str, bytes] = {}
    with sm.begin() as db:
        client = db.scalars(select(Client).where(Client.name == history.CLIENTS[0])).one()
        for lang in ("ja", "en"):
            out[f"report-{lang}"] = issue(db, month=month, client_id=client.id, lang=lang,
                                          zone=history.ZONE, now=NOW, actor="admin").content
        purge = next(b for b in candidates(db, history.ZONE, NOW) if b.kind == "backup_purge")
        _, files = issue_certificate(db, parse_certificate({
            "kind": purge.kind, "ref": purge.ref, "client_id": client.id, "person_id": "s021",
            "reason": "退職後の保存期間(7年)満了",
            "subject": "元従業員 田中 一郎 の扶養控除等申告書ファイル",
            "lang": "ja"}), zone=history.ZONE, now=NOW, actor="admin")
        out["certificate-ja"] = files["pdf"]
    return out


def first_page_png(pdf: bytes, target: Path, workdir: Path) -> Path:
    if shutil.which("pdftoppm") is None:
        raise SystemExit("pdftoppm not found: apt-get install poppler-utils")
    src = workdir / (target.stem + ".pdf")
    src.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-png", "-r", str(RESOLUTION), "-f", "1", "-l", "1",
                    "-singlefile", str(src), str(target.with_suffix(""))], check=True,
                   timeout=120)
    return target


def main(argv: list[str]) -> int:
    out_dir = Path(argv[0]) if argv else Path("hardware/screenshots")
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="secroom-docs-") as tmp:
        work = Path(tmp)
        for name, pdf in build(work).items():
            png = first_page_png(pdf, out_dir / f"{name}.png", work)
            print(f"{png} ({png.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
