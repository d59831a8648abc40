"""The HelpSteer2 reader: attribute ratings and the separate preference file."""

from __future__ import annotations

import pytest

from preflab.errors import InputError
from preflab.formats.helpsteer import split_turns
from preflab.formats.registry import read
from preflab.records import make_prompt_id, make_response_id

RATING = {
    "prompt": "What is RLHF?",
    "response": "Training from human feedback.",
    "helpfulness": 3,
    "correctness": 4,
    "coherence": 4,
    "complexity": 1,
    "verbosity": 2,
}
PREFERENCE = {
    "split": "train",
    "prompt": "Say hi.",
    "response_1": "Hi!",
    "response_2": "Go away.",
    "preference_strength": -3,
    "preference_statement": "@Response 1 is much better",
    "preference_elaboration": "polite",
    "three_most_similar_preferences": [],
    "all_preferences_unprocessed": [-3, -3, -2],
}


def test_rating_row_gives_exact_scores(write_jsonl, records_of):
    chunk = read("helpsteer2", write_jsonl([RATING]))
    pid = make_prompt_id([{"role": "user", "content": "What is RLHF?"}])
    rid = make_response_id(pid, "Training from human feedback.")
    (j,) = records_of(chunk)["judgments"]
    assert (j.kind, j.prompt_id, j.response_ids, j.judge_id) == (
        "rating",
        pid,
        (rid,),
        "helpsteer2",
    )
    assert j.rating.scores == {
        rid: {"helpfulness": 3, "correctness": 4, "coherence": 4, "complexity": 1, "verbosity": 2}
    }
    assert (j.rating.scale_min, j.rating.scale_max) == (0, 4)


@pytest.mark.parametrize(
    ("strength", "preferred_index", "points", "tie"),
    [(-3, 0, 3, False), (-1, 0, 1, False), (0, None, 0, True), (2, 1, 2, False), (3, 1, 3, False)],
)
def test_preference_strength_maps_to_a_7_point_scale(
    write_jsonl, strength, preferred_index, points, tie
):
    chunk = read("helpsteer2", write_jsonl([dict(PREFERENCE, preference_strength=strength)]))
    (j,) = chunk.judgments.to_pylist()
    preferred = None if preferred_index is None else j["response_ids"][preferred_index]
    assert j["pairwise"] == {
        "scale": 7,
        "preferred": preferred,
        "strength": points,
        "tie": tie,
        "both_bad": False,
    }
    assert j["comment"] == "@Response 1 is much better"
    assert chunk.prompts.column("tags").to_pylist() == [["split:train"]]


def test_multi_turn_prompt_is_split_into_messages(write_jsonl):
    prompt = "Hi<extra_id_1>Assistant\nHello, how can I help?<extra_id_1>User\nTell a joke."
    chunk = read("helpsteer2", write_jsonl([dict(RATING, prompt=prompt)]))
    assert chunk.prompts.column("messages").to_pylist() == [
        [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello, how can I help?"},
            {"role": "user", "content": "Tell a joke."},
        ]
    ]
    assert split_turns("plain") == [{"role": "user", "content": "plain"}]


@pytest.mark.parametrize(
    ("row", "field"),
    [
        (dict(RATING, verbosity=5), "verbosity"),
        (dict(RATING, helpfulness=2.5), "helpfulness"),
        ({k: v for k, v in RATING.items() if k != "coherence"}, "coherence"),
        (dict(PREFERENCE, preference_strength=4), "preference_strength"),
        (dict(PREFERENCE, response_2=None), "response_2"),
    ],
)
def test_bad_values_are_named(write_jsonl, row, field):
    with pytest.raises(InputError) as info:
        read("helpsteer2", write_jsonl([row]))
    assert (info.value.line, info.value.field) == (1, field)
