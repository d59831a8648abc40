"""Docs that cannot drift: every setting is documented; every CLI command teaches with --help."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from preflab.cli.main import app
from preflab.settings import Settings

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_every_setting_is_documented() -> None:
    text = (DOCS / "settings.md").read_text()
    for name, field in Settings.model_fields.items():
        assert f"`{name}`" in text, f"setting {name} missing from docs/settings.md"
        assert f"PREFLAB_{name.upper()}" in text
        assert field.description, f"setting {name} has no description"


def _command_paths() -> list[list[str]]:
    import typer.main

    group = typer.main.get_command(app)
    paths: list[list[str]] = []

    def walk(cmd, prefix: list[str]) -> None:  # type: ignore[no-untyped-def]
        for name, sub in getattr(cmd, "commands", {}).items():
            paths.append([*prefix, name])
            walk(sub, [*prefix, name])

    walk(group, [])
    return paths


def test_cli_has_commands() -> None:
    assert _command_paths(), "no commands registered"


@pytest.mark.parametrize("path", _command_paths(), ids=lambda p: " ".join(p))
def test_every_command_has_help_text(path: list[str]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
    import typer.main

    cmd = typer.main.get_command(app)
    for name in path:
        cmd = cmd.commands[name]  # type: ignore[attr-defined]
    assert (cmd.help or "").strip(), f"`preflab {' '.join(path)}` has no help text"
