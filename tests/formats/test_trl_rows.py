"""The column-wise row checks agree with the row-by-row checks on random tables."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from preflab.formats.bad_rows import check_rows
from preflab.formats.trl_rows import check_pair_rows, render_prompt_text, render_prompts, row_problem
from preflab.records import MESSAGES_TYPE

TEXT = st.sampled_from(["", " ", "Hi", "hello", "Hello ", "What does the fox say to the dog?",
                        "What does the fox say to the dog? Woof.", "a\n\nHuman: b", "é", "e\u0301"])
MESSAGE = st.fixed_dictionaries({"role": st.sampled_from(["system", "user", "assistant"]), "content": TEXT})
ROW = st.fixed_dictionaries({"prompt": st.lists(MESSAGE, max_size=4), "chosen": TEXT, "rejected": TEXT})


def first_bad_row(rows, plain=False):
    for i, r in enumerate(rows):
        if row_problem(r, plain=plain) is not None:
            return i + 1
    return None


def table(rows):
    return pa.table({
        "prompt": pa.array([r["prompt"] for r in rows], MESSAGES_TYPE),
        "chosen": pa.array([r["chosen"] for r in rows], pa.string()),
        "rejected": pa.array([r["rejected"] for r in rows], pa.string()),
    })


def column_first_bad(rows, plain=False):
    checks = check_pair_rows(table(rows), plain=plain)
    bad = checks.any_bad()
    return int(bad.argmax()) + 1 if bad.any() else None


@given(rows=st.lists(ROW, min_size=1, max_size=8), plain=st.booleans())
@settings(max_examples=300, deadline=None)
def test_column_checks_find_the_same_first_bad_row_as_row_checks(rows, plain):
    assert column_first_bad(rows, plain) == first_bad_row(rows, plain)


@given(rows=st.lists(ROW, min_size=1, max_size=8))
@settings(max_examples=200, deadline=None)
def test_skip_keeps_exactly_the_rows_the_row_checks_pass(rows):
    kept, report = check_rows(table(rows), on_bad_row="skip")
    expected = [r for r in rows if row_problem(r) is None]
    assert kept.num_rows == len(expected) == report.rows_out
    assert sum(report.skipped.values()) == len(rows) - len(expected)
    assert kept.column("chosen").to_pylist() == [r["chosen"] for r in expected]


@given(prompts=st.lists(st.lists(MESSAGE, min_size=1, max_size=4), min_size=1, max_size=8),
       transcript=st.booleans())
@settings(max_examples=200, deadline=None)
def test_column_rendering_matches_row_rendering(prompts, transcript):
    text, _ = render_prompts(pa.array(prompts, MESSAGES_TYPE), transcript=transcript)
    assert text.to_pylist() == [render_prompt_text(p, transcript=transcript) for p in prompts]
