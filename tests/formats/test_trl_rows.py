"""The column-wise row checks agree with the row-by-row checks on random tables."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from preflab.errors import InputError
from preflab.formats.trl_rows import (
    _check_completion,
    _check_prompt,
    find_bad_pair,
    render_prompt_text,
    render_prompts,
)
from preflab.records import MESSAGES_TYPE, normalize_text

TEXT = st.sampled_from(["", " ", "Hi", "hello", "Hello ", "What does the fox say to the dog?",
                        "What does the fox say to the dog? Woof.", "a\n\nHuman: b", "é", "e\u0301"])
MESSAGE = st.fixed_dictionaries({"role": st.sampled_from(["system", "user", "assistant"]), "content": TEXT})
ROW = st.fixed_dictionaries({"prompt": st.lists(MESSAGE, max_size=4), "chosen": TEXT, "rejected": TEXT})


def first_bad_row(rows):
    for i, r in enumerate(rows):
        try:
            _check_prompt(i + 1, r["prompt"], None)
            text = render_prompt_text(r["prompt"])
            _check_completion(i + 1, "chosen", r["chosen"], text, None)
            _check_completion(i + 1, "rejected", r["rejected"], text, None)
            if normalize_text(r["chosen"]) == normalize_text(r["rejected"]):
                return i + 1
        except InputError:
            return i + 1
    return None


def table(rows):
    return pa.table({
        "prompt": pa.array([r["prompt"] for r in rows], MESSAGES_TYPE),
        "chosen": pa.array([r["chosen"] for r in rows], pa.string()),
        "rejected": pa.array([r["rejected"] for r in rows], pa.string()),
    })


@given(rows=st.lists(ROW, min_size=1, max_size=8))
@settings(max_examples=300, deadline=None)
def test_column_checks_find_the_same_first_bad_row_as_row_checks(rows):
    error = find_bad_pair(table(rows))
    assert (error.line if error else None) == first_bad_row(rows)


@given(prompts=st.lists(st.lists(MESSAGE, min_size=1, max_size=4), min_size=1, max_size=8),
       transcript=st.booleans())
@settings(max_examples=200, deadline=None)
def test_column_rendering_matches_row_rendering(prompts, transcript):
    text, _ = render_prompts(pa.array(prompts, MESSAGES_TYPE), transcript=transcript)
    assert text.to_pylist() == [render_prompt_text(p, transcript=transcript) for p in prompts]
