"""Hard cases: answers that production users rejected, queued for annotators to judge.

Production feedback (:mod:`preflab.loop.feedback`) says where a model failed, but as one user's
quick reaction. Hard cases turn those moments into annotation items of a pairwise (or
ranking, or rating) project, so annotators judge them carefully, with guidelines, overlap and
gold, and the result becomes training data like any other:

- an **edit**: the answer against the user's corrected text;
- a **regeneration**: the answer the user kept against the first answer (or, when the user
  went back to the first, against the last regeneration);
- a **thumbs down**: the answer against another answer to the same prompt, preferring one
  with a thumbs up; without any other answer the event is left out (counted as
  ``no_second_response``).

Newest events first, at most ``limit`` items. An item already in the project (same prompt and
responses) is not queued twice (``already_queued``). Items get ``priority`` (default 1, above
the 0 of imported items), so the queue serves them first; the order the responses are shown in
is randomized per annotator by the queue as usual.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, select

from preflab.errors import NotFoundError, UsageError
from preflab.store.items import make_item_id, make_response_ids_key
from preflab.store.queries import find_project
from preflab.store.tables import Item, JudgmentRow
from preflab.store.unit_of_work import write_scope

__all__ = ["HARD_CASE_KINDS", "HardCaseResult", "queue_hard_cases"]

HARD_CASE_KINDS = ("edit", "regenerate", "thumbs_down")


@dataclass(slots=True)
class HardCaseResult:
    """What :func:`queue_hard_cases` did."""

    project_id: str
    queued: int = 0
    item_ids: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Return the result as plain JSON."""
        return {
            "project_id": self.project_id,
            "queued": self.queued,
            "item_ids": list(self.item_ids),
            "counts": dict(self.counts),
        }


_PAGE = 500
# the stored judgment kind of each hard-case kind
_STORED_KIND = {"edit": "edit", "regenerate": "ranking", "thumbs_down": "binary"}


def _other_answers(
    conn: Connection, from_feedback: Any, prompt_ids: set[str]
) -> dict[str, list[str]]:
    """Return, per prompt, the answers its feedback judgments name: thumbs-up ones first."""
    if not prompt_ids:
        return {}
    j = JudgmentRow.__table__
    rows = conn.execute(
        select(j.c.prompt_id, j.c.response_ids, j.c.kind, j.c.value)
        .where(from_feedback, j.c.prompt_id.in_(sorted(prompt_ids)))
        .order_by(j.c.submitted_at.desc().nulls_last(), j.c.judgment_id)
    ).all()
    others: dict[str, list[str]] = {}
    for row in sorted(rows, key=lambda r: not (r.kind == "binary" and r.value.get("label"))):
        for rid in row.response_ids:
            if rid not in others.setdefault(row.prompt_id, []):
                others[row.prompt_id].append(rid)
    return others


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def _kind_of(kind: str, value: dict[str, Any]) -> str | None:
    if kind == "edit":
        return "edit"
    if kind == "ranking":
        return "regenerate"
    if kind == "binary" and value.get("label") is False:
        return "thumbs_down"
    return None


def _pair(
    kind: str, response_ids: Sequence[str], value: dict[str, Any], others: dict[str, list[str]],
    prompt_id: str,
) -> list[str] | None:
    if kind == "edit":
        return [value["original_id"], value["edited_id"]]
    if kind == "regenerate":
        kept = value["groups"][0][0]
        first = response_ids[0]
        other = first if kept != first else response_ids[-1]
        return [kept, other] if other != kept else None
    answer = value["response_id"]
    candidates = [r for r in others.get(prompt_id, []) if r != answer]
    return [answer, candidates[0]] if candidates else None


