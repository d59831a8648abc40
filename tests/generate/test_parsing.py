"""Verdict and rating parsers on messy model text; unparseable answers give None, never a guess."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from preflab.generate.judges.parsing import parse_rating, parse_verdict


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[A]]", "A"),
        ("After weighing both... my final verdict is: [[B]]", "B"),
        ("Earlier I said [[A]] but on reflection [[B]]", "B"),
        ("[[C]]", "tie"),
        ("[[ tie ]]", "tie"),
        ("Verdict: A", "A"),
        ("**Final verdict:** Response B", "B"),
        ("Assistant B is better because it cites sources.", "B"),
        ("It's a tie.", "tie"),
        ("Both responses are equally helpful.", "tie"),
        ("I cannot decide.", None),
        ("Assistant A is better in tone but Assistant B is better in accuracy.", None),
        ("", None),
    ],
)
def test_parse_verdict(text: str, expected: str | None) -> None:
    assert parse_verdict(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Rating: 4", 4.0),
        ("**Rating:** 4/5", 4.0),
        ("Rationale: concise.\nScore: 3 out of 5", 3.0),
        ("Rating: [[5]]", 5.0),
        ('{"rating": 2, "rationale": "off topic"}', 2.0),
        ('```json\n{"score": 1}\n```', 1.0),
        ("I would rate it 3.", 3.0),
        ("4", 4.0),
        ("Overall 8/10.", 4.2),  # rescaled from /10 onto 1..5
        ("First draft rating: 2. Final rating: 4", 4.0),
        ("Rating: 7", None),  # out of range
        ("Good response, nothing to add.", None),
        ("Rating: N/A", None),
        ('{"rating": "high"}', None),
    ],
)
def test_parse_rating(text: str, expected: float | None) -> None:
    got = parse_rating(text, 1, 5)
    assert got == (pytest.approx(expected) if expected is not None else None)


@given(st.text(max_size=200))
def test_parse_rating_never_returns_out_of_range(text: str) -> None:
    got = parse_rating(text, 1, 5)
    assert got is None or 1 <= got <= 5


@given(
    st.integers(1, 5),
    st.sampled_from(["Rating: {}", "**Rating:** {}/5", "Score = {}", '{{"rating": {}}}']),
)
def test_parse_rating_reads_the_common_forms(value: int, template: str) -> None:
    assert parse_rating("Some rationale here.\n" + template.format(value), 1, 5) == value
