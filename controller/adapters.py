"""The one place that chooses real or fake adapters for a node, from its config.

Card reader: PC/SC (pyscard) or the in-memory fake (``[readers] backend``). GPIO: a gpiozero pin
factory (lgpio, RPi.GPIO, or gpiozero's MockFactory for a bench, ``[gpio] backend``). Printing:
CUPS through pycups. Each vendor library is still imported only by its own boundary module;
this module only decides which one to build.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from controller.camera.service import CameraService, EmitEvent
    from controller.config import GatewayConfig
    from controller.printing.settings import PrintSettings
    from controller.printing.types import CupsLike
    from readers.base import CardReader


def build_reader(config: GatewayConfig) -> CardReader:
    if config.readers.backend == "fake":
        from readers.fake import FakeReader

        return FakeReader()
    from readers.pcsc import PcscReaders

    def bound(name: str) -> bool:
        return config.binding_for(name) is not None

    return PcscReaders(reader_filter=bound if config.readers.bindings else None)


def build_pins(config: GatewayConfig) -> Any:
    from controller.gpio import make_pin_factory

    return make_pin_factory(config.gpio.backend)


def build_cups(settings: PrintSettings) -> CupsLike:
    from controller.printing.cups_adapter import CupsAdapter

    return CupsAdapter.from_settings(settings)


def build_cameras(config: GatewayConfig, key: Ed25519PrivateKey,
                  emit: EmitEvent) -> CameraService | None:
    """The camera step from ``[cameras]`` (None without it): its adapters, spool and uploader."""
    if config.cameras is None:
        return None
    from controller.camera.http import build_camera
    from controller.camera.service import CameraService
    from controller.camera.upload import Spool, Uploader

    settings = config.cameras
    cameras = {c.id: build_camera(c) for c in settings.camera}
    spool = Spool(settings.spool_dir or config.node.data_dir / "camera-spool", key)
    uploader = (Uploader(settings.upload_url, key, config.node.name, settings.upload_ca_file)
                if settings.upload_url else None)
    return CameraService(settings, cameras, emit=emit, spool=spool, uploader=uploader)


@dataclass(frozen=True)
class GatewayAdapters:
    reader: CardReader
    pins: Any
    cups: CupsLike | None


def for_gateway(config: GatewayConfig) -> GatewayAdapters:
    """Everything a gateway talks to, as its config says."""
    cups = build_cups(config.printing) if config.printing is not None else None
    return GatewayAdapters(reader=build_reader(config), pins=build_pins(config), cups=cups)
