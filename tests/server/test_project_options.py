"""Span flags and critique can be switched on from the CLI, not only from the API."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from preflab import collect
from preflab.cli.main import app
from preflab.server.db import Database


@pytest.mark.sqlite
def test_projects_create_with_span_labels_and_required_critique(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    result = CliRunner().invoke(app, [
        "projects", "create", "Spans", "--workspace", str(ws),
        "--span-labels", "factual error, unsafe", "--critique", "required",
    ])
    assert result.exit_code == 0, result.output
    db = Database(f"sqlite:///{ws / 'preflab.sqlite'}")
    try:
        with db.read() as s:
            project = collect.get_project(s, "spans")
    finally:
        db.dispose()
    assert project.config["span_flags"] is True
    assert project.config["span_labels"] == ["factual error", "unsafe"]
    assert project.config["critique"] == "required"


@pytest.mark.sqlite
def test_projects_create_rejects_unknown_critique_option(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, [
        "projects", "create", "X", "--workspace", str(tmp_path / "ws"), "--critique", "maybe",
    ])
    assert result.exit_code != 0
    assert "critique" in str(result.exception) + result.output
