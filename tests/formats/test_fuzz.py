"""Arbitrary JSON in the right field names never crashes a reader: rows are read or reported."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from preflab.formats.registry import read

FIELDS = {
    "hh-rlhf": ["chosen", "rejected"],
    "shp": [
        "history",
        "human_ref_A",
        "human_ref_B",
        "labels",
        "score_A",
        "score_ratio",
        "domain",
        "c_root_id_A",
    ],
    "oasst": [
        "prompt",
        "message_id",
        "role",
        "text",
        "rank",
        "replies",
        "lang",
        "deleted",
        "parent_id",
        "message_tree_id",
    ],
    "ultrafeedback": [
        "instruction",
        "completions",
        "source",
        "response",
        "annotations",
        "model",
        "Rating",
        "overall_score",
        "fine-grained_score",
        "helpfulness",
    ],
    "helpsteer2": [
        "prompt",
        "response",
        "helpfulness",
        "correctness",
        "coherence",
        "complexity",
        "verbosity",
        "response_1",
        "response_2",
        "preference_strength",
        "split",
    ],
    "arena": [
        "model_a",
        "model_b",
        "winner",
        "judge",
        "conversation_a",
        "conversation_b",
        "role",
        "content",
        "tstamp",
        "anony",
        "language",
        "question_id",
    ],
    "trl-preference": ["prompt", "chosen", "rejected", "role", "content"],
    "trl-unpaired": ["prompt", "completion", "label", "role", "content"],
    "jsonl": [
        "prompt",
        "chosen",
        "rejected",
        "completion",
        "label",
        "judge",
        "system",
        "role",
        "content",
    ],
}


def _values(keys):
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(-5, 12)
        | st.floats(allow_nan=True)
        | st.text(max_size=8)
        | st.sampled_from(
            [
                "user",
                "assistant",
                "prompter",
                "model_a",
                "tie",
                "N/A",
                "3",
                "\n\nHuman: hi\n\nAssistant: yo",
                "bad \ud800",
            ]
        )
    )
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(keys), inner, max_size=5)
        ),
        max_leaves=12,
    )


@pytest.mark.parametrize("format", sorted(FIELDS))
def test_random_rows_are_read_or_reported(tmp_path_factory, format):
    keys = FIELDS[format]

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        rows=st.lists(
            st.dictionaries(st.sampled_from(keys), _values(keys), max_size=8),
            min_size=1,
            max_size=4,
        )
    )
    def check(rows):
        path = tmp_path_factory.mktemp("fuzz") / "rows.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        chunk = read(format, path, skip_invalid=True)  # anything else than a report is a bug
        assert chunk.counts["rows"] == len(rows)

    check()
