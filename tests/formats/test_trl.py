"""TRL exports, loaded back with TRL's own data helpers and with ``datasets``."""

from __future__ import annotations

from pathlib import Path

import datasets
import pyarrow as pa
import pytest
from trl.data_utils import (
    extract_prompt,
    is_conversational,
    maybe_apply_chat_template,
    unpair_preference_dataset,
)
from trl.trainer.reward_trainer import DataCollatorForPreference

from preflab.errors import ExportRowError, UsageError
from preflab.formats.trl import (
    to_trl_preference,
    tokenize_reward_pairs,
    write_reward_tokenized,
    write_trl_preference,
    write_trl_unpaired,
)
from preflab.records import Message, Pair, Unpaired, make_prompt_id, records_to_table


@pytest.fixture
def tokenizer():
    """A word-level tokenizer trained here, with a small chat template (no hub downloads)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["[UNK]", "[PAD]", "</s>", "<|system|>", "<|user|>", "<|assistant|>"]
    words = ["What", "is", "2+2?", "two", "plus", "four", "five", "the", "answer", "Hi", "Hello", "Name", "a", "color", "Blue", "I", "refuse", "Capital", "of", "France", "Paris", "Lyon", "Be", "brief", "No", "blue", "no", "Earlier", "Question", "And", "then"]
    raw = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    raw.train_from_iterator([" ".join(words)], trainers.WordLevelTrainer(special_tokens=specials))
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="[UNK]", pad_token="[PAD]",
                                  eos_token="</s>")
    tok.chat_template = (
        "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} </s> {% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    return tok


SYSTEM_CHAT = [("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello!"), ("user", "Name a color.")]


def _msgs(turns):
    return [Message(role=r, content=c) for r, c in turns]


def make_pair(turns, chosen, rejected, split="train", **extra):
    msgs = _msgs(turns)
    return Pair(prompt_id=make_prompt_id(msgs), prompt=msgs, chosen=chosen, rejected=rejected,
                chosen_id=f"r_{chosen}", rejected_id=f"r_{rejected}", split=split,
                rule="pairwise_likert", rule_params={"tie_policy": "drop"}, judgment_ids=("j1",),
                judge_ids=("ann",), source="unit-test", **extra)


@pytest.fixture
def pairs() -> pa.Table:
    return records_to_table([
        make_pair([("user", "What is 2+2?")], "4.", "5.", margin=1.0),
        make_pair(SYSTEM_CHAT, "Blue.", "I refuse.", margin=0.5),
        make_pair([("user", "Capital of France?")], "Paris.", "Lyon.", split="test", margin=1 / 3),
    ])


def load(out: Path, fmt: str = "parquet") -> datasets.DatasetDict:
    """Load an export the way its card says: ``load_from_disk`` or the split files by name."""
    if fmt == "hf":
        return datasets.load_from_disk(str(out))
    builder = "parquet" if fmt == "parquet" else "json"
    files = {p.parent.name: str(p) for p in sorted(out.glob(f"*/data.{fmt}"))}
    return datasets.load_dataset(builder, data_files=files)


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "hf"])
@pytest.mark.parametrize("style", ["standard", "conversational"])
def test_explicit_export_loads_as_trl_preference_data(pairs, tmp_path, fmt, style):
    out = tmp_path / "export"
    result = write_trl_preference(pairs, out, style=style, format=fmt)
    ds = load(out, fmt)
    assert {k: len(v) for k, v in ds.items()} == {"train": 2, "test": 1} == result.split_counts
    row = ds["test"][0]
    assert is_conversational(row) is (style == "conversational")
    if style == "conversational":
        assert (row["prompt"], row["chosen"], row["rejected"]) == (
            [{"role": "user", "content": "Capital of France?"}],
            [{"role": "assistant", "content": "Paris."}],
            [{"role": "assistant", "content": "Lyon."}],
        )
    else:  # one convention for every prompt (issue 18): the HH transcript, completions after a space
        assert (row["prompt"], row["chosen"], row["rejected"]) == (
            "\n\nHuman: Capital of France?\n\nAssistant:", " Paris.", " Lyon.")
    assert row["rule"] == "pairwise_likert" and row["judge_ids"] == ["ann"]


def test_conversational_implicit_export_gives_back_the_prompt_through_extract_prompt(pairs, tmp_path):
    write_trl_preference(pairs, tmp_path / "x", style="conversational", prompt="implicit")
    ds = load(tmp_path / "x")
    assert "prompt" not in ds["train"].column_names
    row = next(r for r in ds["train"] if len(r["chosen"]) > 2)
    got = extract_prompt(row)
    assert got["prompt"] == [{"role": r, "content": c} for r, c in SYSTEM_CHAT]
    assert (got["chosen"], got["rejected"]) == ([{"role": "assistant", "content": "Blue."}],
                                                [{"role": "assistant", "content": "I refuse."}])


def test_standard_implicit_export_is_an_hh_style_transcript_trl_can_split(pairs, tmp_path):
    write_trl_preference(pairs, tmp_path / "x", style="standard", prompt="implicit")
    row = load(tmp_path / "x")["test"][0]
    assert row["chosen"] == "\n\nHuman: Capital of France?\n\nAssistant: Paris."
    got = extract_prompt(row)
    assert got["prompt"] == "\n\nHuman: Capital of France?\n\nAssistant:"
    assert (got["chosen"], got["rejected"]) == (" Paris.", " Lyon.")


def test_multi_turn_standard_prompt_is_a_transcript_and_completion_starts_with_a_space(pairs):
    t = to_trl_preference(pairs, style="standard")
    row = t.to_pylist()[1]
    assert row["prompt"] == ("\n\nSystem: Be brief.\n\nHuman: Hi\n\nAssistant: Hello!"
                             "\n\nHuman: Name a color.\n\nAssistant:")
    assert row["chosen"] == " Blue."


def test_margin_column_only_when_asked(pairs, tmp_path):
    write_trl_preference(pairs, tmp_path / "m", margin=True)
    write_trl_preference(pairs, tmp_path / "n")
    with_margin = load(tmp_path / "m")["train"]
    assert with_margin["margin"] == [1.0, 0.5]
    assert "margin" not in load(tmp_path / "n")["train"].column_names


def test_margin_export_refuses_pairs_without_margin(tmp_path):
    t = records_to_table([make_pair([("user", "q")], "edited", "original")])
    with pytest.raises(ExportRowError) as info:
        write_trl_preference(t, tmp_path / "x", margin=True)
    assert (info.value.field, info.value.row, info.value.reason) == ("margin", 1, "missing_margin")
    assert not (tmp_path / "x").exists()


def test_provenance_can_be_dropped(pairs):
    cols = to_trl_preference(pairs, style="conversational", provenance="drop").column_names
    assert cols == ["prompt", "chosen", "rejected"]


def test_conversational_export_renders_with_a_chat_template(pairs, tmp_path, tokenizer):
    write_trl_preference(pairs, tmp_path / "x", style="conversational", provenance="drop")
    row = load(tmp_path / "x")["train"][1]
    rendered = maybe_apply_chat_template(row, tokenizer)
    assert rendered["prompt"] == ("<|system|> Be brief. </s> <|user|> Hi </s> <|assistant|> Hello! </s> "
                                  "<|user|> Name a color. </s> <|assistant|>")
    assert rendered["chosen"].strip().startswith("Blue.")
    assert rendered["rejected"].strip().startswith("I refuse.")


def test_exported_pairs_unpair_with_trl(pairs, tmp_path):
    write_trl_preference(pairs, tmp_path / "x", style="conversational", provenance="drop")
    unpaired = unpair_preference_dataset(load(tmp_path / "x")["train"])
    assert sorted((r["completion"][0]["content"], r["label"]) for r in unpaired) == [
        ("4.", True), ("5.", False), ("Blue.", True), ("I refuse.", False)]


# --- validation ------------------------------------------------------------------------


def _raw_pairs(prompt, chosen, rejected):
    """A pair table that skips the Pair record's own checks, as a corrupted file would."""
    from preflab.records import PAIR_SCHEMA

    return pa.table({
        "prompt_id": ["p_x"], "prompt": [prompt], "chosen": [chosen], "rejected": [rejected],
        "chosen_id": ["a"], "rejected_id": ["b"], "margin": [None], "agreement": [None], "split": ["train"],
        "rule": ["r"], "rule_params": ["{}"], "judgment_ids": [["j"]], "judge_ids": [["k"]],
        "guideline_version": [None], "batch_id": [None], "source": [None],
    }, schema=PAIR_SCHEMA)


