"""What an admin types for the documents (clients, the office, the register, certificates):
typed, unknown keys refused, text stripped, and no individual number in any text field; a bad
input is one ReportError naming the fields, never echoing a value."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator

from dashboard.reports.data import ReportError
from dashboard.reports.guard import has_number
from dashboard.textguard import note_hit

M = TypeVar("M", bound=BaseModel)


class GuardedIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*")
    @classmethod
    def _no_number(cls, value: Any, info: ValidationInfo) -> Any:
        """A document handed to a client must not carry a redaction marker: the text is
        refused (the hit still counted, so the "number found" anomaly is raised)."""
        texts = value if isinstance(value, list) else [value]
        found = sum(1 for t in texts if isinstance(t, str) and has_number(t))
        if found:
            note_hit(info.field_name or "text", found, refused=True)
            raise ValueError("must not contain an individual number; name the person instead")
        return value


def parse(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ReportError("; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                                    for e in exc.errors())) from None
