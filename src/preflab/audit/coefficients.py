"""Agreement coefficients on a judges × items reliability matrix, with bootstrap intervals.

One row per judge, one column per item, ``NaN`` where a judge did not judge the item (the
layout of Krippendorff 2011 and of the ``krippendorff`` package). Everything is vectorised
numpy; :mod:`preflab.audit.agreement` builds the matrices from judgment tables.

Verdict bands follow shared/reference/002 ("Inter-Annotator Agreement"): ≥ 0.75 strong,
0.60–0.75 moderate, 0.40–0.60 fair, < 0.40 poor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from preflab.errors import InputError, UsageError

__all__ = [
    "BOTH_BAD",
    "Level",
    "Weights",
    "bootstrap_counts_interval",
    "bootstrap_interval",
    "cohen_kappa",
    "counts_table",
    "fleiss_kappa",
    "kendall_tau_rankings",
    "krippendorff_alpha",
    "raw_agreement",
    "resample_counts",
    "verdict",
]

Level = Literal["nominal", "ordinal", "interval", "ratio"]
Weights = Literal["linear", "quadratic"] | None

BOTH_BAD = 9.0
"""Nominal code of a ``both_bad`` pairwise judgment (a category of its own)."""

# Bands of shared/reference/002, "Benchmarks" under "Inter-Annotator Agreement".
_BANDS = ((0.75, "strong"), (0.60, "moderate"), (0.40, "fair"))


def verdict(value: float | None) -> str:
    """Return the verdict band of an agreement coefficient.

    >>> [verdict(x) for x in (0.8, 0.75, 0.6, 0.5, 0.1)]
    ['strong', 'strong', 'moderate', 'fair', 'poor']
    """
    if value is None or not np.isfinite(value):
        return "undefined"
    for low, name in _BANDS:
        if value >= low:
            return name
    return "poor"


def _as_matrix(data: ArrayLike) -> NDArray[np.float64]:
    arr = np.asarray(data, dtype=np.float64)
    if arr.ndim != 2:
        raise UsageError(f"expected a judges × items matrix, got an array of shape {arr.shape}")
    return arr


def _unit_counts(
    data: NDArray[np.float64], value_domain: Sequence[float] | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return (values, counts): counts[u, v] = how many judges gave item u the value v."""
    mask = ~np.isnan(data)
    present = data[mask]
    if value_domain is None:
        values = np.unique(present)
    else:
        values = np.asarray(value_domain, dtype=np.float64)
        if np.any(np.diff(values) <= 0):
            raise UsageError("value_domain must be sorted and without repeats")
        unknown = ~np.isin(present, values)
        if unknown.any():
            raise InputError(
                f"value {present[unknown][0]!r} is not in value_domain {list(values)}",
                field="value_domain",
            )
    idx = np.searchsorted(values, present)
    n_units = data.shape[1]
    units = np.nonzero(mask)[1]
    counts = np.bincount(units * len(values) + idx, minlength=n_units * len(values))
    return values, counts.reshape(n_units, len(values)).astype(np.float64)


def _delta2(level: Level, values: NDArray[np.float64], n_c: NDArray[np.float64]) -> NDArray[np.float64]:
    """Squared difference function δ² of Krippendorff (2011), section E."""
    if level == "nominal":
        return 1.0 - np.eye(len(values))
    if level == "ordinal":
        cum = np.concatenate([[0.0], np.cumsum(n_c)])
        lo = np.minimum.outer(np.arange(len(values)), np.arange(len(values)))
        hi = np.maximum.outer(np.arange(len(values)), np.arange(len(values)))
        between = cum[hi + 1] - cum[lo]
        out: NDArray[np.float64] = (between - (n_c[:, None] + n_c[None, :]) / 2.0) ** 2
        return out
    if level == "interval":
        return np.subtract.outer(values, values) ** 2
    if level == "ratio":
        diff = np.subtract.outer(values, values)
        total = np.add.outer(values, values)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(total == 0, 0.0, (diff / np.where(total == 0, 1.0, total)) ** 2)
        return out
    raise UsageError(f"level must be nominal, ordinal, interval or ratio, got {level!r}")


def _alpha_from_counts(
    counts: NDArray[np.float64], values: NDArray[np.float64], level: Level
) -> float:
    m = counts.sum(axis=1)
    pairable = m >= 2
    counts = counts[pairable]
    if counts.shape[0] == 0:
        return float("nan")
    w = 1.0 / (m[pairable] - 1.0)
    weighted = counts * w[:, None]
    # coincidence matrix o_ck = Σ_u n_uc (n_uk − [c = k]) / (m_u − 1)   (Krippendorff 2011, C.)
    o = weighted.T @ counts
    o[np.diag_indices_from(o)] -= weighted.sum(axis=0)
    n_c = o.sum(axis=1)
    n = n_c.sum()
    d2 = _delta2(level, values, n_c)
    expected = n_c @ d2 @ n_c
    if expected == 0:
        return float("nan")
    return float(1.0 - (n - 1.0) * float((o * d2).sum()) / expected)


