"""Hygiene filters: each drops what it names, and the summary says what and why."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from preflab.arena import apply_hygiene
from preflab.arena.hygiene import identity_terms


def _steps(summary) -> dict[str, tuple[int, bool]]:
    return {s.name: (s.dropped, s.applied) for s in summary.steps}


def test_non_anonymous_votes_are_dropped_and_unknown_kept() -> None:
    battles = pl.DataFrame(
        {
            "model_a": ["x", "x", "x"],
            "model_b": ["y", "y", "y"],
            "outcome": ["a", "b", "a"],
            "is_anonymous": [True, False, None],
        }
    )
    kept, summary = apply_hygiene(battles)
    assert kept["outcome"].to_list() == ["a", "a"]
    step = next(s for s in summary.steps if s.name == "non_anonymous")
    assert (step.dropped, step.note) == (1, "1 votes of unknown anonymity kept")


@pytest.mark.parametrize(
    "text",
    [
        "As ChatGPT-4... no, I am GPT-4, a model by OpenAI.",
        "I'm gpt 4.",
        "i am GPT4",
        "Claude here!",
        "As ChatGPT, I cannot browse.",
        "I was trained by Anthropic.",
    ],
)
def test_a_response_naming_either_model_drops_the_vote(text: str) -> None:
    battles = pl.DataFrame(
        {
            "model_a": ["gpt-4", "gpt-4"],
            "model_b": ["claude-2", "claude-2"],
            "outcome": ["a", "b"],
            "response_a": [text, "Paris is the capital."],
            "response_b": ["Sure.", "It is Paris."],
        }
    )
    kept, summary = apply_hygiene(battles)
    assert kept.height == 1
    assert kept["response_a"].to_list() == ["Paris is the capital."]
    assert _steps(summary)["self_identified"] == (1, True)


def test_names_of_models_outside_the_battle_and_substrings_do_not_count() -> None:
    battles = pl.DataFrame(
        {
            "model_a": ["gpt-4"],
            "model_b": ["vicuna-13b"],
            "outcome": ["a"],
            "response_a": ["Llama is an animal; cryptography is fun; chatgptish is no word."],
            "response_b": ["no names here"],
        }
    )
    kept, _ = apply_hygiene(battles)
    assert kept.height == 1


def test_extra_identity_terms_extend_the_match() -> None:
    battles = pl.DataFrame(
        {
            "model_a": ["gpt-4"],
            "model_b": ["vicuna-13b"],
            "outcome": ["a"],
            "response_a": ["Paris."],
            "response_b": ["I was made by LMSYS."],
        }
    )
    kept, _ = apply_hygiene(battles)
    assert kept.height == 1
    kept, _ = apply_hygiene(battles, extra_identity_terms={"vicuna-13b": ["LMSYS"]})
    assert kept.height == 0


def test_identity_terms_skip_common_family_words() -> None:
    assert identity_terms("llama-2-70b-chat") == ["llama-2-70b-chat", "llama"]
    assert identity_terms("command-r") == ["command-r"]


def test_judge_cap_keeps_first_votes_of_each_judge() -> None:
    battles = pl.DataFrame(
        {
            "model_a": ["x"] * 6,
            "model_b": ["y"] * 6,
            "outcome": ["a", "b", "a", "b", "tie", "a"],
            "judge_id": ["u1", "u1", "u1", "u2", "u1", None],
        }
    )
    kept, summary = apply_hygiene(battles, max_votes_per_judge=2)
    assert kept["judge_id"].to_list() == ["u1", "u1", "u2", None]
    step = next(s for s in summary.steps if s.name == "judge_cap")
    assert (step.dropped, step.note) == (2, "1 judges capped")


def test_self_battles_dropped_and_missing_columns_reported_not_applied() -> None:
    battles = pl.DataFrame({"model_a": ["x", "y"], "model_b": ["x", "x"], "outcome": ["a", "b"]})
    kept, summary = apply_hygiene(battles, max_votes_per_judge=5)
    assert kept.height == 1
    assert summary.rows_in == 2 and summary.rows_out == 1
    notes = {s.name: s.note for s in summary.steps if not s.applied}
    assert notes == {
        "non_anonymous": "no is_anonymous column",
        "self_identified": "no response_a/response_b text",
        "judge_cap": "no judge_id column",
    }
    assert summary.to_dict()["steps"][0] == {
        "name": "self_battle",
        "reason": "a model battling itself",
        "dropped": 1,
        "applied": True,
        "note": "",
    }


_ROW = st.tuples(
    st.sampled_from(["gpt-4", "claude-2", "vicuna-13b"]),
    st.sampled_from(["gpt-4", "claude-2", "vicuna-13b"]),
    st.sampled_from(["a", "b", "tie"]),
    st.sampled_from([True, False, None]),
    st.sampled_from(["fine answer", "I am Claude", "as gpt-4 I think", "ok"]),
    st.sampled_from(["u1", "u2", None]),
)


@settings(max_examples=50, deadline=None)
@given(st.lists(_ROW, max_size=30), st.sampled_from([None, 1, 3]))
def test_summary_accounts_for_every_vote(rows, cap) -> None:
    battles = pl.DataFrame(
        rows,
        schema={
            "model_a": pl.String,
            "model_b": pl.String,
            "outcome": pl.String,
            "is_anonymous": pl.Boolean,
            "response_a": pl.String,
            "judge_id": pl.String,
        },
        orient="row",
    ).with_columns(pl.lit("plain").alias("response_b"))
    kept, summary = apply_hygiene(battles, max_votes_per_judge=cap)
    assert summary.rows_in == len(rows)
    assert summary.rows_out == kept.height
    assert summary.rows_in - sum(s.dropped for s in summary.steps) == kept.height
    assert not (kept["model_a"] == kept["model_b"]).any()
    assert not (kept["is_anonymous"] == False).any()  # noqa: E712
