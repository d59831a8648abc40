"""``preflab snapshot`` and ``preflab import snapshot``: real processes, real HH-RLHF sample."""

from __future__ import annotations

import json
from pathlib import Path

from preflab.store.engine import make_engine
from preflab.store.queries import read_judgments

from .test_import_cmd import _counts, run_cli


def test_snapshot_then_import_into_another_workspace(hh_sample: Path, tmp_path: Path) -> None:
    first, second, snap = tmp_path / "first", tmp_path / "second", tmp_path / "snap"
    proc = run_cli("import", "hh-rlhf", str(hh_sample), "--workspace", str(first),
                   "--project", "harmless")
    assert 0 == proc.returncode, proc.stderr
    proc = run_cli("snapshot", str(snap), "--workspace", str(first), "--project", "harmless",
                   "--json")
    assert 0 == proc.returncode, proc.stderr
    written = json.loads(proc.stdout)
    counts = _counts(first)
    assert {k: counts[k] for k in ("prompts", "responses", "judges", "judgments")} == written[
        "rows"]
    assert sorted(p.name for p in snap.iterdir()) == [
        "judges.parquet", "judgments.parquet", "prompts.parquet", "responses.parquet"]

    proc = run_cli("import", "snapshot", str(snap), "--workspace", str(second), "--json")
    assert 0 == proc.returncode, proc.stderr
    (summary,) = json.loads(proc.stdout)["imports"]
    assert 399 == summary["counts"]["judgments"]
    engines = [make_engine(f"sqlite:///{ws / 'preflab.sqlite'}") for ws in (first, second)]
    try:
        assert read_judgments(engines[0]).equals(read_judgments(engines[1]))
    finally:
        for engine in engines:
            engine.dispose()


def test_unknown_project_is_a_clear_error(tmp_path: Path) -> None:
    proc = run_cli("snapshot", str(tmp_path / "snap"), "--workspace", str(tmp_path / "ws"),
                   "--project", "nope")
    assert 1 == proc.returncode
    assert "no project 'nope'" in proc.stderr
    assert not (tmp_path / "snap").exists()


def test_help_teaches_the_round_trip() -> None:
    proc = run_cli("snapshot", "--help")
    assert 0 == proc.returncode, proc.stderr
    assert "preflab import snapshot" in proc.stdout
