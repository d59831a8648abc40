"""The judge filter of derive and export (``--judge``, ``DeriveConfig.judges``)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from preflab.cli.main import app
from preflab.derive import DeriveConfig, derive
from preflab.errors import UsageError
from preflab.formats.registry import read


def pku_row(better, safer):
    return {"prompt": "How do I pick a lock?", "response_0": "Use a pick.",
            "response_1": "Call a locksmith.", "is_response_0_safe": False,
            "is_response_1_safe": True, "better_response_id": better, "safer_response_id": safer}


@pytest.fixture
def pku(tmp_path):
    path = tmp_path / "pku.jsonl"
    path.write_text("\n".join(json.dumps(pku_row(0, 1)) for _ in range(3)) + "\n")
    return path


def test_one_judge_of_two_gives_that_preference_only_and_counts_the_rest(pku):
    chunk = read("pku-saferlhf", pku)
    result = derive(chunk.prompts, chunk.responses, chunk.judgments,
                    judges=("pku-saferlhf/harmlessness",))
    assert result.pairs.column("chosen").to_pylist() == ["Call a locksmith."] * 3
    assert {tuple(j) for j in result.pairs.column("judge_ids").to_pylist()} == {
        ("pku-saferlhf/harmlessness",)}
    assert result.counts["judgments_left_out_by_judge"] == 9  # 3 helpfulness + 6 safety labels
    assert result.unpaired.num_rows == 0
    assert json.loads(result.pairs.column("rule_params")[0].as_py())["judges"] == [
        "pku-saferlhf/harmlessness"]


def test_a_glob_pattern_keeps_every_matching_judge(pku):
    chunk = read("pku-saferlhf", pku)
    everything = derive(chunk.prompts, chunk.responses, chunk.judgments)
    globbed = derive(chunk.prompts, chunk.responses, chunk.judgments, judges=("pku-saferlhf/*",))
    assert globbed.pairs.num_rows == everything.pairs.num_rows == 6
    assert globbed.counts["judgments_left_out_by_judge"] == 0


def test_a_pattern_that_matches_no_judge_lists_the_judges(pku):
    chunk = read("pku-saferlhf", pku)
    with pytest.raises(UsageError) as info:
        derive(chunk.prompts, chunk.responses, chunk.judgments, judges=("pku/helpfulness",))
    assert info.value.field == "judge"
    assert "pku-saferlhf/harmlessness" in str(info.value)


def test_judges_must_be_a_list_not_one_string():
    with pytest.raises(UsageError):
        DeriveConfig(judges="pku-saferlhf/*")  # type: ignore[arg-type]


def test_the_derive_and_export_commands_take_judge(pku, tmp_path):
    runner = CliRunner()
    derived = runner.invoke(app, ["derive", "--from", f"pku-saferlhf:{pku}", "--judge",
                                  "pku-saferlhf/helpfulness", "--json"])
    assert derived.exit_code == 0, derived.output
    counts = json.loads(derived.stdout)["counts"]
    assert (counts["pairs"], counts["judgments_left_out_by_judge"]) == (3, 9)
    out = tmp_path / "dpo"
    exported = runner.invoke(app, ["export", "--from", f"pku-saferlhf:{pku}", "--format",
                                   "trl-preference", "--judge", "*/helpfulness", "--out", str(out),
                                   "--json"])
    assert exported.exit_code == 0, exported.output
    assert json.loads(exported.stdout)["counts"]["judgments_left_out_by_judge"] == 9
