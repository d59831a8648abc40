"""Submissions: turn what an annotator submitted into a judgment value, and store it.

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

:func:`submit` is the whole submission in one unit of work: one statement reads the
assignment, its item, its project, the guidelines in force, the caller's membership and whether
the submission id was used; then the judgment is stored. Submissions are idempotent: a repeat
of a submission id by the same judge returns the stored judgment. Functions take a
``Connection`` (or a ``Session``) and never commit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from preflab.collect.core_tables import (
    ASSIGNMENTS as _A,
    GUIDELINES as _G,
    ITEMS as _I,
    JUDGMENTS as _J,
    MEMBERS as _M,
    PROJECTS as _PROJECTS,
    RESPONSES as _R,
)
from preflab.collect.projects import PROJECT_COLUMNS, set_member_guideline_version
from preflab.collect.rows import Judgment, Project, aware, columns
from preflab.collect.tasks import digest
from preflab.errors import ConflictError, InputError, NotFoundError
from preflab.records import BinaryValue, PairwiseValue, RatingValue, validate_record
from preflab.records.models import ResponseId
from preflab.store.queries.scope import connection_of
from preflab.store.tables import utcnow

__all__ = [
    "FLAGS",
    "MAX_SPANS",
    "JudgmentCreate",
    "SpanCreate",
    "build_value",
    "find_judgment_by_key",
    "list_judgments",
    "scale_labels",
    "submit",
    "submit_judgment",
]

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


def _pairwise(project: Project, shown: Sequence[str], sub: JudgmentCreate) -> dict[str, Any]:
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


def _rating(project: Project, shown: Sequence[str], sub: JudgmentCreate) -> dict[str, Any]:
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


def _binary(project: Project, shown: Sequence[str], sub: JudgmentCreate) -> dict[str, Any]:
    if sub.label is None:
        raise InputError("choose thumbs up or thumbs down", field="label")
    allowed = set(project.config.get("reason_tags", []))
    bad = [r for r in sub.reasons if r not in allowed]
    if bad:
        raise InputError(f"unknown reason tags {bad}", field="reasons")
    value = BinaryValue(response_id=ResponseId(shown[0]), label=sub.label,
                        reasons=tuple(sub.reasons))
    return value.model_dump(mode="json")


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


def _spans(project: Project, shown: Sequence[str], spans: Sequence[SpanCreate],
           texts: Mapping[str, str] | None) -> list[dict[str, Any]]:
    config = project.config or {}
    if not config.get("span_flags"):
        raise InputError("this project does not flag spans", field="spans")
    labels = list(config.get("span_labels") or [])
    if texts is None:
        raise InputError("the responses' texts are needed to check spans", field="spans")
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


def _add_feedback(project: Project, shown: Sequence[str], sub: JudgmentCreate,
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


def build_value(project: Project, shown: Sequence[str], sub: JudgmentCreate,
                texts: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return the judgment value (relative to response ids) for a submission.

    Args:
        project: the project row.
        shown: the response ids in the order shown.
        sub: the submission.
        texts: response id → original text, to check flagged spans against (needed when
            the submission flags spans).

    Raises:
        InputError: the submission does not fit the project's question (names the field).
    """
    value = _kind_value(project, shown, sub)
    return _add_feedback(project, shown, sub, value, texts)


