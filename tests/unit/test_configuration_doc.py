"""docs/configuration.md lists exactly the settings the code reads."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from streamagg.settings import Settings, env_name
from streamagg.settings_doc import configuration_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_the_checked_in_reference_is_the_generated_one() -> None:
    assert DOC.read_text() == configuration_markdown(), (
        "docs/configuration.md is stale: python -m streamagg.settings_doc > docs/configuration.md"
    )


def test_every_setting_is_documented_with_its_variable() -> None:
    text = DOC.read_text()
    for f in fields(Settings):
        assert f"`{env_name(f.name)}`" in text
        assert f.metadata.get("doc"), f"{f.name} has no description"
