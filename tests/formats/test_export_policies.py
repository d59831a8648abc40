"""Issue 18, export side: bad-row policies, echoing answers, one prompt convention, cards that load.

The HH-shaped rows below are written for these tests (HH-RLHF's layout, our own words): no
third-party row is committed.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import datasets
import pyarrow as pa
import pytest
from trl.data_utils import extract_prompt, is_conversational, maybe_extract_prompt, unpair_preference_dataset

from preflab.derive import assign_splits, derive
from preflab.errors import ExportRowError, UsageError
from preflab.formats.registry import read
from preflab.formats.row_policy import BAD_ROW_REASONS, UNKEEPABLE_REASONS
from preflab.formats.trl import (
    check_rows,
    to_trl_preference,
    to_trl_unpaired,
    write_rows,
    write_trl_preference,
    write_trl_unpaired,
)
from preflab.records import PAIR_SCHEMA, UNPAIRED_SCHEMA
from tests.export_inputs import ECHO_ROWS

# --- HH-shaped input (tests/export_inputs.py): an echoing chosen answer, a parroting rejected one


@pytest.fixture
def echo_file(tmp_path) -> Path:
    path = tmp_path / "echo.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in ECHO_ROWS)
    return path


@pytest.fixture
def echo(echo_file):
    chunk = read("hh-rlhf", echo_file)
    result = derive(chunk.prompts, chunk.responses, chunk.judgments)
    return result.pairs, chunk.judgments


def test_echoing_answers_are_exported_and_counted_as_notes(echo):
    pairs, judgments = echo
    kept, report = check_rows(pairs, judgments=judgments)
    assert kept.num_rows == 3 and report.skipped == {} and report.kept == {}
    assert report.notes == {"completion_repeats_prompt": 2}
    noted = [e for e in report.examples if e["action"] == "note"]
    assert sorted(e["line"] for e in noted) == [2, 3]  # the input file's own lines
    assert {e["source"] for e in noted} == {str(pairs.column("source")[0])}


@pytest.mark.parametrize("style", ["standard", "conversational"])
@pytest.mark.parametrize("prompt", ["explicit", "implicit"])
def test_echoing_answers_pass_every_style(echo, style, prompt):
    pairs, _ = echo
    assert to_trl_preference(pairs, style=style, prompt=prompt).num_rows == 3


def test_standard_implicit_export_gives_back_the_input_rows_byte_for_byte(echo):
    pairs, _ = echo
    t = to_trl_preference(pairs, style="standard", prompt="implicit")
    assert sorted(zip(t.column("chosen").to_pylist(), t.column("rejected").to_pylist(), strict=True)) == \
        sorted((r["chosen"], r["rejected"]) for r in ECHO_ROWS)


def test_standard_explicit_prompt_plus_chosen_is_the_input_transcript(echo):
    pairs, _ = echo
    t = to_trl_preference(pairs, style="standard")
    joined = {p + c for p, c in zip(t.column("prompt").to_pylist(), t.column("chosen").to_pylist(), strict=True)}
    assert joined == {r["chosen"] for r in ECHO_ROWS}


# --- one prompt convention per export -------------------------------------------------------


def test_every_standard_prompt_follows_one_convention_single_and_multi_turn(echo):
    pairs, _ = echo
    rows = to_trl_preference(pairs, style="standard", provenance="drop").to_pylist()
    assert {len(p) for p in pairs.column("prompt").to_pylist()} == {1, 3}  # both kinds present
    for row in rows:
        assert not is_conversational(row)
        assert row["prompt"].startswith("\n\nHuman: ") and row["prompt"].endswith("\n\nAssistant:")
        assert row["chosen"].startswith(" ") and not row["chosen"].startswith("  ")
        assert row["rejected"].startswith(" ")


def test_trl_recovers_the_explicit_prompt_from_the_implicit_export(echo):
    pairs, _ = echo
    explicit = {r["prompt_id"]: r for r in to_trl_preference(pairs, style="standard").to_pylist()}
    for row in to_trl_preference(pairs, style="standard", prompt="implicit").to_pylist():
        got = maybe_extract_prompt({"chosen": row["chosen"], "rejected": row["rejected"]})
        want = explicit[row["prompt_id"]]
        # TRL cuts at the longest common start, so it agrees wherever the answers differ at once
        if not want["chosen"].split()[0] == want["rejected"].split()[0]:
            assert (got["prompt"], got["chosen"], got["rejected"]) == (want["prompt"], want["chosen"],
                                                                    want["rejected"])


def test_plain_prompt_text_writes_the_user_message_and_a_spaced_completion():
    t = _pairs([[U_LONG]], ["Woof."], ["Meow."])
    row = to_trl_preference(t, prompt_text="plain", provenance="drop").to_pylist()[0]
    assert row == {"prompt": U_LONG["content"], "chosen": " Woof.", "rejected": " Meow."}
    assert extract_prompt({"chosen": row["prompt"] + row["chosen"],
                           "rejected": row["prompt"] + row["rejected"]})["prompt"] == row["prompt"]


def test_plain_prompt_text_refuses_multi_turn_prompts_by_default(echo):
    pairs, judgments = echo
    with pytest.raises(ExportRowError) as info:
        to_trl_preference(pairs, prompt_text="plain", judgments=judgments)
    assert info.value.reason == "prompt_not_plain" and info.value.line == 3
    assert info.value.path == pairs.column("source")[0].as_py()
    kept, report = check_rows(pairs, prompt_text="plain", on_bad_row="keep")
    assert (kept.num_rows, report.skipped) == (2, {"prompt_not_plain": 1})  # unkeepable


def test_unpaired_standard_rows_follow_the_same_convention(echo):
    from preflab.derive import unpair_pairs

    pairs, _ = echo
    rows = to_trl_unpaired(unpair_pairs(pairs), provenance="drop").to_pylist()
    assert all(r["prompt"].endswith("\n\nAssistant:") and r["completion"].startswith(" ") for r in rows)
    assert sum(r["label"] for r in rows) == 3


# --- each reason, each policy, counts -------------------------------------------------------

U = {"role": "user", "content": "Question?"}
U_LONG = {"role": "user", "content": "What does the fox say to the dog?"}
A = {"role": "assistant", "content": "Earlier answer."}
S = {"role": "system", "content": "Be brief."}


def _pairs(prompts, chosen, rejected, margins=None):
    n = len(prompts)
    return pa.table({
        "prompt_id": [f"p_{i}" for i in range(n)], "prompt": prompts, "chosen": chosen, "rejected": rejected,
        "chosen_id": [f"c_{i}" for i in range(n)], "rejected_id": [f"r_{i}" for i in range(n)],
        "margin": margins or [1.0] * n, "agreement": [None] * n, "split": ["train"] * n,
        "rule": ["pairwise_likert"] * n, "rule_params": ["{}"] * n, "judgment_ids": [[f"j_{i}"] for i in range(n)],
        "judge_ids": [["k"]] * n, "guideline_version": [None] * n, "batch_id": [None] * n, "source": [None] * n,
    }, schema=PAIR_SCHEMA)


# one row per reason, after a good row
CASES = {
    "empty_prompt": ([], "a", "b"),
    "empty_message": ([{"role": "user", "content": " "}], "a", "b"),
    "prompt_roles": ([U, U], "a", "b"),
    "empty_completion": ([U], "", "b"),
    "multi_turn_completion": ([U], "a\n\nHuman: more", "b"),
    "same_text": ([U], "same", " same"),
}


def _case_table(reasons):
    rows = [([U], "good", "bad")] + [CASES[r] for r in reasons]
    return _pairs([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])


@pytest.mark.parametrize("reason", sorted(CASES))
def test_error_names_the_pair_its_ids_and_the_reason(reason):
    with pytest.raises(ExportRowError) as info:
        check_rows(_case_table([reason]))
    err = info.value
    assert (err.row, err.reason) == (2, reason)
    assert err.record_ids == {"prompt_id": "p_1", "judgment_ids": ["j_1"], "chosen_id": "c_1", "rejected_id": "r_1"}
    assert str(err).startswith(f'field "{err.field}": pair 2 (prompt_id p_1, judgment j_1, chosen c_1, rejected r_1)')
    assert "--on-bad-row skip" in str(err)


@pytest.mark.parametrize("reason", sorted(CASES))
def test_skip_leaves_the_row_out_and_counts_its_reason(reason):
    kept, report = check_rows(_case_table([reason]), on_bad_row="skip")
    assert kept.column("prompt_id").to_pylist() == ["p_0"]
    assert report.skipped == {reason: 1} and report.rows_out == 1
    assert report.examples[0] | {"reason": reason, "action": "skipped", "row": 2} == report.examples[0]


@pytest.mark.parametrize("reason", sorted(CASES))
def test_keep_writes_what_the_format_can_hold_and_skips_the_rest(reason):
    kept, report = check_rows(_case_table([reason]), on_bad_row="keep")
    if reason in UNKEEPABLE_REASONS:
        assert (kept.num_rows, report.skipped, report.kept) == (1, {reason: 1}, {})
    else:
        assert (kept.num_rows, report.skipped, report.kept) == (2, {}, {reason: 1})


def test_counts_are_by_reason_over_many_rows():
    reasons = ["same_text", "empty_completion", "same_text", "prompt_roles", "empty_completion", "same_text"]
    _, report = check_rows(_case_table(reasons), on_bad_row="skip")
    assert report.skipped == {"prompt_roles": 1, "empty_completion": 2, "same_text": 3}
    assert list(report.skipped) == [r for r in BAD_ROW_REASONS if r in report.skipped]  # documented order


def test_missing_margin_is_a_bad_row_only_with_margin():
    t = _pairs([[U], [U]], ["a", "c"], ["b", "d"], margins=[1.0, None])
    assert check_rows(t)[0].num_rows == 2
    kept, report = check_rows(t, margin=True, on_bad_row="keep")
    assert (kept.num_rows, report.skipped) == (1, {"missing_margin": 1})


def test_missing_label_is_an_unkeepable_unpaired_reason():
    t = pa.table({"prompt_id": ["p_0", "p_1"], "prompt": [[U], [U]], "completion": ["a", "b"],
                  "completion_id": ["c_0", "c_1"], "label": [True, None]})
    kept, report = check_rows(t, kind="unpaired", on_bad_row="keep")
    assert (kept.num_rows, report.skipped) == (1, {"missing_label": 1})
    with pytest.raises(ExportRowError) as info:
        check_rows(t, kind="unpaired")
    assert str(info.value).startswith('field "label": unpaired row 2 (prompt_id p_1, completion c_1)')


def test_unknown_policy_is_a_usage_error():
    with pytest.raises(UsageError):
        check_rows(_case_table([]), on_bad_row="ignore")  # type: ignore[arg-type]


def test_skipped_rows_are_counted_on_the_card_and_in_the_result(tmp_path):
    result = write_trl_preference(_case_table(["same_text", "empty_completion"]), tmp_path / "x",
                                  on_bad_row="skip")
    assert result.rows.skipped == {"empty_completion": 1, "same_text": 1}
    assert result.split_counts == {"train": 1}
    card = (tmp_path / "x" / "README.md").read_text()
    assert "| `empty_completion` | a completion (chosen, rejected or completion) is empty | 1 | left out |" in card
    assert "- pair 3 (prompt_id `p_2`, chosen_id `c_2`, rejected_id `r_2`, judgment `j_2`): `empty_completion` " \
           "(skipped)" in card


def test_raw_row_formats_keep_every_row_with_keep(tmp_path):
    t = _case_table(["empty_completion", "same_text"])
    result = write_rows(t, tmp_path / "raw", format="jsonl", on_bad_row="keep")
    assert result.split_counts == {"train": 3}
    assert result.rows.kept == {"empty_completion": 1, "same_text": 1}
    with pytest.raises(ExportRowError):
        write_rows(t, tmp_path / "raw2", format="jsonl")
    assert not (tmp_path / "raw2").exists()


def test_an_export_left_with_no_row_says_why(tmp_path):
    t = _pairs([[U]], [""], ["b"])
    with pytest.raises(UsageError, match="empty_completion 1"):
        write_trl_preference(t, tmp_path / "x", on_bad_row="skip")


# --- the real HH sample, every format and style ---------------------------------------------


@pytest.fixture(scope="module")
def hh_pairs():
    from tests.conftest import hh_sample_path

    chunk = read("hh-rlhf", hh_sample_path())
    d = derive(chunk.prompts, chunk.responses, chunk.judgments, from_pairs="unpair")
    return assign_splits(d.pairs, None, seed=0), assign_splits(d.unpaired, None, seed=0), chunk.judgments


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "hf"])
@pytest.mark.parametrize(("style", "prompt", "prompt_text"), [
    ("standard", "explicit", "transcript"), ("standard", "implicit", "transcript"),
    ("conversational", "explicit", "transcript"), ("conversational", "implicit", "transcript"),
])
def test_hh_sample_exports_as_preference_data_in_every_style(hh_pairs, tmp_path, fmt, style, prompt, prompt_text):
    pairs, _, judgments = hh_pairs
    result = write_trl_preference(pairs, tmp_path / "x", style=style, prompt=prompt, margin=True, format=fmt,
                                  prompt_text=prompt_text, judgments=judgments)
    assert sum(result.split_counts.values()) == pairs.num_rows == 399
    assert result.rows.skipped == {} and result.rows.kept == {}
    ds = datasets.load_from_disk(str(tmp_path / "x")) if fmt == "hf" else datasets.load_dataset(str(tmp_path / "x"))
    assert {k: len(v) for k, v in ds.items()} == result.split_counts


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "hf"])
@pytest.mark.parametrize("style", ["standard", "conversational"])
def test_hh_sample_exports_as_unpaired_data(hh_pairs, tmp_path, fmt, style):
    _, unpaired, judgments = hh_pairs
    result = write_trl_unpaired(unpaired, tmp_path / "k", style=style, format=fmt, judgments=judgments)
    assert sum(result.split_counts.values()) == 798
    ds = datasets.load_from_disk(str(tmp_path / "k")) if fmt == "hf" else datasets.load_dataset(str(tmp_path / "k"))
    assert sum(ds["train"]["label"]) + sum(ds["test"]["label"]) == 399


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "hf"])
@pytest.mark.parametrize("kind", ["pairs", "unpaired"])
def test_hh_sample_exports_as_derived_rows(hh_pairs, tmp_path, fmt, kind):
    pairs, unpaired, judgments = hh_pairs
    t = pairs if kind == "pairs" else unpaired
    result = write_rows(t, tmp_path / "r", kind=kind, format=fmt, judgments=judgments)
    assert sum(result.split_counts.values()) == t.num_rows


@pytest.mark.parametrize("style", ["standard", "conversational"])
def test_hh_sample_exports_as_tokenized_reward_data(hh_pairs, tmp_path, style):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from preflab.formats.trl import write_reward_tokenized

    pairs, _, judgments = hh_pairs
    raw = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    raw.normalizer = normalizers.Lowercase()
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    raw.train_from_iterator(pairs.column("chosen").to_pylist(), trainers.WordLevelTrainer(
        vocab_size=500, special_tokens=["[UNK]", "[PAD]", "</s>"]))
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="[UNK]", pad_token="[PAD]", eos_token="</s>")
    tok.chat_template = "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} </s> {% endfor %}"
    result = write_reward_tokenized(pairs, tmp_path / "t", tok, style=style, margin=True, judgments=judgments)
    assert sum(result.split_counts.values()) == 399 and result.rows.skipped == {}


def test_hh_sample_explicit_standard_prompt_plus_answer_is_the_original_transcript(hh_pairs):
    """docs/export.md's byte-for-byte claim, explicit prompt: ``prompt + chosen`` is HH's ``chosen``."""
    from tests.conftest import hh_sample_path

    with gzip.open(hh_sample_path(), "rt", encoding="utf-8") as f:
        original = [json.loads(line) for line in f]
    t = to_trl_preference(hh_pairs[0], style="standard")
    prompts = t.column("prompt").to_pylist()
    assert {p + c for p, c in zip(prompts, t.column("chosen").to_pylist(), strict=True)} <= \
        {o["chosen"] for o in original}
    assert {p + r for p, r in zip(prompts, t.column("rejected").to_pylist(), strict=True)} <= \
        {o["rejected"] for o in original}
    assert t.num_rows == 399


def test_hh_sample_unpairs_with_trl_after_export(hh_pairs, tmp_path):
    pairs, _, _ = hh_pairs
    write_trl_preference(pairs, tmp_path / "x", provenance="drop")
    ds = datasets.load_dataset(str(tmp_path / "x"))
    assert len(unpair_preference_dataset(ds["train"])) == 2 * len(ds["train"])


# --- cards that load ------------------------------------------------------------------------


def _card_code(folder: Path) -> str:
    text = (folder / "README.md").read_text(encoding="utf-8")
    return re.search(r"## How to load it\n\n```python\n(.*?)```", text, re.S).group(1)


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "hf"])
def test_card_snippet_and_load_dataset_work_from_another_directory(tmp_path, monkeypatch, fmt):
    out = tmp_path / "deep" / "export"
    ties = pa.table({"prompt_id": ["p_t"], "response_a": ["x"], "response_b": ["y"], "split": ["train"]})
    t = _pairs([[U], [U_LONG], [U]], ["a", "b", "c"], ["d", "e", "f"])
    t = t.set_column(t.schema.get_field_index("split"), "split", pa.array(["train", "gold", "train"]))
    write_trl_preference(t, out, format=fmt, extras={"ties": ties})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    scope: dict = {}
    exec(_card_code(out), scope)  # noqa: S102 - the card's own snippet, as a user would paste it
    assert {k: len(v) for k, v in scope["ds"].items()} == {"train": 2, "gold": 1}
    ds = datasets.load_dataset(str(out))  # the YAML configs: paths relative to the card
    assert {k: len(v) for k, v in ds.items()} == {"train": 2, "gold": 1}
    if fmt != "hf":  # hf: the side tables are Parquet, outside the Arrow configs
        assert len(datasets.load_dataset(str(out), "ties")["train"]) == 1


def test_two_exports_in_folders_of_the_same_name_load_their_own_rows(tmp_path, monkeypatch):
    """``datasets`` caches a local folder by its name and its YAML configs: the data digest in the
    configs keeps two exports called ``export`` apart."""
    for name, answer in (("a", "first"), ("b", "second")):
        write_trl_preference(_pairs([[U]], [answer], ["no"]), tmp_path / name / "export")
    monkeypatch.chdir(tmp_path)
    got = [datasets.load_dataset(str(tmp_path / n / "export"))["train"]["chosen"] for n in ("a", "b")]
    assert got == [[" first"], [" second"]]


def test_card_names_the_trainer_its_arguments_and_the_prompt_convention(echo, tmp_path):
    pairs, _ = echo
    write_trl_preference(pairs, tmp_path / "x", margin=True)
    card = (tmp_path / "x" / "README.md").read_text()
    assert "`DPOTrainer(model=…, args=DPOConfig(…), train_dataset=ds[\"train\"]" in card
    assert "`RewardTrainer(" in card and "the `margin` column is used by its loss" in card
    assert "## Prompt convention\n\nStandard, transcript: every prompt" in card
    assert "| `completion_repeats_prompt` |" in card and "| 2 | written (note) |" in card
    write_trl_unpaired(_unpaired_table(), tmp_path / "k", style="conversational")
    kto = (tmp_path / "k" / "README.md").read_text()
    assert "`KTOTrainer(" in kto and "1 desirable and 1 undesirable" in kto
    assert "Conversational: every prompt is a list of `{role, content}` messages" in kto


def _unpaired_table():
    return pa.table({"prompt_id": ["p_0", "p_1"], "prompt": [[U], [U_LONG]], "completion": ["a", "b"],
                     "completion_id": ["c_0", "c_1"], "label": [True, False], "split": ["train", "train"]},
                    schema=pa.schema([f for f in UNPAIRED_SCHEMA if f.name in
                                      ("prompt_id", "prompt", "completion", "completion_id", "label", "split")]))


def test_card_and_result_state_how_much_is_enough(echo, tmp_path):
    pairs, _ = echo
    result = write_trl_preference(pairs, tmp_path / "x")
    uses = {u["use"]: (u["have"], u["status"]) for u in result.sufficiency["uses"]}
    assert uses == {"dpo_narrow": (3, "below"), "dpo_general_or_reward_model": (3, "below"),
                    "gold_eval": (0, "below")}
    card = (tmp_path / "x" / "README.md").read_text()
    assert "| DPO on a narrow task | 500–1,000 training pairs | 3 | below |" in card
    assert "497 more training pairs reach the minimum" in card
    assert "shared/reference/002" in card


def test_kto_tokenization_finds_every_standard_prompt_at_the_start_of_prompt_plus_completion(hh_pairs):
    """KTOTrainer tokenizes ``prompt`` and ``prompt + completion`` and warns when the first is not a
    prefix of the second; with one convention (transcript, completion after a space) and a
    GPT-2-style byte-level BPE trained on the sample, no row of the HH export triggers it."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from trl.data_utils import common_prefix_length

    _, unpaired, _ = hh_pairs
    rows = to_trl_unpaired(unpaired, provenance="drop").to_pylist()
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator([r["prompt"] + r["completion"] for r in rows],
                            trainers.BpeTrainer(vocab_size=3000, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))

    def mismatches(pairs_of_text):
        bad = 0
        for prompt, completion in pairs_of_text:
            p, full = tok.encode(prompt).ids, tok.encode(prompt + completion).ids
            bad += common_prefix_length(p, full) < len(p)
        return bad

    assert mismatches((r["prompt"], r["completion"]) for r in rows) == 0
    # the check can fail: a prompt ending in a space splits " word" across the boundary
    assert mismatches((r["prompt"] + " ", r["completion"].lstrip()) for r in rows) > 0.9 * len(rows)
