"""Gold items (issue 13): expected answers, where gold falls in each annotator's tasks, gold
accuracy per annotator over time, and the project's threshold.

Why a module of its own: an expected answer is checked against the item it is for (the
project's kind and scale, the item's response ids) on every path that sets one (the admin item
page, the CSV/JSONL upload, the API and the CLI), and the queue, the progress figures and the
admin page must all judge an answer right or wrong by the same rule.

The gold answers a project accepts, by kind (unknown keys are refused):

- ``pairwise``: ``{"preferred": <response id>}`` (optionally ``"min_strength": 1..scale//2``),
  ``{"tie": true}`` or ``{"both_bad": true}``;
- ``binary``: ``{"label": true|false}`` (optionally ``"response_id"``, default the first);
- ``ranking``: ``{"best": <response id>}`` (right when it is alone in the first group);
- ``rating``: ``{"scores": {<response id>: {<attribute>: score}}}`` (optionally
  ``"tolerance"``: how far a score may be from the expected one, default 0).

Gold placement: an annotator's tasks are cut into blocks of :data:`GOLD_BLOCK`; block ``b``
holds ``floor((b+1)·B·share) - floor(b·B·share)`` gold tasks at positions drawn by a generator
seeded with the project, the annotator and ``b``. So the share holds to within one block, yet
no annotator can count on "every k-th task is gold", and two annotators get different places.

Functions take a ``Connection`` (or a ``Session``) and never commit.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import Connection, bindparam, func, select, update
from sqlalchemy.orm import Session

from preflab.collect.core_tables import ITEMS as _I
from preflab.collect.core_tables import JUDGMENTS as _J
from preflab.collect.core_tables import PROJECTS as _P
from preflab.collect.projects import get_project
from preflab.collect.rows import Project, aware
from preflab.errors import InputError, PermissionDeniedError
from preflab.store.queries.scope import connection_of

__all__ = [
    "GOLD_BLOCK",
    "GoldLine",
    "GoldThreshold",
    "check_gold_answer",
    "clear_gold",
    "count_gold",
    "gold_correct",
    "gold_history",
    "gold_standing",
    "gold_tally",
    "gold_threshold",
    "is_gold_due",
    "list_gold",
    "load_gold_file",
    "read_gold_file",
    "require_gold_standing",
    "set_gold",
    "set_gold_threshold",
]

#: Tasks per placement block: the gold share holds exactly over each block of this many tasks.
GOLD_BLOCK = 20
#: Problems listed in one upload error (the rest are counted).
MAX_PROBLEMS = 20

_ANSWER_KEYS = {
    "pairwise": {"preferred", "tie", "both_bad", "min_strength"},
    "binary": {"label", "response_id"},
    "ranking": {"best"},
    "rating": {"scores", "tolerance"},
}
_TRUE = {"true", "1", "yes", "y", "up", "t"}
_FALSE = {"false", "0", "no", "n", "down", "f"}


class GoldThreshold(BaseModel):
    """A project's gold threshold: the least accuracy an annotator must keep after ``after``
    gold answers; below it they are flagged, and with ``stop_serving`` get no new tasks."""

    min_accuracy: float = Field(ge=0.0, le=1.0, description="Least share of gold answered right.")
    after: int = Field(ge=1, le=100_000, description="Gold answers before the check applies.")
    stop_serving: bool = Field(default=False,
                               description="Stop serving new tasks to a flagged annotator.")


@dataclass(frozen=True, slots=True)
class GoldLine:
    """One gold answer of an upload: the file line it came from, the item and the answer."""

    line: int
    item_id: str
    answer: dict[str, Any]


# ---------------------------------------------------------------- placement


def is_gold_due(n: int, share: float, *seed: str) -> bool:
    """Return whether an annotator's ``n``-th task (1-based) is a gold task.

    >>> sum(is_gold_due(n, 0.1, "p", "u") for n in range(1, 201))
    20
    """
    if share <= 0 or n < 1:
        return False
    block, pos = divmod(n - 1, GOLD_BLOCK)
    k = math.floor((block + 1) * GOLD_BLOCK * share + 1e-9) - math.floor(
        block * GOLD_BLOCK * share + 1e-9)
    if k <= 0:
        return False
    raw = json.dumps(["gold", *seed, block], separators=(",", ":"))
    rng = random.Random(hashlib.sha256(raw.encode()).digest())
    return pos in rng.sample(range(GOLD_BLOCK), min(k, GOLD_BLOCK))


# ---------------------------------------------------------------- answers


def _fail(field: str, message: str, value: Any = None) -> InputError:
    return InputError(message, field=f"answer.{field}" if field else "answer", value=value)


def _response_in(field: str, rid: Any, response_ids: Sequence[str]) -> str:
    if rid not in response_ids:
        raise _fail(field, f"expected one of the item's responses {list(response_ids)}, "
                           f"got {rid!r}", rid)
    return str(rid)


def _pairwise_answer(project: Project, rids: Sequence[str], a: Mapping[str, Any]) -> dict[str, Any]:
    given = [k for k in ("preferred", "tie", "both_bad") if a.get(k) not in (None, False)]
    if len(given) != 1:
        raise _fail("", "a pairwise gold answer names exactly one of preferred (a response id), "
                        f"tie or both_bad; got {sorted(given) or 'none'}")
    if given == ["tie"]:
        if not project.allow_tie and project.scale % 2 == 0:
            raise _fail("tie", f"project {project.project_id} has no tie answer")
        return {"tie": True}
    if given == ["both_bad"]:
        if not project.allow_both_bad:
            raise _fail("both_bad", f"project {project.project_id} has no both-bad answer")
        return {"both_bad": True}
    out: dict[str, Any] = {"preferred": _response_in("preferred", a["preferred"], rids)}
    if a.get("min_strength") is not None:
        top = max(project.scale // 2, 1)
        s = a["min_strength"]
        if not isinstance(s, int) or isinstance(s, bool) or not 1 <= s <= top:
            raise _fail("min_strength", f"expected a whole number 1..{top} (the project's "
                                        f"{project.scale}-point scale), got {s!r}", s)
        out["min_strength"] = s
    return out


def _rating_answer(project: Project, rids: Sequence[str], a: Mapping[str, Any]) -> dict[str, Any]:
    scores = a.get("scores")
    if not isinstance(scores, Mapping) or not scores:
        raise _fail("scores", "expected {response id: {attribute: score}} with at least one "
                              f"score, got {scores!r}", scores)
    lo = float(project.config.get("scale_min", 0))
    hi = float(project.config.get("scale_max", 4))
    attrs = list(project.attributes or [])
    out: dict[str, dict[str, float]] = {}
    for rid, per in scores.items():
        _response_in(f"scores.{rid}", rid, rids)
        if not isinstance(per, Mapping) or not per:
            raise _fail(f"scores.{rid}", f"expected {{attribute: score}}, got {per!r}", per)
        for attr, v in per.items():
            if attr not in attrs:
                raise _fail(f"scores.{rid}.{attr}", f"expected one of the project's attributes "
                                                    f"{attrs}, got {attr!r}", attr)
            if not isinstance(v, int | float) or isinstance(v, bool) or not lo <= v <= hi:
                raise _fail(f"scores.{rid}.{attr}", f"expected a score within {lo:g}..{hi:g}, "
                                                    f"got {v!r}", v)
            out.setdefault(str(rid), {})[str(attr)] = float(v)
    tol = a.get("tolerance", 0)
    if not isinstance(tol, int | float) or isinstance(tol, bool) or tol < 0:
        raise _fail("tolerance", f"expected a number of points >= 0, got {tol!r}", tol)
    return {"scores": out, "tolerance": float(tol)}


def check_gold_answer(
    project: Project, response_ids: Sequence[str], answer: Any
) -> dict[str, Any]:
    """Return the gold answer in its stored shape, checked against the project and the item.

    Args:
        project: the item's project (its kind, scale, tie/both-bad options, attributes).
        response_ids: the item's responses.
        answer: the expected answer (see the module docstring for each kind's shape).

    Raises:
        InputError: the answer does not fit; ``field`` is ``answer.<key>``.

    >>> from preflab.collect.projects import ProjectCreate, build_project
    >>> check_gold_answer(build_project(ProjectCreate(name="p")), ["r1", "r2"], {"preferred": "r2"})
    {'preferred': 'r2'}
    """
    if not isinstance(answer, Mapping):
        raise _fail("", f"expected a JSON object, got {answer!r}", answer)
    if "derived_from" in answer:  # provenance, any kind (issue 15): the audit never scores
        derived = answer["derived_from"]  # these judgments against this answer
        if not isinstance(derived, list) or not all(isinstance(x, str) for x in derived):
            raise _fail("derived_from", "expected a list of the judgment ids this answer was taken "
                                        f"from, got {derived!r}", derived)
        rest = {k: v for k, v in answer.items() if k != "derived_from"}
        return {**check_gold_answer(project, response_ids, rest), "derived_from": list(derived)}
    unknown = sorted(set(answer) - _ANSWER_KEYS.get(project.kind, set()))
    if unknown:
        raise _fail(unknown[0], f"{project.kind} gold answers take "
                                f"{sorted(_ANSWER_KEYS.get(project.kind, set()))}, "
                                f"got {unknown}", unknown[0])
    if project.kind == "pairwise":
        return _pairwise_answer(project, response_ids, answer)
    if project.kind == "ranking":
        return {"best": _response_in("best", answer.get("best"), response_ids)}
    if project.kind == "binary":
        label = answer.get("label")
        if not isinstance(label, bool):
            raise _fail("label", f"expected true (thumbs up) or false (thumbs down), got "
                                 f"{label!r}", label)
        rid = answer.get("response_id") or response_ids[0]
        return {"label": label, "response_id": _response_in("response_id", rid, response_ids)}
    if project.kind == "rating":
        return _rating_answer(project, response_ids, answer)
    raise _fail("", f"project kind {project.kind!r} takes no gold answers")


def gold_correct(kind: str, value: Mapping[str, Any], answer: Mapping[str, Any]) -> bool:
    """Return whether a judgment ``value`` of ``kind`` matches a gold ``answer``.

    >>> gold_correct("pairwise", {"preferred": "r1", "strength": 2}, {"preferred": "r1"})
    True
    """
    if kind == "pairwise":
        if answer.get("tie"):
            return bool(value.get("tie"))
        if answer.get("both_bad"):
            return bool(value.get("both_bad"))
        return (value.get("preferred") == answer.get("preferred")
                and not value.get("tie") and not value.get("both_bad")
                and int(value.get("strength") or 0) >= int(answer.get("min_strength") or 0))
    if kind == "binary":
        rid = answer.get("response_id")
        return (value.get("label") == answer.get("label")
                and (rid is None or value.get("response_id") == rid))
    if kind == "ranking":
        groups = value.get("groups") or []
        return bool(groups) and list(groups[0]) == [answer.get("best")]
    if kind == "rating":
        got, tol = value.get("scores") or {}, float(answer.get("tolerance") or 0)
        return all(
            isinstance(got.get(rid, {}).get(attr), int | float)
            and abs(float(got[rid][attr]) - float(v)) <= tol + 1e-9
            for rid, per in (answer.get("scores") or {}).items() for attr, v in per.items()
        )
    return False


# ---------------------------------------------------------------- setting and clearing gold

_ITEMS_OF = select(_I.c.item_id, _I.c.project_id, _I.c.response_ids).where(
    _I.c.item_id.in_(bindparam("ids", expanding=True)))
_SET_GOLD = (
    update(_I).where(_I.c.item_id == bindparam("b_item_id"))
    .values(is_gold=True, gold_answer=bindparam("b_answer"))
)
_CLEAR_GOLD = (
    update(_I)
    .where(_I.c.item_id == bindparam("b_item_id"), _I.c.project_id == bindparam("b_project_id"),
           _I.c.is_gold == True)
    .values(is_gold=False, gold_answer=None,
            is_open=(_I.c.done + _I.c.reserved) < _I.c.target)
)
_GOLD_COUNT = select(func.count()).select_from(_I).where(
    _I.c.project_id == bindparam("project_id"), _I.c.is_gold == True)
_GOLD_ITEMS = (
    select(_I.c.item_id, _I.c.prompt_id, _I.c.response_ids, _I.c.gold_answer)
    .where(_I.c.project_id == bindparam("project_id"), _I.c.is_gold == True)
    .order_by(_I.c.item_id)
)


def _problem(name: str | None, g: GoldLine, exc: InputError, field_name: str | None = None
             ) -> str:
    """One problem, its location first in :meth:`PreflabError.location`'s own form."""
    field_name = field_name or exc.field
    field = f'field "{field_name}"' if field_name else ""
    if name and g.line:
        return f"{name}, line {g.line}" + (f", {field}" if field else "") + f": {exc.message}"
    where = f"{field} of item {g.item_id}" if field else f"item {g.item_id}"
    return f"{where}: {exc.message}"


def set_gold(
    session: Session | Connection,
    project_id: str,
    answers: Sequence[GoldLine],
    *,
    path: str | None = None,
) -> int:
    """Make items gold with their expected answers, all or nothing; return how many were set.

    Every answer is checked against its item (in this project) and the project's question
    before anything is written; one bad answer writes none.

    Args:
        session: the unit of work.
        project_id: the project the items belong to.
        answers: the answers, each with its file line (0 when not from a file).
        path: the file name, named in errors.

    Raises:
        NotFoundError: no such project.
        InputError: every problem found (up to :data:`MAX_PROBLEMS`), each with its line and
            field; ``line``/``field`` are the first problem's.
    """
    conn = connection_of(session)
    updates, problems = _check(conn, project_id, answers)
    if problems:
        raise _upload_error(problems, path)
    if updates:
        conn.execute(_SET_GOLD, updates)
    return len(updates)


def _check(conn: Connection, project_id: str, answers: Sequence[GoldLine]
           ) -> tuple[list[dict[str, Any]], list[tuple[GoldLine, InputError]]]:
    """Return the checked updates and the problems (each answer against its item)."""
    project = get_project(conn, project_id)
    items: dict[str, Any] = {}
    ids = sorted({a.item_id for a in answers})
    for start in range(0, len(ids), 500):
        for found in conn.execute(_ITEMS_OF, {"ids": ids[start:start + 500]}):
            items[found.item_id] = found
    problems: list[tuple[GoldLine, InputError]] = []
    updates = []
    for a in answers:
        row = items.get(a.item_id)
        try:
            if row is None or row.project_id != project_id:
                raise InputError(f"no item {a.item_id!r} in project {project_id}; the admin "
                                 "items page and `preflab projects gold list` show item ids",
                                 field="item_id", value=a.item_id)
            updates.append({"b_item_id": a.item_id,
                            "b_answer": check_gold_answer(project, row.response_ids, a.answer)})
        except InputError as exc:
            problems.append((a, exc))
    return updates, problems


def _upload_error(problems: Sequence[tuple[GoldLine, InputError]], path: str | None) -> InputError:
    first_line, first = problems[0]
    field = first.field or ("file" if path else "answers")
    shown = [_problem(path, g, exc, field if k == 0 else None)
             for k, (g, exc) in enumerate(problems[:MAX_PROBLEMS])]
    more = len(problems) - len(shown)
    return InputError(
        "; ".join(shown) + (f"; and {more} more" if more else "")
        + f" ({len(problems)} problem{'s' if len(problems) != 1 else ''}; nothing was stored: "
        "fix them and send the whole file again)",
        path=path if first_line.line else None, line=first_line.line or None,
        field=field, value=first.value)


def clear_gold(session: Session | Connection, project_id: str, item_ids: Sequence[str]) -> int:
    """Make gold items ordinary again (they rejoin the queue with their target); return how
    many were gold. Their judgments stay stored."""
    conn = connection_of(session)
    params = [{"b_item_id": i, "b_project_id": project_id} for i in dict.fromkeys(item_ids)]
    return sum(conn.execute(_CLEAR_GOLD, p).rowcount for p in params)


def count_gold(session: Session | Connection, project_id: str) -> int:
    """Return how many of the project's items are gold."""
    return int(connection_of(session).execute(_GOLD_COUNT, {"project_id": project_id}).scalar()
               or 0)


def list_gold(session: Session | Connection, project_id: str) -> list[dict[str, Any]]:
    """Return the project's gold items: ``item_id``, ``prompt_id``, ``response_ids``, ``answer``."""
    rows = connection_of(session).execute(_GOLD_ITEMS, {"project_id": project_id})
    return [{"item_id": r.item_id, "prompt_id": r.prompt_id, "response_ids": list(r.response_ids),
             "answer": dict(r.gold_answer or {})} for r in rows]


# ---------------------------------------------------------------- gold files


def _cell_bool(field: str, raw: str) -> bool:
    low = raw.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise InputError(f"expected true or false, got {raw!r}", field=f"answer.{field}", value=raw)


def _csv_answer(row: Mapping[str, str | None]) -> dict[str, Any]:
    if (row.get("answer") or "").strip():
        try:
            parsed = json.loads(str(row["answer"]))
        except json.JSONDecodeError as exc:
            raise InputError(f"expected a JSON object ({exc.msg} at column {exc.colno})",
                             field="answer") from None
        return parsed if isinstance(parsed, dict) else {"": parsed}
    out: dict[str, Any] = {}
    for key, raw in row.items():
        if key in (None, "item_id", "answer") or raw is None or not str(raw).strip():
            continue
        raw = str(raw).strip()
        if key in ("tie", "both_bad", "label"):
            out[key] = _cell_bool(key, raw)
        elif key == "min_strength":
            out[key] = int(raw) if raw.isascii() and raw.isdigit() else raw
        elif key == "tolerance":
            try:
                out[key] = float(raw)
            except ValueError:
                out[key] = raw
        else:
            out[key] = raw
    return out


def _read_csv(text: str, name: str) -> tuple[list[GoldLine], list[tuple[GoldLine, InputError]]]:
    reader = csv.DictReader(io.StringIO(text))
    try:
        return _csv_rows(reader, name)
    except csv.Error as exc:  # e.g. a NUL byte, or a quote left open at the end
        raise InputError(f"not CSV ({exc})", path=name,
                         line=reader.line_num, field="file") from None


def _csv_rows(reader: csv.DictReader[str], name: str
              ) -> tuple[list[GoldLine], list[tuple[GoldLine, InputError]]]:
    if not reader.fieldnames or "item_id" not in reader.fieldnames:
        raise InputError("a gold CSV needs a header with item_id and either "
                         "answer (a JSON object) or answer columns (preferred, tie, both_bad, "
                         f"label, best…); got {reader.fieldnames}", path=name, line=1,
                         field="item_id")
    lines, problems = [], []
    for row in reader:
        g = GoldLine(reader.line_num, str(row.get("item_id") or "").strip(), {})
        try:
            if not g.item_id:
                raise InputError("expected an item id, got an empty cell", field="item_id")
            lines.append(GoldLine(g.line, g.item_id, _csv_answer(row)))
        except InputError as exc:
            problems.append((g, exc))
    return lines, problems


def _read_jsonl(text: str, name: str) -> tuple[list[GoldLine], list[tuple[GoldLine, InputError]]]:
    lines, problems = [], []
    for n, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        g = GoldLine(n, "", {})
        try:
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise InputError(f"not JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(obj, dict) or not isinstance(obj.get("item_id"), str):
                raise InputError("expected an object with item_id and answer", field="item_id")
            g = GoldLine(n, obj["item_id"], {})
            answer = obj.get("answer", {k: v for k, v in obj.items() if k != "item_id"})
            lines.append(GoldLine(n, g.item_id, answer if isinstance(answer, dict)
                                  else {"": answer}))
        except InputError as exc:
            problems.append((g, exc))
    return lines, problems


def _parse(name: str, data: bytes) -> tuple[list[GoldLine], list[tuple[GoldLine, InputError]]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start}); save it as UTF-8",
                         path=name, field="file") from None
    lower = name.lower()
    is_jsonl = lower.endswith((".jsonl", ".json", ".ndjson")) or (
        not lower.endswith(".csv") and text.lstrip().startswith("{"))
    lines, problems = (_read_jsonl if is_jsonl else _read_csv)(text, name)
    if not lines and not problems:
        raise InputError("no gold answers found; one line per item, e.g. "
                         '{"item_id": "i_…", "answer": {"preferred": "r_…"}}', path=name,
                         field="file")
    return lines, problems


