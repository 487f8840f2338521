from __future__ import annotations

import pytest
from pydantic import ValidationError

from controller.printing.settings import PrintSettings


def test_defaults() -> None:
    s = PrintSettings(printers=["room"])
    assert s.hold_hours == 4
    assert s.release_mode == "all"
    assert s.redact_titles is True
    assert s.require_presence is False
    assert s.release_queue("room") == "room-release"


def test_release_queue_override_and_validation() -> None:
    s = PrintSettings(printers=["a", "b"], release_queues={"b": "b-out"})
    assert (s.release_queue("a"), s.release_queue("b")) == ("a-release", "b-out")
    with pytest.raises(ValidationError, match="not in printers"):
        PrintSettings(printers=["a"], release_queues={"x": "y"})
    with pytest.raises(ValidationError, match="cannot also be a hold queue"):
        PrintSettings(printers=["a", "a-release"])
    with pytest.raises(ValidationError, match="twice"):
        PrintSettings(printers=["a", "a"])


@pytest.mark.parametrize(
    "bad", [{"unknown": 1}, {"hold_hours": 0}, {"release_mode": "random"}, {"cups_port": 0}]
)
def test_bad_settings_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        PrintSettings(printers=["room"], **bad)  # type: ignore[arg-type]
