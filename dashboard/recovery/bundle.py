"""The folder the nightly job snapshots (tag "dashboard") and ``secroom recover`` reads back.

    recovery.json          the manifest (below)
    database.sqlite3       a consistent copy of the database (or database.pgdump)
    dashboard.toml         the dashboard's config, as the operator wrote it
    files/<name>           public material the config names (the broker's CA, the client
                           certificate), so a new machine finds what the old one had
    secrets/<name>.sealed  each secret sealed once more to the operators' public key (purpose
                           "dashboard-secret", AAD = its name): the policy signing key, the
                           session pepper, the broker password and TLS client key

The snapshot is already readable only with the operators' private key; the second seal keeps
the secrets out of every folder a plain ``backup restore`` or a drill writes: only
``secroom recover`` opens them, straight into the new dashboard's files (0600).

The manifest (JSON): format "secroom-dashboard-recovery", v 1, created (UTC), site, software,
schema (the Alembic revision of the copy), database {kind, file, bytes, sha256}, config {file,
sha256}, files and secrets {name: {file, path, sha256}}, policy_key "sealed" | "left_out" |
"absent", policy_public_key (base64url) and nodes (the node registry: name, key status, key).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from backup import crypto
from controller.compat import software_version
from dashboard.recovery.dump import FILES, Dump, DumpError, Kind
from dashboard.settings import DashboardSettings

FORMAT = "secroom-dashboard-recovery"
VERSION = 1
MANIFEST = "recovery.json"
CONFIG = "dashboard.toml"
PURPOSE = b"dashboard-secret"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def secret_paths(settings: DashboardSettings, *, all_secrets: bool = False) -> dict[str, Path]:
    """The secrets the config names (whether or not each exists); the policy key only if the
    config includes it in backups (or ``all_secrets``: where recover puts each)."""
    out: dict[str, Path] = {}
    backup = settings.backup
    include = all_secrets or backup is None or backup.include_policy_key
    if settings.policy_key_file is not None and include:
        out["policy_key"] = settings.policy_key_file
    if settings.session_secret_file is not None:
        out["session_secret"] = settings.session_secret_file
    mqtt = settings.mqtt
    if mqtt is not None and mqtt.password_file is not None:
        out["mqtt_password"] = mqtt.password_file
    if mqtt is not None and mqtt.tls is not None and mqtt.tls.key_file is not None:
        out["mqtt_tls_key"] = mqtt.tls.key_file
    return out


def public_paths(settings: DashboardSettings) -> dict[str, Path]:
    mqtt = settings.mqtt
    if mqtt is None or mqtt.tls is None:
        return {}
    out = {"mqtt_tls_ca": mqtt.tls.ca_file}
    if mqtt.tls.cert_file is not None:
        out["mqtt_tls_cert"] = mqtt.tls.cert_file
    return out


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def stage(folder: Path, settings: DashboardSettings, *, config_text: str, dump: Dump,
          schema: str | None, public_key: bytes, policy_public_key: str | None,
          nodes: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    """Write everything but the database (already in ``folder``) and the manifest."""
    (folder / CONFIG).write_text(config_text, encoding="utf-8")
    manifest: dict[str, Any] = {
        "format": FORMAT, "v": VERSION, "created": now.isoformat(timespec="seconds"),
        "site": settings.site, "software": software_version(), "schema": schema,
        "database": {"kind": dump.kind, "file": dump.path.name, "bytes": dump.bytes,
                     "sha256": _sha256(dump.path)},
        "config": {"file": CONFIG, "sha256": _sha256(folder / CONFIG)},
        "files": {}, "secrets": {}, "policy_public_key": policy_public_key, "nodes": nodes}
    for sub in ("files", "secrets"):
        (folder / sub).mkdir(mode=0o700, exist_ok=True)
    for name, path in public_paths(settings).items():
        if path.is_file():
            dest = folder / "files" / name
            dest.write_bytes(path.read_bytes())
            manifest["files"][name] = {"file": f"files/{name}", "path": str(path),
                                       "sha256": _sha256(dest)}
    for name, path in secret_paths(settings).items():
        if not path.is_file():
            continue
        sealed = crypto.seal_to(public_key, PURPOSE, path.read_bytes(), name.encode())
        dest = folder / "secrets" / f"{name}.sealed"
        _write_private(dest, sealed)
        manifest["secrets"][name] = {"file": f"secrets/{name}.sealed", "path": str(path),
                                     "sha256": _sha256(dest)}
    include = settings.backup is None or settings.backup.include_policy_key
    manifest["policy_key"] = ("sealed" if "policy_key" in manifest["secrets"]
                              else "left_out" if not include else "absent")
    _write_private(folder / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())
    return manifest


@dataclass
class Bundle:
    """A restored bundle: its manifest checked against the files beside it."""

    folder: Path
    manifest: dict[str, Any]
    kind: Kind = field(init=False)

    def __post_init__(self) -> None:
        m = self.manifest
        if m.get("format") != FORMAT:
            raise DumpError(f"{self.folder} holds no dashboard recovery bundle")
        if m.get("v") != VERSION:
            raise DumpError(f"recovery bundle version {m.get('v')} is not one this secroom "
                            f"reads ({VERSION}); use the secroom release that wrote it")
        self.kind = m["database"]["kind"]
        if FILES.get(self.kind) != m["database"]["file"]:
            raise DumpError("the recovery manifest names an unknown database file")
        entries = [m["database"], m["config"], *m["files"].values(), *m["secrets"].values()]
        for entry in entries:
            path = self.path(entry["file"])
            if not path.is_file() or _sha256(path) != entry["sha256"]:
                raise DumpError(f"{entry['file']} in the backup does not match its manifest")

    def path(self, rel: str) -> Path:
        target = (self.folder / rel).resolve()
        if self.folder.resolve() not in target.parents:
            raise DumpError(f"the manifest names a file outside the bundle: {rel!r}")
        return target

    @property
    def database(self) -> Path:
        return self.path(self.manifest["database"]["file"])

    @property
    def config_text(self) -> str:
        return self.path(self.manifest["config"]["file"]).read_text(encoding="utf-8")

    def secret(self, name: str, key: crypto.PrivateKey) -> bytes | None:
        entry = self.manifest["secrets"].get(name)
        if entry is None:
            return None
        return crypto.open_sealed(key, PURPOSE, self.path(entry["file"]).read_bytes(),
                                  name.encode())

    def public_file(self, name: str) -> bytes | None:
        entry = self.manifest["files"].get(name)
        return None if entry is None else self.path(entry["file"]).read_bytes()


def find(restored: Path) -> Bundle:
    """The bundle in a restored snapshot tree (its manifest sits at the staging folder)."""
    found = sorted(restored.rglob(MANIFEST))
    if len(found) != 1:
        raise DumpError(f"the snapshot holds {len(found)} recovery manifests, expected one")
    try:
        manifest = json.loads(found[0].read_bytes())
    except ValueError as exc:
        raise DumpError("the recovery manifest is not JSON") from exc
    return Bundle(found[0].parent, manifest)