def queue_hard_cases(
    engine: Engine,
    source_project: str,
    target_project: str,
    *,
    limit: int = 100,
    kinds: Sequence[str] = HARD_CASE_KINDS,
    since: datetime | None = None,
    priority: int = 1,
) -> HardCaseResult:
    """Queue the newest hard cases of ``source_project``'s feedback as items of ``target_project``.

    Args:
        engine: the workspace.
        source_project: the project the feedback API writes to (name or id).
        target_project: the annotation project to queue items in (name or id; not binary).
        limit: at most this many new items.
        kinds: which events count: ``edit``, ``regenerate``, ``thumbs_down``.
        since: only events that happened at or after this time (naive times are UTC).
        priority: the items' queue priority (higher is served first).

    Raises:
        NotFoundError: a project does not exist.
        UsageError: an unknown kind, a limit below 1, or a binary target project (its items
            hold one response, not two).
    """
    unknown = sorted(set(kinds) - set(HARD_CASE_KINDS))
    if unknown:
        raise UsageError(
            f"unknown hard-case kind {unknown[0]!r}; choose from {', '.join(HARD_CASE_KINDS)}",
            field="kinds",
            value=unknown[0],
        )
    if limit < 1:
        raise UsageError(f"limit must be 1 or more, got {limit}", field="limit", value=limit)
    result = HardCaseResult(project_id="")
    counts = result.counts
    with write_scope(engine) as conn:
        projects = []
        for name, what in ((source_project, "source"), (target_project, "target")):
            row = find_project(conn, name)
            if row is None:
                raise NotFoundError(
                    f"no project {name!r} (the {what} project); `preflab projects list` shows "
                    "the projects",
                    field=what,
                    value=name,
                )
            projects.append(row)
        source, target = projects
        if target.kind == "binary":
            raise UsageError(
                f"project {target.name!r} judges one response at a time (binary); hard cases "
                "need a pairwise, ranking or rating project",
                field="target",
                value=target_project,
            )
        result.project_id = target.project_id
        j = JudgmentRow.__table__
        from_feedback = (j.c.project_id == source.project_id) & j.c.judge_id.like("feedback:%")
        stmt = (
            select(j.c.judgment_id, j.c.prompt_id, j.c.response_ids, j.c.kind, j.c.value,
                   j.c.submitted_at)
            .where(from_feedback, j.c.kind.in_(sorted({_STORED_KIND[k] for k in kinds})))
            .order_by(j.c.submitted_at.desc().nulls_last(), j.c.judgment_id)
        )
        items: list[dict[str, Any]] = []
        # candidates a page at a time: two lookups per page (other answers, queued items)
        for page in conn.execute(stmt).partitions(_PAGE):
            chosen = []
            for row in page:
                kind = _kind_of(row.kind, row.value)
                if kind is None or kind not in kinds:
                    continue
                if since is not None and (
                    row.submitted_at is None or _utc(row.submitted_at) < _utc(since)
                ):
                    continue
                chosen.append((kind, row))
            others = _other_answers(
                conn, from_feedback, {r.prompt_id for k, r in chosen if k == "thumbs_down"}
            )
            pairs = []
            for kind, row in chosen:
                pair = _pair(kind, row.response_ids, row.value, others, row.prompt_id)
                if pair is None:
                    counts["no_second_response"] = counts.get("no_second_response", 0) + 1
                    continue
                key = make_response_ids_key(pair)
                item_id = make_item_id(target.project_id, row.prompt_id, pair, key=key)
                pairs.append((kind, row, pair, key, item_id))
            ids = [item_id for *_, item_id in pairs]
            queued = set(conn.execute(select(Item.item_id).where(Item.item_id.in_(ids))).scalars())
            for kind, row, pair, key, item_id in pairs:
                if item_id in queued:
                    counts["already_queued"] = counts.get("already_queued", 0) + 1
                    continue
                queued.add(item_id)
                items.append(
                    {
                        "item_id": item_id,
                        "project_id": target.project_id,
                        "prompt_id": row.prompt_id,
                        "response_ids": pair,
                        "response_ids_key": key,
                        "target": target.overlap,
                        "priority": priority,
                        "source": f"hard-case:{kind}:{row.judgment_id}",
                    }
                )
                counts[kind] = counts.get(kind, 0) + 1
                if len(items) == limit:
                    break
            if len(items) == limit:
                break
        if items:
            conn.execute(Item.__table__.insert(), items)
    result.queued = len(items)
    result.item_ids = [i["item_id"] for i in items]
    return result
