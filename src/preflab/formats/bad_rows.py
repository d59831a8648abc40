"""The bad-row policy of every export: check each row, then error, skip or keep (issue 18).

:func:`check_rows` runs the column-wise checks of :mod:`preflab.formats.trl_rows` on a pair or
unpaired table and applies ``on_bad_row`` (:mod:`preflab.formats.row_policy`). What it did is a
:class:`RowReport`: rows skipped and rows kept anyway, counted by reason, notes (legitimate rows
counted for information), and up to :data:`MAX_EXAMPLES` of those rows located by their
position in the table, their record ids (``prompt_id``, ``judgment_ids``, ``chosen_id``…) and,
when the judgments are given, the input file and line they were read from. An error never says
"line 798" for the 798th derived pair: it says "pair 798 (prompt_id …, judgment …)" and puts the
input file's own line, when known, in ``ExportRowError.path`` / ``line``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from preflab.errors import ExportRowError, UsageError
from preflab.formats.row_policy import BAD_ROW_REASONS, UNKEEPABLE_REASONS, OnBadRow, PromptText
from preflab.formats.trl_rows import RowChecks, check_pair_rows, check_unpaired_rows, row_problem

__all__ = ["MAX_EXAMPLES", "Policy", "PromptTextMode", "RowKind", "RowReport", "check_rows",
           "validate_pairs", "validate_unpaired"]

Policy = Literal["error", "skip", "keep"]
PromptTextMode = Literal["transcript", "plain"]
RowKind = Literal["pairs", "unpaired"]

#: Located rows kept in a :class:`RowReport` (counts stay exact).
MAX_EXAMPLES = 20


@dataclass(slots=True)
class RowReport:
    """What the row checks found and what ``on_bad_row`` did, counted by reason.

    ``skipped``: rows left out; ``kept``: bad rows written anyway (``keep``); ``notes``:
    legitimate rows counted for information (``completion_repeats_prompt``); ``examples``: up to
    :data:`MAX_EXAMPLES` of those rows with their position, record ids and input file and line.
    """

    policy: str = "error"
    rows_in: int = 0
    rows_out: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)
    notes: dict[str, int] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-ready data."""
        return {"on_bad_row": self.policy, "rows_in": self.rows_in, "rows_out": self.rows_out,
                "skipped": dict(self.skipped), "kept": dict(self.kept), "notes": dict(self.notes),
                "examples": list(self.examples)}


# --- checks and the bad-row policy -----------------------------------------------------