def read_gold_file(name: str, data: bytes) -> list[GoldLine]:
    """Return the gold answers of a CSV or JSONL file (by its name's suffix, else its first
    character), each with its line.

    Raises:
        InputError: the file cannot be read; every bad line is named (nothing is returned).
    """
    lines, problems = _parse(name, data)
    if problems:
        raise _upload_error(problems, name)
    return lines


def load_gold_file(session: Session | Connection, project_id: str, name: str, data: bytes) -> int:
    """Read a CSV/JSONL file of gold answers and set them, all or nothing; return how many.

    Lines that cannot be read and answers that do not fit their item are reported together,
    in line order.

    Raises:
        InputError: bad lines (file, line and field named); nothing is written.
        NotFoundError: no such project.
    """
    conn = connection_of(session)
    lines, problems = _parse(name, data)
    updates, bad = _check(conn, project_id, lines)
    problems = sorted([*problems, *bad], key=lambda p: p[0].line)
    if problems:
        raise _upload_error(problems, name)
    if updates:
        conn.execute(_SET_GOLD, updates)
    return len(updates)


# ---------------------------------------------------------------- accuracy and the threshold


def gold_threshold(project: Project) -> GoldThreshold | None:
    """Return the project's gold threshold, or None when it has none."""
    raw = (project.config or {}).get("gold_threshold")
    return GoldThreshold.model_validate(raw) if raw else None


