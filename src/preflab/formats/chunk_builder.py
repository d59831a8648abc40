"""Build record tables column by column, fast, with the validation rules of the records.

Readers see thousands of rows per second, so they do not construct pydantic objects per row:
they call :class:`ChunkBuilder`, which checks the same rules as
:class:`~preflab.records.Prompt`, :class:`~preflab.records.Response` and
:class:`~preflab.records.Judgment` (non-empty turns, last prompt turn from the user, distinct
responses, …) and appends plain Python values to column lists. :meth:`ChunkBuilder.flush` turns
them into Arrow tables with the record schemas.

Ids are stable: prompt and response ids come from :func:`~preflab.records.make_prompt_id` and
:func:`~preflab.records.make_response_id`; judgment ids hash the format, the position in the file
and the judgment's content (:func:`make_judgment_id`), so re-reading a file yields the same ids.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa

from preflab.formats.base import ImportChunk, ImportProblem
from preflab.formats.fields import RowError
from preflab.records import (
    JUDGE_SCHEMA,
    JUDGMENT_SCHEMA,
    PROMPT_SCHEMA,
    RESPONSE_SCHEMA,
    make_prompt_id,
    make_response_id,
)

__all__ = ["ORDER_UNKNOWN", "SEEN_LIMIT", "ChunkBuilder", "make_judgment_id", "two_point"]

_ROLES = frozenset({"system", "user", "assistant"})
_PAIRWISE_SCALES = (2, 5, 7, 8)
#: Judgment flag: the source does not record the order the responses were shown in (e.g.
#: HH-RLHF lists chosen first), so ``response_ids`` order means nothing for position-bias checks.
from preflab.records import ORDER_UNKNOWN_FLAG as ORDER_UNKNOWN

#: Ids remembered per record type across chunks (~100 MB of ids at most).
SEEN_LIMIT = 1_000_000
#: Located notes (rows dropped, skipped or merged by a rule) kept per chunk; counts stay exact.
MAX_NOTES = 10_000
#: Ids remembered per distinct text (prompt turns, response text, judgment value), so a text
#: that repeats is normalized and hashed once; the memo is emptied at a chunk's end past this,
#: and given up for the file after a chunk where most texts were new.
ID_MEMO_LIMIT = 50_000
_VALUE_KINDS = ("pairwise", "ranking", "rating", "binary", "edit")
# Judgment columns imports never fill: built as all-null arrays at flush time.
_NULL_JUDGMENT_COLUMNS = (
    "project_id",
    "guideline_version",
    "batch_id",
    "started_at",
    "critique",
    "idempotency_key",
)
# Judgment columns imports leave empty (no source format carries span flags).
_EMPTY_JUDGMENT_COLUMNS = ("spans",)


def _empty_lists(n: int, list_type: pa.ListType) -> pa.Array:
    """Return ``n`` empty lists of ``list_type`` (all offsets zero, no values)."""
    # built from zero offsets: fill_null with an empty-list scalar takes ~40 ms per 10,000 rows
    offsets = pa.array(np.zeros(n + 1, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array([], type=list_type.value_type))


# One encoder for all judgment ids: json.dumps would build a new one per call.
_CANONICAL = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=str
)
# JSONEncoder.encode builds a C encoder on every call; this one is built once with the same
# settings (no circular-reference check: values are plain trees) and gives the same text.
_C_ENCODER = getattr(json.encoder, "c_make_encoder", None)


def _encode_canonical(value: Any) -> str:
    if _C_ENCODER is None or isinstance(value, str):  # pragma: no cover - CPython has it
        return _CANONICAL.encode(value)
    return "".join(_C_CANONICAL(value, 0))


if _C_ENCODER is not None:
    _C_CANONICAL = _C_ENCODER(
        None, str, json.encoder.encode_basestring, None, ":", ",", True, False, True
    )


def two_point(
    preferred: str | None = None, *, tie: bool = False, both_bad: bool = False
) -> dict[str, Any]:
    """Return the ``pairwise`` value of a 2-point choice: ``preferred`` wins, or a tie/both bad.

    >>> two_point("r_1") == {"scale": 2, "preferred": "r_1", "strength": 1, "tie": False,
    ...                      "both_bad": False}
    True
    >>> two_point(tie=True)["strength"]
    0
    """
    return {
        "scale": 2,
        "preferred": preferred,
        "strength": 0 if preferred is None else 1,
        "tie": tie,
        "both_bad": both_bad,
    }


def make_judgment_id(
    format: str,
    line: int | None,
    judge_id: str,
    prompt_id: str,
    response_ids: Sequence[str],
    value: Any,
    extra: Any = None,
    *,
    value_text: str | None = None,
) -> str:
    """Return the stable id of an imported judgment: a hash of its content and position.

    The file path is left out on purpose: the same file re-imported from another directory keeps
    its ids, so nothing is duplicated.

    ``value_text`` is ``value`` already in its canonical JSON text (a caller that has it
    remembered skips encoding it again).

    >>> make_judgment_id("hh-rlhf", 3, "hh", "p_1", ["r_1", "r_2"], {"preferred": "r_1"})[:2]
    'j_'
    """
    raw = "\x1f".join(
        (
            format,
            str(line),
            judge_id,
            prompt_id,
            "\x1e".join(response_ids),
            _encode_canonical(value) if value_text is None else value_text,
            "" if extra is None else _encode_canonical(extra),
        )
    )
    return "j_" + hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]


class ChunkBuilder:
    """Collect prompts, responses, judges and judgments of one input file, chunk by chunk.

    Records already emitted in an earlier chunk of the same file are not emitted again (ids
    are remembered), so concatenated chunks hold each prompt, response and judge once. To keep
    memory bounded on huge files, the remembered ids are forgotten past ``seen_limit`` per
    record type; a record may then be emitted again, with the same id (consumers such as the
    store ignore ids they already hold).

    Args:
        path: the input file, stored as ``source`` on prompts and judgments.
        format: the reader's registry name, part of every judgment id.
        seen_limit: how many ids per record type to remember across chunks.
    """

    def __init__(self, *, path: str, format: str, seen_limit: int = SEEN_LIMIT) -> None:
        self.path = path
        self.format = format
        self.seen_limit = seen_limit
        self.counts: dict[str, int] = {}
        self._seen_prompts: set[str] = set()
        self._seen_responses: set[str] = set()
        self._seen_judges: set[str] = set()
        self._row_added: list[tuple[set[str], str]] = []
        self._row_marks: tuple[int, int, int, int] = (0, 0, 0, 0)
        # counts as they were when the row began: copied on the row's first count only
        self._row_counts: dict[str, int] | None = None
        self._in_row = False
        self._line: int | None = None
        # id per distinct text (normalizing and hashing cost more than a dict lookup)
        self._prompt_ids: dict[tuple[str, ...], str] = {}
        self._response_ids: dict[tuple[str, str, str | None], str] = {}
        self._value_texts: dict[tuple[Any, ...], str] = {}
        self._memo_on = True  # off for good once a chunk's texts rarely repeated
        self._memo_lookups = 0  # prompt and response ids asked for in this chunk
        self._memo_misses = 0  # of them computed (the rest came from the memos)
        # source record id -> line of its first occurrence (repeated trees, posts, battles)
        self._sources: dict[str, int] = {}
        self._row_sources: list[str] = []
        self.notes: list[ImportProblem] = []
        self._row_notes = 0
        self._new_columns()

    def _new_columns(self) -> None:
        self._p: dict[str, list[Any]] = {f.name: [] for f in PROMPT_SCHEMA}
        self._r: dict[str, list[Any]] = {f.name: [] for f in RESPONSE_SCHEMA}
        self._j: dict[str, list[Any]] = {
            f.name: []
            for f in JUDGMENT_SCHEMA
            if f.name not in _NULL_JUDGMENT_COLUMNS and f.name not in _EMPTY_JUDGMENT_COLUMNS
        }
        self._g: dict[str, list[Any]] = {f.name: [] for f in JUDGE_SCHEMA}

    # -- rows -------------------------------------------------------------------------------
    def begin_row(self, line: int | None) -> None:
        """Mark the start of one input row, so :meth:`rollback_row` can undo it."""
        self._line = line
        self._row_added.clear()
        self._row_sources.clear()
        self._row_notes = len(self.notes)
        self._row_counts = None
        self._in_row = True
        self._row_marks = (
            len(self._p["prompt_id"]),
            len(self._r["response_id"]),
            len(self._j["judgment_id"]),
            len(self._g["judge_id"]),
        )

    def rollback_row(self) -> None:
        """Remove everything added and counted since :meth:`begin_row` (the row was invalid)."""
        for cols, mark in zip((self._p, self._r, self._j, self._g), self._row_marks, strict=True):
            for values in cols.values():
                del values[mark:]
        for seen, key in self._row_added:
            seen.discard(key)
        self._row_added.clear()
        for source in self._row_sources:
            self._sources.pop(source, None)
        self._row_sources.clear()
        del self.notes[self._row_notes :]
        if self._row_counts is not None:
            self.counts = self._row_counts
            self._row_counts = None

    def drop(self, reason: str, detail: str | None = None, *, field: str | None = None) -> None:
        """Count one input row dropped by a stated rule (``counts["dropped_<reason>"]``).

        The row's file and line (and ``detail``, e.g. the rule's words or a record id) are kept
        in :attr:`notes`, so the summary can say where each dropped row came from.
        """
        self.note(f"dropped_{reason}", detail or reason.replace("_", " "), field=field)

    def note(self, key: str, message: str, *, field: str | None = None) -> None:
        """Count one row under ``key`` (``skipped_…``, ``merged_…``) and note where it was."""
        self.count(key)
        if len(self.notes) < MAX_NOTES:
            self.notes.append(
                ImportProblem(
                    path=self.path, line=self._line, field=field, message=message, reason=key
                )
            )

    def claim_source(self, kind: str, record_id: str) -> int | None:
        """Claim a source record (a tree, post or battle) for the current row.

        Returns None the first time ``(kind, record_id)`` is seen in the file (the row goes
        on); later, the line of the row that claimed it first, 0 if unknown (the caller skips
        the repeat by its rule). A row that is rolled back gives its claim up.
        """
        key = f"{kind}\x1f{record_id}"
        first = self._sources.get(key)
        if first is not None:
            return first
        self._sources[key] = self._line or 0
        self._row_sources.append(key)
        return None

    def skip_repeated_source(
        self, kind: str, record_id: str, *, seen: str, field: str | None = None
    ) -> bool:
        """Return True, noting ``skipped_repeated_source``, if an earlier row claimed the record.

        The rule of every reader with source ids (battles, trees, posts): the first occurrence
        wins (see :meth:`claim_source`). ``seen`` names the record as the note says it, e.g.
        ``"battle 'q1' was already read"``; the note adds the first line and the rule.
        """
        first = self.claim_source(kind, record_id)
        if first is None:
            return False
        self.note(
            "skipped_repeated_source",
            f"{seen} at line {first}; the first occurrence wins, this one is skipped",
            field=field,
        )
        return True

    def count(self, key: str, n: int = 1) -> None:
        """Add ``n`` to ``counts[key]``."""
        if self._row_counts is None and self._in_row:
            self._row_counts = dict(self.counts)  # what a rollback of this row restores
        self.counts[key] = self.counts.get(key, 0) + n

    # -- records ----------------------------------------------------------------------------
    def add_prompt(
        self,
        messages: list[dict[str, str]],
        *,
        field: str = "prompt",
        tags: Sequence[str] = (),
        reference: str | None = None,
    ) -> str:
        """Check ``messages`` as :class:`~preflab.records.Prompt` does; add it once; return its id.

        Raises:
            RowError: no messages, an unknown role, an empty turn, or a last turn not from the user.
        """
        if not messages:
            raise RowError(field, "a prompt needs at least one message")
        for i, m in enumerate(messages):
            if m["role"] not in _ROLES:
                raise RowError(
                    f"{field}[{i}].role",
                    f"expected one of system, user, assistant, got {m['role']!r}",
                )
            if not m["content"].strip():
                raise RowError(f"{field}[{i}].content", f"message {i} ({m['role']}) is empty")
        if messages[-1]["role"] != "user":
            raise RowError(
                field,
                f"the last prompt message must be a user turn, got role {messages[-1]['role']!r}",
            )
        if self._memo_on:
            key = tuple(x for m in messages for x in (m["role"], m["content"]))
            prompt_id = self._prompt_ids.get(key)
            self._memo_lookups += 1
            if prompt_id is None:
                prompt_id = self._prompt_ids[key] = make_prompt_id(messages)
                self._memo_misses += 1
        else:
            prompt_id = make_prompt_id(messages)
        return self.add_checked_prompt(prompt_id, messages, tags=tags, reference=reference)

    def add_checked_prompt(
        self,
        prompt_id: str,
        messages: list[dict[str, str]],
        *,
        tags: Sequence[str] = (),
        reference: str | None = None,
    ) -> str:
        """Add a prompt (once) that :meth:`add_prompt` accepted before, under the id it gave.

        For readers that remember the outcome of a repeated input row: nothing is checked or
        hashed again.
        """
        if prompt_id not in self._seen_prompts:
            self._seen_prompts.add(prompt_id)
            self._row_added.append((self._seen_prompts, prompt_id))
            p = self._p
            p["prompt_id"].append(prompt_id)
            p["messages"].append(messages)
            p["source"].append(self.path)
            p["tags"].append(list(tags))
            p["constraints"].append(None)
            p["reference"].append(reference)
        return prompt_id

    def add_response(
        self,
        prompt_id: str,
        content: str,
        *,
        field: str = "response",
        model: str | None = None,
        model_revision: str | None = None,
        params: dict[str, Any] | None = None,
        origin: str = "import",
    ) -> str:
        """Add a response (once) to ``prompt_id`` and return its id.

        Raises:
            RowError: the content is empty.
        """
        if not content.strip():
            raise RowError(field, "a response must not be empty")
        if self._memo_on:
            key = (prompt_id, content, model)
            response_id = self._response_ids.get(key)
            self._memo_lookups += 1
            if response_id is None:
                response_id = self._response_ids[key] = make_response_id(prompt_id, content, model)
                self._memo_misses += 1
        else:
            response_id = make_response_id(prompt_id, content, model)
        return self.add_checked_response(
            response_id,
            prompt_id,
            content,
            model=model,
            model_revision=model_revision,
            params=params,
            origin=origin,
        )

    def add_checked_response(
        self,
        response_id: str,
        prompt_id: str,
        content: str,
        *,
        model: str | None = None,
        model_revision: str | None = None,
        params: dict[str, Any] | None = None,
        origin: str = "import",
    ) -> str:
        """Add a response (once) that :meth:`add_response` accepted before, under its id."""
        if response_id not in self._seen_responses:
            self._seen_responses.add(response_id)
            self._row_added.append((self._seen_responses, response_id))
            r = self._r
            r["response_id"].append(response_id)
            r["prompt_id"].append(prompt_id)
            r["content"].append(content)
            r["model"].append(model)
            r["model_revision"].append(model_revision)
            r["params"].append(json.dumps(params, sort_keys=True) if params else "{}")
            r["origin"].append(origin)
        return response_id

    def add_judge(
        self,
        judge_id: str,
        kind: str,
        *,
        name: str | None = None,
        vendor: str | None = None,
        team: str | None = None,
        model: str | None = None,
        template: str | None = None,
        template_version: str | None = None,
    ) -> str:
        """Add a judge (once) and return its id."""
        if judge_id not in self._seen_judges:
            self._seen_judges.add(judge_id)
            self._row_added.append((self._seen_judges, judge_id))
            values = {
                "judge_id": judge_id,
                "kind": kind,
                "name": name,
                "vendor": vendor,
                "team": team,
                "model": model,
                "template": template,
                "template_version": template_version,
            }
            for key, value in values.items():
                self._g[key].append(value)
        return judge_id

    def add_judgment(
        self,
        *,
        prompt_id: str,
        response_ids: Sequence[str],
        kind: str,
        judge_id: str,
        pairwise: dict[str, Any] | None = None,
        ranking: list[list[str]] | None = None,
        rating: dict[str, Any] | None = None,
        binary: dict[str, Any] | None = None,
        submitted_at: datetime | None = None,
        comment: str | None = None,
        flags: Sequence[str] = (),
        id_extra: Any = None,
    ) -> str:
        """Check a judgment as :class:`~preflab.records.Judgment` does, add it, return its id.

        ``id_extra`` distinguishes several judgments made from the same input row (e.g. one per
        OpenAssistant tree node) in the judgment id.

        Raises:
            RowError: the same response shown twice, or a value that names unseen responses.
        """
        shown = list(response_ids)
        if (shown[0] == shown[1]) if len(shown) == 2 else len(set(shown)) != len(shown):
            raise RowError(None, "the same response appears twice in one judgment")
        value: Any
        if kind == "pairwise":
            assert pairwise is not None and len(shown) == 2
            assert pairwise["scale"] in _PAIRWISE_SCALES
            assert pairwise["preferred"] is None or pairwise["preferred"] in shown
            value = pairwise
        elif kind == "ranking":
            assert ranking is not None
            assert {r for group in ranking for r in group} <= set(shown)
            value = ranking
        elif kind == "rating":
            assert rating is not None
            assert {s["response_id"] for s in rating["scores"]} <= set(shown)
            value = rating
        elif kind == "binary":
            assert binary is not None and binary["response_id"] in shown
            value = binary
        else:  # pragma: no cover - readers only make the kinds above
            raise ValueError(f"unsupported judgment kind {kind!r}")
        judgment_id = make_judgment_id(
            self.format,
            self._line,
            judge_id,
            prompt_id,
            shown,
            value,
            id_extra,
            value_text=self._value_text(value) if kind == "pairwise" and self._memo_on else None,
        )
        j = self._j
        row = len(j["judgment_id"])
        column = j[kind]  # value columns of other kinds stay short; padded with nulls at flush
        if len(column) < row:
            column.extend([None] * (row - len(column)))
        column.append(value)
        j["judgment_id"].append(judgment_id)
        j["prompt_id"].append(prompt_id)
        j["response_ids"].append(shown)
        j["kind"].append(kind)
        j["judge_id"].append(judge_id)
        j["submitted_at"].append(submitted_at)
        j["comment"].append(comment)
        j["flags"].append(list(flags))
        j["source"].append(self.path)
        j["source_line"].append(self._line)
        return judgment_id

    def _value_text(self, value: dict[str, Any]) -> str:
        """Return the canonical JSON of a flat value (a pairwise choice), encoded once per value."""
        key = tuple(value.items())
        text = self._value_texts.get(key)
        if text is None:
            text = self._value_texts[key] = _encode_canonical(value)
        return text

    # -- output -----------------------------------------------------------------------------
    def pending(self) -> int:
        """Return how many judgments wait in the current chunk."""
        return len(self._j["judgment_id"])

    def discard(self) -> None:
        """Forget the records of the current chunk (used once an import is known to fail)."""
        self._new_columns()

    def flush(self) -> ImportChunk:
        """Return the records collected since the last flush as a chunk, and start a new one."""
        n = len(self._j["judgment_id"])
        for kind in _VALUE_KINDS:
            self._j[kind].extend([None] * (n - len(self._j[kind])))
        judgments = pa.Table.from_arrays(
            [
                pa.nulls(n, f.type)
                if f.name in _NULL_JUDGMENT_COLUMNS
                else _empty_lists(n, f.type)
                if f.name in _EMPTY_JUDGMENT_COLUMNS
                else pa.array(self._j[f.name], type=f.type)
                for f in JUDGMENT_SCHEMA
            ],
            schema=JUDGMENT_SCHEMA,
        )
        chunk = ImportChunk(
            prompts=pa.Table.from_pydict(self._p, schema=PROMPT_SCHEMA),
            responses=pa.Table.from_pydict(self._r, schema=RESPONSE_SCHEMA),
            judgments=judgments,
            judges=pa.Table.from_pydict(self._g, schema=JUDGE_SCHEMA),
            counts=self.counts,
            notes=self.notes,
        )
        chunk.counts.update(
            {
                "prompts": chunk.prompts.num_rows,
                "responses": chunk.responses.num_rows,
                "judgments": chunk.judgments.num_rows,
                "judges": chunk.judges.num_rows,
            }
        )
        self.counts = {}
        self.notes = []
        self._new_columns()
        for seen in (self._seen_prompts, self._seen_responses, self._seen_judges):
            if len(seen) > self.seen_limit:
                seen.clear()  # bounded memory; a record seen long ago may be emitted again
        # texts that rarely repeat (more than half of the ids of this chunk were new): the
        # memos are given up for this file, so memory stays bounded by a chunk's texts
        if self._memo_misses * 2 > self._memo_lookups:
            self._memo_on = False
        for memo in (self._prompt_ids, self._response_ids, self._value_texts):
            if not self._memo_on or len(memo) > ID_MEMO_LIMIT:
                memo.clear()
        self._memo_lookups = self._memo_misses = 0
        return chunk