def krippendorff_alpha(
    data: ArrayLike, level: Level = "nominal", value_domain: Sequence[float] | None = None
) -> float:
    """Return Krippendorff's alpha of a judges × items matrix with ``NaN`` for missing values.

    Follows Krippendorff, "Computing Krippendorff's Alpha-Reliability" (2011): coincidence
    matrix over pairable values, δ² per level (section E). Items with fewer than two values
    are not pairable and ignored. ``NaN`` is returned when there is no variation at all.

    Args:
        data: judges × items, numeric labels, ``NaN`` = not judged.
        level: ``nominal``, ``ordinal``, ``interval`` or ``ratio``.
        value_domain: the possible values, sorted (matters for ``ordinal`` when some value
            is never used); defaults to the values present.

    Returns:
        alpha, 1 = perfect agreement, 0 = chance level.

    >>> round(krippendorff_alpha([[1, 2, 3, 3], [1, 2, 3, 4]], "nominal"), 3)
    0.696
    """
    arr = _as_matrix(data)
    values, counts = _unit_counts(arr, value_domain)
    return _alpha_from_counts(counts, values, level)


def fleiss_kappa(table: ArrayLike) -> float:
    """Return Fleiss' kappa of an items × categories table of rating counts.

    Fleiss (1971), "Measuring nominal scale agreement among many raters", eq. (1)–(9); the
    same computation as ``statsmodels.stats.inter_rater.fleiss_kappa`` when every item has
    the same number of ratings. With unequal numbers, P_i uses each item's own count and
    p_j the pooled proportions (the usual extension); items with fewer than 2 ratings are
    dropped.

    >>> round(fleiss_kappa([[2, 0], [0, 2], [1, 1]]), 3)
    0.333
    """
    t = np.asarray(table, dtype=np.float64)
    if t.ndim != 2:
        raise UsageError(f"expected an items × categories table, got shape {t.shape}")
    m = t.sum(axis=1)
    t = t[m >= 2]
    m = m[m >= 2]
    if t.shape[0] == 0:
        return float("nan")
    p_j = t.sum(axis=0) / m.sum()
    p_i = ((t * (t - 1)).sum(axis=1)) / (m * (m - 1))
    p_bar = p_i.mean()
    p_e = float((p_j**2).sum())
    if p_e == 1.0:
        return float("nan")
    return float((p_bar - p_e) / (1.0 - p_e))


def counts_table(data: ArrayLike) -> NDArray[np.float64]:
    """Return the items × categories count table of a judges × items matrix."""
    _, counts = _unit_counts(_as_matrix(data))
    return counts


