"""Likely-flipped labels back to annotators: the pairs the evidence contradicts, judged again.

:mod:`preflab.audit.flipped` scores each item of a project by how likely its label (the
majority of its human judgments) is wrong, from annotator agreement, AI judges in both orders,
Dawid–Skene reliabilities and gold answers. Dropping such pairs loses data; judging them again
keeps it. :func:`queue_likely_flipped` puts the flagged items, worst first, in an annotation
project with a priority above imported items (default 2, above the 1 of hard cases), so the
queue serves them first:

- an item the target project does not hold yet is **queued** as a new item (the project's
  overlap as its target);
- an item the target project already holds (re-queueing into the project the labels came
  from) is **reopened**: its target grows by ``extra_judgments`` and its priority is raised, so
  new annotators judge it (the queue never serves an item twice to one annotator).

An item that is still open (it waits for the judgments it asked for) is not reopened again:
its priority is raised and it is counted as ``still_open``, so running the command twice asks
for one more judgment, not two. New items record ``likely-flipped:<score>`` as their source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from preflab.audit.flipped import FLIP_THRESHOLD, flip_scores
from preflab.audit.outcomes import gold_from_answers
from preflab.errors import NotFoundError, UsageError
from preflab.store.items import make_item_id, make_response_ids_key
from preflab.store.queries import find_project, read_judgments
from preflab.store.queries.audit_inputs import read_gold
from preflab.store.tables import Item
from preflab.store.unit_of_work import write_scope

__all__ = ["RequeueResult", "queue_likely_flipped"]

_SOURCE_PREFIX = "likely-flipped:"


@dataclass(slots=True)
class RequeueResult:
    """What :func:`queue_likely_flipped` did."""

    project_id: str
    scored: int = 0
    flagged: int = 0
    queued: int = 0
    reopened: int = 0
    item_ids: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    skipped_reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the result as plain JSON."""
        return {
            "project_id": self.project_id,
            "scored": self.scored,
            "flagged": self.flagged,
            "queued": self.queued,
            "reopened": self.reopened,
            "item_ids": list(self.item_ids),
            "skipped": dict(self.skipped),
            "skipped_reason": self.skipped_reason,
        }


def _project(conn: Any, name: str, what: str) -> Any:
    row = find_project(conn, name)
    if row is None:
        raise NotFoundError(
            f"no project {name!r} (the {what} project); `preflab projects list` shows the projects",
            field=what,
            value=name,
        )
    return row


def queue_likely_flipped(
    engine: Engine,
    source_project: str,
    target_project: str | None = None,
    *,
    threshold: float = FLIP_THRESHOLD,
    limit: int = 100,
    priority: int = 2,
    extra_judgments: int = 1,
) -> RequeueResult:
    """Queue the items of ``source_project`` whose label is likely flipped, worst first.

    Args:
        engine: the workspace.
        source_project: the project whose judgments are scored (name or id).
        target_project: the annotation project to queue them in (default: the source project).
        threshold: the flip score from which an item is queued.
        limit: at most this many flagged items, worst first, are queued, reopened or (still
            open) left as they are.
        priority: the items' queue priority (higher is served first).
        extra_judgments: how many more judgments a reopened item asks for.

    Raises:
        NotFoundError: a project does not exist.
        UsageError: a limit or extra below 1, a threshold outside (0, 1], or a binary target
            project (its items hold one response).
        DependencyError: crowd-kit is not installed.
    """
    if limit < 1 or extra_judgments < 1:
        bad, value = ("limit", limit) if limit < 1 else ("extra_judgments", extra_judgments)
        raise UsageError(f"{bad} must be 1 or more, got {value}", field=bad, value=value)
    # scored on a read snapshot first (PostgreSQL streams it through a server-side cursor,
    # which a write transaction's inserts cannot share; SQLite's write lock is not held during
    # the fit), written in one transaction after
    with engine.connect() as conn:
        source = _project(conn, source_project, "source")
        judgments = read_judgments(conn, source.project_id)
        gold = gold_from_answers(read_gold(conn, source.project_id))
    scores, info = flip_scores(judgments, gold=gold, threshold=threshold)
    flagged = scores.filter(scores["flagged"]).head(limit).to_dicts()
    with write_scope(engine) as conn:
        target = _project(conn, target_project or source_project, "target")
        if target.kind == "binary":
            raise UsageError(
                f"project {target.name!r} judges one response at a time (binary); flipped pairs "
                "need a pairwise project",
                field="target",
                value=target_project,
            )
        result = RequeueResult(
            project_id=target.project_id,
            scored=info["scored"],
            flagged=info["flagged"],
            skipped=dict(info["skipped"]),
            skipped_reason=info.get("skipped_reason"),
        )
        _write_items(conn, target, flagged, result, priority=priority, extra=extra_judgments)
    return result


def _write_items(
    conn: Connection,
    target: Any,
    flagged: list[dict[str, Any]],
    result: RequeueResult,
    *,
    priority: int,
    extra: int,
) -> None:
    """Insert the flagged items the target lacks; reopen the closed ones it holds."""
    planned = []
    for row in flagged:
        pair = sorted((row["chosen_id"], row["rejected_id"]))
        key = make_response_ids_key(pair)
        item_id = make_item_id(target.project_id, row["prompt_id"], pair, key=key)
        planned.append((row, pair, key, item_id))
    ids = [p[3] for p in planned]
    held = (
        {
            r.item_id: r
            for r in conn.execute(select(Item.item_id, Item.is_open).where(Item.item_id.in_(ids)))
        }
        if ids
        else {}
    )
    new = []
    for row, pair, key, item_id in planned:
        old = held.get(item_id)
        if old is None:
            new.append(
                {
                    "item_id": item_id,
                    "project_id": target.project_id,
                    "prompt_id": row["prompt_id"],
                    "response_ids": pair,
                    "response_ids_key": key,
                    "target": target.overlap,
                    "priority": priority,
                    "source": f"{_SOURCE_PREFIX}{row['flip_score']:.3f}",
                }
            )
        elif old.is_open:  # still waiting for the judgments an earlier run asked for
            result.skipped["still_open"] = result.skipped.get("still_open", 0) + 1
            conn.execute(
                update(Item)
                .where(Item.item_id == item_id, Item.priority < priority)
                .values(priority=priority)
            )
            continue
        else:
            grown = Item.target + extra
            conn.execute(
                update(Item)
                .where(Item.item_id == item_id)
                .values(
                    target=grown, priority=priority, is_open=(Item.done + Item.reserved) < grown
                )
            )
            result.reopened += 1
        result.item_ids.append(item_id)
    if new:
        conn.execute(insert(Item), new)
    result.queued = len(new)
