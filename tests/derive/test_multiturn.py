"""Multi-turn: one prompt per judged turn, earlier turns continuing with the chosen answer."""

from __future__ import annotations

import pytest

from preflab.derive import unroll_turns
from preflab.errors import InputError


def test_unroll_gives_one_pair_per_judged_turn_with_chosen_history():
    chat = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "chosen": "Hello!", "rejected": "What?"},
        {"role": "user", "content": "Tell me a joke"},
        {"role": "assistant", "chosen": "Knock knock.", "rejected": "No."},
    ]
    pairs = unroll_turns(chat)
    assert [p["prompt"] for p in pairs] == [
        [{"role": "user", "content": "Hi"}],
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
         {"role": "user", "content": "Tell me a joke"}],
    ]
    assert [(p["chosen"], p["rejected"]) for p in pairs] == [("Hello!", "What?"), ("Knock knock.", "No.")]


def test_unroll_rejects_a_judged_user_turn():
    with pytest.raises(InputError) as info:
        unroll_turns([{"role": "user", "chosen": "a", "rejected": "b"}])
    assert info.value.field == "conversation[0].role"


def test_unroll_rejects_a_judged_turn_without_rejected():
    with pytest.raises(InputError) as info:
        unroll_turns([{"role": "user", "content": "q"}, {"role": "assistant", "chosen": "a"}])
    assert info.value.field == "conversation[1].rejected"


@pytest.fixture
def two_turns(tables):
    first = tables.prompt("Hi")
    good, bad = tables.response(first, "Hello!"), tables.response(first, "What?")
    tables.pairwise(first, good, bad, preferred=good)
    # the second turn was collected after the rejected answer
    second = tables.prompt("Hi", "What?", "Tell me a joke")
    j, n = tables.response(second, "Knock knock."), tables.response(second, "No.")
    tables.pairwise(second, j, n, preferred=j)
    return tables


def test_later_turn_prompt_continues_with_the_chosen_answer(two_turns):
    result = two_turns.derive(multiturn="continue_chosen")
    prompts = [p for p in result.pairs.column("prompt").to_pylist() if len(p) == 3]
    assert prompts == [[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
                        {"role": "user", "content": "Tell me a joke"}]]
    assert result.counts["multiturn_rewritten"] == 1


def test_as_recorded_is_the_default_and_keeps_the_stored_prompt(two_turns):
    pairs = two_turns.derive().pairs
    prompts = [p for p in pairs.column("prompt").to_pylist() if len(p) == 3]
    assert prompts[0][1] == {"role": "assistant", "content": "What?"}


def test_unjudged_earlier_turns_are_left_alone(tables):
    p = tables.prompt("Hi", "Some earlier answer", "And now?")
    a, b = tables.response(p, "x"), tables.response(p, "y")
    tables.pairwise(p, a, b, preferred=a)
    result = tables.derive(multiturn="continue_chosen")
    assert result.pairs.column("prompt")[0].as_py()[1]["content"] == "Some earlier answer"
    assert "multiturn_rewritten" not in result.counts
