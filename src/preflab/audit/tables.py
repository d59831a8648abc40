"""Build the pair view the text checks read from judgments, responses and prompts.

The audit looks at what the judges saw: one row per decided pairwise judgment with the
prompt messages, the preferred response as ``chosen`` and the other as ``rejected``. This is
not the export rule of :mod:`preflab.derive` (no aggregation, no tie policy): it is the raw
material the checks need.
"""

from __future__ import annotations

import polars as pl
import pyarrow as pa

from preflab.errors import InputError

__all__ = ["pairs_from_judgments"]


def pairs_from_judgments(
    judgments: pa.Table | pl.DataFrame,
    responses: pa.Table | pl.DataFrame,
    prompts: pa.Table | pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Return one pair row per pairwise judgment that prefers a response.

    Columns: ``prompt_id``, ``prompt`` (messages, if ``prompts`` given), ``chosen``,
    ``rejected``, ``chosen_id``, ``rejected_id``, ``judgment_id``, ``judge_id``,
    ``batch_id``, ``source_line``.

    Raises:
        InputError: a judgment names a response missing from ``responses``.
    """
    j = judgments if isinstance(judgments, pl.DataFrame) else pl.from_arrow(judgments)
    r = responses if isinstance(responses, pl.DataFrame) else pl.from_arrow(responses)
    assert isinstance(j, pl.DataFrame) and isinstance(r, pl.DataFrame)
    pref = pl.col("pairwise").struct.field("preferred")
    ids = pl.col("response_ids")
    d = j.filter((pl.col("kind") == "pairwise") & pref.is_not_null()).select(
        "judgment_id",
        "prompt_id",
        "judge_id",
        *[c for c in ("batch_id", "source_line", "split") if c in j.columns],
        pref.alias("chosen_id"),
        pl.when(ids.list.get(0) == pref).then(ids.list.get(1)).otherwise(ids.list.get(0)).alias("rejected_id"),
    )
    text = r.select("response_id", "content").unique("response_id")
    d = d.join(text.rename({"response_id": "chosen_id", "content": "chosen"}), on="chosen_id", how="left")
    d = d.join(text.rename({"response_id": "rejected_id", "content": "rejected"}), on="rejected_id", how="left")
    lost = d.filter(pl.col("chosen").is_null() | pl.col("rejected").is_null())
    if lost.height:
        row = lost.row(0, named=True)
        rid = row["chosen_id"] if row["chosen"] is None else row["rejected_id"]
        raise InputError(
            f"judgment {row['judgment_id']!r} names response {rid!r}, which is not among the "
            f"{r.height} responses given; load the responses of the same file or workspace.",
            field="response_ids",
            line=row.get("source_line"),
        )
    if prompts is not None:
        p = prompts if isinstance(prompts, pl.DataFrame) else pl.from_arrow(prompts)
        assert isinstance(p, pl.DataFrame)
        d = d.join(
            p.select("prompt_id", pl.col("messages").alias("prompt")).unique("prompt_id"),
            on="prompt_id",
            how="left",
        )
    return d
