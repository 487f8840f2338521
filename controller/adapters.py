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
    from controller.config import GatewayConfig
    from controller.printing.settings import PrintSettings
    from controller.printing.types import CupsLike
    from readers.base import CardReader


def build_reader(config: GatewayConfig) -> CardReader:
    if config.readers.backend == "fake":
        from readers.fake import FakeReader

        return FakeReader()
    from readers.pcsc import PcscReaders
    from readers.verify.select import CardVerifier

    def bound(name: str) -> bool:
        return config.binding_for(name) is not None

    # the gateway hands the verifier the site card keys of each policy it applies
    return PcscReaders(reader_filter=bound if config.readers.bindings else None,
                       verifier=CardVerifier())


def build_pins(config: GatewayConfig) -> Any:
    from controller.gpio import make_pin_factory

    return make_pin_factory(config.gpio.backend)


def build_cups(settings: PrintSettings) -> CupsLike:
    from controller.printing.cups_adapter import CupsAdapter

    return CupsAdapter.from_settings(settings)


@dataclass(frozen=True)
class GatewayAdapters:
    reader: CardReader
    pins: Any
    cups: CupsLike | None


def for_gateway(config: GatewayConfig) -> GatewayAdapters:
    """Everything a gateway talks to, as its config says."""
    cups = build_cups(config.printing) if config.printing is not None else None
    return GatewayAdapters(reader=build_reader(config), pins=build_pins(config), cups=cups)
