"""Turn what an annotator submitted (screen positions, ranks, scores) into a judgment value.

Values refer to response ids, never to screen positions; the order shown is stored beside them
on the judgment (``response_ids``). A pairwise scale of n points reads left to right: on an odd
scale the middle point is a tie, on an even scale there is none; the strength is the distance
from the middle (1 = slightly better … n // 2 = much better), as in ``PairwiseValue``.

Projects with ``span_flags`` or a ``critique`` add fine-grained feedback beside the kind's value,
in the same ``judgments.value`` JSON: ``"spans"`` (a list of ``{"response_id", "start", "end",
"label", "text"}``, offsets in Unicode code points into the response's original text, end
exclusive, ``text`` the quoted slice) and ``"critique"`` (the written critique). Readers of the
kind's value ignore the extra keys; the ``Judgment`` record and ``JUDGMENT_SCHEMA`` carry them
in their ``spans`` and ``critique`` fields (see :mod:`preflab.store.judgment_values`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import object_session

from preflab.errors import InputError
from preflab.records import BinaryValue, PairwiseValue, RatingValue, validate_record
from preflab.records.models import ResponseId
from preflab.store.tables import ProjectRow, ResponseRow

__all__ = ["FLAGS", "MAX_SPANS", "JudgmentCreate", "SpanCreate", "build_value", "scale_labels"]

FLAGS = ("harmful", "unsure", "broken", "all_bad")
MAX_SPANS = 200


class SpanCreate(BaseModel):
    """A flagged span of one shown response: ``text[start:end]`` of its original text."""

    response_id: str = Field(min_length=1, max_length=64)
    start: int
    end: int
    label: str = Field(min_length=1, max_length=60)
    text: str = Field(max_length=20000)


class JudgmentCreate(BaseModel):
    """A submission from a task page or an API client.

    Only the fields of the project's kind are read: ``choice`` (pairwise: ``"1"``…``"n"``
    counted on screen from the left, ``"tie"`` or ``"both_bad"``), ``ranks`` (ranking: response
    id → rank, 1 best, equal ranks are ties), ``all_bad`` (ranking), ``scores`` (rating:
    response id → attribute → score), ``label`` and ``reasons`` (binary);
    ``spans`` and ``critique`` where the project asks for them.
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
    spans: list[SpanCreate] = Field(default_factory=list, max_length=MAX_SPANS)
    critique: str | None = Field(default=None, max_length=20000)
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
    value = BinaryValue(response_id=ResponseId(shown[0]), label=sub.label, reasons=tuple(sub.reasons))
    return value.model_dump(mode="json")


def _response_texts(project: ProjectRow, shown: Sequence[str]) -> dict[str, str]:
    """Read the shown responses' texts through the project's own session.

    The app's submit path passes the texts it read in its transaction to :func:`build_value`;
    this covers callers holding a project attached to a session.
    """
    session = object_session(project)
    if session is None:
        raise InputError("the responses' texts are needed to check spans", field="spans")
    responses = ResponseRow.__table__
    rows = session.connection().execute(
        select(responses.c.response_id, responses.c.content)
        .where(responses.c.response_id.in_(list(shown)))
    )
    return {rid: content for rid, content in rows}


def _check_span_text(i: int, span: Mapping[str, Any], text: str | None) -> None:
    at = f"spans[{i}]"
    start, end = span["start"], span["end"]
    if text is None:
        raise InputError(f"response {span['response_id']!r} is not stored",
                         field=f"{at}.response_id", value=span["response_id"])
    if not start < len(text):
        raise InputError(f"span {i} start must be within 0..{len(text) - 1}, got {start}",
                         field=f"{at}.start", value=start)
    if not end <= len(text):
        raise InputError(f"span {i} end must be within {start + 1}..{len(text)}, got {end}",
                         field=f"{at}.end", value=end)
    if text[start:end] != span["text"]:
        raise InputError(
            f"span {i} text does not match the response's characters {start}..{end}",
            field=f"{at}.text", value=str(span["text"])[:80])


def _spans(project: ProjectRow, shown: Sequence[str], spans: Sequence[SpanCreate],
           texts: Mapping[str, str] | None) -> list[dict[str, Any]]:
    config = project.config or {}
    if not config.get("span_flags"):
        raise InputError("this project does not flag spans", field="spans")
    labels = list(config.get("span_labels") or [])
    texts = texts if texts is not None else _response_texts(project, shown)
    seen: set[tuple[str, int, int, str]] = set()
    out = []
    for i, sp in enumerate(spans):
        at = f"spans[{i}]"
        if sp.response_id not in shown:
            raise InputError(f"span {i} names a response not shown: {sp.response_id!r}",
                             field=f"{at}.response_id", value=sp.response_id)
        if sp.label not in labels:
            raise InputError(f"unknown span label {sp.label!r}; known: {labels}",
                             field=f"{at}.label", value=sp.label)
        if sp.start < 0:
            raise InputError(f"span {i} start must be 0 or more, got {sp.start}",
                             field=f"{at}.start", value=sp.start)
        if sp.end <= sp.start:
            raise InputError(f"span {i} end must be after its start {sp.start}, got {sp.end}",
                             field=f"{at}.end", value=sp.end)
        key = (sp.response_id, sp.start, sp.end, sp.label)
        if key in seen:
            raise InputError(f"span {i} repeats an earlier span", field=at)
        seen.add(key)
        span = sp.model_dump()
        _check_span_text(i, span, texts.get(sp.response_id))
        out.append(span)
    return out


def _add_feedback(project: ProjectRow, shown: Sequence[str], sub: JudgmentCreate,
                  value: dict[str, Any], texts: Mapping[str, str] | None) -> dict[str, Any]:
    mode = (project.config or {}).get("critique", "off")
    critique = (sub.critique or "").strip()
    if critique and mode == "off":
        raise InputError("this project asks for no critique", field="critique")
    if mode == "required" and not critique:
        raise InputError("write a critique of the response", field="critique")
    if sub.spans:
        value["spans"] = _spans(project, shown, sub.spans, texts)
    if critique:
        value["critique"] = critique
    return value


def build_value(project: ProjectRow, shown: Sequence[str], sub: JudgmentCreate,
                texts: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return the judgment value (relative to response ids) for a submission.

    Args:
        project: the project row.
        shown: the response ids in the order shown.
        sub: the submission.
        texts: response id → original text, to check flagged spans against; when not
            given they are read in the submission's unit of work.

    Raises:
        InputError: the submission does not fit the project's question (names the field).
    """
    value = _kind_value(project, shown, sub)
    return _add_feedback(project, shown, sub, value, texts)


def _kind_value(project: ProjectRow, shown: Sequence[str], sub: JudgmentCreate
                ) -> dict[str, Any]:
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