U = {"role": "user", "content": "Question?"}
LONG = {"role": "user", "content": "What does the fox say to the dog?"}
A = {"role": "assistant", "content": "Earlier answer."}


@pytest.mark.parametrize(
    ("prompt", "chosen", "rejected", "field"),
    [
        ([U, U], "a", "b", "prompt[1].role"),
        ([A, U], "a", "b", "prompt[0].role"),
        ([U, A], "a", "b", "prompt[1].role"),
        ([], "a", "b", "prompt"),
        ([{"role": "user", "content": "  "}], "a", "b", "prompt[0].content"),
        ([U], "", "b", "chosen"),
        ([U], "a", "  ", "rejected"),
        ([U], "same", "same ", "rejected"),
        ([U], "fine", "a\n\nHuman: more\n\nAssistant: more", "rejected"),
    ],
)
def test_bad_rows_raise_naming_row_and_field_and_write_nothing(tmp_path, prompt, chosen, rejected, field):
    with pytest.raises(ExportRowError) as info:
        write_trl_preference(_raw_pairs(prompt, chosen, rejected), tmp_path / "out")
    assert (info.value.row, info.value.field) == (1, field)
    assert "pair 1 (prompt_id p_x" in str(info.value)
    assert info.value.line is None  # no input line known: the pair number is not a line
    assert list(tmp_path.iterdir()) == []


