"""The records every store, format and page speaks in (see DESIGN.md, "The records").

Records are frozen pydantic models. Ids are content hashes where the content defines the
record (prompts, responses) so that re-importing a file never duplicates anything.
"""

from __future__ import annotations

import hashlib
import unicodedata
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, NewType

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from preflab.errors import InputError, field_path, shorten

__all__ = [
    "ORDER_UNKNOWN_FLAG",
    "Batch",
    "BatchStatus",
    "BinaryValue",
    "EditValue",
    "GuidelineVersion",
    "Judge",
    "JudgeKind",
    "Judgment",
    "JudgmentId",
    "JudgmentKind",
    "Message",
    "Origin",
    "Pair",
    "PairwiseValue",
    "Project",
    "Prompt",
    "PromptId",
    "RatingValue",
    "Response",
    "ResponseId",
    "Role",
    "Span",
    "Unpaired",
    "make_prompt_id",
    "make_response_id",
    "normalize_text",
    "validate_record",
]

PromptId = NewType("PromptId", str)
ResponseId = NewType("ResponseId", str)
JudgmentId = NewType("JudgmentId", str)

Role = Literal["system", "user", "assistant"]
PAIRWISE_SCALES = (2, 5, 7, 8)

#: Judgment flag set by importers whose source does not record which response was shown
#: first (HH-RLHF, SHP, TRL files…); position-bias checks leave such judgments out.
ORDER_UNKNOWN_FLAG = "order_unknown"


class JudgmentKind(StrEnum):
    PAIRWISE = "pairwise"
    RANKING = "ranking"
    RATING = "rating"
    BINARY = "binary"
    EDIT = "edit"


class Origin(StrEnum):
    MODEL = "model"
    HUMAN = "human"
    EDIT = "edit"
    REVISION = "revision"
    IMPORT = "import"
    LIVE = "live"  # sampled in the app during a live chat or arena battle


class JudgeKind(StrEnum):
    HUMAN = "human"
    AI = "ai"
    VERIFIER = "verifier"
    IMPORTED = "imported"


class BatchStatus(StrEnum):
    RECEIVED = "received"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


_FROZEN = ConfigDict(frozen=True, extra="forbid")


def normalize_text(text: str) -> str:
    """Return ``text`` in NFC with line endings unified and outer whitespace stripped."""
    return unicodedata.normalize("NFC", text.replace("\r\n", "\n")).strip()


def _digest(parts: list[str]) -> str:
    """Return a 32-hex-digit SHA-256 of ``parts``, each framed by its byte length.

    Length framing makes the hash unambiguous (``["ab", "c"]`` ≠ ``["a", "bc"]``) without the
    cost of serializing to JSON first; ids are computed once per record on every import.
    """
    framed = []
    for part in parts:
        raw = part.encode("utf-8")
        framed += (len(raw).to_bytes(8, "little"), raw)
    return hashlib.sha256(b"".join(framed)).hexdigest()[:32]  # one call: ids are per record


def make_prompt_id(messages: list[dict[str, str]] | list[Message]) -> PromptId:
    """Return the stable id of a prompt: a hash of its normalized ``(role, content)`` turns.

    >>> make_prompt_id([{"role": "user", "content": " Hi "}]) == make_prompt_id(
    ...     [{"role": "user", "content": "Hi"}])
    True
    """
    parts: list[str] = []
    for m in messages:
        role, content = (m.role, m.content) if isinstance(m, Message) else (m["role"], m["content"])
        parts += (role, normalize_text(content))
    return PromptId("p_" + _digest(parts))


def make_response_id(
    prompt_id: str, content: str, model: str | None = None, model_revision: str | None = None
) -> ResponseId:
    """Return the stable id of a response: a hash of its prompt, normalized text and model.

    The checkpoint (``model_revision``) is part of the id when given, so identical text from
    two checkpoints stays two responses (on-policy tracking needs to know which one wrote it).
    """
    payload = [prompt_id, normalize_text(content), model or ""]
    if model_revision:
        payload.append(model_revision)
    return ResponseId("r_" + _digest(payload))


