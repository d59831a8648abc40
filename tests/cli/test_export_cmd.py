"""``preflab derive`` and ``preflab export`` end to end: real processes on the HH-RLHF sample."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
from trl.data_utils import extract_prompt, is_conversational


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFLAB_")}
    env["COLUMNS"] = "200"
    return subprocess.run([sys.executable, "-m", "preflab.cli.main", *args],
                          capture_output=True, text=True, env=env, timeout=300, check=False)


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

    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    with gzip.open(hh_sample, "rt", encoding="utf-8") as f:
        texts = list(f)
    raw = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    raw.normalizer = normalizers.Lowercase()
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    raw.train_from_iterator(texts, trainers.WordLevelTrainer(
        vocab_size=2000, special_tokens=["[UNK]", "[PAD]", "</s>", "<|user|>", "<|assistant|>"]))
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="[UNK]", pad_token="[PAD]", eos_token="</s>")
    tok.chat_template = "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} </s> {% endfor %}"
    tok.save_pretrained(tmp_path / "tok")
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