def _check_option(name: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise UsageError(f"{name} must be one of {', '.join(allowed)}; got {value!r}.",
                         field=name, value=value)


def _ids(table: pa.Table, rows: Sequence[int], judgments: pa.Table | None) -> list[dict[str, Any]]:
    """Return where each row came from: its position, record ids and input file and line."""
    cols = [c for c in ("prompt_id", "judgment_ids", "chosen_id", "rejected_id", "completion_id", "source")
            if c in table.column_names]
    if not cols:
        picked: list[dict[str, Any]] = [{} for _ in rows]
    else:
        picked = table.select(cols).take(pa.array(list(rows), pa.int64())).to_pylist() if rows else []
    lines: dict[str, tuple[str | None, int | None]] = {}
    wanted = {j for r in picked for j in (r.get("judgment_ids") or [])}
    if judgments is not None and wanted and "judgment_id" in judgments.column_names:
        keep = [c for c in ("judgment_id", "source", "source_line") if c in judgments.column_names]
        hit = judgments.select(keep).filter(pc.is_in(judgments.column("judgment_id"), pa.array(sorted(wanted))))
        for r in hit.to_pylist():
            lines[r["judgment_id"]] = (r.get("source"), r.get("source_line"))
    out = []
    for i, r in zip(rows, picked, strict=True):
        where: dict[str, Any] = {"row": int(i) + 1}
        where.update({k: v for k, v in r.items() if v is not None and k != "source"})
        found = [lines[j] for j in r.get("judgment_ids") or [] if j in lines]
        source = next((s for s, _ in found if s), None) or r.get("source")
        if source:
            where["source"] = source
        line_numbers = sorted({ln for _, ln in found if ln is not None})
        if line_numbers:
            where["line"] = line_numbers[0]
            if len(line_numbers) > 1:
                where["lines"] = line_numbers
        out.append(where)
    return out


def _describe(where: Mapping[str, Any], unit: str) -> str:
    parts = [f"prompt_id {where['prompt_id']}"] if "prompt_id" in where else []
    judgments = where.get("judgment_ids") or []
    if judgments:
        parts.append(("judgment " if len(judgments) == 1 else "judgments ") + ", ".join(judgments[:3])
                     + (", …" if len(judgments) > 3 else ""))
    parts += [f"{k.removesuffix('_id')} {where[k]}" for k in ("chosen_id", "rejected_id", "completion_id")
              if k in where]
    return f"{unit} {where['row']}" + (f" ({', '.join(parts)})" if parts else "")


def _bad_row_error(table: pa.Table, i: int, kind: RowKind, judgments: pa.Table | None, *,
                   plain: bool, margin: bool) -> ExportRowError:
    unit = "pair" if kind == "pairs" else "unpaired row"
    row = table.slice(i, 1).to_pylist()[0]
    problem = row_problem(row, plain=plain, margin=margin)
    if problem is None:  # pragma: no cover - the column checks and the row check agree (tested)
        raise AssertionError(f"{unit} {i + 1} failed a column check but passed the row check")
    where = _ids(table, [i], judgments)[0]
    fix = ("Use --on-bad-row skip (on_bad_row='skip') to leave such rows out, counted by reason on the "
           "card" + ("" if problem.reason in UNKEEPABLE_REASONS
                     else ", or --on-bad-row keep to write them as they are") + "; or fix the judgments.")
    return ExportRowError(
        f"{_describe(where, unit)}: {problem.what}. {fix}",
        row=i + 1, reason=problem.reason,
        record_ids={k: v for k, v in where.items() if k not in ("row", "source", "line", "lines")},
        path=where.get("source") if "line" in where else None, line=where.get("line"),
        field=problem.field, value=problem.value,
    )


def check_rows(
    table: pa.Table,
    *,
    kind: RowKind = "pairs",
    on_bad_row: Policy | OnBadRow = "error",
    prompt_text: PromptTextMode | PromptText = "transcript",
    margin: bool = False,
    keepable: Callable[[str], bool] | None = None,
    judgments: pa.Table | None = None,
) -> tuple[pa.Table, RowReport]:
    """Check every row and apply the bad-row policy; return the rows to write and the report.

    Args:
        table: pairs (``PAIR_SCHEMA``) or unpaired rows (``UNPAIRED_SCHEMA``).
        kind: which of the two.
        on_bad_row: ``error`` (raise on the first bad row), ``skip`` or ``keep``
            (see :mod:`preflab.formats.row_policy`).
        prompt_text: ``plain`` also flags prompts that are not one user message.
        margin: also flag pairs without a margin (``missing_margin``).
        keepable: which reasons ``keep`` may write (default: all but
            :data:`~preflab.formats.row_policy.UNKEEPABLE_REASONS`).
        judgments: the judgments behind the rows (``JUDGMENT_SCHEMA``), to name the input file
            and line of a bad row.

    Raises:
        ExportRowError: with ``error``, the first bad row (its position, record ids, file and
            line, field and reason).
        UsageError: an unknown policy.
    """
    policy = str(on_bad_row)
    _check_option("on_bad_row", policy, [p.value for p in OnBadRow])
    _check_option("prompt_text", str(prompt_text), [p.value for p in PromptText])
    plain = str(prompt_text) == "plain"
    checks: RowChecks = (check_pair_rows(table, plain=plain) if kind == "pairs"
                         else check_unpaired_rows(table, plain=plain))
    if margin and kind == "pairs":
        checks.add("missing_margin", np.asarray(table.column("margin").is_null().to_numpy(zero_copy_only=False),
                                                dtype=bool))
    report = RowReport(policy=policy, rows_in=table.num_rows)
    bad = checks.any_bad()
    if policy == "error" and bad.any():
        raise _bad_row_error(table, int(np.flatnonzero(bad)[0]), kind, judgments, plain=plain, margin=margin)
    can_keep = keepable or (lambda r: r not in UNKEEPABLE_REASONS)
    if policy == "keep":
        drop = checks.any_bad([r for r in BAD_ROW_REASONS if not can_keep(r)])
    else:
        drop = bad
    dropped_rows = np.flatnonzero(drop)
    kept_bad_rows = np.flatnonzero(bad & ~drop)
    unkeepable = None if policy != "keep" else [r for r in BAD_ROW_REASONS if not can_keep(r)]
    report.skipped = _count(checks.first_reason(dropped_rows, unkeepable))
    report.kept = _count(checks.first_reason(kept_bad_rows))
    kept_mask = ~drop
    noted: dict[str, np.ndarray] = {}
    for name, mask in checks.notes.items():
        rows = np.flatnonzero(mask & kept_mask)
        if len(rows):
            report.notes[name] = len(rows)
            noted[name] = rows
    samples: list[tuple[int, str, str]] = []
    for rows, reasons, action in ((dropped_rows, checks.first_reason(dropped_rows, unkeepable), "skipped"),
                                  (kept_bad_rows, checks.first_reason(kept_bad_rows), "kept")):
        samples += [(int(i), str(r), action) for i, r in zip(rows[:MAX_EXAMPLES], reasons[:MAX_EXAMPLES],
                                                             strict=True)]
    for name, rows in noted.items():
        samples += [(int(i), name, "note") for i in rows[:MAX_EXAMPLES]]
    samples = samples[:MAX_EXAMPLES]
    located = _ids(table, [i for i, _, _ in samples], judgments)
    report.examples = [{**where, "reason": reason, "action": action}
                       for where, (_, reason, action) in zip(located, samples, strict=True)]
    out = table if not len(dropped_rows) else table.filter(pa.array(kept_mask))
    report.rows_out = out.num_rows
    return out, report


def _count(reasons: np.ndarray) -> dict[str, int]:
    names, counts = np.unique(reasons.astype(str), return_counts=True) if len(reasons) else ([], [])
    order = {r: i for i, r in enumerate(BAD_ROW_REASONS)}
    return dict(sorted(((str(n), int(c)) for n, c in zip(names, counts, strict=True)),
                       key=lambda kv: order.get(kv[0], len(order))))


def validate_pairs(pairs: pa.Table, *, judgments: pa.Table | None = None) -> None:
    """Check every pair before export (rules in :mod:`preflab.formats.trl_rows`).

    Raises:
        ExportRowError: the first bad pair, named by its position, record ids and field.
    """
    check_rows(pairs, kind="pairs", judgments=judgments)


def validate_unpaired(unpaired: pa.Table, *, judgments: pa.Table | None = None) -> None:
    """Check every unpaired row before export (rules in :mod:`preflab.formats.trl_rows`).

    Raises:
        ExportRowError: the first bad row, named by its position, record ids and field.
    """
    check_rows(unpaired, kind="unpaired", judgments=judgments)


