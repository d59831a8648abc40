"""Reading verdicts and ratings out of messy model text.

Judges answer in free text; these parsers accept the forms models actually produce
(``[[A]]``, ``Verdict: B``, ``**Rating:** 4/5``, ``{"rating": 4}``, ``Score: 4 out of 5``…)
and return None when nothing unambiguous is there, so the caller records a failure instead
of guessing.
"""

from __future__ import annotations

import json
import re
from typing import Literal

__all__ = ["Verdict", "parse_rating", "parse_verdict"]

Verdict = Literal["A", "B", "tie"]

_BRACKET = re.compile(r"\[\[\s*(A|B|C|TIE|Tie|tie)\s*\]\]")
_LABELLED = re.compile(
    r"(?:final\s+verdict|verdict|winner|better\s+response|answer)\s*(?:is)?\s*[:：\-]?\s*\**\s*"
    r"(?:assistant|response)?\s*\(?\s*\[?(A|B|C|tie)\b",
    re.IGNORECASE,
)
_PHRASE = re.compile(
    r"\b(?:assistant|response)\s+(A|B)\s+is\s+(?:better|superior|preferred)", re.IGNORECASE
)
_TIE_PHRASE = re.compile(
    r"\b(?:it'?s\s+a\s+tie|both\s+(?:responses\s+)?are\s+(?:equally|equal))", re.IGNORECASE
)


def parse_verdict(text: str) -> Verdict | None:
    """Return the pairwise verdict in ``text`` ("A", "B" or "tie"), or None if unclear.

    The last ``[[A]]``/``[[B]]``/``[[C]]`` wins (MT-Bench's format, Zheng et al. 2023); then a
    labelled verdict (``Verdict: A``); then a plain phrase (``Assistant B is better``) if only
    one side is named.

    >>> parse_verdict("Both are fine but A is clearer. [[A]]")
    'A'
    >>> parse_verdict("**Final verdict:** Response B")
    'B'
    >>> parse_verdict("[[C]]")
    'tie'
    >>> parse_verdict("I cannot decide.") is None
    True
    """
    marks = _BRACKET.findall(text)
    if marks:
        return _norm(marks[-1])
    labelled = _LABELLED.findall(text)
    if labelled:
        return _norm(labelled[-1])
    phrases = {_norm(m) for m in _PHRASE.findall(text)}
    if len(phrases) == 1:
        return phrases.pop()
    if _TIE_PHRASE.search(text):
        return "tie"
    return None


def _norm(mark: str) -> Verdict:
    m = mark.upper()
    return "tie" if m in ("C", "TIE") else m  # type: ignore[return-value]


_NUM = r"(\d+(?:\.\d+)?)"
_RATING_PATTERNS = [
    re.compile(
        r"(?:rating|score)\s*\**\s*[:：=]\s*\**\s*\[*\s*"
        + _NUM
        + r"(?:\s*(?:/|out\s+of)\s*(\d+))?",
        re.IGNORECASE,
    ),
    re.compile(
        r"(?:rate|rating|score)\s+(?:it|this(?:\s+response)?|the\s+response)?\s*(?:as|a|an|at)?\s*\**"
        + _NUM
        + r"(?:\s*(?:/|out\s+of)\s*(\d+))?",
        re.IGNORECASE,
    ),
    re.compile(r"\[\[\s*" + _NUM + r"\s*\]\]"),
    re.compile(r"(?<![\d.])" + _NUM + r"\s*(?:/|out\s+of)\s*(\d+)", re.IGNORECASE),
]


def parse_rating(text: str, low: float, high: float) -> float | None:
    """Return the rating in ``text`` if it is unambiguous and within ``[low, high]``, else None.

    Tries a JSON object with ``rating``/``score``, then ``Rating: 4`` forms (the last one
    wins, as models often restate a final rating), ``I would rate it 4``, ``[[4]]``, and a bare
    ``4/5``. A fraction whose denominator is not ``high`` is rescaled; a lone number is only
    accepted when the whole answer is that number.

    >>> parse_rating("**Rating:** 4/5 — clear and correct.", 1, 5)
    4.0
    >>> parse_rating('{"rating": 2, "rationale": "misses the question"}', 1, 5)
    2.0
    >>> parse_rating("Rationale: good. Rating: 9", 1, 5) is None
    True
    >>> parse_rating("It's decent.", 1, 5) is None
    True
    """
    stripped = text.strip()
    obj = _first_json_object(stripped)
    if obj is not None:
        for key in ("rating", "score", "Rating", "Score"):
            if key in obj:
                raw = obj[key]
                if not isinstance(raw, (int, float, str)):
                    return None
                try:
                    value = float(raw)
                except ValueError:
                    return None
                return value if low <= value <= high else None
    if re.fullmatch(r"\**\s*" + _NUM + r"\s*\**\.?", stripped):
        value = float(re.findall(_NUM, stripped)[0])
        return value if low <= value <= high else None
    for pattern in _RATING_PATTERNS:
        found = pattern.findall(stripped)
        if not found:
            continue
        last = found[-1]
        num, denom = (
            (last, "") if isinstance(last, str) else (last[0], last[1] if len(last) > 1 else "")
        )
        value = float(num)
        if denom and float(denom) not in (0.0, high):
            value = low + (value / float(denom)) * (high - low)
        return value if low <= value <= high else None
    return None


def _first_json_object(text: str) -> dict[str, object] | None:
    start = text.find("{")
    while start != -1:
        end = text.find("}", start)
        while end != -1:
            try:
                obj = json.loads(text[start : end + 1])
            except json.JSONDecodeError:
                end = text.find("}", end + 1)
                continue
            return obj if isinstance(obj, dict) else None
        start = text.find("{", start + 1)
    return None
