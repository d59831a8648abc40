"""`preflab demo --no-serve`: the workspace is imported, audited and exported (issue 2's main job)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from preflab.cli.main import app


@pytest.mark.sqlite
def test_demo_writes_audit_report_and_trl_export(
    tmp_path: Path, hh_sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFLAB_DEMO_DATA", str(hh_sample))
    ws = tmp_path / "ws"
    result = CliRunner().invoke(app, ["demo", "--workspace", str(ws), "--no-serve"])
    assert result.exit_code == 0, result.output

    report = json.loads((ws / "reports" / "audit.json").read_text())
    words = report["sections"]["length"]["words"]
    # HH-RLHF's known pattern: chosen is shorter more often than longer
    assert words["chosen_shorter"] > words["chosen_longer"]
    html = (ws / "reports" / "audit.html").read_text()
    assert html.lstrip().lower().startswith("<!doctype html")

    import datasets

    export = ws / "exports" / "trl-preference"
    loaded = {
        split: datasets.load_dataset("parquet", data_files=str(export / split / "*.parquet"),
                                     split="train")
        for split in ("train", "test")
    }
    assert sum(len(d) for d in loaded.values()) == 399
    assert {"prompt", "chosen", "rejected"} <= set(loaded["train"].column_names)
    # splits are grouped by prompt: no prompt in both
    assert not set(loaded["train"]["prompt_id"]) & set(loaded["test"]["prompt_id"])
    assert (export / "README.md").exists()
