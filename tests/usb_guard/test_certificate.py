from __future__ import annotations

import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from usb_guard import fonts, ledger
from usb_guard.certificate import Person, SanitizationCertificate, certificate_for
from usb_guard.certificate_pdf import certificate_pdf
from usb_guard.errors import CertificateError, FontError
from usb_guard.policy import MediumIdentity

from .conftest import NOW


def wiped_medium() -> ledger.Medium:
    m = ledger.register("USB-0007", MediumIdentity(vendor_id="0781", product_id="5583",
                                                   serial="4C530001"), "cd" * 32,
                        make="SanDisk", model="Cruzer Blade", custodian="佐藤 花子",
                        actor="admin", now=NOW).medium
    m = ledger.store(m, actor="admin", now=NOW).medium
    return ledger.wipe(m, method="Purge", tool="nwipe 0.34 (PRNG, 1 pass)",
                       performed_by="佐藤 花子", verifier="鈴木 一郎",
                       verification="full read-back", now=NOW).medium


def certificate(**over: object) -> SanitizationCertificate:
    fields: dict[str, object] = dict(
        certificate_number="SC-2026-0007", organization="山田社会保険労務士事務所",
        performed_by=Person(name="佐藤 花子", title="情報管理担当", organization="総務部"),
        technique="overwrite", verification_result="passed", destination="internal_reuse",
        validated_by=Person(name="鈴木 一郎", title="事務取扱責任者"),
        validated_at=NOW + timedelta(hours=1), issued_at=NOW + timedelta(hours=2),
        classification="特定個人情報", capacity="16 GB")
    fields.update(over)
    return certificate_for(wiped_medium(), **fields)


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    binary = shutil.which("pdftotext")
    if binary is None:
        pytest.skip("pdftotext (poppler-utils) not installed")
    path = tmp_path / "cert.pdf"
    path.write_bytes(pdf)
    out = subprocess.run([binary, "-enc", "UTF-8", str(path), "-"], check=True,
                         capture_output=True, timeout=30)
    return out.stdout.decode()


def test_certificate_takes_media_and_wipe_details_from_the_ledger() -> None:
    cert = certificate()
    assert (cert.control_number, cert.make, cert.model, cert.serial) == (
        "USB-0007", "SanDisk", "Cruzer Blade", "4C530001")
    assert (cert.method, cert.tool, cert.verification_method) == (
        "Purge", "nwipe 0.34 (PRNG, 1 pass)", "full read-back")
    assert cert.sanitized_at == NOW


def test_japanese_pdf_contains_the_nist_fields(tmp_path: Path) -> None:
    text = pdf_text(certificate_pdf(certificate(), "ja"), tmp_path)
    for expected in ("媒体消去・廃棄証明書", "管理番号", "USB-0007", "4C530001", "除去（Purge）",
                     "消去実施者", "佐藤 花子", "確認者", "鈴木 一郎", "検証結果", "合格",
                     "社内で再利用", "nwipe 0.34", "2026年11月20日 18:00 JST",
                     "実施者署名", "確認者署名"):
        assert expected in text, expected
    assert text.count("\f") == 1  # one page


def test_english_pdf_contains_the_nist_fields(tmp_path: Path) -> None:
    text = pdf_text(certificate_pdf(certificate(), "en"), tmp_path)
    for expected in ("Media Sanitization Certificate", "Control number", "USB-0007",
                     "Method type", "Purge", "Verification result", "Passed",
                     "Internal reuse", "Person performing sanitization", "Validation",
                     "Validator's signature"):
        assert expected in text, expected
    assert text.count("\f") == 1  # one page


def test_markup_in_values_is_printed_not_interpreted(tmp_path: Path) -> None:
    cert = certificate(notes="<b>bold</b> & <font size=40>x</font>")
    text = pdf_text(certificate_pdf(cert, "en"), tmp_path)
    assert "<b>bold</b> &" in text


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"validated_by": Person(name="佐藤 花子")}, "different person"),
        ({"verification_result": "failed"}, "passed verification"),
        ({"validated_at": NOW - timedelta(hours=1)}, "precede"),
        ({"method": "Destroy", "destination": "external_reuse"}, "cannot be reused"),
        ({"organization": ""}, "organization"),
    ],
)
def test_invalid_certificates_are_refused(over: dict[str, object], message: str) -> None:
    with pytest.raises(CertificateError, match=message):
        certificate(**over)


def test_missing_japanese_font_gives_an_actionable_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    otf = tmp_path / "NotoSansCJK.otf"
    otf.write_bytes(b"OTTO" + b"\x00" * 100)
    monkeypatch.setattr(fonts, "CANDIDATES", (otf,))
    monkeypatch.delenv(fonts.ENV_VAR, raising=False)
    with pytest.raises(FontError, match="fonts-ipaexfont-gothic"):
        fonts.find_japanese_ttf()
    monkeypatch.setenv(fonts.ENV_VAR, str(otf))
    with pytest.raises(FontError, match="OpenType/CFF"):
        fonts.find_japanese_ttf()


def test_installed_font_is_truetype() -> None:
    assert fonts.is_truetype(fonts.find_japanese_ttf())


def test_disposal_certificate_takes_method_and_number_from_the_ledger(tmp_path: Path) -> None:
    m = ledger.register("USB-0008", MediumIdentity(vendor_id="0781", product_id="5583"), "ef" * 32,
                        make="Kingston", model="DataTraveler", custodian="Sato", actor="admin",
                        now=NOW).medium
    m = ledger.dispose(ledger.store(m, actor="admin", now=NOW).medium, method="Destroy",
                       certificate_number="DC-2026-0008", performed_by="佐藤 花子", now=NOW).medium
    cert = certificate_for(
        m, organization="山田社会保険労務士事務所", performed_by=Person(name="佐藤 花子"),
        technique="shredding (2 mm particles)", tool="HSM Powerline FA 500.3",
        verification_method="visual inspection of particles", verification_result="passed",
        destination="destroyed", validated_by=Person(name="鈴木 一郎"),
        validated_at=NOW, issued_at=NOW)
    assert (cert.certificate_number, cert.method, cert.serial) == ("DC-2026-0008", "Destroy", None)
    text = pdf_text(certificate_pdf(cert, "ja"), tmp_path)
    for expected in ("DC-2026-0008", "破壊（Destroy）", "物理破壊済み", "Kingston"):
        assert expected in text, expected
