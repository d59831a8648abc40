"""Unpaired (KTO) rows: thumbs, both-bad, and unpairing of pairs."""

from __future__ import annotations

import datasets
from trl.data_utils import unpair_preference_dataset

from preflab.derive import derive_unpaired
from preflab.records import UNPAIRED_SCHEMA


def test_derive_unpaired_returns_thumbs_with_labels(tables):
    p = tables.prompt("Q")
    tables.binary(p, tables.response(p, "nice"), True, judge="u1")
    out = derive_unpaired(*tables.tables())
    assert out.schema.equals(UNPAIRED_SCHEMA)
    assert out.select(["completion", "label", "judge_ids"]).to_pylist() == [
        {"completion": "nice", "label": True, "judge_ids": ["u1"]}]


def test_unpair_turns_each_pair_into_a_desirable_and_an_undesirable_row(tables):
    p = tables.prompt("Q")
    a, b = tables.response(p, "good"), tables.response(p, "bad")
    tables.pairwise(p, a, b, preferred=a)
    out = derive_unpaired(*tables.tables(), from_pairs="unpair")
    assert out.select(["completion", "label", "rule"]).to_pylist() == [
        {"completion": "good", "label": True, "rule": "unpair"},
        {"completion": "bad", "label": False, "rule": "unpair"},
    ]


def test_unpair_agrees_with_trl_unpair_preference_dataset(tables):
    for k in range(5):
        p = tables.prompt(f"question {k}")
        a, b = tables.response(p, f"good {k}"), tables.response(p, f"bad {k}")
        tables.pairwise(p, a, b, preferred=a)
    pairs = tables.derive().pairs
    ours = derive_unpaired(*tables.tables(), from_pairs="unpair")
    trl_rows = unpair_preference_dataset(
        datasets.Dataset.from_dict({
            "prompt": [x[0]["content"] for x in pairs.column("prompt").to_pylist()],
            "chosen": pairs.column("chosen").to_pylist(),
            "rejected": pairs.column("rejected").to_pylist(),
        })
    )
    theirs = sorted((r["prompt"], r["completion"], r["label"]) for r in trl_rows)
    mine = sorted((r["prompt"][0]["content"], r["completion"], r["label"]) for r in ours.to_pylist())
    assert mine == theirs


def test_without_unpair_pairs_add_no_unpaired_rows(tables):
    p = tables.prompt("Q")
    a, b = tables.response(p, "good"), tables.response(p, "bad")
    tables.pairwise(p, a, b, preferred=a)
    assert derive_unpaired(*tables.tables()).num_rows == 0
