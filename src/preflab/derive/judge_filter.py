"""Keep only the judgments of chosen judges before a derive (``--judge``, ``DeriveConfig.judges``).

A dataset often holds several judges of one item: PKU-SafeRLHF's ``pku-saferlhf/helpfulness``
and ``pku-saferlhf/harmlessness`` preferences, UltraFeedback's two GPT-4 rating judgments per
prompt (``ultrafeedback/gpt-4/aspects`` and ``ultrafeedback/gpt-4/critique``), or the annotators
of a project. Deriving on one of them is a filter on ``judge_id``: each pattern is a judge id or
a shell-style glob (``fnmatch``, case-sensitive: ``pku-saferlhf/*``, ``arena:*``); a judgment is
kept when any pattern matches its judge. The judgments left out are counted
(``judgments_left_out_by_judge`` in the derive counts). A pattern that matches no judge of the
data is an error that lists the judges present, so a typo never yields an empty export.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from preflab.errors import UsageError

__all__ = ["LEFT_OUT_KEY", "select_judges"]

#: The derive count of judgments the judge filter left out.
LEFT_OUT_KEY = "judgments_left_out_by_judge"
_LISTED = 12


def select_judges(judgments: pa.Table, patterns: Sequence[str] | None) -> tuple[pa.Table, int]:
    """Return the judgments whose ``judge_id`` matches a pattern, and how many were left out.

    Args:
        judgments: a table with a ``judge_id`` column (``JUDGMENT_SCHEMA``).
        patterns: judge ids or glob patterns; None or empty keeps every judgment.

    Raises:
        UsageError: a pattern matches no judge of ``judgments``.

    >>> t = pa.table({"judge_id": ["pku-saferlhf/helpfulness", "pku-saferlhf/harmlessness"]})
    >>> kept, left_out = select_judges(t, ["*/helpfulness"])
    >>> kept.column("judge_id").to_pylist(), left_out
    (['pku-saferlhf/helpfulness'], 1)
    """
    if not patterns:
        return judgments, 0
    unique = pc.unique(judgments.column("judge_id")).to_pylist()
    present = sorted(j for j in unique if j is not None)
    chosen: set[str] = set()
    unmatched: list[str] = []
    for pattern in patterns:
        hits = [j for j in present if fnmatch.fnmatchcase(j, pattern)]
        if not hits:
            unmatched.append(pattern)
        chosen.update(hits)
    if unmatched:
        shown = ", ".join(present[:_LISTED])
        if len(present) > _LISTED:
            shown += f", … ({len(present)} in all)"
        raise UsageError(
            f"--judge {unmatched[0]!r} matches no judge of the data"
            + (f" (nor does {', '.join(map(repr, unmatched[1:]))})" if len(unmatched) > 1 else "")
            + (f"; its judges are: {shown}." if present else "; the data has no judgments.")
            + " Give a judge id from that list or a glob pattern such as 'pku-saferlhf/*'.",
            field="judge",
            value=unmatched[0],
        )
    column = judgments.column("judge_id")
    if not pa.types.is_string(column.type):
        column = column.cast(pa.string())
    mask = pc.is_in(column, value_set=pa.array(sorted(chosen), pa.string()))
    kept = judgments.filter(mask)
    return kept, judgments.num_rows - kept.num_rows
