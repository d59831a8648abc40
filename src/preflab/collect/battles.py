"""The battles of a project: its live arena votes as the battle table :mod:`preflab.arena` reads.

An arena vote is stored as an ordinary pairwise judgment (source :data:`ARENA_SOURCE`, the two
final answers in slot order A, B) plus the conversation row that says which endpoints fought and
why a vote is excluded (:mod:`preflab.collect.live`). :func:`project_battles` reads them back
with three Core statements (judgments, the responses to their prompts, the conversations) and
builds the table with :func:`preflab.arena.battles_from_judgments`, so the app's leaderboard,
``preflab leaderboard --project`` and a battle file written by ``--battles-out`` are the same
rows.

Polars (and the arena) load on the first call, not on ``import preflab.collect``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from preflab.collect.core_tables import JUDGMENTS as _J
from preflab.collect.core_tables import LIVE_CONVERSATIONS as _C
from preflab.collect.core_tables import RESPONSES as _R
from preflab.store.queries.scope import connection_of

if TYPE_CHECKING:
    import polars as pl

__all__ = ["ARENA_SOURCE", "BATTLE_COLUMNS", "battles_jsonl", "project_battles"]

#: ``judgments.source`` of a live arena vote.
ARENA_SOURCE = "live:arena"

#: Columns of :func:`project_battles`, in order (style columns follow ``response_b``).
BATTLE_COLUMNS: tuple[str, ...] = (
    "judgment_id",
    "judge_id",
    "prompt_id",
    "model_a",
    "model_b",
    "revision_a",
    "revision_b",
    "outcome",
    "is_anonymous",
    "response_a",
    "response_b",
    "style_length_a",
    "style_length_b",
    "style_headers_a",
    "style_headers_b",
    "style_lists_a",
    "style_lists_b",
    "style_bold_a",
    "style_bold_b",
    "excluded_reason",
    "endpoint_a",
    "endpoint_b",
    "conversation_id",
)

_VOTE_FILTER = (
    (_J.c.project_id == bindparam("project_id"))
    & (_J.c.source == ARENA_SOURCE)
    & (_J.c.kind == "pairwise")
)
_VOTES = (
    select(
        _J.c.judgment_id, _J.c.judge_id, _J.c.prompt_id, _J.c.response_ids, _J.c.value,
        _J.c.flags,
    )
    .where(_VOTE_FILTER)
    # table order is vote order: the per-judge cap keeps each judge's first votes
    .order_by(_J.c.submitted_at, _J.c.judgment_id)
)
_RESPONSES = select(
    _R.c.response_id, _R.c.model, _R.c.model_revision, _R.c.content
).where(_R.c.prompt_id.in_(select(_J.c.prompt_id).where(_VOTE_FILTER)))
_RESPONSES_NO_TEXT = select(
    _R.c.response_id, _R.c.model, _R.c.model_revision
).where(_R.c.prompt_id.in_(select(_J.c.prompt_id).where(_VOTE_FILTER)))
_CONVERSATIONS = select(
    _C.c.judgment_id, _C.c.conversation_id, _C.c.endpoints, _C.c.excluded_reason
).where((_C.c.project_id == bindparam("project_id")) & _C.c.judgment_id.is_not(None))

_STRING_COLUMNS = (
    "judgment_id", "judge_id", "prompt_id", "model_a", "model_b", "revision_a", "revision_b",
    "outcome", "response_a", "response_b", "excluded_reason", "endpoint_a", "endpoint_b",
    "conversation_id",
)


def _judgment_schema() -> dict[str, Any]:
    import polars as pl

    pairwise = pl.Struct({"preferred": pl.String, "tie": pl.Boolean, "both_bad": pl.Boolean})
    return {
        "judgment_id": pl.String,
        "judge_id": pl.String,
        "prompt_id": pl.String,
        "kind": pl.String,
        "response_ids": pl.List(pl.String),
        "pairwise": pairwise,
        "flags": pl.List(pl.String),
    }


def _empty(texts: bool) -> pl.DataFrame:
    import polars as pl

    schema: dict[str, Any] = {}
    for name in BATTLE_COLUMNS:
        if name.startswith("style_"):
            if texts:
                schema[name] = pl.Float64
        elif name == "is_anonymous":
            schema[name] = pl.Boolean
        else:
            schema[name] = pl.String
    return pl.DataFrame(schema=schema)


def _side(endpoints: Any, index: int) -> str | None:
    if isinstance(endpoints, list) and len(endpoints) > index:
        value = endpoints[index]
        return None if value is None else str(value)
    return None


def project_battles(
    session: Session | Connection, project_id: str, *, texts: bool = True
) -> pl.DataFrame:
    """Return the battle table of a project's live arena votes, in vote order.

    Every pairwise judgment of the project with source :data:`ARENA_SOURCE` is one row: the two
    answers' ``model`` and ``model_revision`` (``model_a``/``model_b``, ``revision_a``/
    ``revision_b``, A = slot 0), the ``outcome`` (``a``, ``b``, ``tie``, ``both_bad``),
    ``is_anonymous`` from the vote's flags, the answers' text and style counts
    (:func:`preflab.arena.add_style_features`), the conversation's ``excluded_reason`` (the
    vote is kept but does not count: :func:`preflab.arena.apply_hygiene` drops it with that
    reason), and the endpoints that answered (``endpoint_a``/``endpoint_b``, what
    :func:`preflab.arena.choose_pair` pairs).

    Args:
        session: a connection (or session) in a transaction; nothing is written.
        project_id: the project.
        texts: read the answers' text and count their style (False: ``response_a``/``_b`` are
            null and there are no style columns; enough to choose the next pair, and cheaper).

    Returns:
        The battles, columns :data:`BATTLE_COLUMNS` (an empty table of those columns when the
        project has no votes).

    Raises:
        InputError: a vote shows a response that is missing or has no model.
    """
    import polars as pl

    from preflab.arena import add_style_features, battles_from_judgments

    conn = connection_of(session)
    params = {"project_id": project_id}
    votes = conn.execute(_VOTES, params).all()
    if not votes:
        return _empty(texts)
    judgment_schema = _judgment_schema()
    rows: dict[str, list[Any]] = {name: [] for name in judgment_schema}
    for judgment_id, judge_id, prompt_id, response_ids, value, flags in votes:
        rows["judgment_id"].append(judgment_id)
        rows["judge_id"].append(judge_id)
        rows["prompt_id"].append(prompt_id)
        rows["kind"].append("pairwise")
        rows["response_ids"].append([str(r) for r in response_ids or []])
        value = value or {}
        rows["pairwise"].append(
            {
                "preferred": value.get("preferred"),
                "tie": bool(value.get("tie")),
                "both_bad": bool(value.get("both_bad")),
            }
        )
        rows["flags"].append([str(f) for f in flags or []])
    judgments = pl.DataFrame(rows, schema=judgment_schema)
    answers = conn.execute(_RESPONSES if texts else _RESPONSES_NO_TEXT, params).all()
    responses = pl.DataFrame(
        {
            "response_id": [r[0] for r in answers],
            "model": [r[1] for r in answers],
            "model_revision": [r[2] for r in answers],
            "content": [r[3] for r in answers] if texts else [None] * len(answers),
        },
        schema={
            "response_id": pl.String,
            "model": pl.String,
            "model_revision": pl.String,
            "content": pl.String,
        },
    )
    battles = battles_from_judgments(judgments, responses)
    conversations = conn.execute(_CONVERSATIONS, params).all()
    live = pl.DataFrame(
        {
            "judgment_id": [c[0] for c in conversations],
            "conversation_id": [c[1] for c in conversations],
            "endpoint_a": [_side(c[2], 0) for c in conversations],
            "endpoint_b": [_side(c[2], 1) for c in conversations],
            "excluded_reason": [c[3] or None for c in conversations],
        },
        schema={name: pl.String for name in (
            "judgment_id", "conversation_id", "endpoint_a", "endpoint_b", "excluded_reason"
        )},
    )
    revisions = responses.select("response_id", "model_revision")
    shown = judgments.select(
        "judgment_id",
        pl.col("response_ids").list.get(0, null_on_oob=True).alias("_rid_a"),
        pl.col("response_ids").list.get(1, null_on_oob=True).alias("_rid_b"),
    ).with_row_index("_order")
    out = (
        battles.join(shown, on="judgment_id", how="left")
        .join(
            revisions.rename({"response_id": "_rid_a", "model_revision": "revision_a"}),
            on="_rid_a",
            how="left",
        )
        .join(
            revisions.rename({"response_id": "_rid_b", "model_revision": "revision_b"}),
            on="_rid_b",
            how="left",
        )
        .join(live, on="judgment_id", how="left")
        .sort("_order")
    )
    if texts:
        out = add_style_features(out)
    wanted = [c for c in BATTLE_COLUMNS if c in out.columns]
    return out.select(wanted).with_columns(
        [pl.col(c).cast(pl.String) for c in _STRING_COLUMNS if c in wanted]
    )


def battles_jsonl(battles: pl.DataFrame) -> str:
    """Return a battle table as JSONL, one battle per line, in table order.

    :func:`preflab.arena.read_battles` reads the text back into the same table (as the file
    ``preflab leaderboard --battles-out`` writes and ``preflab leaderboard FILE`` reads), so a
    leaderboard of the file equals the leaderboard of the table.
    """
    return battles.write_ndjson()