def set_gold_threshold(
    session: Session | Connection, project_id: str, threshold: GoldThreshold | Mapping[str, Any]
    | None,
) -> Project:
    """Store (or with None remove) the project's gold threshold; return the project.

    Raises:
        InputError: a threshold out of range (names the field).
        NotFoundError: no such project.
    """
    conn = connection_of(session)
    project = get_project(conn, project_id)
    if threshold is not None and not isinstance(threshold, GoldThreshold):
        try:
            threshold = GoldThreshold.model_validate(dict(threshold))
        except ValidationError as exc:
            err = exc.errors()[0]
            raise InputError(f"gold threshold: {err['msg']}",
                             field=".".join(str(p) for p in err["loc"]) or None) from None
    config = {k: v for k, v in (project.config or {}).items() if k != "gold_threshold"}
    if threshold is not None:
        config["gold_threshold"] = threshold.model_dump(mode="json")
    conn.execute(update(_P).where(_P.c.project_id == project_id).values(config=config))
    return get_project(conn, project_id)


def _gold_rows(user: bool) -> Any:
    i, j = _I.c, _J.c
    q = (
        select(j.judge_id, j.kind, j.value, i.gold_answer, j.submitted_at)
        .join_from(_J, _I, i.item_id == j.item_id)
        .where(j.project_id == bindparam("project_id"), j.source == "app",
               i.is_gold == True)
        .order_by(j.judge_id, j.submitted_at, j.judgment_id)
    )
    return q.where(j.judge_id == bindparam("judge_id")) if user else q


