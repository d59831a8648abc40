"""Derivation on the real HH-RLHF sample (400 rows, read by the hh-rlhf reader)."""

from __future__ import annotations

import pytest

from preflab.derive import assign_splits, derive
from preflab.formats.registry import read
from preflab.formats.trl import to_trl_preference, validate_pairs


@pytest.fixture(scope="module")
def hh(request):
    from tests.conftest import hh_sample_path

    sample = hh_sample_path()

    chunk = read("hh-rlhf", sample)
    return chunk.prompts, chunk.responses, chunk.judgments


def test_every_hh_judgment_becomes_one_valid_pair(hh):
    result = derive(*hh)
    assert result.pairs.num_rows == hh[2].num_rows == 399
    validate_pairs(result.pairs)  # raises on the first bad row
    assert all(c != r for c, r in zip(result.pairs.column("chosen_id").to_pylist(),
                                      result.pairs.column("rejected_id").to_pylist(), strict=True))


def test_hh_conversations_that_continued_after_the_rejected_answer(hh):
    """5 sample conversations go on after an answer rejected at an earlier turn; the default
    keeps them as recorded, ``continue_chosen`` rewrites exactly those."""
    assert "multiturn_rewritten" not in derive(*hh).counts
    assert derive(*hh, multiturn="continue_chosen").counts["multiturn_rewritten"] == 5


def test_hh_splits_share_no_prompt(hh):
    pairs = assign_splits(derive(*hh).pairs, {"train": 0.8, "test": 0.2}, seed=11)
    by_split = {}
    for pid, split in zip(pairs.column("prompt_id").to_pylist(), pairs.column("split").to_pylist(), strict=True):
        by_split.setdefault(split, set()).add(pid)
    assert not by_split["train"] & by_split["test"]


def test_hh_standard_implicit_export_gives_back_the_original_transcripts_byte_for_byte(hh):
    """Import → derive → TRL standard/implicit export reproduces HH-RLHF's own rows."""
    import gzip
    import json

    from tests.conftest import hh_sample_path

    sample = hh_sample_path()

    with gzip.open(sample, "rt", encoding="utf-8") as f:
        original = {(o["chosen"], o["rejected"]) for o in map(json.loads, f)}
    exported = to_trl_preference(derive(*hh).pairs, style="standard", prompt="implicit")
    rows = set(zip(exported.column("chosen").to_pylist(), exported.column("rejected").to_pylist(), strict=True))
    assert len(rows) == 399
    assert rows <= original
