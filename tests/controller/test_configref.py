"""README.md's configuration reference is generated from the config model and up to date."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from controller import configref
from controller.config import GatewayConfig

README = Path(__file__).resolve().parents[2] / "README.md"


def _models() -> dict[str, type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {GatewayConfig.__name__: GatewayConfig}
    for _, model in configref.sections(GatewayConfig):
        found[model.__name__] = model
    return found


def test_readme_reference_matches_the_model() -> None:
    text = README.read_text(encoding="utf-8")
    assert configref.replace_in(text, configref.render()) == text, (
        "README.md's configuration reference is stale: "
        "run python -m controller.configref --write README.md")


def test_every_field_of_every_section_is_listed() -> None:
    generated = configref.render()
    pairs: list[tuple[str, type[BaseModel]]] = [("top", GatewayConfig),
                                                *configref.sections(GatewayConfig)]
    for title, model in pairs:
        for name in model.model_fields:
            assert f"| `{name}` |" in generated, (title, name)
    assert "#### `[[doors]]`" in generated and "#### `[mqtt.tls]`" in generated


def test_notes_name_real_fields() -> None:
    models = _models()
    for model_name, field in configref.NOTES:
        assert model_name in models, model_name
        assert field in models[model_name].model_fields, (model_name, field)


def test_a_new_field_changes_the_reference() -> None:
    from pydantic import BaseModel, ConfigDict, Field

    class Probe(BaseModel):
        model_config = ConfigDict(extra="forbid")
        speed: int = Field(default=3, description="how fast")

    class Root(BaseModel):
        probe: Probe = Probe()

    out = configref.render(Root)
    assert "#### `[probe]`" in out and "| `speed` | integer | `3` | how fast |" in out


def test_a_reader_binding_is_an_exact_name_or_a_star_prefix() -> None:
    """The one rule for which PC/SC reader a binding names (PC/SC appends slot numbers)."""
    from controller.config import ReaderBinding

    exact = ReaderBinding(name="ACS ACR1252 00 00", role="printer", printer="p")
    prefix = ReaderBinding(name="Sony FeliCa Port/PaSoRi 4.0*", role="door_in", door="d")
    assert exact.matches("ACS ACR1252 00 00") and not exact.matches("ACS ACR1252 00 01")
    assert prefix.matches("Sony FeliCa Port/PaSoRi 4.0 01 00")
    assert not prefix.matches("Other Reader 00 00")
