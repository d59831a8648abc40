"""The leaderboard object, its JSON and its HTML page (parsed, checked with CSS selectors)."""

from __future__ import annotations

import json
import math

import lxml.html
import numpy as np
import polars as pl
import pytest

from preflab.arena import build_leaderboard, leaderboard_to_dict, render_leaderboard_html
from preflab.errors import InputError, UsageError


@pytest.fixture
def battles(simulate_battles) -> pl.DataFrame:
    df, _ = simulate_battles(
        np.array([1.0, 0.5, 0.0, -0.5]), 4_000, seed=21, tie_model="random", tie_share=0.1
    )
    n = df.height
    rng = np.random.default_rng(0)
    long_text = "# Title\n- a\n- **b**\n" + "word " * 50
    return df.with_columns(
        pl.Series("judge_id", [f"u{i % 9}" for i in range(n)]),
        pl.Series("is_anonymous", rng.random(n) > 0.05),
        pl.Series("response_a", [long_text if i % 3 else "short" for i in range(n)]),
        pl.Series("response_b", ["plain answer" for _ in range(n)]),
    )


def test_leaderboard_rows_are_sorted_and_every_rating_has_an_interval(battles) -> None:
    board = build_leaderboard(battles, rounds=30, seed=1)
    ratings = [r.rating for r in board.rows]
    assert ratings == sorted(ratings, reverse=True)
    assert [r.model for r in board.rows] == ["m00", "m01", "m02", "m03"]
    for row in board.rows:
        assert row.ci_low <= row.rating <= row.ci_high
        assert row.rank_low <= row.rank <= row.rank_high
        assert row.battles == row.wins + row.losses + row.ties
    assert board.hygiene is not None and board.hygiene.rows_out < board.hygiene.rows_in


def test_matrices_are_consistent(battles) -> None:
    board = build_leaderboard(battles, rounds=20, seed=1)
    counts = board.battle_counts
    assert np.array_equal(counts, counts.T)
    assert counts.sum() / 2 == board.settings["battles"]
    off = ~np.eye(4, dtype=bool)
    assert np.allclose((board.win_rate + board.win_rate.T)[off], 1.0)
    assert np.allclose((board.predicted_win + board.predicted_win.T)[off], 1.0)
    assert all(math.isnan(board.win_rate[i, i]) for i in range(4))


def test_json_has_ratings_with_intervals_and_settings(battles) -> None:
    board = build_leaderboard(battles, rounds=20, seed=3, anchor="m02", style_control=True)
    data = json.loads(json.dumps(leaderboard_to_dict(board)))
    assert data["settings"]["anchor"] == "m02"
    assert {"rating", "ci_low", "ci_high", "rank_interval"} <= set(data["ratings"][0])
    anchor_row = next(r for r in data["ratings"] if r["model"] == "m02")
    assert anchor_row["rating"] == pytest.approx(1000.0)
    assert data["win_rate"][0][0] is None
    assert {r["model"] for r in data["style_control"]["ratings"]} == set(data["models"])
    assert "length" in data["style_control"]["coefficients"]
    assert [s["name"] for s in data["hygiene"]["steps"]] == [
        "self_battle",
        "non_anonymous",
        "self_identified",
        "judge_cap",
    ]


def test_html_page_is_self_contained_and_has_every_section(battles) -> None:
    board = build_leaderboard(battles, rounds=20, seed=3, style_control=True)
    page = render_leaderboard_html(board, title="Test <board>")
    doc = lxml.html.fromstring(page)
    assert doc.cssselect("title")[0].text == "Test <board>"
    sections = ("ratings", "ratings-plot", "win-rate", "predicted-win", "battle-counts", "style")
    for section in (*sections, "hygiene"):
        assert doc.cssselect(f"section#{section}"), section
    rows = doc.cssselect("#ratings-table tbody tr")
    assert [r.cssselect("td.model")[0].text for r in rows] == [r.model for r in board.rows]
    for tr in rows:  # never a rating without its interval
        assert "–" in tr.cssselect("td.interval")[0].text
    assert len(doc.cssselect("#win-rate svg rect.cell")) == 16
    assert len(doc.cssselect("#battle-counts svg rect.cell")) == 16
    assert len(doc.cssselect("#ratings-plot svg g.rating")) == 4
    # offline: no scripts, no external resources
    assert not doc.cssselect("script")
    assert not doc.cssselect("[src]")
    assert not [e for e in doc.cssselect("link") if e.get("href")]


def test_bad_rule_is_rejected_before_any_work(battles) -> None:
    with pytest.raises(UsageError, match="ties must be one of"):
        build_leaderboard(battles, ties="none")  # type: ignore[arg-type]


def test_no_battles_left_after_hygiene_says_which_filter_took_them() -> None:
    battles = pl.DataFrame(
        {
            "model_a": ["x", "y"],
            "model_b": ["y", "x"],
            "outcome": ["a", "b"],
            "is_anonymous": [False, False],
        }
    )
    with pytest.raises(InputError, match="non_anonymous dropped 2"):
        build_leaderboard(battles)
