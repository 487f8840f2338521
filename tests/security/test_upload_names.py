"""File names and links from outside cannot make the dashboard write (or read) where they
point: the number-log CSV upload never uses the client's file name as a path (it is stored,
redacted, as text and printed escaped), and the drop folder, writable by the number system's
export job, follows no symlink, neither for what it imports nor for where it moves files and
writes its result notes."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dashboard.models.audit import AuditRecord
from dashboard.models.numlog import NumberAccess, NumlogBatch
from dashboard.numlog.watch import DropFolder
from tests.dashboard.web.conftest import WebApp

CSV = (
    "NO,事業所名,日時,画面,処理,利用目的,処理者,結果\r\n"
    "1,本社,2026/11/2 10:30,一覧入力,ログイン認証,,井上 通,成功\r\n"
).encode()
NUMBER = "123456789018"  # passes the check digit: a made-up individual number
ZONE = ZoneInfo("Asia/Tokyo")


def _tree(root: Path) -> set[str]:
    return {str(p) for p in root.rglob("*") if not p.name.startswith("dashboard.sqlite3")}


def test_upload_file_names_are_text_never_paths(webapp_db: WebApp, tmp_path: Path) -> None:
    w = webapp_db
    client, csrf = w.as_role("security_admin")
    victim = tmp_path / "victim"
    victim.mkdir()
    names = [
        "../" * 12 + str(victim / "dotdot.csv").lstrip("/"),
        str(victim / "absolute.csv"),
        "..\\..\\..\\windows.csv",
        "<script>alert(1)</script>.csv",
        f"社員_{NUMBER}.csv",
        "a\x00b.csv",
    ]
    before = _tree(tmp_path)
    for i, name in enumerate(names):
        body = CSV.replace(b"1,", f"{i + 1},".encode(), 1)
        r = client.post(
            "/numlog/upload",
            data={"source": "sys"},
            files={"file": (name, body, "text/csv")},
            headers={"x-csrf-token": csrf},
        )
        assert r.status_code == 200, (name, r.text[:300])
        assert NUMBER not in r.text
    assert _tree(tmp_path) == before  # nothing written anywhere, least of all where names point
    assert not list(victim.iterdir())
    with w.sm() as db:
        stored = [b.filename for b in db.scalars(select(NumlogBatch).order_by(NumlogBatch.id))]
        audit = [
            json.dumps(a.after, ensure_ascii=False)
            for a in db.scalars(select(AuditRecord).where(AuditRecord.action == "numlog.import"))
        ]
    assert stored[:4] == names[:4]  # kept as text, for the record
    assert all(NUMBER not in s for s in stored) and all(NUMBER not in a for a in audit)
    page = client.get("/numlog").text
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page
    assert NUMBER not in page


def _folder(tmp_path: Path, sm: sessionmaker[Session]) -> DropFolder:
    drop = tmp_path / "drop"
    drop.mkdir()
    return DropFolder(
        drop, "sys", sm, ZONE, clock=lambda: datetime(2026, 11, 3, tzinfo=UTC), settle_s=0
    )


@pytest.mark.parametrize("leaf", ["done", "failed"])
def test_drop_folder_does_not_move_files_through_a_planted_symlink(
    tmp_path: Path, sm: sessionmaker[Session], leaf: str
) -> None:
    folder = _folder(tmp_path, sm)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (folder.path / leaf).rmdir()
    (folder.path / leaf).symlink_to(elsewhere)  # the export account swaps done/ for a link
    (folder.path / "log.csv").write_bytes(CSV if leaf == "done" else b"\xff\xfe\x00bad")
    folder.scan_once()
    assert list(elsewhere.iterdir()) == []


def test_drop_folder_does_not_write_its_note_through_a_planted_symlink(
    tmp_path: Path, sm: sessionmaker[Session]
) -> None:
    folder = _folder(tmp_path, sm)
    victim = tmp_path / "victim.conf"
    victim.write_text("important = true\n")
    (folder.path / "done" / "log.csv.result.json").symlink_to(victim)
    (folder.path / "log.csv").write_bytes(CSV)
    [summary] = folder.scan_once()
    assert summary["status"] == "done"
    assert victim.read_text() == "important = true\n"
    moved = sorted(p.name for p in (folder.path / "done").iterdir())
    assert moved == ["log.1.csv", "log.1.csv.result.json", "log.csv.result.json"]


def test_drop_folder_does_not_import_through_a_symlink(
    tmp_path: Path, sm: sessionmaker[Session]
) -> None:
    folder = _folder(tmp_path, sm)
    outside = tmp_path / "private.csv"  # readable by the dashboard, not by the export account
    outside.write_bytes(CSV)
    os.symlink(outside, folder.path / "link.csv")
    folder.scan_once()
    with sm() as db:
        assert db.scalar(select(NumberAccess.id)) is None
    assert outside.read_bytes() == CSV
