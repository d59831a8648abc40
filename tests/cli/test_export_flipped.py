"""``preflab export --drop-likely-flipped``: exactly the flagged pairs left out, and counted."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from tests.cli_process import run_cli
from tests.flip_data import crowd_with_ai, flip_judgments

from preflab.audit.flipped import drop_likely_flipped
from preflab.store.bulk import write_judgments, write_prompts, write_responses
from preflab.store.engine import open_workspace
from preflab.store.unit_of_work import write_scope


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, pa.Table]:
    url = f"sqlite:///{tmp_path_factory.mktemp('flip') / 'preflab.sqlite'}"
    crowd, _ = flip_judgments(crowd_with_ai(11, n=150), k=15, seed=11)
    engine = open_workspace(url)
    with write_scope(engine) as conn:
        write_prompts(conn, crowd.prompts)
        write_responses(conn, crowd.responses)
        write_judgments(conn, crowd.judgments)
    engine.dispose()
    return url, crowd.judgments


def _export(url: str, out: Path, *extra: str) -> dict:
    # the annotators' majority labels; the AI judge's judgments are evidence, not labels
    proc = run_cli(
        "export",
        "--db",
        url,
        "--format",
        "jsonl",
        "--rows",
        "pairs",
        "--aggregate",
        "majority",
        "--judge",
        "ann*",
        "--out",
        str(out),
        "--json",
        *extra,
    )
    assert 0 == proc.returncode, proc.stderr
    return json.loads(proc.stdout)


def _rows(out: Path) -> pl.DataFrame:
    return pl.concat(
        [pl.read_ndjson(f) for f in sorted(out.rglob("*.jsonl"))], how="diagonal_relaxed"
    )


def test_drop_likely_flipped_leaves_out_exactly_the_flagged_pairs(workspace, tmp_path):
    url, judgments = workspace
    everything = _export(url, tmp_path / "all")
    dropped = _export(url, tmp_path / "kept", "--drop-likely-flipped")
    all_rows, kept_rows = _rows(tmp_path / "all"), _rows(tmp_path / "kept")
    ids = ["prompt_id", "chosen_id", "rejected_id"]
    expected, n, _ = drop_likely_flipped(all_rows.select(ids).to_arrow(), judgments)
    assert n > 0
    assert {"likely_flipped": n} == dropped["skipped"]
    assert (
        everything["rows"]["rows_out"]
        == dropped["rows"]["rows_in"]
        == dropped["rows"]["rows_out"] + n
    )
    assert sorted(tuple(r[c] for c in ids) for r in expected.to_pylist()) == sorted(
        kept_rows.select(ids).rows()
    )
    card = (tmp_path / "kept" / "README.md").read_text(encoding="utf-8")
    assert "likely_flipped" in card


def test_a_higher_threshold_drops_fewer(workspace, tmp_path):
    url, _ = workspace
    low = _export(url, tmp_path / "low", "--drop-likely-flipped", "--flip-threshold", "0.5")
    high = _export(url, tmp_path / "high", "--drop-likely-flipped", "--flip-threshold", "0.9")
    assert high["skipped"].get("likely_flipped", 0) < low["skipped"]["likely_flipped"]


def test_drop_likely_flipped_is_for_pairs_only(workspace, tmp_path):
    url, _ = workspace
    proc = run_cli(
        "export",
        "--db",
        url,
        "--format",
        "trl-unpaired",
        "--from-pairs",
        "unpair",
        "--out",
        str(tmp_path / "kto"),
        "--drop-likely-flipped",
    )
    assert proc.returncode != 0
    assert "--drop-likely-flipped leaves out pairs" in proc.stderr + proc.stdout
    assert not (tmp_path / "kto").exists()


def test_project_gold_items_decide_their_pairs(tmp_path):
    from preflab import collect
    from preflab.collect import ProjectCreate

    url = f"sqlite:///{tmp_path / 'gold.sqlite'}"
    crowd, _ = flip_judgments(crowd_with_ai(12, n=120), k=10, seed=12)
    engine = open_workspace(url)
    # gold says the opposite of what the annotators of p0000..p0002 chose by majority
    majority = {r["prompt_id"]: r["chosen_id"] for r in _majority(crowd.judgments)}
    gold = [("p0000", "r0000a"), ("p0001", "r0001a"), ("p0002", "r0002a")]
    gold = [(p, r if majority[p] != r else r[:-1] + "b") for p, r in gold]
    with write_scope(engine) as conn:
        project = collect.create_project(conn, ProjectCreate(name="gold-test", scale=2))
        write_prompts(conn, crowd.prompts)
        write_responses(conn, crowd.responses)
        write_judgments(conn, crowd.judgments, project_id=project.project_id)
        collect.add_items(conn, project.project_id, [
            {"prompt_id": p, "response_ids": [p.replace("p", "r") + "a", p.replace("p", "r") + "b"],
             "is_gold": True, "gold_answer": {"preferred": r}} for p, r in gold])
    engine.dispose()
    out = _export(url, tmp_path / "out", "--project", "gold-test", "--drop-likely-flipped")
    without_gold = _export(url, tmp_path / "no-gold", "--drop-likely-flipped")  # the workspace
    kept = set(_rows(tmp_path / "out")["prompt_id"].to_list())
    kept_without = set(_rows(tmp_path / "no-gold")["prompt_id"].to_list())
    assert not {p for p, _ in gold} & kept
    assert {p for p, _ in gold} <= kept_without  # the annotators and the AI alone keep them
    assert out["skipped"]["likely_flipped"] >= without_gold["skipped"].get("likely_flipped", 0) + 3


def _majority(judgments: pa.Table) -> list[dict]:
    j = pl.from_arrow(judgments)
    pref = pl.col("pairwise").struct.field("preferred")
    h = j.filter(pl.col("judge_id").str.starts_with("ann")).with_columns(pref.alias("chosen_id"))
    counts = h.group_by("prompt_id", "chosen_id").agg(pl.len().alias("n"))
    return counts.sort(["prompt_id", "n"], descending=[False, True]).group_by(
        "prompt_id", maintain_order=True).first().to_dicts()
