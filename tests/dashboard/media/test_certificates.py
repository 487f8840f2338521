"""Certificate downloads: the PDF (Japanese and English, read back with pdftotext) and CSV carry
the NIST SP 800-88 fields of the stored wipe or disposal; nothing to certify before a wipe."""

from __future__ import annotations

import csv
import io
import subprocess
from pathlib import Path

import pytest

from tests.dashboard.media.conftest import register_form
from tests.dashboard.web.conftest import WebApp
from tests.support import require_binary


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    require_binary("pdftotext")
    path = tmp_path / "c.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                         check=True, timeout=30)
    return " ".join(out.stdout.decode("utf-8").split())


@pytest.fixture
def wiped(media_app: WebApp) -> str:
    cn = register_form(media_app, serial="4C530001230918")
    c, csrf = media_app.as_role("admin")
    r = c.post(f"/media/{cn}/wipe", follow_redirects=False, data={
        "csrf_token": csrf, "method": "Purge", "technique": "暗号消去 (crypto erase)",
        "tool": "nwipe 0.34", "verifier": "山田 太郎", "verification": "全領域の読み出し確認"})
    assert r.status_code == 303, r.text
    return cn


def test_no_certificate_before_a_wipe_or_disposal(media_app: WebApp) -> None:
    cn = register_form(media_app)
    c, _ = media_app.as_role("auditor")
    r = c.get(f"/media/{cn}/certificate.pdf")
    assert r.status_code == 409 and "nothing to certify" in r.json()["detail"]
    assert "certificate.pdf" not in c.get(f"/media/{cn}").text


def test_wipe_certificate_pdf_in_japanese_and_english(media_app: WebApp, wiped: str,
                                                      tmp_path: Path) -> None:
    from sqlalchemy import update

    from dashboard.models.auth import User

    with media_app.sm.begin() as db:  # the wiping admin has a display name: it is printed
        db.execute(update(User).where(User.username == "u_admin")
                   .values(display_name="管理者 太田"))
    c, _ = media_app.as_role("auditor")
    assert f"/media/{wiped}/certificate.pdf?lang=en" in c.get(f"/media/{wiped}").text
    ja = c.get(f"/media/{wiped}/certificate.pdf?lang=ja")
    assert ja.status_code == 200 and ja.headers["content-type"] == "application/pdf"
    text = pdf_text(ja.content, tmp_path)
    # names, not ids: the performer by display name, the custodian (p1) by name; the
    # certificate number dated in the site's zone like every other date (10:00 JST, not 01:00
    # UTC); the wipe date in Japanese style
    for expected in ("媒体消去・廃棄証明書", wiped, "管理者 太田", "佐藤 花子", "山田 太郎",
                     "nwipe 0.34", "暗号消去", "全領域の読み出し確認", "4C530001230918",
                     "SanDisk", "lab", f"{wiped}-W202611201000", "2026年11月20日 10:00 JST"):
        assert expected in text, expected
    assert "u_admin" not in text and "UTC" not in text
    # no destination is pre-filled: the wipe did not record one
    assert "社内で再利用" not in text
    en = pdf_text(c.get(f"/media/{wiped}/certificate.pdf?lang=en").content, tmp_path)
    assert "Media Sanitization Certificate" in en and "Purge" in en and wiped in en
    assert "reuse" not in en.lower() and "佐藤 花子" in en


def test_disposal_certificate_csv_carries_the_disposal(media_app: WebApp, wiped: str) -> None:
    c, csrf = media_app.as_role("admin")
    r = c.post(f"/media/{wiped}/dispose", follow_redirects=False, data={
        "csrf_token": csrf, "method": "Destroy", "certificate_number": "DC-2026-0042",
        "destination": "destroyed", "verifier": "委託先 田中"})
    assert r.status_code == 303, r.text
    body = c.get(f"/media/{wiped}/certificate.csv?lang=en")
    assert body.status_code == 200 and body.content.startswith(b"\xef\xbb\xbf")
    fields = dict(csv.reader(io.StringIO(body.content.decode("utf-8-sig"))))
    assert fields["Certificate number"] == "DC-2026-0042"
    assert fields["Media information / Control number"] == wiped
    assert fields["Sanitization details / Tool used (version)"] == "nwipe 0.34"
    assert fields["Validation / Name"] == "山田 太郎"
    assert "DC-2026-0042" in fields["Sanitization details / Notes"]
    dest = [v for k, v in fields.items() if k.endswith("/ Destination")]
    assert dest and dest[0].lower().startswith("destr")


def test_destroyed_without_wipe_is_certified_by_its_disposal(media_app: WebApp,
                                                             tmp_path: Path) -> None:
    cn = register_form(media_app)
    c, csrf = media_app.as_role("admin")
    r = c.post(f"/media/{cn}/dispose", follow_redirects=False, data={
        "csrf_token": csrf, "method": "Clear", "certificate_number": "X-1",
        "destination": "recycling", "verifier": "v"})
    assert r.status_code == 400 and "only be disposed of by Destroy" in r.text
    r = c.post(f"/media/{cn}/dispose", follow_redirects=False, data={
        "csrf_token": csrf, "method": "Destroy", "certificate_number": "DC-7",
        "destination": "destroyed", "verifier": "u_admin"})
    assert r.status_code == 400 and "verifier must differ" in r.text
    r = c.post(f"/media/{cn}/dispose", follow_redirects=False, data={
        "csrf_token": csrf, "method": "Destroy", "certificate_number": "DC-7",
        "destination": "destroyed", "verifier": "破砕業者 佐々木"})
    assert r.status_code == 303
    text = pdf_text(c.get(f"/media/{cn}/certificate.pdf?lang=ja").content, tmp_path)
    assert "DC-7" in text and "破砕業者 佐々木" in text and cn in text
