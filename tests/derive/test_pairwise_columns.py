"""The columnar pairwise path gives what the judgment-by-judgment path gives, row for row."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from preflab.derive.pairs import _derive
from preflab.derive.rules import DeriveConfig
from preflab.errors import InputError

# texts that differ only by outer whitespace, NFC or line endings count as identical
TEXTS = ["yes", "no", " yes ", "yes\x1c", "caf\u00e9", "cafe\u0301", "a\r\nb", "a\nb", "maybe"]
vote = st.fixed_dictionaries({
    "prompt": st.integers(0, 2),
    "a": st.sampled_from(TEXTS),
    "b": st.sampled_from(TEXTS),
    "judge": st.sampled_from(["j1", "j2"]),
    "outcome": st.sampled_from(["a", "b", "a", "b", "tie", "both_bad"]),
    "scale": st.sampled_from([2, 5, 7, 8]),
    "strength": st.integers(1, 4),
})
other = st.sampled_from(["ranking", "rating", "binary", "edit"])


def build(tables, specs, extras):
    prompts = [tables.prompt(f"prompt {k}") for k in range(3)]
    for s in specs:
        p = prompts[s["prompt"]]
        a, b = tables.response(p, s["a"], model="m1"), tables.response(p, s["b"], model="m2")
        if s["outcome"] == "tie":
            tables.pairwise(p, a, b, tie=True, judge=s["judge"])
        elif s["outcome"] == "both_bad":
            tables.pairwise(p, a, b, both_bad=True, judge=s["judge"])
        else:
            winner = a if s["outcome"] == "a" else b
            tables.pairwise(p, b, a, preferred=winner, scale=s["scale"],
                            strength=min(s["strength"], s["scale"] // 2), judge=s["judge"])
    p = prompts[0]
    r1, r2 = tables.response(p, "first other"), tables.response(p, "second other")
    for kind in extras:
        if kind == "ranking":
            tables.ranking(p, [[r1], [r2]])
        elif kind == "rating":
            tables.rating(p, [(r1, 3), (r2, 1)])
        elif kind == "binary":
            tables.binary(p, r1, True)
        else:
            tables.edit(p, r2, r1)


def both(tables, **options):
    config = DeriveConfig(**options)
    return (_derive(*tables.tables(), config, columnar=True),
            _derive(*tables.tables(), config, columnar=False))


@given(specs=st.lists(vote, max_size=30), extras=st.lists(other, max_size=4),
       tie_policy=st.sampled_from(["drop", "separate"]))
@settings(max_examples=120, deadline=None)
def test_columnar_pairs_ties_unpaired_and_counts_equal_the_reference(specs, extras, tie_policy):
    from tests.derive.conftest import Tables

    tables = Tables()
    build(tables, specs, extras)
    fast, slow = both(tables, tie_policy=tie_policy)
    assert slow.pairs.to_pylist() == fast.pairs.to_pylist()
    assert slow.ties.to_pylist() == fast.ties.to_pylist()
    assert slow.unpaired.to_pylist() == fast.unpaired.to_pylist()
    assert list(slow.counts.items()) == list(fast.counts.items())
    assert fast.pairs.schema == slow.pairs.schema


def test_a_missing_response_is_the_same_error_on_both_paths(tables):
    p = tables.prompt("Q")
    a, b = tables.response(p, "good"), tables.response(p, "bad")
    tables.pairwise(p, a, b, preferred=a)
    prompts, responses, judgments = tables.tables()
    responses = responses.filter(pa.array([rid != b.response_id for rid in
                                           responses.column("response_id").to_pylist()]))
    errors = []
    for columnar in (True, False):
        with pytest.raises(InputError) as caught:
            _derive(prompts, responses, judgments, DeriveConfig(), columnar=columnar)
        errors.append((str(caught.value), caught.value.field, caught.value.value))
    assert errors[0] == errors[1]
    assert errors[0][2] == b.response_id


def test_trimmed_characters_are_those_str_strip_removes():
    import sys

    from preflab.derive.pairwise_columns import _SPACE

    assert {c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace()} == set(_SPACE)