class Message(BaseModel):
    """One chat turn."""

    model_config = _FROZEN
    role: Role
    content: str


class Prompt(BaseModel):
    """A prompt: the messages before the judged turn, ending with a user turn."""

    model_config = _FROZEN
    prompt_id: PromptId = Field(default=PromptId(""))
    messages: tuple[Message, ...]
    source: str | None = None
    tags: tuple[str, ...] = ()
    constraints: tuple[str, ...] | None = None
    reference: str | None = None

    @field_validator("messages")
    @classmethod
    def _ends_with_user(cls, v: tuple[Message, ...]) -> tuple[Message, ...]:
        if not v:
            raise ValueError("a prompt needs at least one message")
        if v[-1].role != "user":
            raise ValueError(f"the last prompt message must be a user turn, got role {v[-1].role!r}")
        for i, m in enumerate(v):
            if not m.content.strip():
                raise ValueError(f"message {i} ({m.role}) is empty")
        return v

    @model_validator(mode="after")
    def _fill_id(self) -> Prompt:
        if not self.prompt_id:
            object.__setattr__(self, "prompt_id", make_prompt_id(list(self.messages)))
        return self


class Response(BaseModel):
    """A candidate answer to a prompt, tagged with where it came from."""

    model_config = _FROZEN
    response_id: ResponseId = Field(default=ResponseId(""))
    prompt_id: PromptId
    content: str
    model: str | None = None
    model_revision: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    origin: Origin = Origin.IMPORT

    @field_validator("content")
    @classmethod
    def _not_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("a response must not be empty")
        return v

    @model_validator(mode="after")
    def _fill_id(self) -> Response:
        if not self.response_id:
            object.__setattr__(
                self,
                "response_id",
                make_response_id(self.prompt_id, self.content, self.model, self.model_revision),
            )
        return self


class PairwiseValue(BaseModel):
    """A pairwise judgment relative to response ids.

    ``preferred`` is the winning response id (None for a tie or both-bad); ``strength`` is
    the distance from the scale's middle (1 = slightly, ``scale // 2`` = much better; 0 for
    a tie). ``scale`` is the number of points shown (2, 5, 7 or 8).
    """

    model_config = _FROZEN
    scale: int = 2
    preferred: ResponseId | None = None
    strength: int = 1
    tie: bool = False
    both_bad: bool = False

    @model_validator(mode="after")
    def _check(self) -> PairwiseValue:
        if self.scale not in PAIRWISE_SCALES:
            raise ValueError(f"scale must be one of {PAIRWISE_SCALES}, got {self.scale}")
        if self.tie and self.preferred is not None:
            raise ValueError("a tie has no preferred response")
        if not self.tie and not self.both_bad and self.preferred is None:
            raise ValueError("preferred is required unless tie or both_bad is set")
        top = self.scale // 2
        if self.preferred is not None and not 1 <= self.strength <= top:
            raise ValueError(f"strength must be within 1..{top} on a {self.scale}-point scale")
        return self

    @property
    def max_strength(self) -> int:
        return self.scale // 2


class RatingValue(BaseModel):
    """Scores per response per attribute, e.g. ``{"r_1": {"helpfulness": 3}}``."""

    model_config = _FROZEN
    scores: dict[str, dict[str, float]]
    scale_min: float = 0
    scale_max: float = 4


class BinaryValue(BaseModel):
    """Thumbs up (``label=True``) or down on one response, with optional reason tags."""

    model_config = _FROZEN
    response_id: ResponseId
    label: bool
    reasons: tuple[str, ...] = ()


class _RecordFieldError(ValueError):
    """A record rule broken by one field; ``field`` is its path inside the record being built.

    Raised from validators, so pydantic reports it as a value error; :func:`validate_record`
    joins ``field`` to the error's location (``spans[2]`` + ``end`` → ``spans[2].end``).
    """

    def __init__(self, field: str, message: str, value: Any = None) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.value = value


