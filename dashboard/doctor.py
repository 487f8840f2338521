"""`secroom doctor --config dashboard.toml`: the dashboard's installation, end to end (found by
``controller.cli`` through the ``secroom.doctor`` entry point).

Settings valid; data folder, disk; the database reachable and migrated to the newest revision;
the policy key and the session secret owner-only; the SQLite file too; the broker with its TLS
and credentials; the clock."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from controller import doctor
from controller.doctor import Check, ok
from controller.keys import KeyFileError, load_private
from dashboard.settings import DashboardSettings, SettingsError, _mask_url, load_settings


def checks(path: Path) -> list[Check]:
    try:
        settings = load_settings(path)
    except SettingsError as exc:
        return [Check("fail", f"config {path}", str(exc),
                      "correct the file (unknown keys are errors)")]
    out = [ok(f"config {path}", f"dashboard of site {settings.site}")]
    out += doctor.data_dir(settings.data_dir)
    out += database_checks(settings, path)
    out += key_checks(settings)
    if settings.mqtt is not None:
        out += doctor.broker(settings.mqtt,
                             client_id=f"secroom-doctor-dashboard-{os.getpid()}")
    else:
        out.append(Check("warn", "broker", "no [dashboard.mqtt]: no ingest, no policy for the "
                         "nodes", "configure the broker (hardware/mosquitto/)"))
    out.append(doctor.clock())
    return out


def database_checks(settings: DashboardSettings, path: Path) -> list[Check]:
    from dashboard.db import make_engine
    from dashboard.migrate import MigrationError, current, head

    url = settings.database_url
    where = f"database {_mask_url(url)}"
    out = []
    if url.startswith("sqlite:///"):
        out.append(doctor.private_file(Path(url.removeprefix("sqlite:///")), "database file",
                                       missing_fix=f"secroom db upgrade --config {path}"))
        if out[-1].status == "fail":
            return out
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        now, newest = current(url), head()
    except (SQLAlchemyError, MigrationError) as exc:
        return [*out, Check("fail", where, f"unreachable ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0][:160]})",
                            "start PostgreSQL (or check database_url and its password)")]
    finally:
        engine.dispose()
    if now != newest:
        return [*out, Check("fail", where, f"at revision {now or 'none'}, the code needs "
                            f"{newest}", f"secroom db upgrade --config {path}")]
    return [*out, ok(where, f"reachable, migrated to the newest revision ({newest})")]


def key_checks(settings: DashboardSettings) -> list[Check]:
    assert settings.policy_key_file is not None and settings.session_secret_file is not None
    key = doctor.private_file(settings.policy_key_file, "policy key",
                              missing="warn" if settings.mqtt is None else "fail",
                              missing_fix="start the dashboard once (it creates the key), "
                              "then give its .pub to every node's [policy] trusted_keys")
    if key.status == "ok":
        try:
            load_private(settings.policy_key_file)
        except KeyFileError as exc:
            key = Check("fail", f"policy key {settings.policy_key_file}", str(exc),
                        "restore it from the backup: a new key must be trusted by every node")
    secret = doctor.private_file(settings.session_secret_file, "session secret",
                                 missing="warn",
                                 missing_fix="start the dashboard once (it creates it)")
    return [key, secret]
