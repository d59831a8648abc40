"""Inter-annotator agreement of judgment tables: raw, Cohen's, Fleiss', Krippendorff's, Kendall's.

:func:`pairwise_label_matrix` turns pairwise judgments into a judges × items matrix of labels;
:func:`agreement_summary` runs every coefficient of :mod:`preflab.audit.coefficients` on it
with 95% bootstrap intervals, per-annotator agreement with the others and with gold, the
hardest items, disagreement clusters, Kendall's tau for rankings and alpha per rated
attribute.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Literal

import numpy as np
import polars as pl
import pyarrow as pa
from numpy.typing import NDArray

from preflab.audit.coefficients import (
    _FAST_MAX_VALUES,
    BOTH_BAD,
    Level,
    Weights,
    _unit_counts,
    bootstrap_cohen_interval,
    bootstrap_counts_interval,
    bootstrap_interval,
    cohen_kappa,
    counts_table,
    fleiss_kappa,
    kendall_tau_rankings,
    krippendorff_alpha,
    raw_agreement,
    resample_counts,
    verdict,
)
from preflab.errors import InputError

__all__ = [
    "LabelMatrix",
    "Level",
    "agreement_summary",
    "bootstrap_counts_interval",
    "bootstrap_interval",
    "cohen_kappa",
    "fleiss_kappa",
    "judge_agreement",
    "kendall_tau_rankings",
    "krippendorff_alpha",
    "pairwise_label_matrix",
    "raw_agreement",
    "verdict",
]



@dataclass(frozen=True)
class LabelMatrix:
    """Judges × items labels built from pairwise judgments.

    ``direction``: +1 the first (sorted) response id preferred, −1 the second, 0 tie,
    :data:`BOTH_BAD` for both-bad; ``signed``: direction × strength normalised to the scale
    (strength / (scale // 2)), ``NaN`` for both-bad; ``NaN`` where not judged.
    """

    judges: list[str]
    items: list[str]
    prompt_ids: list[str]
    direction: NDArray[np.float64]
    signed: NDArray[np.float64]
    judgment_index: NDArray[np.int64]  # judges × items → row of the judgment table, −1 if none
    scales: list[int] = field(default_factory=list)


def _to_polars(table: pa.Table | pl.DataFrame) -> pl.DataFrame:
    return table if isinstance(table, pl.DataFrame) else pl.from_arrow(table)  # type: ignore[return-value]


def pairwise_label_matrix(judgments: pa.Table | pl.DataFrame) -> LabelMatrix:
    """Return the :class:`LabelMatrix` of the pairwise judgments in ``judgments``.

    An item is a prompt with an unordered pair of responses. When a judge judged one item
    twice, the last submitted judgment counts.

    Raises:
        InputError: a pairwise judgment without its ``pairwise`` value.
    """
    df = _to_polars(judgments).with_row_index("_row")
    df = df.filter(pl.col("kind") == "pairwise")
    if df.height == 0:
        return LabelMatrix([], [], [], np.empty((0, 0)), np.empty((0, 0)), np.empty((0, 0), np.int64))
    missing = df.filter(pl.col("pairwise").is_null())
    if missing.height:
        row = missing.row(0, named=True)
        raise InputError(
            f"judgment {row['judgment_id']!r} is pairwise but has no pairwise value",
            field="pairwise",
            line=row.get("source_line"),
        )
    df = df.with_columns(
        pl.col("response_ids").list.sort().alias("_sorted"),
        pl.col("pairwise").struct.field("preferred").alias("_pref"),
        pl.col("pairwise").struct.field("strength").cast(pl.Float64).alias("_strength"),
        pl.col("pairwise").struct.field("scale").cast(pl.Float64).alias("_scale"),
        pl.col("pairwise").struct.field("tie").fill_null(False).alias("_tie"),
        pl.col("pairwise").struct.field("both_bad").fill_null(False).alias("_bad"),
    ).with_columns(
        (pl.col("prompt_id") + "|" + pl.col("_sorted").list.join("|")).alias("_item"),
        pl.when(pl.col("_bad") & pl.col("_pref").is_null())
        .then(pl.lit(BOTH_BAD))
        .when(pl.col("_tie") | pl.col("_pref").is_null())
        .then(pl.lit(0.0))
        .when(pl.col("_pref") == pl.col("_sorted").list.get(0))
        .then(pl.lit(1.0))
        .otherwise(pl.lit(-1.0))
        .alias("_dir"),
    )
    half = (pl.col("_scale") / 2).floor().clip(lower_bound=1)
    df = df.with_columns(
        pl.when(pl.col("_dir") == BOTH_BAD)
        .then(pl.lit(None, dtype=pl.Float64))
        .otherwise(pl.col("_dir") * pl.col("_strength").fill_null(1.0) / half)
        .alias("_signed")
    )
    order = "submitted_at" if "submitted_at" in df.columns else "_row"
    df = df.sort([order, "_row"], nulls_last=False).unique(
        subset=["judge_id", "_item"], keep="last", maintain_order=True
    )
    judges = sorted(df["judge_id"].unique().to_list())
    items_df = df.select("_item", "prompt_id").unique("_item").sort("_item")
    items = items_df["_item"].to_list()
    j_idx = np.searchsorted(np.array(judges, dtype=object), df["judge_id"].to_numpy())
    i_idx = np.searchsorted(np.array(items, dtype=object), df["_item"].to_numpy())
    shape = (len(judges), len(items))
    direction = np.full(shape, np.nan)
    signed = np.full(shape, np.nan)
    rows = np.full(shape, -1, dtype=np.int64)
    direction[j_idx, i_idx] = df["_dir"].to_numpy()
    signed[j_idx, i_idx] = df["_signed"].fill_null(np.nan).to_numpy()
    rows[j_idx, i_idx] = df["_row"].to_numpy()
    scales = sorted({int(s) for s in df["_scale"].drop_nulls().to_list()})
    return LabelMatrix(
        judges, items, items_df["prompt_id"].to_list(), direction, signed, rows, scales
    )


def _consensus(direction: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return (leave-one-out majority per judge × item, overall majority per item); NaN = none."""
    values, counts = _unit_counts(direction)
    n_judges, n_items = direction.shape
    overall = np.full(n_items, np.nan)
    if len(values):
        top = counts.max(axis=1)
        unique_top = (counts == top[:, None]).sum(axis=1) == 1
        overall = np.where(unique_top & (top > 0), values[counts.argmax(axis=1)], np.nan)
    loo = np.full(direction.shape, np.nan)
    if not len(values):
        return loo, overall
    for j in range(n_judges):
        own = direction[j]
        c = counts.copy()
        has = ~np.isnan(own)
        c[np.nonzero(has)[0], np.searchsorted(values, own[has])] -= 1
        top = c.max(axis=1)
        ok = (top > 0) & ((c == top[:, None]).sum(axis=1) == 1) & has
        loo[j] = np.where(ok, values[c.argmax(axis=1)], np.nan)
    return loo, overall


def judge_agreement(
    matrix: LabelMatrix, gold: dict[str, float] | None = None
) -> list[dict[str, Any]]:
    """Return per judge: judgments, agreement with the others' majority, gold accuracy.

    The consensus for a judge leaves that judge out (majority of the other judges on the
    item, undefined on a tie of votes), so a judge is never compared with itself.
    """
    loo, _ = _consensus(matrix.direction)
    out = []
    gold_row = None
    if gold:
        gold_row = np.array([gold.get(item, np.nan) for item in matrix.items])
    for j, judge in enumerate(matrix.judges):
        own = matrix.direction[j]
        has = ~np.isnan(own)
        comparable = has & ~np.isnan(loo[j])
        row: dict[str, Any] = {
            "judge_id": judge,
            "judgments": int(has.sum()),
            "compared": int(comparable.sum()),
            "consensus_agreement": float((own[comparable] == loo[j][comparable]).mean())
            if comparable.any()
            else None,
        }
        if gold_row is not None:
            g = has & ~np.isnan(gold_row)
            row["gold_items"] = int(g.sum())
            row["gold_accuracy"] = float((own[g] == gold_row[g]).mean()) if g.any() else None
        out.append(row)
    return out


def _pairwise_cohen(
    matrix: NDArray[np.float64], judges: list[str], weights: Weights,
    n_resamples: int = 0, seed: int = 0, shared: list[NDArray[np.uint16]] | None = None,
) -> list[dict[str, Any]]:
    """Cohen's kappa per judge pair on the items both judged, with a BCa interval over items."""
    out = []
    for a, b in combinations(range(len(judges)), 2):
        both = ~np.isnan(matrix[a]) & ~np.isnan(matrix[b])
        if both.sum() < 2:
            continue
        kappa = cohen_kappa(matrix[a][both], matrix[b][both], weights)
        ci = (
            bootstrap_cohen_interval(
                matrix[a], matrix[b], weights, n_resamples=n_resamples, seed=seed,
                weights_blocks=shared,
            )
            if n_resamples
            else None
        )
        out.append(
            {
                "judges": [judges[a], judges[b]],
                "items": int(both.sum()),
                "kappa": kappa,
                "ci95": None if ci is None or not np.isfinite(ci[0]) else list(ci),
            }
        )
    return out


_FAST: dict[str, tuple[Literal["raw", "fleiss", "alpha"], Level]] = {
    "raw": ("raw", "nominal"),
    "fleiss": ("fleiss", "nominal"),
    "nominal": ("alpha", "nominal"),
    "ordinal": ("alpha", "ordinal"),
    "interval": ("alpha", "interval"),
    "ratio": ("alpha", "ratio"),
}


def _coef(
    name: str, fn: Callable[[NDArray[np.float64]], float], data: NDArray[np.float64],
    n_resamples: int, seed: int, fast: str | None = None,
    weights: list[NDArray[np.uint16]] | None = None,
) -> dict[str, Any]:
    value = fn(data)
    ci = None
    if n_resamples:
        n_values = len(np.unique(data[~np.isnan(data)]))
        if fast is not None and n_values <= _FAST_MAX_VALUES:
            kind, level = _FAST[fast]
            ci = bootstrap_counts_interval(
                kind, data, level=level, n_resamples=n_resamples, seed=seed, weights=weights
            )
        else:
            ci = bootstrap_interval(fn, data, n_resamples=n_resamples, seed=seed)
    return {
        "name": name,
        "value": None if not np.isfinite(value) else value,
        "ci95": None if ci is None or not np.isfinite(ci[0]) else list(ci),
        # the bands are for chance-corrected coefficients; raw agreement is inflated by chance
        "verdict": "not chance-corrected" if fast == "raw" else verdict(value),
    }


def _fleiss_on_matrix(data: NDArray[np.float64]) -> float:
    return fleiss_kappa(counts_table(data))


def agreement_summary(
    judgments: pa.Table | pl.DataFrame,
    *,
    gold: dict[str, float] | None = None,
    prompts: pa.Table | pl.DataFrame | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Return every agreement figure for the pairwise, ranking and rating judgments of a table.

    Args:
        judgments: a table with the columns of ``JUDGMENT_SCHEMA``.
        gold: item key (see :func:`pairwise_label_matrix`) → gold direction code.
        prompts: ``PROMPT_SCHEMA`` table; its ``tags`` cluster the disagreements.
        n_resamples: bootstrap resamples for the 95% intervals (0 = no intervals).
        seed: bootstrap seed.

    Returns:
        A JSON-ready dict: ``items``/``multi_judged_items``, ``coefficients`` (raw, Fleiss,
        Krippendorff nominal on the direction; ordinal/interval on the signed Likert value;
        direction vs. strength), ``cohen`` per judge pair, ``judges`` (consensus and gold),
        ``hardest_items`` and ``disagreement_by`` clusters (judge, batch, prompt tag),
        ``rankings`` (Kendall's tau) and ``ratings`` (alpha per attribute).
    """
    m = pairwise_label_matrix(judgments)
    n_per_item = (~np.isnan(m.direction)).sum(axis=0) if m.items else np.zeros(0)
    multi = n_per_item >= 2
    summary: dict[str, Any] = {
        "items": len(m.items),
        "judges": len(m.judges),
        "multi_judged_items": int(multi.sum()),
        "scales": m.scales,
    }
    if multi.sum() >= 2:
        d = m.direction[:, multi]
        s = m.signed[:, multi]
        likert = any(sc > 2 for sc in m.scales)
        # one set of resamples for every coefficient (same items), when it fits in ~200 MB
        shared = (
            list(resample_counts(d.shape[1], n_resamples, seed))
            if 0 < n_resamples * d.shape[1] <= 100_000_000
            else None
        )
        coefs = [
            _coef("raw agreement", raw_agreement, d, n_resamples, seed, "raw", shared),
            _coef("Fleiss' kappa", _fleiss_on_matrix, d, n_resamples, seed, "fleiss", shared),
            _coef("Krippendorff's alpha (nominal)",
                  lambda x: krippendorff_alpha(x, "nominal"), d, n_resamples, seed, "nominal", shared),
        ]
        if likert:
            coefs += [
                _coef("Krippendorff's alpha (ordinal)",
                      lambda x: krippendorff_alpha(x, "ordinal"), s, n_resamples, seed, "ordinal", shared),
                _coef("Krippendorff's alpha (interval)",
                      lambda x: krippendorff_alpha(x, "interval"), s, n_resamples, seed, "interval", shared),
                _coef("Likert direction (alpha nominal on sign)",
                      lambda x: krippendorff_alpha(x, "nominal"), np.sign(s), n_resamples, seed, "nominal", shared),
                _coef("Likert strength (alpha ordinal on |value|)",
                      lambda x: krippendorff_alpha(x, "ordinal"), np.abs(s), n_resamples, seed, "ordinal", shared),
            ]
        summary["coefficients"] = coefs
        summary["cohen"] = _pairwise_cohen(
            s if likert else d, m.judges, "linear" if likert else None, n_resamples, seed, shared
        )
        summary["judge_agreement"] = judge_agreement(m, gold)
        summary["hardest_items"] = _hardest_items(m, multi)
        summary["disagreement_by"] = _disagreement_clusters(judgments, m, multi, prompts)
    summary["rankings"] = _ranking_agreement(judgments)
    summary["ratings"] = _rating_agreement(judgments, n_resamples, seed)
    return summary


def _hardest_items(m: LabelMatrix, multi: NDArray[np.bool_], limit: int = 20) -> list[dict[str, Any]]:
    """Items with the most even split of votes (1 − share of the majority), for adjudication."""
    _, counts = _unit_counts(m.direction)
    total = counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        disagreement = 1.0 - counts.max(axis=1) / total
    order = np.argsort(-np.where(multi, disagreement, -1.0), kind="stable")
    out = []
    for i in order[:limit]:
        if not multi[i] or disagreement[i] <= 0:
            break
        out.append(
            {
                "item": m.items[i],
                "prompt_id": m.prompt_ids[i],
                "judges": int(total[i]),
                "disagreement": float(disagreement[i]),
                "labels": {
                    m.judges[j]: float(m.direction[j, i])
                    for j in range(len(m.judges))
                    if not np.isnan(m.direction[j, i])
                },
            }
        )
    return out


def _disagreement_clusters(
    judgments: pa.Table | pl.DataFrame,
    m: LabelMatrix,
    multi: NDArray[np.bool_],
    prompts: pa.Table | pl.DataFrame | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Share of judgments disagreeing with the others' majority, by judge, batch and tag."""
    loo, _ = _consensus(m.direction)
    rows = m.judgment_index[:, multi]
    own = m.direction[:, multi]
    ref = loo[:, multi]
    ok = (rows >= 0) & ~np.isnan(ref)
    df = _to_polars(judgments)
    pick = rows[ok]
    frame = pl.DataFrame(
        {"_row": pick, "disagrees": (own[ok] != ref[ok])}
    )
    cols: list[str] = [c for c in ("judge_id", "batch_id") if c in df.columns]
    meta = df.select([*cols, "prompt_id"]).with_row_index("_row").with_columns(pl.col("_row").cast(pl.Int64))
    frame = frame.with_columns(pl.col("_row").cast(pl.Int64)).join(meta, on="_row", how="left")
    if prompts is not None:
        p = _to_polars(prompts)
        if "tags" in p.columns:
            tags = p.select("prompt_id", pl.col("tags").alias("tag")).explode("tag").drop_nulls("tag")
            frame = frame.join(tags, on="prompt_id", how="left")
            cols.append("tag")
    out: dict[str, list[dict[str, Any]]] = {}
    for col in cols:
        g = (
            frame.group_by(col)
            .agg(pl.len().alias("judgments"), pl.col("disagrees").mean().alias("disagreement"))
            .sort("disagreement", descending=True)
        )
        out[col] = g.to_dicts()
    return out


def _ranking_agreement(judgments: pa.Table | pl.DataFrame) -> dict[str, Any] | None:
    df = _to_polars(judgments)
    if "ranking" not in df.columns:
        return None
    df = df.filter(pl.col("kind") == "ranking")
    if df.height == 0:
        return None
    taus: list[float] = []
    per_pair: dict[tuple[str, str], list[float]] = {}
    for group in df.group_by("prompt_id").agg("judge_id", "ranking").iter_rows(named=True):
        judged = list(zip(group["judge_id"], group["ranking"], strict=True))
        for (ja, ra), (jb, rb) in combinations(judged, 2):
            if ja == jb:
                continue
            tau = kendall_tau_rankings(ra, rb)
            if np.isfinite(tau):
                taus.append(tau)
                key = (min(ja, jb), max(ja, jb))
                per_pair.setdefault(key, []).append(tau)
    if not taus:
        return {"judge_pairs": 0, "mean_tau": None}
    return {
        "judge_pairs": len(taus),
        "mean_tau": float(np.mean(taus)),
        "by_judge_pair": [
            {"judges": list(k), "items": len(v), "mean_tau": float(np.mean(v))}
            for k, v in sorted(per_pair.items())
        ],
    }


def _rating_agreement(
    judgments: pa.Table | pl.DataFrame, n_resamples: int, seed: int
) -> list[dict[str, Any]] | None:
    """Krippendorff's alpha (interval and ordinal) per rated attribute; units are responses."""
    df = _to_polars(judgments)
    if "rating" not in df.columns:
        return None
    df = df.with_row_index("_row").filter(pl.col("kind") == "rating")
    if df.height == 0:
        return None
    scores = (
        df.select("_row", "judge_id", pl.col("rating").struct.field("scores").alias("s"))
        .explode("s")
        .drop_nulls("s")
        .unnest("s")
        .sort("_row")
        .unique(subset=["judge_id", "response_id", "attribute"], keep="last", maintain_order=True)
    )
    out = []
    for attribute, grp in sorted(scores.group_by("attribute"), key=lambda g: str(g[0][0])):
        judges = sorted(grp["judge_id"].unique().to_list())
        units = sorted(grp["response_id"].unique().to_list())
        mat = np.full((len(judges), len(units)), np.nan)
        mat[
            np.searchsorted(np.array(judges, dtype=object), grp["judge_id"].to_numpy()),
            np.searchsorted(np.array(units, dtype=object), grp["response_id"].to_numpy()),
        ] = grp["score"].to_numpy()
        multi = (~np.isnan(mat)).sum(axis=0) >= 2
        if multi.sum() < 2:
            continue
        data = mat[:, multi]
        out.append(
            {
                "attribute": attribute[0],
                "responses": int(multi.sum()),
                "judges": len(judges),
                "interval": _coef("alpha (interval)", lambda x: krippendorff_alpha(x, "interval"),
                                  data, n_resamples, seed, "interval"),
                "ordinal": _coef("alpha (ordinal)", lambda x: krippendorff_alpha(x, "ordinal"),
                                 data, n_resamples, seed, "ordinal"),
            }
        )
    return out
