"""The node's one typed configuration, read from TOML and validated once at start.

Unknown keys are errors. Relative paths are resolved against the config file's folder. Secrets
(MQTT password, keys) are referenced by file path, never written inline.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from backup.config import BackupConfig
from controller.camera.settings import CameraSettings
from controller.clock import ClockMode
from controller.door import DoorConfig
from controller.host.config import HostAgentConfig
from controller.mqtt import MqttSettings
from controller.numguard import contains_my_number
from controller.printing.settings import PrintSettings
from controller.runtime import RuntimeSettings
from readers.base import ReaderRole
from usb_guard.config import UsbAgentConfig


class ConfigError(Exception):
    """The configuration file is missing, not TOML, or not valid; the message says where."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NodeSection(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    site: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")

    @field_validator("name", "site")
    @classmethod
    def _no_number(cls, value: str) -> str:
        # every event's envelope and every topic carries them (the journal scans only data)
        if contains_my_number(value):
            raise ValueError("must not hold an individual number (12 digits that pass the "
                             "check digit); choose another name")
        return value
    data_dir: Path = Path("/var/lib/secroom")
    key_file: Path | None = None
    journal: Path | None = None
    retention_days: int = Field(default=30, ge=1)
    clock: ClockMode = "auto"
    run_backups: bool = True  # the gateway runs [backup] nightly; false when a systemd timer does


class ReaderBinding(_Strict):
    """A reader and what it is for. ``kind = "pcsc"``: a PC/SC reader by exact name, or a prefix
    ending in '*'. ``kind = "osdp"``: an OSDP reader on a serial line (``port``, ``address``,
    ``baud``) held to the secure channel with the key in ``key_file`` (readers.osdp); ``name``
    is then the name events carry. Several OSDP readers may share a port (one RS-485 line,
    e.g. a door's entry and exit readers), each with its own address and key."""

    name: str = Field(min_length=1)
    kind: Literal["pcsc", "osdp"] = "pcsc"
    role: ReaderRole
    door: str | None = None
    printer: str | None = None
    port: Path | None = None  # osdp: the RS-485 adapter's tty, e.g. /dev/ttyUSB0
    address: int | None = Field(default=None, ge=0, le=126)  # osdp: the reader's address
    baud: Literal[9600, 19200, 38400, 57600, 115200] = 9600  # osdp
    key_file: Path | None = None  # osdp: 32 hex digits, mode 0600 (never logged)

    @model_validator(mode="after")
    def _fields_of_its_kind(self) -> ReaderBinding:
        if self.kind == "osdp":
            missing = [f for f in ("port", "address", "key_file") if getattr(self, f) is None]
            if missing:
                raise ValueError(f"OSDP reader {self.name!r} needs {', '.join(missing)}")
            if self.name.endswith("*"):
                raise ValueError(f"OSDP reader {self.name!r}: give an exact name, not a prefix")
        else:
            extra = [f for f in ("port", "address", "key_file") if getattr(self, f) is not None]
            if extra or self.baud != 9600:
                raise ValueError(f"PC/SC reader {self.name!r} takes no "
                                 f"{', '.join(extra or ['baud'])} (set kind = \"osdp\")")
        return self

    def matches(self, reader_name: str) -> bool:
        if self.name.endswith("*"):
            return reader_name.startswith(self.name[:-1])
        return reader_name == self.name


def _one_line_per_port(osdp: list[ReaderBinding]) -> None:
    """OSDP readers on one port share its RS-485 line (multidrop): each needs its own address
    there, and all of them the line's one baud rate."""
    by_address: dict[tuple[str, int | None], str] = {}
    baud_of: dict[str, ReaderBinding] = {}
    for b in osdp:
        port = str(b.port)
        if (port, b.address) in by_address:
            raise ValueError(f"OSDP readers {by_address[port, b.address]!r} and {b.name!r} both "
                             f"have address {b.address} on {port}: give each reader on a line "
                             "its own address (0-126)")
        by_address[port, b.address] = b.name
        first = baud_of.setdefault(port, b)
        if first.baud != b.baud:
            raise ValueError(f"OSDP readers {first.name!r} ({first.baud} baud) and {b.name!r} "
                             f"({b.baud} baud) share {port}: one line has one baud rate")


class ReadersSection(_Strict):
    backend: Literal["pcsc", "fake"] = "pcsc"
    bindings: list[ReaderBinding] = []


class GpioSection(_Strict):
    backend: Literal["mock", "lgpio", "rpigpio", "auto"] = "auto"


class PolicySection(_Strict):
    trusted_keys: list[Path] = Field(min_length=1)
    file: Path | None = None
    store: Path | None = None
    card_key_file: Path | None = None  # default data_dir/card.key (secroom policy card-key)
    # past the policy's expiry: "closed" decides as without a policy; "last_good" keeps it
    when_expired: Literal["closed", "last_good"] = "closed"