class Span(BaseModel):
    """A flagged stretch of one shown response: ``text`` is ``content[start:end]``.

    Offsets count Unicode code points (Python ``str`` indices) of the response's original
    text, end exclusive; ``label`` is the project's label for the flag (e.g. "factual error").

    >>> Span(response_id="r_1", start=0, end=5, label="unsafe", text="Paris").end
    5
    """

    model_config = _FROZEN
    response_id: ResponseId
    start: int
    end: int
    label: str
    text: str

    @model_validator(mode="after")
    def _check(self) -> Span:
        if self.start < 0:
            raise _RecordFieldError("start", f"a span starts at 0 or later, got {self.start}",
                                   self.start)
        if self.end <= self.start:
            raise _RecordFieldError(
                "end", f"a span ends after its start ({self.start}), got {self.end}", self.end
            )
        if not self.label.strip():
            raise _RecordFieldError("label", "a span needs a non-empty label", self.label)
        return self


class EditValue(BaseModel):
    """A corrected response: ``edited_id`` is better than ``original_id``."""

    model_config = _FROZEN
    original_id: ResponseId
    edited_id: ResponseId


class Judgment(BaseModel):
    """One act of one judge on one item.

    ``response_ids`` lists the responses **in the order they were shown** (left to right or
    top to bottom); values always refer to response ids, never to positions. ``spans`` (flagged
    stretches of the shown responses) and ``critique`` (a written critique) are fine-grained
    feedback beside the kind's value.
    """

    model_config = _FROZEN
    judgment_id: JudgmentId
    prompt_id: PromptId
    response_ids: tuple[ResponseId, ...]
    kind: JudgmentKind
    judge_id: str
    pairwise: PairwiseValue | None = None
    ranking: tuple[tuple[ResponseId, ...], ...] | None = None
    rating: RatingValue | None = None
    binary: BinaryValue | None = None
    edit: EditValue | None = None
    project_id: str | None = None
    guideline_version: int | None = None
    batch_id: str | None = None
    started_at: datetime | None = None
    submitted_at: datetime | None = None
    comment: str | None = None
    flags: tuple[str, ...] = ()
    spans: tuple[Span, ...] = ()
    critique: str | None = None
    idempotency_key: str | None = None
    source: str | None = None
    source_line: int | None = None

    @model_validator(mode="after")
    def _check_value(self) -> Judgment:
        values = {
            JudgmentKind.PAIRWISE: self.pairwise,
            JudgmentKind.RANKING: self.ranking,
            JudgmentKind.RATING: self.rating,
            JudgmentKind.BINARY: self.binary,
            JudgmentKind.EDIT: self.edit,
        }
        if values[self.kind] is None:
            raise ValueError(f"a {self.kind.value} judgment needs its {self.kind.value} value")
        shown = set(self.response_ids)
        if len(shown) != len(self.response_ids):
            raise ValueError("response_ids contains the same response twice")
        if self.kind is JudgmentKind.PAIRWISE:
            if len(self.response_ids) != 2:
                raise ValueError("a pairwise judgment shows exactly two responses")
            pw = self.pairwise
            assert pw is not None
            if pw.preferred is not None and pw.preferred not in shown:
                raise ValueError(f"preferred {pw.preferred!r} is not among response_ids")
        if self.kind is JudgmentKind.RANKING:
            assert self.ranking is not None
            ranked = [r for group in self.ranking for r in group]
            if len(set(ranked)) != len(ranked):
                raise ValueError("a response appears twice in the ranking")
            if not set(ranked) <= shown:
                raise ValueError("the ranking names responses that were not shown")
        if self.kind is JudgmentKind.RATING:
            assert self.rating is not None
            if not set(self.rating.scores) <= shown:
                raise ValueError("ratings name responses that were not shown")
        for i, span in enumerate(self.spans):
            if span.response_id not in shown:
                raise _RecordFieldError(
                    f"spans[{i}].response_id",
                    f"{span.response_id!r} is not among response_ids; a span flags a shown "
                    "response",
                    span.response_id,
                )
        return self


