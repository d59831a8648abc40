"""Turn what an annotator submitted (screen positions, ranks, scores) into a judgment value.

Values refer to response ids, never to screen positions; the order shown is stored beside them
on the judgment (``response_ids``). A pairwise scale of n points reads left to right: on an odd
scale the middle point is a tie, on an even scale there is none; the strength is the distance
from the middle (1 = slightly better … n // 2 = much better), as in ``PairwiseValue``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from preflab.errors import InputError
from preflab.records import BinaryValue, PairwiseValue, RatingValue, validate_record
from preflab.store.tables import ProjectRow

__all__ = ["FLAGS", "JudgmentCreate", "build_value", "scale_labels"]

FLAGS = ("harmful", "unsure", "broken", "all_bad")


class JudgmentCreate(BaseModel):
    """A submission from a task page or an API client.

    Only the fields of the project's kind are read: ``choice`` (pairwise: ``"1"``…``"n"``
    counted on screen from the left, ``"tie"`` or ``"both_bad"``), ``ranks`` (ranking: response
    id → rank, 1 best, equal ranks are ties), ``all_bad`` (ranking), ``scores`` (rating:
    response id → attribute → score), ``label`` and ``reasons`` (binary).
    """

    submission_id: str = Field(min_length=8, max_length=200)
    choice: str | None = None
    ranks: dict[str, int] | None = None
    all_bad: bool = False
    scores: dict[str, dict[str, float]] | None = None
    label: bool | None = None
    reasons: list[str] = Field(default_factory=list)
    comment: str | None = Field(default=None, max_length=20000)
    flags: list[str] = Field(default_factory=list)
    started_at_ms: int | None = None


def scale_labels(scale: int) -> list[tuple[str, str]]:
    """Return ``(value, label)`` for each point of a pairwise scale, left to right."""
    half = scale // 2
    words = {1: ["better"], 2: ["much better", "slightly better"],
             3: ["much better", "better", "slightly better"],
             4: ["much better", "better", "slightly better", "marginally better"]}[half]
    out = [(str(i + 1), f"Left {w}") for i, w in enumerate(words)]
    if scale % 2:
        out.append((str(half + 1), "About the same"))
    out += [(str(scale - half + 1 + i), f"Right {w}") for i, w in enumerate(reversed(words))]
    return out


def _pairwise(project: ProjectRow, shown: Sequence[str], sub: JudgmentCreate) -> dict[str, Any]:
    scale = project.scale
    choice = (sub.choice or "").strip()
    if choice == "both_bad":
        if not project.allow_both_bad:
            raise InputError("this project has no both-bad answer", field="choice", value=choice)
        return PairwiseValue(scale=scale, both_bad=True, strength=0).model_dump(mode="json")
    if choice == "tie":
        if not project.allow_tie and scale % 2 == 0:
            raise InputError("this project has no tie answer", field="choice", value=choice)
        return PairwiseValue(scale=scale, tie=True, strength=0).model_dump(mode="json")
    if not choice.isdigit() or not 1 <= int(choice) <= scale:
        raise InputError(
            f"choose a point 1..{scale}, 'tie' or 'both_bad'; got {choice or 'nothing'!r}",
            field="choice",
            value=choice,
        )
    p, half = int(choice), scale // 2
    if scale % 2 and p == half + 1:
        return PairwiseValue(scale=scale, tie=True, strength=0).model_dump(mode="json")
    if p <= half:
        preferred, strength = shown[0], half - p + 1
    else:
        preferred, strength = shown[1], p - (scale - half)
    return validate_record(
        PairwiseValue, {"scale": scale, "preferred": preferred, "strength": strength}
    ).model_dump(mode="json")


def _ranking(shown: Sequence[str], sub: JudgmentCreate) -> dict[str, Any]:
    ranks = sub.ranks or {}
    unknown = set(ranks) - set(shown)
    if unknown:
        raise InputError(f"ranks name responses not shown: {sorted(unknown)}", field="ranks")
    if sub.all_bad and not ranks:
        return {"groups": []}
    missing = [r for r in shown if r not in ranks]
    if missing:
        raise InputError(f"give every response a rank; missing {len(missing)}", field="ranks")
    if any(v < 1 for v in ranks.values()):
        raise InputError("ranks start at 1 (best)", field="ranks")
    groups = [
        [r for r in shown if ranks[r] == level] for level in sorted(set(ranks.values()))
    ]
    return {"groups": groups}


def _rating(project: ProjectRow, shown: Sequence[str], sub: JudgmentCreate) -> dict[str, Any]:
    attrs = list(project.attributes or [])
    lo, hi = project.config.get("scale_min", 0), project.config.get("scale_max", 4)
    scores = sub.scores or {}
    for rid in shown:
        for attr in attrs:
            v = scores.get(rid, {}).get(attr)
            if v is None:
                raise InputError(f"rate {attr} of every response", field=f"scores.{rid}.{attr}")
            if not lo <= v <= hi:
                raise InputError(
                    f"{attr} must be within {lo}..{hi}, got {v}", field=f"scores.{rid}.{attr}"
                )
    clean = {rid: {a: float(scores[rid][a]) for a in attrs} for rid in shown}
    return RatingValue(scores=clean, scale_min=lo, scale_max=hi).model_dump(mode="json")


def _binary(project: ProjectRow, shown: Sequence[str], sub: JudgmentCreate) -> dict[str, Any]:
    if sub.label is None:
        raise InputError("choose thumbs up or thumbs down", field="label")
    allowed = set(project.config.get("reason_tags", []))
    bad = [r for r in sub.reasons if r not in allowed]
    if bad:
        raise InputError(f"unknown reason tags {bad}", field="reasons")
    value = BinaryValue(response_id=shown[0], label=sub.label, reasons=tuple(sub.reasons))
    return value.model_dump(mode="json")


def build_value(project: ProjectRow, shown: Sequence[str], sub: JudgmentCreate) -> dict[str, Any]:
    """Return the judgment value (relative to response ids) for a submission.

    Raises:
        InputError: the submission does not fit the project's question (names the field).
    """
    bad_flags = [f for f in sub.flags if f not in FLAGS]
    if bad_flags:
        raise InputError(f"unknown flags {bad_flags}; known: {list(FLAGS)}", field="flags")
    if project.kind == "pairwise":
        return _pairwise(project, shown, sub)
    if project.kind == "ranking":
        if sub.all_bad and "all_bad" not in sub.flags:
            sub.flags.append("all_bad")  # "all bad" is a flag beside the ranking value
        return _ranking(shown, sub)
    if project.kind == "rating":
        return _rating(project, shown, sub)
    if project.kind == "binary":
        return _binary(project, shown, sub)
    raise InputError(f"project kind {project.kind!r} has no task page", field="kind")
