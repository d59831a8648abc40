"""The length-controlled finding of :func:`preflab.audit.audit_dataset` on planted data."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest

from preflab.audit import audit_dataset


def _pairs(p_longer: float, seed: int, n: int = 500) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    a_len, b_len = rng.integers(5, 200, n), rng.integers(5, 200, n)
    a_longer = a_len >= b_len
    longer_wins = rng.random(n) < p_longer
    c = np.where(longer_wins == a_longer, a_len, b_len)
    r = np.where(longer_wins == a_longer, b_len, a_len)
    return pl.DataFrame({"prompt_id": [f"p{i}" for i in range(n)],
                         "prompt": [f"question number {i}" for i in range(n)],
                         "chosen": [f"c{i} " + "w " * k for i, k in enumerate(c)],
                         "rejected": [f"r{i} " + "x " * k for i, k in enumerate(r)]})


def _finding(pairs: pl.DataFrame) -> dict[str, Any]:
    report = audit_dataset(pairs)
    return next(f for f in report["findings"] if f["id"] == "length_model")


def test_planted_length_bias_is_a_warning_with_the_rate_at_equal_length() -> None:
    f = _finding(_pairs(0.8, seed=1))
    assert f["severity"] == "warn"
    assert f["text"].startswith("Length preference beyond chance: at (almost) equal length the longer one")
    assert "at equal length the longer one is chosen" in f["text"]


@pytest.mark.parametrize("seed", [2, 3])
def test_clean_control_says_no_length_preference(seed: int) -> None:
    f = _finding(_pairs(0.5, seed=seed))
    assert f["severity"] == "ok"
    assert f["text"].startswith("No length preference beyond chance.")