def test_a_short_prompt_echoed_at_the_start_of_an_answer_is_allowed(tmp_path):
    t = _raw_pairs([{"role": "user", "content": "Hi"}], "Hi! How can I help?", "Go away.")
    assert to_trl_preference(t).column("chosen").to_pylist() == [" Hi! How can I help?"]


def test_unknown_style_is_a_usage_error(pairs):
    with pytest.raises(UsageError):
        to_trl_preference(pairs, style="chatml")  # type: ignore[arg-type]


# --- unpaired --------------------------------------------------------------------------


@pytest.fixture
def unpaired() -> pa.Table:
    rows = []
    for turns, completion, label in [([("user", "Hi")], "Hello!", True), (SYSTEM_CHAT, "No.", False)]:
        msgs = _msgs(turns)
        rows.append(Unpaired(prompt_id=make_prompt_id(msgs), prompt=msgs, completion=completion,
                             completion_id=f"r_{completion}", label=label, rule="binary_thumbs"))
    return records_to_table(rows)


@pytest.mark.parametrize("style", ["standard", "conversational"])
def test_unpaired_export_has_prompt_completion_label(unpaired, tmp_path, style):
    write_trl_unpaired(unpaired, tmp_path / "k", style=style)
    ds = load(tmp_path / "k")["train"]
    assert ds["label"] == [True, False]
    assert is_conversational(ds[0]) is (style == "conversational")
    if style == "conversational":
        assert ds[0]["completion"] == [{"role": "assistant", "content": "Hello!"}]
    else:
        assert (ds[0]["prompt"], ds[0]["completion"]) == ("\n\nHuman: Hi\n\nAssistant:", " Hello!")


def test_unpaired_conversational_renders_with_a_chat_template(unpaired, tmp_path, tokenizer):
    write_trl_unpaired(unpaired, tmp_path / "k", style="conversational", provenance="drop")
    row = load(tmp_path / "k")["train"][0]
    rendered = maybe_apply_chat_template(row, tokenizer)
    assert rendered["prompt"] == "<|user|> Hi </s> <|assistant|>"
    assert rendered["completion"].strip().startswith("Hello!")
    assert rendered["label"] is True


# --- tokenized reward data ------------------------------------------------------------


@pytest.fixture
def token_pairs() -> pa.Table:
    return records_to_table([
        make_pair([("user", "What is two plus two ?")], "four", "five", margin=1.0),
        make_pair([("user", "Hi"), ("assistant", "Hello"), ("user", "Name a color")], "blue", "no", margin=0.5),
    ])


def test_conversational_ids_are_the_chat_template_tokens_of_prompt_plus_answer(token_pairs, tokenizer):
    table, dropped = tokenize_reward_pairs(token_pairs, tokenizer)
    expected = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is two plus two ?"}, {"role": "assistant", "content": "four"}],
        tokenize=True, return_dict=True)["input_ids"]
    assert dropped == 0
    assert table.column("chosen_ids")[0].as_py() == list(expected)
    assert table.column("input_ids_chosen")[0].as_py() == list(expected)
    assert table.column("attention_mask_chosen")[0].as_py() == [1] * len(expected)


def test_standard_style_appends_eos(token_pairs, tokenizer):
    table, _ = tokenize_reward_pairs(token_pairs, tokenizer, style="standard", layout="trl")
    assert table.column("chosen_ids")[0].as_py()[-1] == tokenizer.eos_token_id
    assert "input_ids_chosen" not in table.column_names


def test_legacy_layout_has_only_the_four_classic_columns_and_the_split(token_pairs, tokenizer):
    table, _ = tokenize_reward_pairs(token_pairs, tokenizer, layout="legacy", provenance="drop")
    assert table.column_names == ["input_ids_chosen", "attention_mask_chosen",
                                  "input_ids_rejected", "attention_mask_rejected", "split"]