class Judge(BaseModel):
    """A human annotator or an AI judge (model + template + template version)."""

    model_config = _FROZEN
    judge_id: str
    kind: JudgeKind
    name: str | None = None
    vendor: str | None = None
    team: str | None = None
    model: str | None = None
    template: str | None = None
    template_version: str | None = None


class GuidelineVersion(BaseModel):
    """One version of a project's markdown guidelines."""

    model_config = _FROZEN
    project_id: str
    version: int
    text: str
    created_at: datetime | None = None
    author: str | None = None


class Batch(BaseModel):
    """A delivery of judgments (e.g. one vendor's weekly batch)."""

    model_config = _FROZEN
    batch_id: str
    project_id: str | None = None
    vendor: str | None = None
    delivered_at: datetime | None = None
    guideline_version: int | None = None
    status: BatchStatus = BatchStatus.RECEIVED


class Project(BaseModel):
    """A collection effort: its question config and overlap target."""

    model_config = _FROZEN
    project_id: str
    name: str
    kind: JudgmentKind = JudgmentKind.PAIRWISE
    scale: int = 5
    allow_tie: bool = True
    allow_both_bad: bool = True
    attributes: tuple[str, ...] = ()
    overlap: int = 1
    overlap_share: float = 1.0
    gold_share: float = 0.0
    config: dict[str, Any] = Field(default_factory=dict)


class Pair(BaseModel):
    """A derived training pair (what reward/DPO trainers eat)."""

    model_config = _FROZEN
    prompt_id: PromptId
    prompt: tuple[Message, ...]
    chosen: str
    rejected: str
    chosen_id: ResponseId
    rejected_id: ResponseId
    margin: float | None = None
    agreement: float | None = None
    split: str = "train"
    rule: str = ""
    rule_params: dict[str, Any] = Field(default_factory=dict)
    judgment_ids: tuple[str, ...] = ()
    judge_ids: tuple[str, ...] = ()
    guideline_version: int | None = None
    batch_id: str | None = None
    source: str | None = None

    @model_validator(mode="after")
    def _distinct(self) -> Pair:
        if self.chosen_id == self.rejected_id or normalize_text(self.chosen) == normalize_text(
            self.rejected
        ):
            raise ValueError("chosen must differ from rejected")
        if not self.chosen.strip() or not self.rejected.strip():
            raise ValueError("chosen and rejected must not be empty")
        return self


class Unpaired(BaseModel):
    """A derived unpaired row (KTO): one completion labelled desirable or not."""

    model_config = _FROZEN
    prompt_id: PromptId
    prompt: tuple[Message, ...]
    completion: str
    completion_id: ResponseId
    label: bool
    split: str = "train"
    rule: str = ""
    judgment_ids: tuple[str, ...] = ()
    judge_ids: tuple[str, ...] = ()
    source: str | None = None


def validate_record(
    cls: type[BaseModel], data: dict[str, Any], *, path: str | None = None, line: int | None = None
) -> Any:
    """Build ``cls`` from ``data``; pydantic errors become an :class:`InputError` naming the field.

    >>> validate_record(Message, {"role": "robot", "content": "x"})
    Traceback (most recent call last):
    ...
    preflab.errors.InputError: field "role": Input should be 'system', 'user' or 'assistant' (got 'robot')
    """
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = field_path(err["loc"]) or None
        got = err.get("input")
        msg = err["msg"].removeprefix("Value error, ")
        broken = (err.get("ctx") or {}).get("error")
        if isinstance(broken, _RecordFieldError):
            field = f"{field}.{broken.field}" if field else broken.field
            raise InputError(broken.message, path=path, line=line, field=field,
                             value=broken.value) from None
        if field and not isinstance(got, dict):
            msg = f"{msg} (got {shorten(got)})"
        raise InputError(msg, path=path, line=line, field=field, value=got) from None
