"""Store fixtures: a migrated engine on each database and chunks built from records."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from preflab.formats.base import ImportChunk, ImportProblem
from preflab.records import (
    Judge,
    JudgeKind,
    Judgment,
    JudgmentKind,
    Message,
    PairwiseValue,
    Prompt,
    Response,
    records_to_table,
)
from preflab.store.engine import make_engine
from preflab.store.migrate import upgrade_to_head


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """Yield an engine on a fresh database migrated to head (SQLite and PostgreSQL)."""
    eng = make_engine(db_url)
    upgrade_to_head(eng)
    try:
        yield eng
    finally:
        eng.dispose()


def make_pair_records(
    i: int, *, source: str = "pairs.jsonl", judge_id: str = "hh-rlhf"
) -> tuple[Prompt, Response, Response, Judgment]:
    """Return the records of pair number ``i``: a prompt, two responses, a pairwise judgment."""
    prompt = Prompt(
        messages=(Message(role="user", content=f"Question number {i}?"),),
        source=source,
        tags=("t",),
    )
    chosen = Response(
        prompt_id=prompt.prompt_id, content=f"A careful answer {i}.", params={"seed": i}
    )
    rejected = Response(prompt_id=prompt.prompt_id, content=f"A rude answer {i}!")
    judgment = Judgment(
        judgment_id=f"j_{source}_{i}",
        prompt_id=prompt.prompt_id,
        response_ids=(chosen.response_id, rejected.response_id),
        kind=JudgmentKind.PAIRWISE,
        judge_id=judge_id,
        pairwise=PairwiseValue(scale=2, preferred=chosen.response_id, strength=1),
        source=source,
        source_line=i + 1,
    )
    return prompt, chosen, rejected, judgment


def make_chunk(
    start: int,
    stop: int,
    *,
    source: str = "pairs.jsonl",
    problems: list[ImportProblem] | None = None,
    extra_judgments: list[Judgment] = (),  # type: ignore[assignment]
    extra_responses: list[Response] = (),  # type: ignore[assignment]
) -> ImportChunk:
    """Return a chunk holding pairs ``start`` to ``stop - 1`` (as a reader would emit them)."""
    prompts, responses, judgments = [], [], []
    for i in range(start, stop):
        p, c, r, j = make_pair_records(i, source=source)
        prompts.append(p)
        responses += [c, r]
        judgments.append(j)
    responses += list(extra_responses)
    judgments += list(extra_judgments)
    return ImportChunk(
        prompts=records_to_table(prompts, Prompt),
        responses=records_to_table(responses, Response),
        judgments=records_to_table(judgments, Judgment),
        judges=records_to_table([Judge(judge_id="hh-rlhf", kind=JudgeKind.IMPORTED)], Judge),
        problems=list(problems or []),
        counts={"rows": stop - start},
    )


def chunk_stream(n: int, size: int, **kwargs: Any) -> Iterator[ImportChunk]:
    """Yield chunks of ``size`` pairs covering pairs ``0 .. n-1``."""
    for start in range(0, n, size):
        yield make_chunk(start, min(n, start + size), **kwargs)
