"""`secroom dashboard backup` (the database into the repository, now) and `secroom recover`
(rebuild the dashboard from the repository and the operators' key)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from controller.envelope import now_utc
from dashboard.cli_support import EXIT_FAIL, EXIT_OK, EXIT_USAGE, settings_of
from dashboard.settings import SettingsError


def add_backup_subcommand(dash_sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = dash_sub.add_parser("backup", help="back the dashboard's database up into the "
                                           "repository now ([dashboard.backup])")
    p.add_argument("--config", required=True, help="dashboard TOML config ([dashboard] table)")
    p.set_defaults(func=backup_now)


def add_recover_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("recover", help="rebuild the dashboard from the backup repository and "
                                       "the operators' private key (a new machine)")
    p.add_argument("--repo", required=True, type=Path, help="the backup repository folder")
    p.add_argument("--key", required=True, type=Path, help="the operators' backup.key")
    p.add_argument("--passphrase-file", type=Path,
                   help="file holding the key's passphrase (else $SECROOM_BACKUP_PASSPHRASE, "
                        "else a prompt)")
    p.add_argument("--config-out", type=Path, default=Path("/etc/secroom/dashboard.toml"),
                   help="where to write the recovered dashboard config")
    p.add_argument("--snapshot", default="latest",
                   help="a dashboard snapshot id (or prefix); default: the newest")
    p.add_argument("--data-dir", type=Path, help="put the dashboard here instead of the "
                                                 "backed-up config's data_dir")
    p.add_argument("--database-url", help="restore into this database instead (an empty one)")
    p.add_argument("--keep-database", action="store_true",
                   help="the database survived (a PostgreSQL server elsewhere): restore the "
                        "config and secrets only, and migrate the live database")
    p.add_argument("--force", action="store_true", help="overwrite files that exist")
    p.set_defaults(func=recover_command)


def backup_now(args: argparse.Namespace) -> int:
    from dashboard.db import make_engine, make_sessionmaker
    from dashboard.recovery.job import DatabaseBackupError, record, run_backup

    try:
        settings = settings_of(args)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if settings.backup is None:
        print("error: the config has no [dashboard.backup] table", file=sys.stderr)
        return EXIT_USAGE
    engine = make_engine(settings.database_url)
    sm = make_sessionmaker(engine)
    started = now_utc()
    try:
        outcome = run_backup(settings, sm, started, config_path=Path(args.config))
    except DatabaseBackupError as exc:
        print(f"error: database backup failed: {exc}", file=sys.stderr)
        record(sm, started, None, exc, now_utc())
        engine.dispose()
        return EXIT_FAIL
    record(sm, started, outcome, None, now_utc())
    engine.dispose()
    print(f"database snapshot {outcome.snapshot_id[:12]}: {outcome.database_bytes} bytes "
          f"copied in {outcome.dump_s:.2f}s, {outcome.bytes_stored} new bytes stored, "
          f"{outcome.duration_s:.2f}s in all; policy key {outcome.policy_key}")
    return EXIT_OK


def recover_command(args: argparse.Namespace) -> int:
    from backup import crypto
    from backup.errors import BackupError
    from backup.passphrase import read_passphrase
    from dashboard.recovery.recover import RecoverError, Request, recover

    try:
        key = crypto.load_private_key(args.key, read_passphrase(args.passphrase_file))
        req = Request(repo=args.repo, key=key, config_out=args.config_out,
                      snapshot=args.snapshot, data_dir=args.data_dir,
                      database_url=args.database_url, force=args.force,
                      keep_database=args.keep_database)
        res = recover(req, now_utc())
    except (BackupError, RecoverError, OSError) as exc:
        print(f"error: recovery failed: {exc}", file=sys.stderr)
        return EXIT_FAIL
    t = res.timings
    print(f"recovered the dashboard of site {res.settings.site} from snapshot "
          f"{res.snapshot_id[:12]} ({res.snapshot_time}) in {t['total_s']:.1f}s "
          f"(restore {t['restore_s']:.1f}s, database {t['database_s']:.1f}s, "
          f"migrations {t['migrate_s']:.1f}s)")
    print(f"  database: {res.settings.database_url.split('@')[-1]}, schema "
          f"{res.schema_from} -> {res.schema_to}")
    print(f"  config: {res.config}")
    print(f"  restored: {', '.join(res.restored) or 'nothing else'}")
    if res.recreated:
        print(f"  re-created: {', '.join(res.recreated)}")
    print(f"  web sessions ended: {res.sessions_ended} (everyone logs in again)")
    print(f"  policy signing key: {res.policy_public_key}")
    if res.rekeyed:
        print("  THE POLICY KEY IS NEW: the nodes refuse its policies and receipts until each "
              "node's [policy] trusted_keys lists it (add it beside the old one, restart the "
              "node); see README, Operations, Recovering the dashboard")
    if "session_secret" in res.recreated:
        print("  the session pepper is new: API tokens issued before stop working; issue new "
              "ones")
    print("next: start the dashboard (`secroom dashboard run --config ...` or systemctl start "
          "secroom-dashboard); the nodes reconnect and send what they journaled meanwhile. "
          "Changes made on the dashboard after the backup are not in it: re-enter them (the "
          "review item 'dashboard rebuilt from its backup' lists what to check)")
    return EXIT_OK
