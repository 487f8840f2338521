"""The one place that chooses real or fake adapters for a node, from its config.

Card reader: PC/SC (pyscard) or the in-memory fake (``[readers] backend``), plus the OSDP
readers (libosdp) the bindings name with ``kind = "osdp"``, each with its key file read here.
GPIO: a gpiozero pin factory (lgpio, RPi.GPIO, or gpiozero's MockFactory for a bench,
``[gpio] backend``). Printing: CUPS through pycups. Each vendor library is still imported only
by its own boundary module; this module only decides which one to build.
"""

from __future__ import annotations

import logging
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
    """The node's readers; raises readers.base.ReaderError (an OSDP key file missing, open to
    others or malformed: the message names the file, never the key)."""
    if config.readers.backend == "fake":
        from readers.fake import FakeReader

        return FakeReader()
    bindings = config.readers.bindings
    pcsc = [b for b in bindings if b.kind == "pcsc"]
    osdp = [b for b in bindings if b.kind == "osdp"]
    readers: list[CardReader] = []
    if pcsc or not bindings:
        from readers.pcsc import PcscReaders
        from readers.verify.select import CardVerifier

        def bound(name: str) -> bool:
            binding = config.binding_for(name)
            return binding is not None and binding.kind == "pcsc"

        # the gateway hands the verifier the site card keys of each policy it applies
        readers.append(PcscReaders(reader_filter=bound if bindings else None,
                                   verifier=CardVerifier()))
    if osdp:
        from readers.osdp import OsdpReaders, OsdpReaderSpec
        from readers.osdp_keys import load_scbk

        specs = []
        for b in osdp:
            assert b.port is not None and b.address is not None and b.key_file is not None
            specs.append(OsdpReaderSpec(name=b.name, port=str(b.port), address=b.address,
                                        scbk=load_scbk(b.key_file), baud=b.baud))
        readers.append(OsdpReaders(specs))
    if len(readers) == 1:
        return readers[0]
    from readers.multi import ReaderSet

    return ReaderSet(readers)


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
    from controller.camera.upload import Spool, StillSigner, Uploader
    from controller.keys import load_private, previous_path

    settings = config.cameras
    cameras = {c.id: build_camera(c) for c in settings.camera}
    # `secroom keys rotate` keeps the old key until the journals handed over: the stills
    # spooled under it are sealed again under the new key (their signatures stay the old key's)
    prev = previous_path(config.key_file)
    spool = Spool(settings.spool_dir or config.node.data_dir / "camera-spool", key,
                  previous=load_private(prev) if prev.exists() else None)
    resealed = spool.reseal()
    if resealed:
        logging.getLogger(__name__).info(
            "%d spooled still(s) sealed again under the rotated node key", resealed)
    uploader = (Uploader(settings.upload_url, config.node.name, settings.upload_ca_file)
                if settings.upload_url else None)
    return CameraService(settings, cameras, emit=emit, spool=spool, uploader=uploader,
                         sign=StillSigner(key, config.node.name))


@dataclass(frozen=True)
class GatewayAdapters:
    reader: CardReader
    pins: Any
    cups: CupsLike | None


def for_gateway(config: GatewayConfig) -> GatewayAdapters:
    """Everything a gateway talks to, as its config says."""
    cups = build_cups(config.printing) if config.printing is not None else None
    return GatewayAdapters(reader=build_reader(config), pins=build_pins(config), cups=cups)