def test_rows_over_max_length_are_dropped_not_cut(token_pairs, tokenizer):
    full, _ = tokenize_reward_pairs(token_pairs, tokenizer)
    longest = [max(len(c), len(r)) for c, r in zip(full.column("chosen_ids").to_pylist(),
                                                   full.column("rejected_ids").to_pylist(), strict=True)]
    assert longest[0] != longest[1]
    table, dropped = tokenize_reward_pairs(token_pairs, tokenizer, max_length=min(longest))
    assert (table.num_rows, dropped) == (1, 1)
    kept = table.column("chosen_ids")[0].as_py()
    assert kept == full.column("chosen_ids")[longest.index(min(longest))].as_py()


def test_tokenized_export_collates_with_trl_preference_collator(token_pairs, tokenizer, tmp_path):
    result = write_reward_tokenized(token_pairs, tmp_path / "tok", tokenizer, margin=True)
    ds = load(tmp_path / "tok")["train"]
    batch = DataCollatorForPreference(pad_token_id=tokenizer.pad_token_id)(
        [{k: r[k] for k in ("chosen_ids", "rejected_ids", "margin")} for r in ds])
    assert batch["input_ids"].shape[0] == 4
    assert batch["margin"].tolist() == [1.0, 0.5]
    assert result.split_counts == {"train": 2}
    assert "tokenizer" in (tmp_path / "tok" / "README.md").read_text()


def test_conversational_needs_a_chat_template(token_pairs, tokenizer):
    tokenizer.chat_template = None
    with pytest.raises(UsageError):
        tokenize_reward_pairs(token_pairs, tokenizer)


# --- round trips, side tables, missing extras ------------------------------------------


@pytest.mark.parametrize(("style", "prompt_mode"), [("conversational", "explicit"), ("conversational", "implicit"),
                                                    ("standard", "explicit")])
def test_hh_export_reimports_with_the_trl_reader_to_the_same_pairs(style, prompt_mode, tmp_path):
    """import (hh-rlhf) → derive → export (TRL) → import (trl-preference) → derive: same pairs."""
    from tests.conftest import hh_sample_path

    sample = hh_sample_path()

    from preflab.derive import derive
    from preflab.formats.registry import read

    first = read("hh-rlhf", sample)
    pairs = derive(first.prompts, first.responses, first.judgments).pairs
    write_trl_preference(pairs, tmp_path / "x", style=style, prompt=prompt_mode, format="jsonl",
                         provenance="drop")
    again = read("trl-preference", tmp_path / "x" / "train" / "data.jsonl")
    back = derive(again.prompts, again.responses, again.judgments).pairs

    def key(t):
        return sorted(zip([tuple((m["role"], m["content"]) for m in p) for p in t.column("prompt").to_pylist()],
                          t.column("chosen").to_pylist(), t.column("rejected").to_pylist(), strict=True))

    if style == "standard":  # a transcript prompt comes back as one user message holding it
        assert back.num_rows == pairs.num_rows
        def texts(t):
            return sorted(x.strip() for x in t.column("chosen").to_pylist())

        assert texts(back) == texts(pairs)
    else:
        assert key(back) == key(pairs)


def test_ties_are_written_beside_the_splits_and_named_on_the_card(pairs, tmp_path):
    ties = pa.table({"prompt_id": ["p_t"], "response_a": ["x"], "response_b": ["y"], "split": ["train"]})
    write_trl_preference(pairs, tmp_path / "x", extras={"ties": ties})
    assert pa.parquet.read_table(tmp_path / "x" / "ties" / "train" / "data.parquet").num_rows == 1
    assert "Side table `ties/`" in (tmp_path / "x" / "README.md").read_text()
    assert set(load(tmp_path / "x")) == {"train", "test"}


def test_tokenized_export_without_transformers_is_a_dependency_error(token_pairs, monkeypatch):
    import sys

    from preflab.errors import DependencyError

    monkeypatch.setitem(sys.modules, "transformers", None)  # as if the extra were not installed
    with pytest.raises(DependencyError) as info:
        tokenize_reward_pairs(token_pairs, "some/tokenizer")
    assert "preflab[trl]" in str(info.value)


def test_error_row_numbers_count_in_the_whole_pair_table_not_the_split(tmp_path):
    good = make_pair([("user", "What is 2+2?")], "4.", "5.", split="test", margin=1.0)
    bad = make_pair([("user", "Capital of France?")], "Paris.", "Lyon.", split="train", margin=None)
    t = records_to_table([good, good.model_copy(update={"split": "train"}), bad])
    with pytest.raises(ExportRowError) as info:
        write_trl_preference(t, tmp_path / "x", margin=True)
    assert info.value.row == 3 and "pair 3 (" in str(info.value)
