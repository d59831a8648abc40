"""Agreement of AI judges with human judgments on the items both judged (the gold calibration).

Works on Arrow tables in ``JUDGMENT_SCHEMA`` (no database session), so it runs the same on an
export and on the workspace. For pairwise items the label is the preferred response (or tie)
and the human label is the majority of the human judgments; for ratings, each aspect of each
response is compared with the humans' mean score after mapping both onto the human scale.
Cohen's kappa comes from scikit-learn (quadratic weights for ratings), Spearman's rho from
SciPy.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

import pyarrow as pa

__all__ = ["AGREEMENT_SCHEMA", "judge_agreement"]

AGREEMENT_SCHEMA = pa.schema(
    [
        ("judge_id", pa.string()),
        ("aspect", pa.string()),
        ("items", pa.int64()),
        ("agreement", pa.float64()),
        ("kappa", pa.float64()),
        ("spearman", pa.float64()),
        ("mean_abs_error", pa.float64()),
    ]
)


def _pairwise_labels(rows: Iterable[dict[str, Any]]) -> dict[str, dict[tuple[str, ...], list[str]]]:
    out: dict[str, dict[tuple[str, ...], list[str]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r["kind"] != "pairwise" or r["pairwise"] is None:
            continue
        pw = r["pairwise"]
        if pw.get("both_bad"):
            label = "both_bad"
        elif pw.get("tie") or pw.get("preferred") is None:
            label = "tie"
        else:
            # relative to the item's sorted ids, so labels mean the same across items
            label = "first" if pw["preferred"] == min(r["response_ids"]) else "second"
        item = (r["prompt_id"], *sorted(r["response_ids"]))
        out[r["judge_id"]][item].append(label)
    return out


def _rating_scores(
    rows: Iterable[dict[str, Any]],
) -> dict[str, dict[tuple[str, str], list[tuple[float, float, float]]]]:
    out: dict[str, dict[tuple[str, str], list[tuple[float, float, float]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for r in rows:
        if r["kind"] != "rating" or r["rating"] is None:
            continue
        rating = r["rating"]
        lo, hi = float(rating["scale_min"]), float(rating["scale_max"])
        for s in rating["scores"]:
            out[r["judge_id"]][(s["response_id"], s["attribute"])].append(
                (float(s["score"]), lo, hi)
            )
    return out


def _majority(labels: list[str]) -> str | None:
    counts = Counter(labels).most_common()
    if len(counts) > 1 and counts[0][1] == counts[1][1]:
        return None  # humans split evenly: no gold label
    return counts[0][0]


def _kappa(a: list[Any], b: list[Any], weights: str | None = None) -> float | None:
    from sklearn.metrics import cohen_kappa_score

    if len(a) < 2 or len(set(a) | set(b)) < 2:
        return None
    value = float(cohen_kappa_score(a, b, weights=weights))
    return None if math.isnan(value) else value  # NaN when one side is constant


def judge_agreement(ai: pa.Table, human: pa.Table) -> pa.Table:
    """Return agreement of each AI judge with the humans, by judge and aspect.

    Args:
        ai: judgments of the AI judges (``JUDGMENT_SCHEMA``).
        human: judgments of humans on some of the same items.

    Returns:
        A table in ``AGREEMENT_SCHEMA``: for pairwise judgments aspect ``"preference"`` with
        raw agreement and Cohen's kappa; for ratings one row per aspect with exact agreement
        (after rounding onto the human scale), quadratic-weighted kappa, Spearman's rho and
        mean absolute error. Items without a human majority are left out.
    """
    from scipy.stats import spearmanr

    ai_rows, human_rows = ai.to_pylist(), human.to_pylist()
    rows: list[dict[str, Any]] = []

    pooled: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for per_item in _pairwise_labels(human_rows).values():
        for item, labels in per_item.items():
            pooled[item].extend(labels)
    gold_pw = {item: m for item, labels in pooled.items() if (m := _majority(labels)) is not None}
    for judge_id, per_item in sorted(_pairwise_labels(ai_rows).items()):
        a, h = [], []
        for item, labels in per_item.items():
            if item in gold_pw:
                a.append(Counter(labels).most_common(1)[0][0])
                h.append(gold_pw[item])
        if a:
            agree = sum(x == y for x, y in zip(a, h, strict=True)) / len(a)
            rows.append(
                {
                    "judge_id": judge_id,
                    "aspect": "preference",
                    "items": len(a),
                    "agreement": agree,
                    "kappa": _kappa(a, h),
                    "spearman": None,
                    "mean_abs_error": None,
                }
            )

    human_scores: dict[tuple[str, str], list[tuple[float, float, float]]] = defaultdict(list)
    for per_rating in _rating_scores(human_rows).values():
        for key, values in per_rating.items():
            human_scores[key].extend(values)
    for judge_id, ai_ratings in sorted(_rating_scores(ai_rows).items()):
        by_aspect: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
        for (rid, aspect), values in ai_ratings.items():
            gold = human_scores.get((rid, aspect))
            if not gold:
                continue
            hlo, hhi = gold[0][1], gold[0][2]
            hmean = sum(v for v, _, _ in gold) / len(gold)
            amapped = [
                hlo + (v - lo) / (hi - lo) * (hhi - hlo) if hi > lo else v for v, lo, hi in values
            ]
            by_aspect[aspect][0].append(sum(amapped) / len(amapped))
            by_aspect[aspect][1].append(hmean)
        for aspect, (a_scores, h_scores) in sorted(by_aspect.items()):
            ar = [round(x) for x in a_scores]
            hr = [round(x) for x in h_scores]
            rho = None
            if len(a_scores) >= 3 and len(set(a_scores)) > 1 and len(set(h_scores)) > 1:
                rho = float(spearmanr(a_scores, h_scores).statistic)
            rows.append(
                {
                    "judge_id": judge_id,
                    "aspect": aspect,
                    "items": len(a_scores),
                    "agreement": sum(x == y for x, y in zip(ar, hr, strict=True)) / len(ar),
                    "kappa": _kappa(ar, hr, weights="quadratic"),
                    "spearman": rho,
                    "mean_abs_error": sum(
                        abs(x - y) for x, y in zip(a_scores, h_scores, strict=True)
                    )
                    / len(a_scores),
                }
            )
    return pa.Table.from_pylist(rows, schema=AGREEMENT_SCHEMA)
