"""The private pcscd host: side by side instances, kill/restart, reader removal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from readers.base import ReaderError
from readers.pcscd_host import PcscdHost, _listening_ports
from tests.support.pcscd import start_pcscd

pytestmark = pytest.mark.integration


def test_two_private_daemons_side_by_side(tmp_path: Path) -> None:
    a = start_pcscd(tmp_path / "a")
    b = start_pcscd(tmp_path / "b")
    try:
        assert a.socket_path != b.socket_path
        assert {a.port, a.port + 1}.isdisjoint({b.port, b.port + 1})
        assert a.reader_names() == a.expected_reader_names()
        assert b.reader_names() == b.expected_reader_names()
        assert set(a.ports) <= _listening_ports(a.pid)
        assert not set(a.ports) & _listening_ports(b.pid)
        a.kill()
        assert b.reader_names() == b.expected_reader_names()  # b does not care
        with pytest.raises(ReaderError, match="cannot reach pcscd"):
            a.reader_names()
    finally:
        a.stop()
        b.stop()
    assert not a.run_dir.exists()


def test_kill_and_restart_keeps_the_socket_path(pcscd: PcscdHost) -> None:
    old_pid = pcscd.pid
    pcscd.restart()
    assert pcscd.pid != old_pid
    assert pcscd.socket_path.exists()
    assert pcscd.reader_names() == pcscd.expected_reader_names()


def test_remove_and_return_reader(pcscd: PcscdHost) -> None:
    pcscd.remove_reader()
    assert pcscd.reader_names() == []
    assert not set(pcscd.ports) & _listening_ports()
    with pytest.raises(ReaderError, match="already removed"):
        pcscd.remove_reader()
    pcscd.return_reader()
    assert pcscd.reader_names() == pcscd.expected_reader_names()
    with pytest.raises(ReaderError, match="not removed"):
        pcscd.return_reader()


def test_port_in_use_is_reported(pcscd: PcscdHost, tmp_path: Path) -> None:
    clash = PcscdHost(tmp_path / "clash", port=pcscd.port)
    try:
        with pytest.raises(ReaderError, match="in use"):
            clash.start()
    finally:
        clash.stop()


def test_subprocess_client_uses_host_env(pcscd: PcscdHost) -> None:
    code = "from readers.pcsc import list_reader_names; print(list_reader_names())"
    env = {**os.environ, **pcscd.env}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert str(pcscd.expected_reader_names()) in done.stdout