class MetricsSection(_Strict):
    """Prometheus metrics on a loopback port (controller.metrics); none when ``listen`` is
    unset (the default)."""

    listen: str | None = None  # e.g. "127.0.0.1:9108": IP:PORT, served by prometheus-client

    @field_validator("listen")
    @classmethod
    def _ip_port(cls, value: str | None) -> str | None:
        if value is not None:
            from controller.metrics import parse_listen

            parse_listen(value)
        return value


class GatewayConfig(_Strict):
    node: NodeSection
    mqtt: MqttSettings = MqttSettings()
    gpio: GpioSection = GpioSection()
    readers: ReadersSection = ReadersSection()
    doors: list[DoorConfig] = []
    policy: PolicySection
    printing: PrintSettings | None = None
    backup: BackupConfig | None = None
    usb: UsbAgentConfig | None = None
    host: HostAgentConfig | None = None
    metrics: MetricsSection = MetricsSection()
    cameras: CameraSettings | None = None

    @model_validator(mode="after")
    def _bindings_refer_to_known_things(self) -> GatewayConfig:
        door_ids = {d.id for d in self.doors}
        if len(door_ids) != len(self.doors):
            raise ValueError("door ids must be unique")
        printers = set(self.printing.printers) if self.printing else set()
        osdp = [b for b in self.readers.bindings if b.kind == "osdp"]
        if len({b.name for b in osdp}) != len(osdp):
            raise ValueError("OSDP reader names must be unique")
        _one_line_per_port(osdp)
        for b in self.readers.bindings:
            if b.role is ReaderRole.PRINTER:
                if not b.printer or b.printer not in printers:
                    raise ValueError(
                        f"reader {b.name!r} has role printer but printer {b.printer!r} is not in "
                        "[printing].printers"
                    )
            elif not b.door or b.door not in door_ids:
                raise ValueError(f"reader {b.name!r} refers to door {b.door!r}, not in [[doors]]")
        for w in self.cameras.watch if self.cameras else ():
            what, _, name = w.target.partition(":")
            if name not in (door_ids if what == "door" else printers):
                raise ValueError(f"[[cameras.watch]] target {w.target!r}: no such {what}")
        return self

    @property
    def key_file(self) -> Path:
        return self.node.key_file or self.node.data_dir / "node.key"

    @property
    def journal_path(self) -> Path:
        return self.node.journal or self.node.data_dir / "journal.sqlite"

    @property
    def policy_store(self) -> Path:
        return self.policy.store or self.node.data_dir / "policy.json"

    @property
    def card_key_file(self) -> Path:
        return self.policy.card_key_file or self.node.data_dir / "card.key"

    def runtime_settings(
        self, *, node: str | None = None, journal: Path | None = None
    ) -> RuntimeSettings:
        """Settings for a node runtime; the backup job and USB agent run as their own nodes."""
        return RuntimeSettings(
            node=node or self.node.name,
            site=self.node.site,
            journal=journal or self.journal_path,
            key_file=self.key_file,
            retention_days=self.node.retention_days,
            mqtt=self.mqtt,
            trusted_keys=self.policy.trusted_keys,
        )

    def binding_for(self, reader_name: str) -> ReaderBinding | None:
        for b in self.readers.bindings:  # an OSDP reader's name is never taken by a PC/SC prefix
            if b.kind == "osdp" and b.name == reader_name:
                return b
        for b in self.readers.bindings:
            if b.matches(reader_name):
                return b
        return None


def _resolve_paths(obj: Any, base: Path) -> Any:
    """Make every relative Path in a validated model absolute against ``base``."""
    if isinstance(obj, BaseModel):
        for name in type(obj).model_fields:
            value = getattr(obj, name)
            resolved = _resolve_paths(value, base)
            if resolved is not value:
                object.__setattr__(obj, name, resolved)
        return obj
    if isinstance(obj, Path):
        return obj if obj.is_absolute() else (base / obj)
    if isinstance(obj, list):
        out = [_resolve_paths(v, base) for v in obj]
        return out if any(a is not b for a, b in zip(out, obj, strict=True)) else obj
    return obj


def format_validation_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"  {where}: {err['msg']}")
    return "\n".join(lines)


def parse_config(data: dict[str, Any], *, base: Path) -> GatewayConfig:
    try:
        config = GatewayConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("invalid configuration:\n" + format_validation_error(exc)) from exc
    return _resolve_paths(config, base)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} not found") from exc
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc


def _parse_at(data: dict[str, Any], path: Path) -> GatewayConfig:
    try:
        return parse_config(data, base=path.resolve().parent)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def load_config(path: Path) -> GatewayConfig:
    return _parse_at(_read_toml(path), path)


def load_node_config(path: Path) -> GatewayConfig | None:
    """The node config in ``path`` if the file describes a node (it has a ``[node]`` table),
    else None: a backup operator's workstation keeps a backup-only file, which the feature's
    own loader reads. The file is read once; a node config is validated whole."""
    try:
        data = _read_toml(path)
    except ConfigError:
        return None  # the feature's own loader says what is wrong with the file
    return _parse_at(data, path) if isinstance(data.get("node"), dict) else None
