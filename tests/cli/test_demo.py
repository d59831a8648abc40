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


# --- which data the demo uses (issue 18: a clone alone runs the demo and says what it used) ---


def test_demo_data_lookup_order(tmp_path: Path) -> None:
    from preflab.server.demo import HH_SAMPLE_NAME, find_demo_data

    given, folder, cache = tmp_path / "mine.jsonl", tmp_path / "shared", tmp_path / "ws" / "data"
    given.write_text('{"chosen": "x", "rejected": "y"}\n')
    (folder / HH_SAMPLE_NAME).parent.mkdir(parents=True)
    (folder / HH_SAMPLE_NAME).write_bytes(b"")
    cache.mkdir(parents=True)
    (cache / Path(HH_SAMPLE_NAME).name).write_bytes(b"")

    first = find_demo_data(given, folder, cache, network=False)
    assert (first.path, "PREFLAB_DEMO_DATA" in first.description) == (given, True)
    second = find_demo_data(None, folder, cache, network=False)
    assert second.path == folder / HH_SAMPLE_NAME and "PREFLAB_TEST_DATA" in second.description
    third = find_demo_data(None, tmp_path / "empty", cache, network=False)
    assert third.path == cache / Path(HH_SAMPLE_NAME).name
    assert "Hugging Face Hub" in third.description and "downloaded before" in third.description
    last = find_demo_data(None, None, tmp_path / "nothing", network=False)
    assert last.path is None and last.description.startswith("built-in synthetic sample")


def test_demo_data_named_but_missing_is_a_clear_error(tmp_path: Path) -> None:
    from preflab.errors import InputError
    from preflab.server.demo import find_demo_data

    with pytest.raises(InputError, match=r"no-such\.jsonl: no such file.*PREFLAB_DEMO_DATA") as err:
        find_demo_data(tmp_path / "no-such.jsonl", None, tmp_path, network=False)
    assert err.value.path == str(tmp_path / "no-such.jsonl")


@pytest.mark.sqlite
def test_demo_with_no_data_and_no_network_says_it_uses_builtin_items(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFLAB_")}
    env.update(HF_HUB_OFFLINE="1", COLUMNS="200")
    proc = subprocess.run([sys.executable, "-m", "preflab.cli.main", "demo", "--workspace",
                           str(tmp_path / "ws"), "--no-serve"],
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "Demo data: built-in synthetic sample (4 items written for the demo, not real data)" \
        in proc.stdout
    assert "PREFLAB_DEMO_DATA" in proc.stdout  # and how to get the real sample
    # nothing serves with --no-serve: the output says how to start the app, not "Open <url>"
    assert "Open http" not in proc.stdout
    assert "preflab serve --workspace" in proc.stdout
