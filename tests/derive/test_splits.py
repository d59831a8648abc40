"""Splits grouped by prompt_id, deterministic, with a held-out gold set."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from preflab.derive import assign_splits, split_counts
from preflab.errors import UsageError


def _table(ids):
    return pa.table({"prompt_id": ids, "x": list(range(len(ids)))})


@given(
    ids=st.lists(st.sampled_from([f"p{i}" for i in range(30)]), min_size=1, max_size=200),
    seed=st.integers(0, 2**32),
    train=st.floats(0.0, 1.0),
)
@settings(max_examples=60, deadline=None)
def test_no_prompt_id_is_in_two_splits(ids, seed, train):
    out = assign_splits(_table(ids), {"train": train, "test": 1 - train}, seed=seed)
    seen: dict[str, str] = {}
    for pid, split in zip(out.column("prompt_id").to_pylist(), out.column("split").to_pylist(), strict=True):
        assert seen.setdefault(pid, split) == split


@given(ids=st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=50, unique=True))
@settings(max_examples=40, deadline=None)
def test_assignment_does_not_depend_on_row_order(ids):
    forward = assign_splits(_table(ids), seed=5)
    backward = assign_splits(_table(ids[::-1]), seed=5)
    f = dict(zip(ids, forward.column("split").to_pylist(), strict=True))
    b = dict(zip(ids[::-1], backward.column("split").to_pylist(), strict=True))
    assert f == b


def test_fractions_are_respected_on_many_prompts():
    out = assign_splits(_table([f"p{i}" for i in range(20_000)]), {"train": 0.8, "test": 0.2}, seed=1)
    counts = split_counts(out)
    assert counts["test"] / 20_000 == pytest.approx(0.2, abs=0.015)


def test_gold_prompts_are_held_out_whatever_their_hash():
    ids = [f"p{i}" for i in range(100)]
    out = assign_splits(_table(ids), {"train": 1.0}, gold_prompt_ids={"p3", "p50"})
    gold = [p for p, s in zip(ids, out.column("split").to_pylist(), strict=True) if s == "gold"]
    assert gold == ["p3", "p50"]


def test_different_seeds_give_different_splits():
    ids = [f"p{i}" for i in range(200)]
    a = assign_splits(_table(ids), seed=1).column("split").to_pylist()
    b = assign_splits(_table(ids), seed=2).column("split").to_pylist()
    assert a != b


def test_existing_split_column_is_replaced():
    t = pa.table({"prompt_id": ["a", "b"], "split": ["x", "x"]})
    out = assign_splits(t, {"only": 1.0})
    assert (out.column_names, out.column("split").to_pylist()) == (["prompt_id", "split"], ["only", "only"])


@pytest.mark.parametrize("fractions", [{"train": 0.9, "test": 0.2}, {"train": -0.1, "test": 1.1}, {}])
def test_bad_fractions_are_a_usage_error(fractions):
    with pytest.raises(UsageError) as info:
        assign_splits(_table(["a"]), fractions)
    assert info.value.field == "fractions"


def test_gold_name_cannot_also_be_a_fraction_split():
    with pytest.raises(UsageError):
        assign_splits(_table(["a"]), {"train": 0.5, "gold": 0.5})
