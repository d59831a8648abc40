"""Production feedback: thumbs, edits and regenerations from a live app, stored as judgments.

A deployed assistant reports what its users did with an answer; each event becomes ordinary
records of the workspace, so ``preflab derive``, ``preflab audit`` and the exports treat it like
any other judgment:

=============  ==========================================================================
event kind     stored as
=============  ==========================================================================
``thumbs``     a ``binary`` judgment of the answer (``label`` true = thumbs up, ``reasons``)
               → unpaired (KTO) rows
``edit``       the user's corrected text as a response (``origin="edit"``) and an ``edit``
               judgment: the edit is preferred to the answer → a pair
``regenerate`` the answers the user saw in turn (first the original, then each regeneration)
               and a ``ranking`` judgment with the one the user kept above the others, flagged
               ``implicit`` (keeping an answer is a weaker signal than choosing one)
=============  ==========================================================================

The judge is ``feedback:<source>`` (kind ``human``): one judge per reporting app, not per end
user, whose identity is not stored. Every event carries the client's ``event_id``; the
judgment id is derived from (project, source, event_id), so sending an event again stores
nothing new and reports it as a ``duplicate`` (the first version wins). An edit equal to the
answer, or regenerations that all read the same (after whitespace and Unicode normalization),
state no preference: such an event is reported as ``no_preference`` and stores nothing.
A batch is stored in one transaction: all of it or, on any error, none of it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Connection, select, text

from preflab.errors import InputError
from preflab.records import (
    BinaryValue,
    EditValue,
    Judge,
    JudgeKind,
    Judgment,
    JudgmentKind,
    Message,
    Origin,
    Prompt,
    Response,
    make_response_id,
    records_to_table,
    validate_record,
)

__all__ = [
    "MAX_EVENTS",
    "FeedbackBatch",
    "FeedbackEvent",
    "FeedbackOutcome",
    "FeedbackRecords",
    "feedback_judgment_id",
    "feedback_records",
    "store_feedback",
]

MAX_EVENTS = 1000
"""Events per batch (one request, one transaction)."""

_SOURCE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"


class FeedbackEvent(BaseModel):
    """What one end user did with one answer of a deployed model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str = Field(
        min_length=1, max_length=200, description="The client's id of this event (idempotency)."
    )
    kind: Literal["thumbs", "edit", "regenerate"]
    messages: list[Message] = Field(
        min_length=1, description="The conversation the answer replies to; ends with a user turn."
    )
    response: str = Field(min_length=1, description="The answer the user saw first.")
    model: str | None = Field(None, description="The model that wrote the answer(s).")
    model_revision: str | None = Field(None, description="Its checkpoint or revision tag.")
    label: bool | None = Field(None, description="thumbs: true = up, false = down.")
    reasons: list[str] = Field(default_factory=list, description="thumbs: reasons picked.")
    edited: str | None = Field(None, description="edit: the user's corrected answer.")
    alternatives: list[str] = Field(
        default_factory=list, description="regenerate: the regenerated answers, in order."
    )
    kept: int | None = Field(
        None,
        ge=0,
        description="regenerate: the answer the user kept; 0 = response, i = alternatives[i-1].",
    )
    comment: str | None = Field(None, max_length=10_000)
    occurred_at: datetime | None = Field(
        None, description="When the user acted (ISO 8601); default: when it is stored."
    )

    @model_validator(mode="after")
    def _kind_fields(self) -> FeedbackEvent:
        if self.kind == "thumbs" and self.label is None:
            raise ValueError("a thumbs event needs label (true = up, false = down)")
        if self.kind == "edit" and not (self.edited or "").strip():
            raise ValueError("an edit event needs edited, the user's corrected answer")
        if self.kind == "regenerate":
            if not self.alternatives:
                raise ValueError("a regenerate event needs alternatives, the regenerated answers")
            if self.kept is None or self.kept > len(self.alternatives):
                raise ValueError(
                    f"a regenerate event needs kept, 0 to {len(self.alternatives)} "
                    "(0 = response, i = alternatives[i-1])"
                )
        return self


