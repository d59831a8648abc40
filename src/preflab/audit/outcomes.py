"""One row per pairwise judgment with what the people checks need.

Columns: the judgment's ``judgment_id``, ``judge_id``, ``batch_id``, times, ``seconds`` spent,
``choice`` (``first``/``second`` shown, ``tie``, ``both_bad``), ``agrees`` (with the majority
of the *other* judges on the item; null when there is none), ``gold_correct`` (null when
the item has no gold label, and for the judgments the gold answers were taken from) and
``gold_source_judgment`` (true for those: a judgment is never scored against itself).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

import numpy as np
import polars as pl
import pyarrow as pa

from preflab.audit.agreement import _consensus, pairwise_label_matrix
from preflab.audit.coefficients import BOTH_BAD
from preflab.errors import InputError

__all__ = ["GoldAnswers", "gold_from_answers", "gold_from_judgments", "judgment_outcomes"]


class GoldAnswers(dict[str, float]):
    """Item key → gold direction code, and the ids of the judgments the answers came from.

    A gold answer taken from a judgment (an expert's, or a dataset's own label imported as a
    judgment) says nothing about that judgment: :func:`judgment_outcomes` leaves the
    ``derived_from`` judgments unscored. A plain ``dict`` works too (nothing is excluded).

    >>> g = GoldAnswers({"p|a|b": 1.0}, derived_from=["j1"])
    >>> (g | GoldAnswers({"q|c|d": -1.0}, derived_from=["j2"])).derived_from == {"j1", "j2"}
    True
    """

    derived_from: frozenset[str]

    def __init__(self, answers: Mapping[str, float] | None = None, *, derived_from: Iterable[str] = ()) -> None:
        super().__init__(answers or {})
        self.derived_from = frozenset(derived_from)

    def __or__(self, other: Mapping[str, float]) -> GoldAnswers:  # type: ignore[override]
        """Return both sets of answers (``other`` wins where both answer) and both origins."""
        merged = dict(self)
        merged.update(other)
        return GoldAnswers(merged, derived_from=self.derived_from | set(getattr(other, "derived_from", ())))


def gold_from_judgments(gold: pa.Table | pl.DataFrame) -> GoldAnswers:
    """Return item key → gold direction code from a table of reference (gold) judgments.

    Gold answers are ordinary pairwise judgments (an expert's or an adjudicator's); when an
    item has several, their majority counts. The judgments' ids are kept as ``derived_from``,
    so that auditing the same table scores none of them against the answer they gave.
    """
    m = pairwise_label_matrix(gold)
    _, overall = _consensus(m.direction)
    df = gold if isinstance(gold, pl.DataFrame) else pl.from_arrow(gold)
    assert isinstance(df, pl.DataFrame)
    return GoldAnswers({item: float(v) for item, v in zip(m.items, overall, strict=True) if not np.isnan(v)},
                       derived_from=df["judgment_id"].to_list() if "judgment_id" in df.columns else ())


def gold_from_answers(answers: pa.Table | pl.DataFrame) -> GoldAnswers:
    """Return item key → gold direction code from expected answers of gold items.

    ``answers`` has ``prompt_id``, ``response_ids`` and the answer columns of
    :data:`preflab.store.queries.audit_inputs.GOLD_SCHEMA` (``preferred``, ``tie``,
    ``both_bad``), e.g. the collect app's gold items (``{"preferred": "r_…"}``). Only items
    with two responses can be compared with pairwise judgments; others are left out. An
    answer taken from judgments names them in its stored ``answer`` JSON as
    ``"derived_from": [judgment ids]`` (the demo's gold items, copied from HH-RLHF's labels,
    do); those judgments are not scored against it.

    Raises:
        InputError: an answer prefers a response that is not one of the item's two.
    """
    df = answers if isinstance(answers, pl.DataFrame) else pl.from_arrow(answers)
    assert isinstance(df, pl.DataFrame)
    out: dict[str, float] = {}
    derived: set[str] = set()
    for row in df.iter_rows(named=True):
        raw = row.get("answer")
        if raw:
            origin = json.loads(raw).get("derived_from") if isinstance(raw, str) else None
            derived.update(str(x) for x in origin or [])
        ids = sorted(row["response_ids"] or [])
        if len(ids) != 2:
            continue
        key = "|".join([row["prompt_id"], *ids])
        pref = row.get("preferred")
        if row.get("both_bad") and pref is None:
            out[key] = BOTH_BAD
        elif row.get("tie") and pref is None:
            out[key] = 0.0
        elif pref is not None:
            if pref not in ids:
                raise InputError(
                    f"gold item {row.get('item_id') or key!r} expects response {pref!r}, which is "
                    f"not one of its responses {ids}",
                    field="gold_answer.preferred", value=pref,
                )
            out[key] = 1.0 if pref == ids[0] else -1.0
    return GoldAnswers(out, derived_from=derived)


def judgment_outcomes(
    judgments: pa.Table | pl.DataFrame,
    gold: Mapping[str, float] | None = None,
    *,
    gold_derived_from: Iterable[str] | None = None,
) -> pl.DataFrame:
    """Return the per-judgment outcome frame of the pairwise judgments (see module doc).

    Args:
        judgments: the judgments (``JUDGMENT_SCHEMA``).
        gold: item key → gold direction code (:class:`GoldAnswers` or a plain mapping).
        gold_derived_from: ids of judgments the gold answers were taken from (default: the
            ``derived_from`` of a :class:`GoldAnswers`); they get no ``gold_correct``.
    """
    df = judgments if isinstance(judgments, pl.DataFrame) else pl.from_arrow(judgments)
    assert isinstance(df, pl.DataFrame)
    types: dict[str, pl.DataType | type[pl.DataType]] = {"batch_id": pl.String, "started_at": pl.Datetime("us", "UTC"),
             "submitted_at": pl.Datetime("us", "UTC")}
    for col, dtype in types.items():
        if col not in df.columns:
            df = df.with_columns(pl.lit(None, dtype=dtype).alias(col))
    m = pairwise_label_matrix(df)
    loo, _ = _consensus(m.direction)
    has = m.judgment_index >= 0
    rows = m.judgment_index[has]
    own = m.direction[has]
    ref = loo[has]
    agrees = np.where(np.isnan(ref), np.nan, (own == ref).astype(np.float64))
    gold_correct = np.full(len(rows), np.nan)
    if gold:
        gold_vec = np.array([gold.get(i, np.nan) for i in m.items])
        g = np.broadcast_to(gold_vec, m.direction.shape)[has]
        gold_correct = np.where(np.isnan(g), np.nan, (own == g).astype(np.float64))
    lab = pl.DataFrame(
        {
            "_row": rows.astype(np.int64),
            "agrees": pl.Series(agrees).fill_nan(None).cast(pl.Boolean),
            "gold_correct": pl.Series(gold_correct).fill_nan(None).cast(pl.Boolean),
            "item": np.array(m.items, dtype=object)[np.nonzero(has)[1]].astype(str)
            if len(rows)
            else np.zeros(0, dtype=str),
        }
    )
    pw = df.with_row_index("_row").with_columns(pl.col("_row").cast(pl.Int64)).filter(
        pl.col("kind") == "pairwise"
    )
    pref = pl.col("pairwise").struct.field("preferred")
    own_source = set(gold_derived_from if gold_derived_from is not None else getattr(gold, "derived_from", ()))
    out = pw.select(
        "_row",
        "judgment_id",
        "judge_id",
        "batch_id",
        "started_at",
        "submitted_at",
        pl.when(pl.col("pairwise").struct.field("both_bad").fill_null(False) & pref.is_null())
        .then(pl.lit("both_bad"))
        .when(pref.is_null())
        .then(pl.lit("tie"))
        .when(pref == pl.col("response_ids").list.get(0))
        .then(pl.lit("first"))
        .otherwise(pl.lit("second"))
        .alias("choice"),
        ((pl.col("submitted_at") - pl.col("started_at")).dt.total_milliseconds() / 1000.0)
        .cast(pl.Float64)
        .alias("seconds"),
    ).join(lab, on="_row", how="left")
    is_source = pl.col("judgment_id").is_in(pl.Series(sorted(own_source), dtype=pl.String).implode())
    out = out.with_columns(
        (is_source & pl.col("gold_correct").is_not_null()).alias("gold_source_judgment"),
        pl.when(is_source).then(None).otherwise(pl.col("gold_correct")).alias("gold_correct"),
    )
    return out.sort(["judge_id", "started_at", "submitted_at", "_row"], nulls_last=True)
