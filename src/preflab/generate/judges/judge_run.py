"""What every AI judge run shares: the transcript it shows, its failures, its stored results.

A judge (pairwise, rubric) plans requests, runs them as one job and reads the replies its own
way; what it then keeps is the same for all: the unreadable replies are counted and noted on
their cached requests, and the judgments go to the store with the records they refer to, in
one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import pyarrow as pa
from sqlalchemy import Connection, Engine

from preflab.generate.cache import annotate_error
from preflab.generate.jobs import JobResult
from preflab.generate.writeback import (
    judgments_table,
    save_judges,
    save_judgments,
    save_prompts,
    save_responses,
    stored_judgment_ids,
)
from preflab.records import Judge, Judgment, Prompt, Response
from preflab.store.unit_of_work import write_scope

__all__ = ["JudgeFailure", "JudgeRunResult", "render_conversation", "store_judge_run"]


def render_conversation(prompt: Prompt) -> str:
    """Return the prompt's messages as a plain transcript (``User: …`` / ``Assistant: …``)."""
    names = {"system": "System", "user": "User", "assistant": "Assistant"}
    return "\n\n".join(f"{names[m.role]}: {m.content}" for m in prompt.messages)


@dataclass(frozen=True, slots=True)
class JudgeFailure:
    """A judged item without a usable answer: the call failed or its text was unparseable."""

    prompt_id: str
    response_ids: tuple[str, ...]
    reason: str
    raw: str | None = None


class JudgeRunResult:
    """The part of a judge's result every judge has (a base for its slotted dataclass)."""

    __slots__ = ()
    judgments: list[Judgment]
    already_stored: int

    @property
    def new_judgments(self) -> int:
        """Return how many judgments this run added to the store."""
        return len(self.judgments) - self.already_stored

    def table(self) -> pa.Table:
        """Return the judgments as an Arrow table (``JUDGMENT_SCHEMA``)."""
        return judgments_table(self.judgments)


def store_judge_run(
    engine: Engine,
    job: JobResult,
    judge: Judge,
    judgments: list[Judgment],
    prompts: Iterable[Prompt],
    responses: Iterable[Response],
    unparseable: Mapping[str, str],
    *,
    also: Callable[[Connection], object] | None = None,
) -> int:
    """Store a judge run in one transaction; return how many judgments were stored before.

    ``unparseable`` maps the request key of each unreadable reply to the reason noted on its
    cached request; each is counted in the job summary as unparseable, not as done or cached.
    ``also`` writes more in the same transaction (the pairwise judge's items for humans).
    """
    for key in unparseable:
        job.summary.note_unparseable(key in job.called)
    with write_scope(engine) as conn:
        already = len(stored_judgment_ids(conn, (j.judgment_id for j in judgments)))
        for key, reason in unparseable.items():
            annotate_error(conn, key, reason)
        save_prompts(conn, prompts)
        save_responses(conn, responses)
        save_judges(conn, [judge])
        save_judgments(conn, judgments)
        if also is not None:
            also(conn)
    return already