def _kind_value(project: Project, shown: Sequence[str], sub: JudgmentCreate
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


# ---------------------------------------------------------------- storing and reading judgments

_N_PROJECT = len(PROJECT_COLUMNS)
_J_COLUMNS = columns(Judgment, _J)

# Everything a submission reads, in one statement: the project's columns first (in the order
# of rows.Project), then the assignment's and its item's, the guideline versions, the caller's
# membership and who used the submission id, if anyone.
_CONTEXT = (
    select(
        *PROJECT_COLUMNS,
        _A.c.user_id, _A.c.status, _A.c.reserved_at, _A.c.shown_order,
        _I.c.item_id, _I.c.prompt_id, _I.c.response_ids, _I.c.batch_id, _I.c.is_gold,
        select(func.max(_G.c.version))
        .where(_G.c.project_id == _A.c.project_id)
        .scalar_subquery().label("ctx_version"),
        select(_M.c.last_guideline_version)
        .where(_M.c.project_id == _A.c.project_id, _M.c.user_id == _A.c.user_id)
        .scalar_subquery().label("ctx_last_version"),
        select(_M.c.user_id)
        .where(_M.c.project_id == _A.c.project_id, _M.c.user_id == _A.c.user_id)
        .exists().label("ctx_is_member"),
        select(_J.c.judge_id)
        .where(_J.c.idempotency_key == bindparam("key"))
        .limit(1).scalar_subquery().label("ctx_key_judge"),
    )
    .join_from(_A, _I, _I.c.item_id == _A.c.item_id)
    .join(_PROJECTS, _PROJECTS.c.project_id == _A.c.project_id)
    .where(_A.c.assignment_id == bindparam("assignment_id"))
)


@dataclass(frozen=True, slots=True)
class _Context:
    """What :data:`_CONTEXT` reads for one submission (field order = its columns)."""

    user_id: str
    status: str
    reserved_at: datetime | None
    shown_order: list[str] | None
    item_id: str
    prompt_id: str
    response_ids: list[str]
    batch_id: str | None
    is_gold: bool
    guideline_version: int | None  # the project's current version
    last_guideline_version: int | None  # the version the user last worked under
    is_member: bool
    key_judge_id: str | None  # who stored a judgment under the submission id, if anyone


_BY_KEY = select(*_J_COLUMNS).where(_J.c.idempotency_key == bindparam("b_key")).limit(1)
_TAKE = (
    update(_A)
    .where(_A.c.assignment_id == bindparam("b_assignment_id"), _A.c.status == bindparam("b_was"))
    .values(status="submitted", judgment_id=bindparam("b_judgment_id"))
)
_DONE_RESERVED = (
    update(_I)
    .where(_I.c.item_id == bindparam("b_item_id"))
    .values(done=_I.c.done + 1, reserved=_I.c.reserved - 1)
)
_DONE_FREE = (
    update(_I)
    .where(_I.c.item_id == bindparam("b_item_id"), _I.c.done + _I.c.reserved < _I.c.target)
    .values(done=_I.c.done + 1, is_open=(_I.c.done + _I.c.reserved + 1) < _I.c.target)
)
_DONE_GOLD = (
    update(_I)
    .where(_I.c.item_id == bindparam("b_item_id"))
    .values(done=_I.c.done + 1, is_open=(_I.c.done + _I.c.reserved + 1) < _I.c.target)
)
_INSERT_JUDGMENT = insert(_J)
_RESPONSE_TEXTS = select(_R.c.response_id, _R.c.content).where(
    _R.c.response_id.in_(bindparam("ids", expanding=True)))


def _judgment_page(by_judge: bool) -> tuple[Any, Any]:
    cond = [_J.c.project_id == bindparam("project_id")]
    if by_judge:
        cond.append(_J.c.judge_id == bindparam("judge_id"))
    count = select(func.count()).select_from(_J).where(*cond)
    page = (
        select(*_J_COLUMNS).where(*cond)
        .order_by(_J.c.submitted_at.desc(), _J.c.judgment_id)
        .offset(bindparam("offset")).limit(bindparam("limit"))
    )
    return count, page


_JUDGMENT_PAGES = {False: _judgment_page(False), True: _judgment_page(True)}


def _context(
    conn: Connection, assignment_id: str, submission_id: str, user_id: str
) -> tuple[Project, _Context]:
    row = conn.execute(_CONTEXT, {"assignment_id": assignment_id, "key": submission_id}).first()
    if row is None or row.user_id != user_id:
        raise NotFoundError(f"no task {assignment_id!r}", field="assignment_id")
    return Project(*row[:_N_PROJECT]), _Context(*row[_N_PROJECT:])


def find_judgment_by_key(session: Session | Connection, idempotency_key: str) -> Judgment | None:
    """Return the judgment stored under this submission id, or None."""
    row = connection_of(session).execute(_BY_KEY, {"b_key": idempotency_key}).first()
    return None if row is None else Judgment(*row)


def _store(
    conn: Connection,
    project: Project,
    ctx: _Context,
    *,
    assignment_id: str,
    user_id: str,
    value: dict[str, Any],
    idempotency_key: str,
    guideline_version: int | None,
    started_at: datetime | None,
    comment: str | None,
    flags: Sequence[str],
    now: datetime,
) -> tuple[Judgment, bool]:
    if ctx.key_judge_id is not None:
        prior = find_judgment_by_key(conn, idempotency_key)
        if prior is not None:
            if prior.judge_id != user_id:
                raise ConflictError(
                    "this submission id was already used by another judge; send a fresh one",
                    field="submission_id",
                )
            return prior, False
    if ctx.status in ("submitted", "skipped"):
        raise ConflictError(
            f"task {assignment_id} was already {ctx.status}; ask for the next task",
            field="assignment_id",
        )
    judgment_id = "j_" + digest(idempotency_key, user_id)
    took = conn.execute(_TAKE, {"b_assignment_id": assignment_id, "b_was": ctx.status,
                                "b_judgment_id": judgment_id})
    if took.rowcount != 1:
        raise ConflictError(f"task {assignment_id} changed meanwhile; retry", field="assignment_id")
    if ctx.status == "reserved":
        conn.execute(_DONE_RESERVED, {"b_item_id": ctx.item_id})
    else:  # expired: the slot was released, take a free one if any is left
        res = conn.execute(_DONE_GOLD if ctx.is_gold else _DONE_FREE, {"b_item_id": ctx.item_id})
        if res.rowcount != 1:
            raise ConflictError(
                "your reservation of this task expired and other annotators filled it; "
                "ask for the next task",
                field="assignment_id",
            )
    started = aware(started_at) or aware(ctx.reserved_at)
    if started is not None and (started > now or started < now - timedelta(days=2)):
        started = aware(ctx.reserved_at)
    judgment = Judgment(
        judgment_id=judgment_id, prompt_id=ctx.prompt_id,
        response_ids=list(ctx.shown_order or ctx.response_ids), kind=project.kind,
        judge_id=user_id, value=value, item_id=ctx.item_id, project_id=project.project_id,
        guideline_version=guideline_version, batch_id=ctx.batch_id, started_at=started,
        submitted_at=now, comment=comment or None, flags=list(flags),
        idempotency_key=idempotency_key, source="app", source_line=None,
    )
    try:
        conn.execute(_INSERT_JUDGMENT, {f: getattr(judgment, f) for f in _JUDGMENT_FIELDS})
    except IntegrityError as exc:  # a concurrent twin with the same key won the race
        raise ConflictError(
            "this submission is being stored by a concurrent request; retry to get it",
            field="submission_id",
        ) from exc
    return judgment, True


_JUDGMENT_FIELDS = tuple(Judgment.__dataclass_fields__)


def submit_judgment(
    session: Session | Connection,
    *,
    assignment_id: str,
    user_id: str,
    kind: str,
    value: dict[str, Any],
    idempotency_key: str,
    guideline_version: int | None,
    started_at: datetime | None = None,
    comment: str | None = None,
    flags: Sequence[str] = (),
    now: datetime | None = None,
) -> tuple[Judgment, bool]:
    """Store an already built judgment value for a served task; return it and whether it is new.

    A repeat of the same ``idempotency_key`` by the same user returns the stored judgment
    unchanged (a double click or a retried request makes one judgment). A submission after the
    reservation expired is accepted while the item still has an open slot. :func:`submit`
    builds the value from a submission and records the guideline version itself.

    Raises:
        NotFoundError: the assignment is not this user's.
        InputError: ``kind`` is not the project's.
        ConflictError: the key was used by someone else, the task was already judged or
            skipped, or its reservation expired and the item filled up meanwhile.
    """
    conn = connection_of(session)
    project, ctx = _context(conn, assignment_id, idempotency_key, user_id)
    if kind != project.kind:
        raise InputError(f"project {project.project_id} takes {project.kind} judgments, "
                         f"got {kind!r}", field="kind", value=kind)
    return _store(conn, project, ctx, assignment_id=assignment_id, user_id=user_id, value=value,
                  idempotency_key=idempotency_key, guideline_version=guideline_version,
                  started_at=started_at, comment=comment, flags=flags, now=now or utcnow())


def submit(
    session: Session | Connection,
    user_id: str,
    assignment_id: str,
    sub: JudgmentCreate,
    *,
    now: datetime | None = None,
) -> tuple[Judgment, bool]:
    """Validate a submission against its task's project and store it; return it and whether
    it is new.

    The judgment records the project's current guideline version, and the user's member row
    the version they now work under. Owning the assignment is what allows the submission: it
    was served from a project the user may see.

    Raises:
        NotFoundError: the assignment is not this user's.
        InputError: the submission does not fit the project's question (names the field).
        ConflictError: as :func:`submit_judgment`.
    """
    conn = connection_of(session)
    project, ctx = _context(conn, assignment_id, sub.submission_id, user_id)
    shown = list(ctx.shown_order or [])
    # flagged spans are checked against the responses' texts in this transaction
    texts = ({rid: text for rid, text in conn.execute(_RESPONSE_TEXTS, {"ids": shown})}
             if sub.spans and shown else None)
    value = build_value(project, shown, sub, texts)
    started = datetime.fromtimestamp(sub.started_at_ms / 1000, UTC) if sub.started_at_ms else None
    version = ctx.guideline_version
    judgment, created = _store(
        conn, project, ctx, assignment_id=assignment_id, user_id=user_id, value=value,
        idempotency_key=sub.submission_id, guideline_version=version, started_at=started,
        comment=sub.comment, flags=sub.flags, now=now or utcnow())
    if created and (not ctx.is_member or ctx.last_guideline_version != version):
        set_member_guideline_version(conn, project.project_id, user_id, version)
    return judgment, created


def list_judgments(
    session: Session | Connection,
    project_id: str,
    *,
    judge_id: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[Judgment], int]:
    """Return one page of a project's judgments (newest first), optionally one judge's only,
    and the total count."""
    conn = connection_of(session)
    count, page = _JUDGMENT_PAGES[judge_id is not None]
    params = {"project_id": project_id, "judge_id": judge_id, "offset": offset, "limit": limit}
    total = conn.execute(count, params).scalar() or 0
    return [Judgment(*r) for r in conn.execute(page, params)], int(total)