class FeedbackBatch(BaseModel):
    """Events of one reporting app, stored together."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(
        "api",
        pattern=_SOURCE_PATTERN,
        description="The reporting app (judge feedback:<source>).",
    )
    events: list[FeedbackEvent] = Field(min_length=1, max_length=MAX_EVENTS)


def feedback_judgment_id(project_id: str, source: str, event_id: str) -> str:
    """Return the judgment id of a feedback event (stable: the same event maps to one id).

    >>> feedback_judgment_id("prod", "chat-web", "ev-1") == feedback_judgment_id(
    ...     "prod", "chat-web", "ev-1")
    True
    >>> feedback_judgment_id("prod", "mobile", "ev-1") == feedback_judgment_id(
    ...     "prod", "chat-web", "ev-1")
    False
    """
    raw = f"feedback\x1f{project_id}\x1f{source}\x1f{event_id}"
    return "j_" + hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]


@dataclass(slots=True)
class FeedbackOutcome:
    """What became of one event: ``stored``, ``duplicate`` or ``no_preference``."""

    event_id: str
    status: str
    judgment_id: str | None = None


@dataclass(slots=True)
class FeedbackRecords:
    """The records of a batch of events, and each event's outcome (before storing)."""

    prompts: list[Prompt] = field(default_factory=list)
    responses: list[Response] = field(default_factory=list)
    judges: list[Judge] = field(default_factory=list)
    judgments: list[Judgment] = field(default_factory=list)
    outcomes: list[FeedbackOutcome] = field(default_factory=list)


def _at(i: int, error: InputError) -> InputError:
    field_path = f"events[{i}]" + (f".{error.field}" if error.field else "")
    return InputError(error.message, field=field_path, value=error.value)


def feedback_records(batch: FeedbackBatch, project_id: str) -> FeedbackRecords:
    """Return the prompts, responses, judge and judgments of ``batch`` for ``project_id``.

    >>> batch = FeedbackBatch(source="chat-web", events=[{
    ...     "event_id": "ev-1", "kind": "regenerate", "response": "5.",
    ...     "messages": [{"role": "user", "content": "2+2?"}],
    ...     "alternatives": ["4."], "kept": 1}])
    >>> out = feedback_records(batch, "prod")
    >>> [r.content for r in out.responses], out.judgments[0].kind.value, out.outcomes[0].status
    (['5.', '4.'], 'ranking', 'stored')

    Raises:
        InputError: two events share an ``event_id``, or an event's messages do not make a
            prompt (the field is named as ``events[i]....``).
    """
    out = FeedbackRecords()
    judge = Judge(
        judge_id=f"feedback:{batch.source}",
        kind=JudgeKind.HUMAN,
        name=f"end users of {batch.source} (feedback API)",
    )
    out.judges.append(judge)
    seen: dict[str, int] = {}
    for i, event in enumerate(batch.events):
        if event.event_id in seen:
            raise InputError(
                f"event_id {event.event_id!r} is also events[{seen[event.event_id]}]'s",
                field=f"events[{i}].event_id",
                value=event.event_id,
            )
        seen[event.event_id] = i
        try:
            _event_records(event, batch.source, project_id, judge.judge_id, out)
        except InputError as exc:
            raise _at(i, exc) from None
    return out


