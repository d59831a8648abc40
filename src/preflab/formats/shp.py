"""Stanford Human Preferences (SHP; Ethayarajh et al. 2022; stanfordnlp/SHP on the HF Hub).

Each row compares two top-level Reddit comments to the same post. Fields used:
``post_id``, ``domain``, ``history`` (the post: the prompt), ``c_root_id_A``/``c_root_id_B``,
``human_ref_A``/``human_ref_B`` (the comments: human-written responses), ``labels`` (1 when A is
preferred, 0 when B is), ``score_A``/``score_B``, ``score_ratio``, ``created_at_utc_A``/``_B``,
``upvote_ratio``, ``seconds_difference``.

Each row becomes one pairwise judgment on a 2-point scale, ``response_ids`` (A, B) flagged
``order_unknown`` (the comments were not shown side by side), by the imported
judge ``shp`` (the preference is inferred from upvotes, see the paper §2). The prompt is tagged
``domain:<subreddit>``; each response keeps ``comment_id`` and ``score`` in ``params``; the
judgment keeps ``score_ratio`` in its ``comment`` as ``score_ratio=<x>`` so derivations can filter
on it (the paper recommends a ratio of at least 2). Comments with the same text are dropped and
counted (``dropped_identical``).

**Repeated comparisons.** SHP has many rows per post (one per pair of its comments), so the
source record is the comparison: ``post_id`` with the two comment ids ``c_root_id_A`` and
``c_root_id_B`` (in either order). A comparison already read earlier in the file gives no
judgment: **the first occurrence wins**, each later one is counted as
``skipped_repeated_source`` and noted with its line, the ids and the line of the first
occurrence. Rows without ``post_id`` or comment ids are not checked.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from preflab.formats.base import ImportChunk
from preflab.formats.chunk_builder import ORDER_UNKNOWN, ChunkBuilder, two_point
from preflab.formats.driver import read_file
from preflab.formats.fields import RowError, get_number, get_str, optional_str

__all__ = ["JUDGE_ID", "read_shp", "parse_row"]

JUDGE_ID = "shp"


def parse_row(b: ChunkBuilder, row: dict[str, Any]) -> None:
    """Check one input row and add its records to ``b`` (rules in the module docstring)."""
    history = get_str(row, "history")
    text_a = get_str(row, "human_ref_A")
    text_b = get_str(row, "human_ref_B")
    label = get_number(row, "labels", integer=True)
    if label not in (0, 1):
        raise RowError("labels", f"expected 1 (A preferred) or 0 (B preferred), got {label}", label)
    score_a = get_number(row, "score_A") if row.get("score_A") is not None else None
    score_b = get_number(row, "score_B") if row.get("score_B") is not None else None
    ratio = get_number(row, "score_ratio") if row.get("score_ratio") is not None else None
    post_id = optional_str(row, "post_id")
    comment_a, comment_b = optional_str(row, "c_root_id_A"), optional_str(row, "c_root_id_B")
    if post_id and comment_a and comment_b:
        key = "\x1e".join([post_id, *sorted((comment_a, comment_b))])
        seen = f"post {post_id!r}, comments {comment_a!r} and {comment_b!r} were already compared"
        if b.skip_repeated_source("shp-comparison", key, seen=seen, field="post_id"):
            return
    if text_a.strip() == text_b.strip():
        b.drop("identical", "the two comments are the same text", field="human_ref_B")
        return
    domain = optional_str(row, "domain")
    prompt_id = b.add_prompt(
        [{"role": "user", "content": history}],
        field="history",
        tags=[f"domain:{domain}"] if domain else [],
    )
    id_a = b.add_response(
        prompt_id,
        text_a,
        field="human_ref_A",
        origin="human",
        params={"comment_id": comment_a, "score": score_a},
    )
    id_b = b.add_response(
        prompt_id,
        text_b,
        field="human_ref_B",
        origin="human",
        params={"comment_id": comment_b, "score": score_b},
    )
    b.add_judge(JUDGE_ID, "imported", name="Reddit upvotes (SHP)")
    b.add_judgment(
        prompt_id=prompt_id,
        response_ids=[id_a, id_b],
        kind="pairwise",
        judge_id=JUDGE_ID,
        pairwise=two_point(id_a if label == 1 else id_b),
        flags=[ORDER_UNKNOWN],
        comment=f"score_ratio={ratio:g}" if ratio is not None else None,
        id_extra=post_id,
    )


def read_shp(
    path: str | Path,
    *,
    chunk_size: int = 10_000,
    skip_invalid: bool = False,
    max_problems: int = 100,
) -> Iterator[ImportChunk]:
    """Yield chunks of records read from an SHP file (JSONL, CSV or Parquet; see module doc).

    Args:
        path: the file.
        chunk_size: input rows per chunk.
        skip_invalid: report and leave out bad rows instead of stopping.
        max_problems: problems collected before giving up.
    """
    return read_file(
        path,
        parse_row,
        format="shp",
        chunk_size=chunk_size,
        skip_invalid=skip_invalid,
        max_problems=max_problems,
    )
