"""The column-wise row checks agree with the row-by-row checks on random tables."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from preflab.formats.bad_rows import check_rows
from preflab.formats.trl_rows import (
    _by_distinct,
    _Codes,
    check_pair_rows,
    render_prompt_text,
    render_prompts,
    row_problem,
)
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


COMPLETION = TEXT | st.none()
REPEATED_ROW = st.fixed_dictionaries({"prompt": st.lists(MESSAGE, max_size=4), "chosen": COMPLETION,
                                      "rejected": COMPLETION})


def repeats_prompt(row):
    said = (row["prompt"][-1]["content"] if row["prompt"] else "").strip()
    return any(c is not None and len(said) >= 20 and c.lstrip().startswith(said)
               for c in (row["chosen"], row["rejected"]))


@given(rows=st.lists(REPEATED_ROW, min_size=1, max_size=4), times=st.integers(3, 6))
@settings(max_examples=200, deadline=None)
def test_checks_on_repeated_texts_flag_every_copy_as_row_checks_do(rows, times):
    # repeated rows take the once-per-distinct-value path (issue 18); every copy must agree
    repeated = rows * times
    checks = check_pair_rows(table(repeated))
    assert checks.any_bad().tolist() == [row_problem(r) is not None for r in repeated]
    assert checks.notes["completion_repeats_prompt"].tolist() == [repeats_prompt(r) for r in repeated]


def test_distinct_evaluation_calls_the_check_once_per_distinct_pair():
    seen = []

    def check(a, b):
        seen.append(len(a))
        return pc.fill_null(pc.equal(a, b), False).to_numpy(zero_copy_only=False)

    a = pa.array(["x", "y", None, "x"] * 50)
    b = pa.array(["x", "z", "z", "x"] * 50)
    result = _by_distinct(check, _Codes(a), _Codes(b))
    assert seen == [3]
    assert result.tolist() == [True, False, False, True] * 50


def test_checks_on_mostly_distinct_texts_flag_the_rows_row_checks_flag():
    # past _SAMPLE_FROM rows a mostly distinct sample skips the distinct path; results stay the same
    prompt = [{"role": "user", "content": "What does the fox say to the dog?"}]
    rows = [{"prompt": prompt, "chosen": f"answer {i}", "rejected": f"other {i}"} for i in range(5000)]
    rows[10]["rejected"] = "answer 10 "
    rows[4000]["chosen"] = " "
    rows[4500]["chosen"] = "What does the fox say to the dog? Woof."
    checks = check_pair_rows(table(rows))
    assert np.flatnonzero(checks.any_bad()).tolist() == [10, 4000]
    assert np.flatnonzero(checks.notes["completion_repeats_prompt"]).tolist() == [4500]
