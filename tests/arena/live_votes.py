"""Arena votes stored the way the live arena stores them, for the battle and leaderboard tests.

A vote is a prompt, the two final answers (origin ``live``, with model and revision), one
pairwise judgment (source ``live:arena``, 2-point value, flags ``anonymous`` or
``non_anonymous``, judge = the user) and the conversation row (mode ``arena``, status
``voted``, the two endpoints in slot order, the judgment id and the exclusion reason), exactly
the rows ``preflab.collect.live.arena_vote`` writes.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from preflab.collect.core_tables import JUDGMENTS, LIVE_CONVERSATIONS, PROMPTS, RESPONSES
from preflab.formats.chunk_builder import two_point
from preflab.records import make_prompt_id, make_response_id
from preflab.server.db import Database

_START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Side:
    endpoint: str
    model: str
    revision: str | None = None


def store_vote(
    db: Database,
    project_id: str,
    user_id: str,
    a: Side,
    b: Side,
    outcome: str,
    *,
    n: int,
    prompt: str | None = None,
    answer_a: str | None = None,
    answer_b: str | None = None,
    anonymous: bool = True,
    excluded_reason: str | None = None,
) -> str:
    """Store one arena vote (``outcome`` a / b / tie / both_bad); return its judgment id."""
    messages = [{"role": "user", "content": prompt or f"Question number {n}?"}]
    prompt_id = make_prompt_id(messages)
    text_a = answer_a or f"Answer {n} from side A\n\n- point one\n- point two"
    text_b = answer_b or f"Answer {n} from side B, **bold** and a bit longer than A's."
    rid_a = make_response_id(prompt_id, text_a, a.model, a.revision)
    rid_b = make_response_id(prompt_id, text_b, b.model, b.revision)
    preferred = {"a": rid_a, "b": rid_b}.get(outcome)
    value = two_point(preferred, tie=outcome == "tie", both_bad=outcome == "both_bad")
    judgment_id = uuid.uuid4().hex
    with db.transaction() as conn:
        conn.execute(insert(PROMPTS).values(prompt_id=prompt_id, messages=messages,
                                            source="live", tags=[]))
        for rid, text, side in ((rid_a, text_a, a), (rid_b, text_b, b)):
            conn.execute(insert(RESPONSES).values(
                response_id=rid, prompt_id=prompt_id, content=text, model=side.model,
                model_revision=side.revision, params={"temperature": 0.7}, origin="live"))
        conn.execute(insert(JUDGMENTS).values(
            judgment_id=judgment_id, prompt_id=prompt_id, response_ids=[rid_a, rid_b],
            kind="pairwise", judge_id=user_id, value=value, project_id=project_id,
            submitted_at=_START + timedelta(minutes=n), flags=["anonymous" if anonymous
                                                                else "non_anonymous"],
            idempotency_key=f"vote-{judgment_id}", source="live:arena"))
        conn.execute(insert(LIVE_CONVERSATIONS).values(
            conversation_id=uuid.uuid4().hex, project_id=project_id, user_id=user_id,
            mode="arena", status="voted", endpoints=[a.endpoint, b.endpoint],
            judgment_id=judgment_id, excluded_reason=excluded_reason,
            revealed_at=_START + timedelta(minutes=n), created_at=_START, updated_at=_START))
    return judgment_id


def store_random_votes(
    db: Database, project_id: str, user_ids: list[str], sides: list[Side], count: int,
    *, seed: int = 0, strengths: dict[str, float] | None = None,
) -> list[str]:
    """Store ``count`` votes between random pairs of ``sides``; stronger models win more often."""
    rng = random.Random(seed)
    strengths = strengths or {s.model: float(i) for i, s in enumerate(sides)}
    ids = []
    for n in range(count):
        a, b = rng.sample(sides, 2)
        d = strengths[a.model] - strengths[b.model]
        u = rng.random()
        p_a = 1 / (1 + 2.718281828 ** (-d))
        outcome = "tie" if u < 0.1 else ("a" if rng.random() < p_a else "b")
        if u > 0.97:
            outcome = "both_bad"
        ids.append(store_vote(db, project_id, rng.choice(user_ids), a, b, outcome, n=n))
    return ids
