"""Prefix bias (issue 15): the counted pairs and the reported figures describe the same pairs."""

from __future__ import annotations

import os

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from preflab.audit import audit_dataset
from preflab.audit.bias import PREFIX_MIN_CHARS, common_prefix_lengths, prefix_bias


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.text("abé", max_size=12), st.text("abé", max_size=12)), max_size=30))
def test_common_prefix_is_os_path_commonprefix(pairs: list[tuple[str, str]]) -> None:
    got = common_prefix_lengths([a for a, _ in pairs], [b for _, b in pairs]).tolist()
    assert got == [len(os.path.commonprefix([a, b])) for a, b in pairs]


def test_prefix_figures_are_those_of_the_flagged_pairs() -> None:
    shared = "I can help with that. Here is what I would do first: "
    df = pl.DataFrame({
        "chosen": [shared + "call them.", "Completely different answer here.", "No.", "Same text, twice here."],
        "rejected": [shared + "wait a day.", "Another reply, nothing shared.", "No, never.", "Same text, twice here."],
    })
    d = prefix_bias(df)
    assert d["shared_prefix_pairs"] == 1 and d["examples"] == [0]
    assert d["shared_mean_chars"] == len(shared)
    assert d["shared_mean_share"] == len(shared) / len(shared + "call them.")
    assert d["skipped"] == {"shorter response under min_chars": 1, "identical responses": 1}
    assert d["checked"] == 2 and len("No.") < PREFIX_MIN_CHARS


def test_hh_prefix_finding_does_not_contradict_itself(hh_pairs: pl.DataFrame) -> None:
    report = audit_dataset(hh_pairs, include_agreement=False)
    d = report["sections"]["prefix"]
    pre = np.asarray(d["values"])[d["examples"]]
    if d["shared_prefix_pairs"]:  # the mean reported is over the counted pairs
        assert d["shared_mean_share"] >= d["share_threshold"] and d["shared_mean_chars"] >= PREFIX_MIN_CHARS / 2
        assert pre.min() > 0
    text = next(f for f in report["findings"] if f["id"] == "prefix")["text"]
    assert f"{d['skipped']['shorter response under min_chars']} pairs whose shorter response" in text
