"""The USB agent's configuration: one typed model, validated once at start."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from usb_guard.errors import UsbGuardError
from usb_guard.medium_token import DEFAULT_TOKEN_OFFSET

NEW_DEVICE_MODES = {"unauthorized": 0, "authorized": 1, "internal_only": 2}


class UsbAgentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(min_length=1, max_length=64, description="this host's name in the policy")
    sysfs_root: Path = Path("/sys")
    dev_root: Path = Path("/dev")
    new_devices: Literal["unauthorized", "authorized", "internal_only", "unchanged"] = Field(
        default="unauthorized",
        description="what authorized_default is set to on every bus at start",
    )
    interface_control: bool = Field(
        default=True,
        description="authorise interfaces one by one (interface_authorized_default = 0), so a "
        "composite device keeps only its acceptable interfaces",
    )
    token_check: bool = Field(default=True, description="check the medium token on storage")
    token_offset: int = Field(default=DEFAULT_TOKEN_OFFSET, ge=0)
    accept_unbound_tokens: bool = Field(
        default=False,
        description="migration only: also accept v1 medium tokens (written before tokens were "
        "bound to the stick), which pass on a copy too; re-initialise those media instead",
    )
    verified_dir: Path | None = Field(
        default=None,
        description="where the agent marks disks whose medium passed its check; the udev rule "
        "79-secroom-usb-storage.rules hides USB disks without a mark from user space "
        "(default: run/secroom/usb-verified beside the sysfs root, i.e. /run/secroom/...)",
    )
    force_read_only: bool = Field(
        default=False, description="every registered medium is read-only on this host"
    )
    poll_seconds: float = Field(default=0.5, gt=0, le=60)


    @property
    def verified_path(self) -> Path:
        if self.verified_dir is not None:
            return self.verified_dir
        return self.sysfs_root.parent / "run" / "secroom" / "usb-verified"


class ConfigError(UsbGuardError):
    """The agent configuration file is missing or invalid."""


def load_config(path: Path, **overrides: object) -> UsbAgentConfig:
    """Load a TOML or JSON file; keys given in ``overrides`` (not None) win.

    A node config (it has a ``[node]`` table: name, site, broker, trusted policy keys) keeps the
    agent's settings in its ``[usb]`` table; a standalone agent file holds them at top level.
    """
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text.decode())
    except (ValueError, UnicodeDecodeError) as exc:
        kind = path.suffix.lstrip(".") or "TOML"
        raise ConfigError(f"{path} is not valid {kind}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a table of settings")
    if isinstance(data.get("node"), dict):
        data = data.get("usb", {})
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: [usb] must be a table of settings")
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return UsbAgentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid USB agent config {path}: {exc}") from exc