_GOLD_ROWS = {False: _gold_rows(False), True: _gold_rows(True)}


def gold_history(
    session: Session | Connection, project_id: str
) -> dict[str, list[tuple[datetime | None, bool]]]:
    """Return each annotator's gold answers in time order: ``judge_id → [(submitted_at,
    right)]`` (judgments made in the app on items that are gold now)."""
    out: dict[str, list[tuple[datetime | None, bool]]] = {}
    for judge_id, kind, value, answer, at in connection_of(session).execute(
            _GOLD_ROWS[False], {"project_id": project_id}):
        right = bool(answer) and gold_correct(kind, value or {}, answer)
        out.setdefault(judge_id, []).append((aware(at), right))
    return out


def gold_tally(session: Session | Connection, project_id: str, judge_id: str) -> tuple[int, int]:
    """Return ``(right, answered)`` of one annotator's gold answers in the project."""
    rows = connection_of(session).execute(_GOLD_ROWS[True], {"project_id": project_id,
                                                             "judge_id": judge_id}).all()
    right = sum(bool(a) and gold_correct(k, v or {}, a) for _, k, v, a, _ in rows)
    return right, len(rows)


def gold_standing(project: Project, right: int, answered: int) -> str | None:
    """Return why an annotator is flagged by the project's gold threshold, or None.

    >>> from preflab.collect.projects import ProjectCreate, build_project
    >>> p = build_project(ProjectCreate(name="p"))
    >>> p.config["gold_threshold"] = {"min_accuracy": 0.8, "after": 5}
    >>> gold_standing(p, 3, 5)
    'gold accuracy 60% (3 of 5) is below the minimum 80% after 5 gold items'
    """
    t = gold_threshold(project)
    if t is None or answered < t.after or right / answered >= t.min_accuracy:
        return None
    return (f"gold accuracy {right / answered:.0%} ({right} of {answered}) is below the minimum "
            f"{t.min_accuracy:.0%} after {t.after} gold items")


def require_gold_standing(session: Session | Connection, project: Project, user_id: str) -> None:
    """Raise when the project stops serving a flagged annotator; else return.

    Raises:
        PermissionDeniedError: the annotator is below the project's gold threshold and the
            project stops serving such annotators (the message says why and what to do).
    """
    t = gold_threshold(project)
    if t is None or not t.stop_serving:
        return
    why = gold_standing(project, *gold_tally(session, project.project_id, user_id))
    if why is not None:
        raise PermissionDeniedError(
            f"no new tasks in project {project.project_id} for now: your {why}. Ask the "
            "project's admin to review your gold answers (the admin project page lists them).",
            field="gold_accuracy")

