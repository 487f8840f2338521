from __future__ import annotations

import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from usb_guard.policy import ClassRule, MediumIdentity, UsbPolicy
from usb_guard.usbguard_rules import export_rules, quote

from .conftest import HOST, NOW, make_medium


def policy() -> UsbPolicy:
    good, _ = make_medium("USB-0001", serial="AA0001")
    other_host, _ = make_medium("USB-0002", serial="BB", hosts=("room-pc2",))
    lost, _ = make_medium("USB-0003", serial="CC", state="lost")
    ro, _ = make_medium("USB-0004", serial="DD", read_only=True)
    expired, _ = make_medium("USB-0005", serial="EE", usable_until=NOW - timedelta(hours=1))
    hostile, _ = make_medium("USB-0006", serial='a"b\\c 日本\n', hosts=("*",))
    no_serial = hostile.model_copy(update={
        "control_number": "USB-0007",
        "identity": MediumIdentity(vendor_id="abcd", product_id="0001", serial=None)})
    return UsbPolicy(media=(good, other_host, lost, ro, expired, hostile, no_serial))


def test_quote_escapes_quotes_backslashes_and_non_ascii() -> None:
    assert quote('a"b\\c') == '"a\\"b\\\\c"'
    assert quote("日") == '"\\xe6\\x97\\xa5"'
    assert quote("x\ny") == '"x\\x0ay"'


def test_export_for_one_host() -> None:
    lines = export_rules(policy(), HOST, NOW).splitlines()
    rules = [line for line in lines if not line.startswith("#")]
    assert rules[0] == ('allow id 0781:5583 serial "AA0001" with-interface equals { 08:06:50 } '
                        'label "USB-0001"')
    assert rules[1].startswith('allow id 0781:5583 serial "a\\"b\\\\c \\xe6')
    assert rules[2] == ('allow id abcd:0001 serial "" with-interface equals { 08:*:* } '
                        'label "USB-0007"')
    assert rules[3:] == ["block with-interface one-of { 08:*:* }",
                         "allow with-interface match-all { 09:*:* 03:01:01 03:01:02 03:00:00 }",
                         "block"]
    comments = "\n".join(lines)
    assert "USB-0002 left out: not allowed on room-pc2" not in comments
    assert "USB-0002 left out: not allowed on room-pc1" in comments
    assert "USB-0003 left out: state lost" in comments
    assert "USB-0004 left out: read-only" in comments
    assert "USB-0005 left out: past its usable-until" in comments


def test_export_for_all_hosts_and_default_allow() -> None:
    text = export_rules(policy().model_copy(update={
        "default": "allow",
        "class_rules": (ClassRule(pattern="e0:*:*", action="block", label="wireless"),)}))
    assert 'label "USB-0002"' in text
    assert text.splitlines()[-3:] == ["block with-interface one-of { 08:*:* }",
                                      "block with-interface one-of { e0:*:* }", "allow"]


def test_export_without_policy_keeps_keyboards_working() -> None:
    text = export_rules(None)
    assert "match-all { 09:*:* 03:01:01" in text and text.endswith("block\n")


def test_usbguard_parses_the_exported_rules(tmp_path: Path) -> None:
    """Cross-check with USBGuard's own parser where it is installed. Optional on purpose: the
    usbguard package also installs a daemon that, started on a CI host, would block its USB
    devices; the exact rule text is pinned by the tests above."""
    parser = shutil.which("usbguard-rule-parser")
    if parser is None:
        pytest.skip("usbguard-rule-parser not installed (Debian package usbguard)")
    path = tmp_path / "rules.conf"
    path.write_text(export_rules(policy(), HOST, NOW))
    out = subprocess.run([parser, "-f", str(path)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    outputs = [line for line in out.stdout.splitlines() if line.startswith("OUTPUT: ")]
    assert 'OUTPUT: allow id 0781:5583 serial "AA0001" with-interface 08:06:50 label "USB-0001"' \
        in outputs
    assert any('serial "a\\"b\\\\c \\xe6\\x97\\xa5\\xe6\\x9c\\xac\\x0a"' in o for o in outputs)