def cohen_kappa(a: ArrayLike, b: ArrayLike, weights: Weights = None) -> float:
    """Return Cohen's kappa between two judges' labels on the same items (``NaN`` skipped).

    Cohen (1960); weighted form of Cohen (1968) with ``linear`` (|i−j|) or ``quadratic``
    ((i−j)²) disagreement weights on the positions of the sorted labels — the definition of
    ``sklearn.metrics.cohen_kappa_score``.

    >>> cohen_kappa([1, 1, 0, 0], [1, 0, 0, 0])
    0.5
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise UsageError("cohen_kappa needs two 1-d label arrays of the same length")
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    if len(x) == 0:
        return float("nan")
    labels = np.unique(np.concatenate([x, y]))
    k = len(labels)
    ix, iy = np.searchsorted(labels, x), np.searchsorted(labels, y)
    observed = np.bincount(ix * k + iy, minlength=k * k).reshape(k, k).astype(np.float64)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / observed.sum()
    pos = np.arange(k)
    if weights is None:
        w = 1.0 - np.eye(k)
    elif weights == "linear":
        w = np.abs(np.subtract.outer(pos, pos)).astype(np.float64)
    elif weights == "quadratic":
        w = np.subtract.outer(pos, pos).astype(np.float64) ** 2
    else:
        raise UsageError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}")
    denom = float((w * expected).sum())
    if denom == 0:
        return float("nan")
    return float(1.0 - (w * observed).sum() / denom)


def raw_agreement(data: ArrayLike) -> float:
    """Return the share of agreeing judge pairs, averaged over items with ≥ 2 judges.

    >>> raw_agreement([[1, 1, 0], [1, 0, 0]])
    0.6666666666666666
    """
    _, counts = _unit_counts(_as_matrix(data))
    m = counts.sum(axis=1)
    keep = m >= 2
    if not keep.any():
        return float("nan")
    c, m = counts[keep], m[keep]
    return float(((c * (c - 1)).sum(axis=1) / (m * (m - 1))).mean())


def bootstrap_interval(
    statistic: Callable[[NDArray[np.float64]], float],
    data: ArrayLike,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int | np.random.Generator = 0,
) -> tuple[float, float]:
    """Return a percentile bootstrap interval of ``statistic`` resampling items (columns).

    Items are the unit of resampling, as in Krippendorff's and Hayes & Krippendorff's (2007)
    bootstrap for alpha. Resamples where the statistic is undefined are skipped.
    """
    arr = _as_matrix(data)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    n = arr.shape[1]
    if n == 0:
        return (float("nan"), float("nan"))
    stats = np.empty(n_resamples)
    for i in range(n_resamples):
        stats[i] = statistic(arr[:, rng.integers(0, n, n)])
    stats = stats[np.isfinite(stats)]
    if len(stats) == 0:
        return (float("nan"), float("nan"))
    tail = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(stats, [tail, 1.0 - tail])
    return (float(lo), float(hi))


def kendall_tau_rankings(a: Sequence[Sequence[str]], b: Sequence[Sequence[str]]) -> float:
    """Return Kendall's tau-b between two rankings given as ordered groups of response ids.

    Only responses ranked by both judges count; ties inside a group are ties (tau-b).

    >>> round(kendall_tau_rankings([["x"], ["y"], ["z"]], [["x"], ["z"], ["y"]]), 6)
    0.333333
    """
    from scipy.stats import kendalltau

    ra = {rid: pos for pos, group in enumerate(a) for rid in group}
    rb = {rid: pos for pos, group in enumerate(b) for rid in group}
    common = sorted(ra.keys() & rb.keys())
    if len(common) < 2:
        return float("nan")
    tau = kendalltau([ra[r] for r in common], [rb[r] for r in common]).statistic
    return float(tau)


_FAST_MAX_VALUES = 32


def resample_counts(
    n: int, n_resamples: int, seed: int | np.random.Generator = 0, cells: int = 4_000_000
) -> Any:
    """Yield blocks of bootstrap weights (how often each of ``n`` items is drawn), resamples × items.

    Equivalent to drawing ``n`` item indices with replacement per resample.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    block = max(1, cells // max(n, 1))
    for lo in range(0, n_resamples, block):
        b = min(block, n_resamples - lo)
        draws = rng.integers(0, n, (b, n)) + (np.arange(b) * n)[:, None]
        yield np.bincount(draws.ravel(), minlength=b * n).reshape(b, n).astype(np.uint16)


def _weighted_stats(kind: str, level: Level, counts: NDArray[np.float64], values: NDArray[np.float64],
                    w: NDArray[np.float64]) -> NDArray[np.float64]:
    """Return the statistic for each row of unit weights ``w`` (resamples × units)."""
    m = counts.sum(axis=1)
    keep = m >= 2
    c, m, w = counts[keep], m[keep], w[:, keep]
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "raw":
            p_u = (c * (c - 1)).sum(axis=1) / (m * (m - 1))
            raw: NDArray[np.float64] = (w @ p_u) / w.sum(axis=1)
            return raw
        if kind == "fleiss":
            p_u = (c * (c - 1)).sum(axis=1) / (m * (m - 1))
            p_bar = (w @ p_u) / w.sum(axis=1)
            p_j = (w @ c) / (w @ m)[:, None]
            p_e = (p_j**2).sum(axis=1)
            kappa: NDArray[np.float64] = (p_bar - p_e) / (1.0 - p_e)
            return kappa
    k = c.shape[1]
    contrib = (c[:, :, None] * c[:, None, :]).reshape(len(c), k * k)
    contrib[:, np.arange(k) * (k + 1)] -= c
    contrib /= (m - 1.0)[:, None]
    o_all = (w @ contrib).reshape(-1, k, k)
    out = np.empty(len(o_all))
    for i, o in enumerate(o_all):
        n_c = o.sum(axis=1)
        d2 = _delta2(level, values, n_c)
        expected = n_c @ d2 @ n_c
        out[i] = np.nan if expected == 0 else 1.0 - (n_c.sum() - 1.0) * float((o * d2).sum()) / expected
    return out


def bootstrap_counts_interval(
    kind: Literal["raw", "fleiss", "alpha"],
    data: ArrayLike,
    *,
    level: Level = "nominal",
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int | np.random.Generator = 0,
    weights: list[NDArray[np.uint16]] | None = None,
) -> tuple[float, float]:
    """Return the percentile bootstrap interval of raw agreement, Fleiss' kappa or alpha.

    Same resampling of items as :func:`bootstrap_interval`, computed without a Python loop
    over resamples: a resample is a vector of weights (how often each item was drawn), and
    each statistic is a weighted sum of per-item counts (for alpha, of per-item coincidence
    matrices, Krippendorff 2011 section C), so blocks of resamples are one matrix product.
    ``weights`` (blocks of :func:`resample_counts` over the same items) lets several
    coefficients share one set of resamples.
    """
    arr = _as_matrix(data)
    values, counts = _unit_counts(arr)
    if counts.shape[0] == 0 or len(values) == 0:
        return (float("nan"), float("nan"))
    blocks = weights if weights is not None else resample_counts(counts.shape[0], n_resamples, seed)
    stats = np.concatenate(
        [_weighted_stats(kind, level, counts, values, w.astype(np.float64)) for w in blocks]
    )
    stats = stats[np.isfinite(stats)]
    if len(stats) == 0:
        return (float("nan"), float("nan"))
    tail = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(stats, [tail, 1.0 - tail])
    return (float(lo), float(hi))
