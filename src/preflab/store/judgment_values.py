"""How a judgment's kind-specific value is kept in the ``judgments.value`` JSON column.

One JSON object per judgment, shaped like the record's value model (so the web app can store
``Judgment`` records and the bulk import can store Arrow rows the same way):

- ``pairwise``: ``{"scale", "preferred", "strength", "tie", "both_bad"}``
- ``ranking``: ``{"groups": [[response_id, ...], ...]}`` (best group first)
- ``rating``: ``{"scores": {response_id: {attribute: score}}, "scale_min", "scale_max"}``
- ``binary``: ``{"response_id", "label", "reasons"}``
- ``edit``: ``{"original_id", "edited_id"}``

Fine-grained feedback rides beside the kind's keys in the same object (the annotation app's
``span_flags`` and ``critique`` options, see :mod:`preflab.collect.submissions`): ``"spans"``,
a list of ``{"response_id", "start", "end", "label", "text"}``, only when there are spans, and
``"critique"``, only when there is one. Readers of the kind's value ignore both keys; the
``Judgment`` record and ``JUDGMENT_SCHEMA`` carry them in their ``spans`` and ``critique`` fields.

>>> value = {"scores": [{"response_id": "r1", "attribute": "help", "score": 3.0}],
...          "scale_min": 0.0, "scale_max": 4.0}
>>> stored = value_from_arrow("rating", value)
>>> stored["scores"]
{'r1': {'help': 3.0}}
>>> value_to_arrow("rating", stored) == value
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from preflab.errors import InputError
from preflab.records import Judgment, JudgmentKind

__all__ = [
    "FEEDBACK_KEYS",
    "KINDS",
    "split_feedback",
    "value_from_arrow",
    "value_from_record",
    "value_to_arrow",
]

KINDS = tuple(k.value for k in JudgmentKind)
#: Keys of the stored value that hold feedback beside the kind's value, not the value itself.
FEEDBACK_KEYS = ("spans", "critique")


def value_from_arrow(kind: str, value: Any) -> dict[str, Any]:
    """Return the JSON value of a judgment from its Arrow struct column of ``kind``.

    Args:
        kind: the judgment kind (``pairwise``, ``ranking``, ``rating``, ``binary``, ``edit``).
        value: the Python value of that kind's column in ``JUDGMENT_SCHEMA``.

    Raises:
        InputError: the kind is unknown or its value is missing.
    """
    if kind not in KINDS:
        raise InputError(
            f"unknown judgment kind {kind!r}; expected one of {', '.join(KINDS)}",
            field="kind",
            value=kind,
        )
    if value is None:
        raise InputError(f"a {kind} judgment needs its {kind} value", field=kind)
    if kind == "pairwise" or kind == "binary" or kind == "edit":
        out = dict(value)
        if kind == "binary" and out.get("reasons") is None:
            out["reasons"] = []
        return out
    if kind == "ranking":
        return {"groups": [list(group) for group in value]}
    if kind == "rating":
        scores: dict[str, dict[str, float]] = {}
        for s in value.get("scores") or ():
            scores.setdefault(s["response_id"], {})[s["attribute"]] = s["score"]
        return {
            "scores": scores,
            "scale_min": value.get("scale_min"),
            "scale_max": value.get("scale_max"),
        }
    raise AssertionError(kind)  # unreachable: every kind is handled above


def value_to_arrow(kind: str, stored: dict[str, Any]) -> Any:
    """Return the Arrow struct value of ``kind`` for a stored JSON value (inverse of the above)."""
    if kind == "ranking":
        return [list(group) for group in stored["groups"]]
    if kind == "rating":
        return {
            "scores": [
                {"response_id": rid, "attribute": attr, "score": float(score)}
                for rid, attrs in stored["scores"].items()
                for attr, score in attrs.items()
            ],
            "scale_min": stored.get("scale_min"),
            "scale_max": stored.get("scale_max"),
        }
    return stored


def value_from_record(judgment: Judgment) -> dict[str, Any]:
    """Return the JSON value of a :class:`~preflab.records.Judgment` record (with its feedback)."""
    kind = judgment.kind.value
    dumped: dict[str, Any]
    if kind == "ranking":
        assert judgment.ranking is not None  # the record validates that its value is set
        dumped = {"groups": [list(group) for group in judgment.ranking]}
    else:
        dumped = getattr(judgment, kind).model_dump(mode="json")
    if judgment.spans:
        dumped["spans"] = [span.model_dump(mode="json") for span in judgment.spans]
    if judgment.critique is not None:
        dumped["critique"] = judgment.critique
    return dumped


def split_feedback(stored: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return a stored value cut in two: the kind's value, and its ``spans`` and ``critique``.

    >>> split_feedback({"label": True, "response_id": "r1", "critique": "Too long."})
    ({'label': True, 'response_id': 'r1'}, {'spans': [], 'critique': 'Too long.'})
    """
    value = {k: v for k, v in stored.items() if k not in FEEDBACK_KEYS}
    return value, {"spans": list(stored.get("spans") or []), "critique": stored.get("critique")}
