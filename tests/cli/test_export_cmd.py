"""``preflab derive`` and ``preflab export`` end to end: real processes on the HH-RLHF sample."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
from trl.data_utils import extract_prompt, is_conversational

from tests.cli_process import run_cli
from tests.export_inputs import ECHO_ROWS, save_word_level_tokenizer


def load_split_files(out: Path, fmt: str = "parquet") -> datasets.DatasetDict:
    builder = "parquet" if fmt == "parquet" else "json"
    files = {p.parent.name: str(p) for p in sorted(out.glob(f"*/data.{fmt}"))}
    return datasets.load_dataset(builder, data_files=files)


@pytest.mark.parametrize("command", ["derive", "export"])
def test_help_shows_an_example(command):
    proc = run_cli(command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert f"preflab {command} --from hh-rlhf:" in proc.stdout


def test_export_hh_sample_as_conversational_preference_data(hh_sample, tmp_path):
    out = tmp_path / "hh"
    proc = run_cli("export", "--from", f"hh-rlhf:{hh_sample}", "--format", "trl-preference",
                   "--style", "conversational", "--margin", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert sum(summary["splits"].values()) == 399
    ds = load_split_files(out)
    assert {k: len(v) for k, v in ds.items()} == summary["splits"]
    row = ds["train"][0]
    assert is_conversational(row) and row["chosen"][0]["role"] == "assistant"
    assert set(ds["train"]["margin"]) == {1.0}
    train_ids, test_ids = set(ds["train"]["prompt_id"]), set(ds["test"]["prompt_id"])
    assert not train_ids & test_ids
    card = (out / "README.md").read_text()
    assert "pairwise_likert" in card and str(hh_sample) in card


def test_export_implicit_prompt_round_trips_through_extract_prompt(hh_sample, tmp_path):
    out = tmp_path / "hh"
    proc = run_cli("export", "--from", f"hh-rlhf:{hh_sample}", "--format", "trl-preference",
                   "--style", "conversational", "--prompt", "implicit", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    explicit = tmp_path / "hh-explicit"
    assert run_cli("export", "--from", f"hh-rlhf:{hh_sample}", "--format", "trl-preference",
                   "--style", "conversational", "--out", str(explicit)).returncode == 0
    implicit_rows = {r["prompt_id"]: r for r in load_split_files(out)["train"]}
    for row in load_split_files(explicit)["train"]:
        got = extract_prompt(implicit_rows[row["prompt_id"]])
        assert (got["prompt"], got["chosen"], got["rejected"]) == (row["prompt"], row["chosen"], row["rejected"])


def test_export_from_the_workspace_matches_export_from_the_file(hh_sample, tmp_path, db_url):
    imported = run_cli("import", "hh-rlhf", str(hh_sample), "--db", db_url, "--project", "harmless")
    assert imported.returncode == 0, imported.stderr
    from_db = tmp_path / "db"
    from_file = tmp_path / "file"
    proc = run_cli("export", "--db", db_url, "--project", "harmless", "--format", "parquet", "--out", str(from_db))
    assert proc.returncode == 0, proc.stderr
    assert run_cli("export", "--from", f"hh-rlhf:{hh_sample}", "--format", "parquet",
                   "--out", str(from_file)).returncode == 0

    def pairs(folder):
        rows = set()
        for split in ("train", "test"):
            t = pq.read_table(folder / split / "data.parquet")
            rows |= {(split, r["prompt_id"], r["chosen"], r["rejected"]) for r in t.to_pylist()}
        return rows

    assert len(pairs(from_db)) == 399
    assert pairs(from_db) == pairs(from_file)


def test_unknown_project_is_a_clear_error(tmp_path):
    proc = run_cli("export", "--workspace", str(tmp_path / "ws"), "--project", "nope",
                   "--format", "parquet", "--out", str(tmp_path / "out"))
    assert proc.returncode == 1
    assert "no project 'nope'" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_existing_out_folder_is_refused_and_kept(hh_sample, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    proc = run_cli("export", "--from", f"hh-rlhf:{hh_sample}", "--format", "trl-preference", "--out", str(out))
    assert proc.returncode == 2
    assert "--overwrite" in proc.stderr
    assert [p.name for p in out.iterdir()] == ["mine.txt"]


def test_tokenized_needs_a_tokenizer(hh_sample, tmp_path):
    proc = run_cli("export", "--from", f"hh-rlhf:{hh_sample}", "--format", "tokenized", "--out", str(tmp_path / "t"))
    assert proc.returncode == 2 and "--tokenizer" in proc.stderr


def test_tokenized_export_with_a_tokenizer_saved_on_disk(hh_sample, tmp_path):
    import gzip

    with gzip.open(hh_sample, "rt", encoding="utf-8") as f:
        save_word_level_tokenizer(list(f), tmp_path / "tok", vocab_size=2000)
    out = tmp_path / "rm"
    proc = run_cli("export", "--from", f"hh-rlhf:{hh_sample}", "--format", "tokenized", "--style", "conversational",
                   "--tokenizer", str(tmp_path / "tok"), "--max-length", "256", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    kept = sum(summary["splits"].values())
    assert kept + summary["dropped"]["too_long"] == 399
    t = pq.read_table(out / "train" / "data.parquet")
    lengths = [len(x) for x in t.column("chosen_ids").to_pylist()]
    assert max(lengths) <= 256 and t.column("input_ids_chosen").to_pylist() == t.column("chosen_ids").to_pylist()


def test_derive_writes_pair_tables_and_reports_counts(hh_sample, tmp_path):
    proc = run_cli("derive", "--from", f"hh-rlhf:{hh_sample}", "--tie-policy", "separate",
                   "--split", "train=0.8", "--split", "test=0.2", "--out", str(tmp_path / "d"), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["counts"]["pairs"] == 399
    pairs = pq.read_table(tmp_path / "d" / "pairs.parquet")
    assert pairs.num_rows == 399
    assert sum(summary["splits"]["pairs"].values()) == 399


def test_derive_with_bad_rule_name_exits_2(hh_sample):
    proc = run_cli("derive", "--from", f"hh-rlhf:{hh_sample}", "--ranking-rule", "everything")
    assert proc.returncode == 2
    assert "ranking_rule must be one of all, adjacent, best_vs_rest" in proc.stderr


# --- issue 18: bad-row policy, notes, sufficiency ---------------------------------------------


def test_on_bad_row_is_a_checked_choice():
    proc = run_cli("export", "--from", "hh-rlhf:x.jsonl", "--format", "trl-preference", "--out", "o",
                   "--on-bad-row", "ignore")
    assert proc.returncode == 2
    assert "'ignore' is not one of 'error', 'skip', 'keep'" in proc.stderr


def _multi_turn_lines(path: Path) -> list[int]:
    """Lines of the HH file whose conversation has more than one human turn (read independently)."""
    import gzip

    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [i for i, line in enumerate(f, 1) if json.loads(line)["chosen"].count("\n\nHuman:") > 1]


def test_plain_prompts_stop_at_the_first_multi_turn_row_naming_the_file_line_and_pair(hh_sample, tmp_path):
    out = tmp_path / "plain"
    proc = run_cli("export", "--from", f"hh-rlhf:{hh_sample}", "--format", "trl-preference",
                   "--prompt-text", "plain", "--out", str(out))
    assert proc.returncode == 1
    first_line = _multi_turn_lines(hh_sample)[0]
    message = " ".join(proc.stderr.split())
    assert f"{hh_sample}, line {first_line}, field \"prompt\": pair " in message
    assert "(prompt_id p_" in message and "judgment j_" in message and "--on-bad-row skip" in message
    assert not out.exists()


def test_skip_leaves_bad_rows_out_and_counts_them_everywhere(hh_sample, tmp_path):
    out = tmp_path / "plain"
    proc = run_cli("export", "--from", f"hh-rlhf:{hh_sample}", "--format", "trl-preference",
                   "--prompt-text", "plain", "--on-bad-row", "skip", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    from preflab.formats.registry import read

    imported = set(read("hh-rlhf", hh_sample).judgments.column("source_line").to_pylist())  # 399 of 400
    multi = len(set(_multi_turn_lines(hh_sample)) & imported)
    assert summary["skipped"] == {"prompt_not_plain": multi}
    assert sum(summary["splits"].values()) == 399 - multi
    assert {e["line"] for e in summary["rows"]["examples"]} <= set(_multi_turn_lines(hh_sample))
    assert f"| `prompt_not_plain` | with --prompt-text plain: the prompt is not one user message | {multi} " \
           "| left out |" in (out / "README.md").read_text()
    rows = load_split_files(out)["train"]
    assert all(not r["prompt"].startswith("\n\nHuman:") and r["chosen"].startswith(" ") for r in rows)


ECHO = ECHO_ROWS[1:]  # the two echoing rows


@pytest.mark.parametrize("args", [
    ("--format", "trl-preference"),
    ("--format", "trl-preference", "--prompt", "implicit"),
    ("--format", "trl-preference", "--style", "conversational"),
    ("--format", "trl-unpaired", "--from-pairs", "unpair"),
    ("--format", "jsonl"),
    ("--format", "parquet"),
    ("--format", "hf"),
])
def test_echoing_answers_are_exported_in_every_format_and_counted(tmp_path, args):
    src = tmp_path / "echo.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in ECHO), encoding="utf-8")
    proc = run_cli("export", "--from", f"hh-rlhf:{src}", *args, "--out", str(tmp_path / "o"), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["skipped"] == {} and summary["notes"] == {"completion_repeats_prompt": 2}
    assert sum(summary["splits"].values()) == (4 if "trl-unpaired" in args else 2)


def test_export_output_says_how_much_is_enough(hh_sample, tmp_path):
    proc = run_cli("export", "--from", f"hh-rlhf:{hh_sample}", "--format", "trl-preference",
                   "--out", str(tmp_path / "o"))
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())
    assert "How much is enough (399 usable pairs;" in text
    assert "DPO on a narrow task │ 500–1,000 training pairs" in text
    assert "row checks (error): every one of 399 rows passed." in text
    summary = json.loads(run_cli("export", "--from", f"hh-rlhf:{hh_sample}", "--format", "trl-preference",
                                 "--out", str(tmp_path / "j"), "--json").stdout)
    assert summary["sufficiency"]["uses"][0]["have"] == summary["splits"]["train"]
