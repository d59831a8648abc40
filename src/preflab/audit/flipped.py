"""Likely-flipped labels: the pairs whose chosen/rejected direction the other evidence contradicts.

A pair's label (which response is chosen) usually rests on one or a few human judgments. The
data often holds more evidence about the same item: other annotators' judgments, an AI judge
that judged it in both orders, gold answers that say how reliable each annotator is. This
module puts that evidence together per item and scores each pair by how likely its label is
wrong, so the worst pairs can be read, dropped from an export or sent back to annotators.

The score (issue 15):

1. **Votes.** Every decided pairwise judgment of a two-response item is a vote for one of
   the two responses. Human ties and both-bad answers are not votes. An AI judge (``judge_id``
   ``ai:…``) votes only when it judged the item in both orders and gave the same answer both
   times (flag ``both_orders`` without ``position_inconsistent``, as
   :func:`preflab.generate.judges.pairwise.judge_pairwise` stores it); a position-inconsistent
   or single-order AI judgment is counted and left out. A judge's last judgment of an item counts.
2. **Reliability.** Dawid & Skene (1979) EM, fitted over every item and judge at once with
   crowd-kit (``pip install 'preflab[crowd]'``), AI judges being judges like the others. Gold
   answers enter as known true labels (crowd-kit's ``true_labels``), so the error matrices of
   annotators who judged gold items follow their gold accuracy. Each judge's accuracy is
   ``Σ_k π_k · P(says k | truth k)`` from the fitted priors ``π`` and error matrices.
3. **Posterior.** For each item, the Dawid–Skene posterior ``P(truth = response)`` (Dawid &
   Skene 1979, eq. 2.5), gold items clamped to their answer.
4. **Score.** ``flip_score = 1 − P(truth = chosen)`` for each pair: 1 − the self-confidence
   label-quality score of Confident Learning (Northcutt, Jiang & Chuang 2021, "Confident
   Learning: Estimating Uncertainty in Dataset Labels", JAIR 70, §2; cleanlab's
   ``rank.get_label_quality_scores(method="self_confidence")``). A pair is **flagged** when the
   score is at least the threshold (default 0.5: the evidence favours the other response).

With cleanlab installed (``pip install 'preflab[clean]'``) the quality score is cleanlab's own
call, and cleanlab's Confident Learning filter (``filter.find_label_issues``,
``prune_by_noise_rate``:
per-class thresholds at the mean self-confidence, off-diagonals of the confident joint) gives a
second, threshold-free set of label issues, reported beside the flags (``confident_learning``).
Without cleanlab, the same score is computed with NumPy and the Confident Learning set is left
out; the report says so.

When there is nothing to compare a label with (one judgment per item, no AI judge in both
orders, no gold answers), the check is skipped with that reason: every posterior would be the
same number.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
from numpy.typing import NDArray

from preflab.errors import DependencyError, UsageError

__all__ = [
    "AI_JUDGE_PREFIX",
    "FLIP_THRESHOLD",
    "drop_likely_flipped",
    "flip_scores",
    "likely_flipped",
]

#: Default score from which a pair is likely flipped: the evidence favours the other response.
FLIP_THRESHOLD = 0.5
#: ``judge_id`` prefix of AI judges (:func:`preflab.generate.judges.config.judge_id_of`).
AI_JUDGE_PREFIX = "ai:"
_BOTH_ORDERS = "both_orders"
_INCONSISTENT = "position_inconsistent"
_CROWD_HINT = "pip install 'preflab[crowd]'"
_CLEAN_HINT = "pip install 'preflab[clean]'"


def _frame(t: pa.Table | pl.DataFrame) -> pl.DataFrame:
    df = t if isinstance(t, pl.DataFrame) else pl.from_arrow(t)
    assert isinstance(df, pl.DataFrame)
    return df


def _bump(counts: dict[str, int], key: str, n: int) -> None:
    if n:
        counts[key] = counts.get(key, 0) + int(n)


def _votes(judgments: pl.DataFrame, skipped: dict[str, int]) -> pl.DataFrame:
    """Return one vote per (judge, item): ``item``, ``prompt_id``, ``first``, ``judge_id``,
    ``is_ai``, ``vote``.

    ``vote`` is 0 when the first of the item's sorted response ids is preferred, 1 for the second.
    """
    cols = set(judgments.columns)
    df = judgments.filter(pl.col("kind") == "pairwise")
    if "pairwise" not in cols or df.height == 0:
        return pl.DataFrame(
            schema={
                "item": pl.String,
                "prompt_id": pl.String,
                "first": pl.String,
                "judge_id": pl.String,
                "is_ai": pl.Boolean,
                "vote": pl.Int8,
            }
        )
    flags = (
        pl.col("flags").fill_null([]) if "flags" in cols else pl.lit([], dtype=pl.List(pl.String))
    )
    order = [c for c in ("submitted_at",) if c in cols]
    df = df.with_row_index("_row").with_columns(
        pl.col("response_ids").list.sort().alias("_ids"),
        pl.col("pairwise").struct.field("preferred").alias("_pref"),
        pl.col("judge_id").str.starts_with(AI_JUDGE_PREFIX).alias("is_ai"),
        flags.list.contains(_BOTH_ORDERS).alias("_both"),
        flags.list.contains(_INCONSISTENT).alias("_inconsistent"),
    )
    _bump(skipped, "not_two_responses", df.filter(pl.col("_ids").list.len() != 2).height)
    df = df.filter(pl.col("_ids").list.len() == 2).with_columns(
        (pl.col("prompt_id") + "|" + pl.col("_ids").list.join("|")).alias("item"),
        pl.col("_ids").list.get(0).alias("first"),
    )
    df = df.sort([*order, "_row"], nulls_last=False).unique(
        subset=["judge_id", "item"], keep="last", maintain_order=True
    )
    ai, human = df.filter(pl.col("is_ai")), df.filter(~pl.col("is_ai"))
    _bump(skipped, "ai_single_order", ai.filter(~pl.col("_both")).height)
    _bump(
        skipped,
        "ai_position_inconsistent",
        ai.filter(pl.col("_both") & pl.col("_inconsistent")).height,
    )
    _bump(
        skipped,
        "ai_tie",
        ai.filter(pl.col("_both") & ~pl.col("_inconsistent") & pl.col("_pref").is_null()).height,
    )
    _bump(skipped, "human_tie_or_both_bad", human.filter(pl.col("_pref").is_null()).height)
    usable = pl.col("_pref").is_not_null() & (
        ~pl.col("is_ai") | (pl.col("_both") & ~pl.col("_inconsistent"))
    )
    return df.filter(usable).select(
        "item",
        "prompt_id",
        "first",
        "judge_id",
        "is_ai",
        pl.when(pl.col("_pref") == pl.col("first"))
        .then(0)
        .otherwise(1)
        .cast(pl.Int8)
        .alias("vote"),
    )


def _labels(
    pairs: pl.DataFrame | None, votes: pl.DataFrame, skipped: dict[str, int]
) -> pl.DataFrame:
    """Return the labels to score: ``row`` (pair row, or null), ``item``, ``prompt_id``,
    ``chosen_id``, ``rejected_id``, ``label``."""
    if pairs is not None:
        missing = [c for c in ("prompt_id", "chosen_id", "rejected_id") if c not in pairs.columns]
        if missing:
            raise UsageError(
                f"the pairs have no {', '.join(missing)} column: likely-flipped scores link a "
                "pair to its judgments by prompt and response ids. Derive the pairs with preflab "
                "(their ids "
                "are kept) or score the judgments alone (pairs=None).",
                field=missing[0],
            )
        p = pairs.with_row_index("row").with_columns(pl.col("row").cast(pl.Int64))
        if "judge_id" in p.columns:  # one row per judgment (audit tables): AI rows are not labels
            ai_rows = p.filter(pl.col("judge_id").fill_null("").str.starts_with(AI_JUDGE_PREFIX))
            _bump(skipped, "ai_judgment_rows", ai_rows.height)
            p = p.filter(~pl.col("judge_id").fill_null("").str.starts_with(AI_JUDGE_PREFIX))
        a = pl.min_horizontal("chosen_id", "rejected_id")
        b = pl.max_horizontal("chosen_id", "rejected_id")
        p = p.with_columns(
            (pl.col("prompt_id") + "|" + a + "|" + b).alias("item"),
            pl.when(pl.col("chosen_id") == a).then(0).otherwise(1).cast(pl.Int8).alias("label"),
        )
        n = p.height
        # the same labelling of one item (several rows, e.g. one per annotator) is scored once
        p = p.unique(subset=["item", "label"], keep="first", maintain_order=True)
        _bump(skipped, "repeated_label_rows", n - p.height)
        return p.select("row", "item", "prompt_id", "chosen_id", "rejected_id", "label")
    human = votes.filter(~pl.col("is_ai"))
    by_item = human.group_by("item", maintain_order=True).agg(
        pl.col("prompt_id").first(),
        pl.col("first").first(),
        pl.col("vote").mean().alias("_mean"),
        pl.col("judge_id").first().alias("_any"),
    )
    ids = pl.col("item").str.split("|")
    tied = by_item.filter(pl.col("_mean") == 0.5)
    _bump(skipped, "no_human_majority", tied.height)
    _bump(
        skipped,
        "no_human_vote",
        votes.filter(pl.col("is_ai"))
        .select("item")
        .unique()
        .join(by_item.select("item"), on="item", how="anti")
        .height,
    )
    lab = by_item.filter(pl.col("_mean") != 0.5).with_columns(
        (pl.col("_mean") > 0.5).cast(pl.Int8).alias("label"),
        ids.list.get(1).alias("_a"),
        ids.list.get(2).alias("_b"),
    )
    return lab.select(
        pl.lit(None, dtype=pl.Int64).alias("row"),
        "item",
        "prompt_id",
        pl.when(pl.col("label") == 0).then(pl.col("_a")).otherwise(pl.col("_b")).alias("chosen_id"),
        pl.when(pl.col("label") == 0)
        .then(pl.col("_b"))
        .otherwise(pl.col("_a"))
        .alias("rejected_id"),
        "label",
    )


def _dawid_skene(
    votes: pl.DataFrame, gold: Mapping[str, float], n_iter: int
) -> tuple[dict[str, NDArray[np.float64]], dict[str, float]]:
    """Return item → posterior ``[P(first), P(second)]`` and judge → accuracy (crowd-kit's DS).

    Raises:
        DependencyError: crowd-kit is not installed.
    """
    try:
        import pandas as pd
        from crowdkit.aggregation import DawidSkene
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise DependencyError(
            "likely-flipped scores need Dawid–Skene annotator reliabilities from crowd-kit. "
            f"Install it with `{_CROWD_HINT}`."
        ) from exc
    frame = pd.DataFrame(
        {
            "task": votes["item"].to_list(),
            "worker": votes["judge_id"].to_list(),
            "label": votes["vote"].cast(pl.Int64).to_list(),
        }
    )
    tasks = set(frame["task"])
    truth = {k: (0 if v > 0 else 1) for k, v in gold.items() if k in tasks and v in (1.0, -1.0)}
    model = DawidSkene(n_iter=n_iter)
    with warnings.catch_warnings():
        # crowd-kit still passes keywords pandas 3 deprecates (``inplace=``, ``copy=``)
        category = getattr(pd.errors, "Pandas4Warning", FutureWarning)
        warnings.filterwarnings("ignore", category=category)
        probas = model.fit_predict_proba(
            frame, true_labels=pd.Series(truth, dtype="int64") if truth else None
        )
        probas = probas.reindex(columns=[0, 1], fill_value=0.0).fillna(0.0)
    post = {
        str(k): row for k, row in zip(probas.index, probas.to_numpy(dtype=np.float64), strict=True)
    }
    for k, v in truth.items():  # gold items: the answer is known
        post[k] = np.array([1.0, 0.0]) if v == 0 else np.array([0.0, 1.0])
    accuracy: dict[str, float] = {}
    priors = model.priors_.reindex([0, 1], fill_value=0.0) if model.priors_ is not None else None
    errors = model.errors_
    if priors is not None and errors is not None:
        for judge in frame["worker"].unique():
            m = errors.loc[judge].reindex(index=[0, 1], columns=[0, 1], fill_value=0.0)
            accuracy[str(judge)] = float(sum(priors[k] * m.loc[k, k] for k in (0, 1)))
    return post, accuracy


def _quality(
    labels: NDArray[np.int64], probs: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.bool_] | None, bool]:
    """Return each label's self-confidence, the Confident Learning issues, whether cleanlab ran."""
    try:
        from cleanlab.filter import find_label_issues
        from cleanlab.rank import get_label_quality_scores
    except ImportError:
        return probs[np.arange(len(labels)), labels], None, False
    quality = np.asarray(
        get_label_quality_scores(labels, probs, method="self_confidence"), dtype=np.float64
    )
    issues: NDArray[np.bool_] | None = None
    # Confident Learning needs both classes among the labels (a threshold per class, §2.1)
    if len(labels) >= 2 and len(np.unique(labels)) == 2:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # cleanlab warns on small or very clean data
            issues = np.asarray(
                find_label_issues(labels, probs, filter_by="prune_by_noise_rate"), dtype=bool
            )
    return quality, issues, True


def flip_scores(
    judgments: pa.Table | pl.DataFrame,
    pairs: pa.Table | pl.DataFrame | None = None,
    *,
    gold: Mapping[str, float] | None = None,
    threshold: float = FLIP_THRESHOLD,
    n_iter: int = 100,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Return a score per pair (how likely its label is flipped) and what was counted.

    Args:
        judgments: judgments (``JUDGMENT_SCHEMA``); the pairwise ones are the evidence.
        pairs: the pairs to score (``prompt_id``, ``chosen_id``, ``rejected_id``; a ``judge_id``
            column marks one row per judgment, whose AI rows are not scored). Without pairs,
            each item's label is the majority of its human votes.
        gold: item key (``prompt_id|a|b``, ids sorted) → gold direction code
            (:func:`~preflab.audit.outcomes.gold_from_answers`); 1 = ``a`` preferred, −1 = ``b``.
        threshold: score from which a pair is flagged.
        n_iter: Dawid–Skene EM iterations.

    Returns:
        ``(scores, info)``: one row per scored label, sorted by ``flip_score`` (highest first):
        ``row`` (the pair's row, null without pairs), ``item``, ``prompt_id``, ``chosen_id``,
        ``rejected_id``, ``flip_score``, ``flagged``, ``confident_learning`` (null without
        cleanlab), ``humans`` and ``humans_agreeing`` (human votes on the item, and for the
        label), ``ai_votes`` and ``ai_disagreeing``, ``min_judge_accuracy`` (the least reliable
        human who voted for the label), ``gold`` (``agrees``/``disagrees``/null); and ``info``
        with ``skipped`` counts by reason, the judges' reliabilities, the method and why the
        check did not run (``skipped_reason``) when there was nothing to compare.

    Raises:
        UsageError: a threshold outside (0, 1]; pairs without their ids.
        DependencyError: crowd-kit is not installed.

    >>> import pyarrow as pa
    >>> rows = [{"judgment_id": f"j{i}", "prompt_id": "p", "response_ids": ["r1", "r2"],
    ...          "kind": "pairwise", "judge_id": j, "flags": [],
    ...          "pairwise": {"scale": 2, "preferred": pref, "strength": 1}}
    ...         for i, (j, pref) in enumerate([("ann", "r1"), ("bob", "r2"), ("cat", "r2")])]
    >>> scores, info = flip_scores(pa.Table.from_pylist(rows))
    >>> scores["chosen_id"].to_list(), info["scored"]
    (['r2'], 1)
    """
    if not 0.0 < threshold <= 1.0:
        raise UsageError(
            f"the flip threshold must be in (0, 1], got {threshold}",
            field="flip_threshold",
            value=threshold,
        )
    skipped: dict[str, int] = {}
    votes = _votes(_frame(judgments), skipped)
    gold = dict(gold or {})
    info: dict[str, Any] = {
        "threshold": threshold,
        "skipped": skipped,
        "votes": votes.height,
        "human_votes": int((~votes["is_ai"]).sum()),
        "ai_votes": int(votes["is_ai"].sum()),
        "scored": 0,
        "flagged": 0,
        "judges": [],
        "cleanlab": None,
        "confident_learning_issues": None,
    }
    # one vote per item and no gold: every posterior would be the same number
    items = votes["item"]
    if items.n_unique() == votes.height and not (gold and any(k in gold for k in items.to_list())):
        info["skipped_reason"] = (
            "every item has one vote and no gold answer: no second annotator, no AI judge in "
            "both orders, nothing to compare a label with"
        )
        return _empty_scores(), info
    labels = _labels(None if pairs is None else _frame(pairs), votes, skipped)
    if labels.height == 0:
        info["skipped_reason"] = "no label to score"
        return _empty_scores(), info
    post, accuracy = _dawid_skene(votes, gold, n_iter)
    scored = labels.filter(pl.col("item").is_in(list(post)))
    _bump(skipped, "no_pairwise_judgments", labels.height - scored.height)
    lab = scored["label"].to_numpy().astype(np.int64)
    probs = np.array([post[k] for k in scored["item"].to_list()], dtype=np.float64).reshape(-1, 2)
    quality, issues, used_cleanlab = _quality(lab, probs)
    scores = 1.0 - quality
    info["cleanlab"] = used_cleanlab
    info["method"] = "Dawid–Skene posterior (crowd-kit); 1 − self-confidence " + (
        "(cleanlab.rank.get_label_quality_scores) and Confident Learning issues "
        "(cleanlab.filter.find_label_issues)"
        if used_cleanlab
        else f"(NumPy; Confident Learning issues need cleanlab: `{_CLEAN_HINT}`)"
    )
    out = scored.with_columns(
        pl.Series("flip_score", scores, dtype=pl.Float64),
        pl.Series("confident_learning", issues, dtype=pl.Boolean)
        if issues is not None
        else pl.lit(None, dtype=pl.Boolean).alias("confident_learning"),
    ).with_columns((pl.col("flip_score") >= threshold).alias("flagged"))
    out = _with_evidence(out, votes, accuracy, gold)
    info["scored"] = out.height
    info["flagged"] = int(out["flagged"].sum())
    if issues is not None:
        info["confident_learning_issues"] = int(issues.sum())
    info["judges"] = _judges(votes, accuracy, gold)
    return out.sort(["flip_score", "item"], descending=[True, False]), info


def _empty_scores() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "row": pl.Int64,
            "item": pl.String,
            "prompt_id": pl.String,
            "chosen_id": pl.String,
            "rejected_id": pl.String,
            "label": pl.Int8,
            "flip_score": pl.Float64,
            "confident_learning": pl.Boolean,
            "flagged": pl.Boolean,
            "humans": pl.UInt32,
            "humans_agreeing": pl.UInt32,
            "ai_votes": pl.UInt32,
            "ai_disagreeing": pl.UInt32,
            "min_judge_accuracy": pl.Float64,
            "gold": pl.String,
        }
    )


def _with_evidence(
    out: pl.DataFrame, votes: pl.DataFrame, accuracy: Mapping[str, float], gold: Mapping[str, float]
) -> pl.DataFrame:
    """Add what each score rests on: human and AI votes for and against, reliability, gold."""
    acc = pl.DataFrame(
        {"judge_id": list(accuracy), "_acc": list(accuracy.values())},
        schema={"judge_id": pl.String, "_acc": pl.Float64},
    )
    v = votes.join(out.select("item", "label"), on="item").join(acc, on="judge_id", how="left")
    agree = pl.col("vote") == pl.col("label")
    ev = v.group_by(["item", "label"]).agg(
        (~pl.col("is_ai")).sum().cast(pl.UInt32).alias("humans"),
        (~pl.col("is_ai") & agree).sum().cast(pl.UInt32).alias("humans_agreeing"),
        pl.col("is_ai").sum().cast(pl.UInt32).alias("ai_votes"),
        (pl.col("is_ai") & ~agree).sum().cast(pl.UInt32).alias("ai_disagreeing"),
        pl.col("_acc").filter(~pl.col("is_ai") & agree).min().alias("min_judge_accuracy"),
    )
    g = pl.DataFrame(
        {"item": list(gold), "_g": [float(x) for x in gold.values()]},
        schema={"item": pl.String, "_g": pl.Float64},
    )
    out = out.join(ev, on=["item", "label"], how="left").join(g, on="item", how="left")
    code = pl.when(pl.col("label") == 0).then(1.0).otherwise(-1.0)
    return (
        out.with_columns(
            pl.when(pl.col("_g").is_in([1.0, -1.0]).not_() | pl.col("_g").is_null())
            .then(pl.lit(None, pl.String))
            .when(pl.col("_g") == code)
            .then(pl.lit("agrees"))
            .otherwise(pl.lit("disagrees"))
            .alias("gold"),
        )
        .drop("_g")
        .with_columns(
            pl.col(c).fill_null(0)
            for c in ("humans", "humans_agreeing", "ai_votes", "ai_disagreeing")
        )
    )


def _judges(
    votes: pl.DataFrame, accuracy: Mapping[str, float], gold: Mapping[str, float]
) -> list[dict[str, Any]]:
    """Return each judge's votes, Dawid–Skene accuracy and gold accuracy (least reliable first)."""
    g = pl.DataFrame(
        {"item": list(gold), "_g": [float(x) for x in gold.values()]},
        schema={"item": pl.String, "_g": pl.Float64},
    ).filter(pl.col("_g").is_in([1.0, -1.0]))
    v = votes.join(g, on="item", how="left").with_columns(
        (pl.col("_g") == pl.when(pl.col("vote") == 0).then(1.0).otherwise(-1.0)).alias("_ok")
    )
    rows = (
        v.group_by("judge_id")
        .agg(
            pl.len().alias("votes"),
            pl.col("is_ai").first().alias("is_ai"),
            pl.col("_ok").is_not_null().sum().alias("gold_judgments"),
            pl.col("_ok").sum().alias("gold_correct"),
        )
        .to_dicts()
    )
    out = []
    for r in rows:
        n = int(r["gold_judgments"])
        out.append(
            {
                "judge_id": r["judge_id"],
                "kind": "ai" if r["is_ai"] else "human",
                "votes": int(r["votes"]),
                "ds_accuracy": accuracy.get(r["judge_id"]),
                "gold_judgments": n,
                "gold_accuracy": int(r["gold_correct"]) / n if n else None,
            }
        )
    return sorted(
        out,
        key=lambda r: (r["ds_accuracy"] if r["ds_accuracy"] is not None else 2.0, r["judge_id"]),
    )


def likely_flipped(
    judgments: pa.Table | pl.DataFrame,
    pairs: pa.Table | pl.DataFrame | None = None,
    *,
    gold: Mapping[str, float] | None = None,
    threshold: float = FLIP_THRESHOLD,
    limit: int = 20,
) -> dict[str, Any]:
    """Return the audit section: counts, reliabilities and the ``limit`` likeliest flipped pairs.

    See :func:`flip_scores` for the arguments and the module docstring for the score. The
    section holds ``top`` (rows of the score table as dicts), ``scored``, ``flagged``,
    ``confident_learning_issues``, ``judges``, ``skipped`` (by reason), ``method``,
    ``threshold`` and, when the check could not run, ``skipped_reason``.
    """
    try:
        scores, info = flip_scores(judgments, pairs, gold=gold, threshold=threshold)
    except DependencyError as exc:
        return {"skipped_reason": str(exc), "scored": 0, "flagged": 0, "top": []}
    info["top"] = scores.head(limit).drop("label").to_dicts()
    return info


def drop_likely_flipped(
    pairs: pa.Table,
    judgments: pa.Table | pl.DataFrame,
    *,
    gold: Mapping[str, float] | None = None,
    threshold: float = FLIP_THRESHOLD,
) -> tuple[pa.Table, int, dict[str, Any]]:
    """Return the pairs without the flagged ones, how many were dropped, and the scoring info.

    Args:
        pairs: derived pairs (``PAIR_SCHEMA``: ``prompt_id``, ``chosen_id``, ``rejected_id``).
        judgments: the judgments the pairs were derived from (and any AI judgments of them).
        gold: gold directions, as in :func:`flip_scores`.
        threshold: score from which a pair is dropped.

    Raises:
        UsageError: pairs without their ids, or a threshold outside (0, 1].
        DependencyError: crowd-kit is not installed.
    """
    ids = [c for c in ("prompt_id", "chosen_id", "rejected_id") if c in pairs.column_names]
    scores, info = flip_scores(
        judgments, pairs.select(ids) if len(ids) == 3 else pairs, gold=gold, threshold=threshold
    )
    flagged = scores.filter(pl.col("flagged")).select("item", "chosen_id")
    if flagged.height == 0:
        return pairs, 0, info
    # the flagged label is (item, chosen): the same item with the other label is not dropped
    keys = (
        _frame(pairs.select(ids))
        .with_row_index("_row")
        .select(
            "_row",
            "chosen_id",
            (
                pl.col("prompt_id")
                + "|"
                + pl.min_horizontal("chosen_id", "rejected_id")
                + "|"
                + pl.max_horizontal("chosen_id", "rejected_id")
            ).alias("item"),
        )
    )
    hit = keys.join(flagged, on=["item", "chosen_id"], how="semi")["_row"].to_numpy()
    drop = np.zeros(pairs.num_rows, dtype=bool)
    drop[hit] = True
    return pairs.filter(pa.array(~drop)), int(drop.sum()), info
