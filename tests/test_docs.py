"""The README documents every setting, and its command lines match the code."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from assay.settings import Settings

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    for field in fields(Settings):
        assert f"`ASSAY_{field.name.upper()}`" in README, field.name


def test_the_two_commands_exist() -> None:
    makefile = (Path(__file__).parent.parent / "Makefile").read_text()
    assert "make demo" in README and "make test" in README
    assert "\ndemo:" in makefile and "\ntest:" in makefile
    ci = (Path(__file__).parent.parent / ".ci" / "run").read_text()
    assert "make test" in ci