def _event_records(
    event: FeedbackEvent, source: str, project_id: str, judge_id: str, out: FeedbackRecords
) -> None:
    prompt: Prompt = validate_record(
        Prompt, {"messages": [m.model_dump() for m in event.messages], "source": f"feedback:{source}"}
    )

    def answer(text: str, at: str, origin: Origin = Origin.MODEL) -> Response:
        model = event.model if origin is Origin.MODEL else None
        revision = event.model_revision if origin is Origin.MODEL else None
        try:
            return Response(
                prompt_id=prompt.prompt_id,
                content=text,
                model=model,
                model_revision=revision,
                origin=origin,
            )
        except ValueError:  # pydantic's ValidationError: the only rule left is "not empty"
            raise InputError("an answer must not be empty", field=at, value=text) from None

    first = answer(event.response, "response")
    jid = feedback_judgment_id(project_id, source, event.event_id)
    common = {
        "judgment_id": jid,
        "prompt_id": prompt.prompt_id,
        "judge_id": judge_id,
        "project_id": project_id,
        "submitted_at": event.occurred_at or datetime.now(UTC),
        "comment": event.comment,
        "source": f"feedback:{source}",
    }
    responses = [first]
    if event.kind == "thumbs":
        assert event.label is not None
        judgment = Judgment(
            response_ids=(first.response_id,),
            kind=JudgmentKind.BINARY,
            binary=BinaryValue(
                response_id=first.response_id, label=event.label, reasons=tuple(event.reasons)
            ),
            **common,
        )
    elif event.kind == "edit":
        assert event.edited is not None
        edited = answer(event.edited, "edited", Origin.EDIT)
        if _same_text_key(edited) == _same_text_key(first):
            out.outcomes.append(FeedbackOutcome(event.event_id, "no_preference"))
            return
        responses.append(edited)
        judgment = Judgment(
            response_ids=(first.response_id, edited.response_id),
            kind=JudgmentKind.EDIT,
            edit=EditValue(original_id=first.response_id, edited_id=edited.response_id),
            **common,
        )
    else:
        assert event.kept is not None
        shown = [first] + [
            answer(text, f"alternatives[{k}]") for k, text in enumerate(event.alternatives)
        ]
        kept = shown[event.kept]
        distinct = list({r.response_id: r for r in shown}.values())
        if len(distinct) < 2:
            out.outcomes.append(FeedbackOutcome(event.event_id, "no_preference"))
            return
        others = tuple(r.response_id for r in distinct if r.response_id != kept.response_id)
        responses = distinct
        judgment = Judgment(
            response_ids=tuple(r.response_id for r in distinct),
            kind=JudgmentKind.RANKING,
            ranking=((kept.response_id,), others),
            flags=("implicit",),
            **common,
        )
    out.prompts.append(prompt)
    out.responses.extend(responses)
    out.judgments.append(judgment)
    out.outcomes.append(FeedbackOutcome(event.event_id, "stored", jid))


def _same_text_key(response: Response) -> str:
    """Return what makes two answers the same text (their id without the model)."""
    return make_response_id(response.prompt_id, response.content)


def store_feedback(conn: Connection, batch: FeedbackBatch, project_id: str) -> list[FeedbackOutcome]:
    """Store ``batch`` in the caller's transaction; return each event's outcome, in order.

    Events whose judgment is already stored are reported as ``duplicate`` and their records are
    not written again.
    """
    from preflab.store.bulk import write_judges, write_judgments, write_prompts, write_responses
    from preflab.store.tables import JudgmentRow

    records = feedback_records(batch, project_id)
    if conn.dialect.name == "postgresql":
        # One writer of a project's feedback at a time (to the transaction's end), so that two
        # requests carrying the same event cannot both report it stored. SQLite's writes are
        # serial already.
        key = int.from_bytes(hashlib.sha256(f"feedback\x1f{project_id}".encode()).digest()[:8],
                             "big", signed=True)
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    ids = [j.judgment_id for j in records.judgments]
    existing: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        existing.update(
            conn.execute(select(JudgmentRow.judgment_id).where(JudgmentRow.judgment_id.in_(chunk)))
            .scalars()
            .all()
        )
    for outcome in records.outcomes:
        if outcome.judgment_id in existing:
            outcome.status = "duplicate"
    new = [j for j in records.judgments if j.judgment_id not in existing]
    if new:  # only the records the new judgments refer to; a duplicate's are stored already
        prompt_ids = {j.prompt_id for j in new}
        response_ids = {r for j in new for r in j.response_ids}
        write_prompts(conn, _table(records.prompts, Prompt, "prompt_id", prompt_ids))
        write_responses(conn, _table(records.responses, Response, "response_id", response_ids))
        write_judges(conn, records_to_table(records.judges, Judge))
        write_judgments(conn, records_to_table(new, Judgment))
    return records.outcomes


def _table(
    records: Sequence[BaseModel], cls: type[BaseModel], key: str, wanted: set[str]
) -> pa.Table:
    """Return the records whose ``key`` is wanted, each once, as a table of ``cls``."""
    unique = {getattr(r, key): r for r in records if getattr(r, key) in wanted}
    return records_to_table(list(unique.values()), cls)
