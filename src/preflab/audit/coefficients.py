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
    "CiMethod",
    "Level",
    "Weights",
    "bca_interval",
    "bootstrap_cohen_interval",
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


def _percentile(stats: NDArray[np.float64], confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(stats, [tail, 1.0 - tail])
    return (float(lo), float(hi))


def bca_interval(
    estimate: float,
    resampled: NDArray[np.float64],
    jackknife: NDArray[np.float64],
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Return the BCa interval from bootstrap replicates and leave-one-out (jackknife) values.

    Efron (1987), "Better bootstrap confidence intervals", JASA 82: the bias correction
    ``z0 = Φ⁻¹(share of replicates below the estimate)`` (ties counted half, as
    ``scipy.stats.bootstrap`` does) and the acceleration
    ``a = Σ(θ̄₍.₎ − θ₍ᵢ₎)³ / (6 (Σ(θ̄₍.₎ − θ₍ᵢ₎)²)^{3/2})`` from the jackknife (Efron & Tibshirani
    1993, eq. 14.15) move the percentile levels to ``Φ(z0 + (z0 + z_α) / (1 − a (z0 + z_α)))``.
    With clustered data the jackknife leaves out one cluster (Davison & Hinkley 1997, §3.8).
    Falls back to the percentile interval when ``z0`` or ``a`` is undefined (every replicate on
    one side of the estimate, or a constant jackknife).

    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=50)
    >>> boot = np.array([rng.choice(x, 50).mean() for _ in range(2000)])
    >>> jack = (x.sum() - x) / 49
    >>> lo, hi = bca_interval(x.mean(), boot, jack)
    >>> bool(lo < x.mean() < hi)
    True
    """
    from scipy.special import ndtr, ndtri

    resampled = resampled[np.isfinite(resampled)]
    jackknife = jackknife[np.isfinite(jackknife)]
    if len(resampled) == 0:
        return (float("nan"), float("nan"))
    below = (np.sum(resampled < estimate) + np.sum(resampled <= estimate)) / (2.0 * len(resampled))
    d = jackknife.mean() - jackknife if len(jackknife) else np.zeros(0)
    spread = float((d**2).sum())
    if not np.isfinite(estimate) or not 0.0 < below < 1.0 or spread == 0.0:
        return _percentile(resampled, confidence)
    z0 = float(ndtri(below))
    accel = float((d**3).sum()) / (6.0 * spread**1.5)
    tail = (1.0 - confidence) / 2.0
    z = ndtri(np.array([tail, 1.0 - tail]))
    levels = ndtr(z0 + (z0 + z) / (1.0 - accel * (z0 + z)))
    if not np.all(np.isfinite(levels)):
        return _percentile(resampled, confidence)
    lo, hi = np.quantile(resampled, levels)
    return (float(lo), float(hi))


CiMethod = Literal["bca", "percentile"]

_SCIPY_BCA_MAX_ITEMS = 5_000


def bootstrap_interval(
    statistic: Callable[[NDArray[np.float64]], float],
    data: ArrayLike,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int | np.random.Generator = 0,
    method: CiMethod = "bca",
) -> tuple[float, float]:
    """Return a bootstrap interval of ``statistic`` resampling items (columns) as clusters.

    An item and all its judgments are one cluster, resampled whole (Davison & Hinkley 1997,
    §3.8, "Hierarchical data": resample the top-level units); this is also Krippendorff's and
    Hayes & Krippendorff's (2007) bootstrap for alpha. ``method="bca"`` gives Efron's (1987)
    bias-corrected and accelerated interval through ``scipy.stats.bootstrap`` (its jackknife
    leaves out one item at a time; above 5,000 items the percentile interval is used, the
    jackknife costing one statistic per item). When some resample's statistic is undefined,
    scipy's BCa is undefined too; the percentile interval of the defined resamples is returned
    then.

    This loops over resamples in Python; :func:`bootstrap_counts_interval` and
    :func:`bootstrap_cohen_interval` are the vectorised forms for the coefficients here.
    """
    from scipy.stats import bootstrap

    arr = _as_matrix(data)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    n = arr.shape[1]
    if n < 2:
        return (float("nan"), float("nan"))
    use_bca = method == "bca" and n <= _SCIPY_BCA_MAX_ITEMS
    if use_bca:
        import warnings

        with warnings.catch_warnings():
            # a degenerate resample distribution: scipy warns and gives NaN; percentile below
            warnings.simplefilter("ignore", RuntimeWarning)
            res = bootstrap(
                (np.arange(n),), lambda idx: statistic(arr[:, idx]), n_resamples=n_resamples,
                confidence_level=confidence, method="BCa", vectorized=False, rng=rng,
            )
        if np.isfinite(res.confidence_interval.low) and np.isfinite(res.confidence_interval.high):
            return (float(res.confidence_interval.low), float(res.confidence_interval.high))
    stats = np.array([statistic(arr[:, rng.integers(0, n, n)]) for _ in range(n_resamples)])
    stats = stats[np.isfinite(stats)]
    if len(stats) == 0:
        return (float("nan"), float("nan"))
    return _percentile(stats, confidence)


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


def _delta2_rows(level: Level, values: NDArray[np.float64], n_c: NDArray[np.float64]) -> NDArray[np.float64]:
    """Return δ² for each row of value totals ``n_c`` (rows × values): rows × values × values."""
    if level != "ordinal":
        return np.broadcast_to(_delta2(level, values, n_c[0]), (len(n_c), n_c.shape[1], n_c.shape[1]))
    k = n_c.shape[1]
    cum = np.concatenate([np.zeros((len(n_c), 1)), np.cumsum(n_c, axis=1)], axis=1)
    lo = np.minimum.outer(np.arange(k), np.arange(k))
    hi = np.maximum.outer(np.arange(k), np.arange(k))
    between = cum[:, hi + 1] - cum[:, lo]
    out: NDArray[np.float64] = (between - (n_c[:, :, None] + n_c[:, None, :]) / 2.0) ** 2
    return out


def _item_features(kind: str, counts: NDArray[np.float64]) -> NDArray[np.float64]:
    """Return per-item sums whose totals determine the statistic (items × features).

    raw: (P_u, 1); Fleiss: (P_u, 1, n_uc…, m_u); alpha: the item's contribution to the
    coincidence matrix, Σ_c,k n_uc (n_uk − [c = k]) / (m_u − 1) (Krippendorff 2011, C.).
    A resample (or a leave-one-out sample) is then a weighted sum of these rows.
    """
    m = counts.sum(axis=1)
    p_u = (counts * (counts - 1)).sum(axis=1) / (m * (m - 1))
    ones = np.ones((len(counts), 1))
    if kind == "raw":
        return np.column_stack([p_u, ones])
    if kind == "fleiss":
        return np.column_stack([p_u, ones, counts, m])
    k = counts.shape[1]
    contrib = (counts[:, :, None] * counts[:, None, :]).reshape(len(counts), k * k)
    contrib[:, np.arange(k) * (k + 1)] -= counts
    contrib /= (m - 1.0)[:, None]
    return contrib


def _stats_from_sums(kind: str, level: Level, values: NDArray[np.float64],
                     sums: NDArray[np.float64]) -> NDArray[np.float64]:
    """Return the statistic for each row of feature totals (see :func:`_item_features`)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "raw":
            raw: NDArray[np.float64] = sums[:, 0] / sums[:, 1]
            return raw
        if kind == "fleiss":
            k = len(values)
            p_bar = sums[:, 0] / sums[:, 1]
            p_e = ((sums[:, 2 : 2 + k] / sums[:, -1:]) ** 2).sum(axis=1)
            kappa: NDArray[np.float64] = (p_bar - p_e) / (1.0 - p_e)
            return np.where(p_e >= 1.0, np.nan, kappa)
        k = len(values)
        o = sums.reshape(-1, k, k)
        n_c = o.sum(axis=2)
        d2 = _delta2_rows(level, values, n_c)
        expected = np.einsum("ri,rij,rj->r", n_c, d2, n_c)
        observed = (o * d2).sum(axis=(1, 2))
        alpha: NDArray[np.float64] = 1.0 - (n_c.sum(axis=1) - 1.0) * observed / expected
        return np.where(expected == 0, np.nan, alpha)


def _jackknife(stat: Callable[[NDArray[np.float64]], NDArray[np.float64]],
               features: NDArray[np.float64], cells: int = 4_000_000) -> NDArray[np.float64]:
    """Return the leave-one-item-out values of a statistic of feature totals, in blocks."""
    total = features.sum(axis=0)
    block = max(1, cells // max(features.shape[1], 1))
    return np.concatenate(
        [stat(total[None, :] - features[lo : lo + block]) for lo in range(0, len(features), block)]
    )


def _interval(stat: Callable[[NDArray[np.float64]], NDArray[np.float64]], features: NDArray[np.float64],
              blocks: Any, confidence: float, method: CiMethod) -> tuple[float, float]:
    """Return the BCa (or percentile) interval of ``stat`` over weighted item resamples."""
    estimate = float(stat(features.sum(axis=0)[None, :])[0])
    resampled = np.concatenate([stat(w.astype(np.float64) @ features) for w in blocks])
    if method == "percentile":
        finite = resampled[np.isfinite(resampled)]
        return _percentile(finite, confidence) if len(finite) else (float("nan"), float("nan"))
    return bca_interval(estimate, resampled, _jackknife(stat, features), confidence)


def bootstrap_counts_interval(
    kind: Literal["raw", "fleiss", "alpha"],
    data: ArrayLike,
    *,
    level: Level = "nominal",
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int | np.random.Generator = 0,
    weights: list[NDArray[np.uint16]] | None = None,
    method: CiMethod = "bca",
) -> tuple[float, float]:
    """Return the BCa bootstrap interval of raw agreement, Fleiss' kappa or alpha over items.

    Items (with all their judgments) are the resampled clusters (Davison & Hinkley 1997, §3.8);
    the interval is Efron's (1987) BCa (:func:`bca_interval`), or the percentile interval with
    ``method="percentile"``. Without a Python loop over resamples: each statistic is a smooth
    function of per-item sums (:func:`_item_features`; for alpha, the per-item coincidence
    matrices of Krippendorff 2011 section C), so a block of resamples (vectors of how often
    each item was drawn) is one matrix product, and the jackknife (all totals minus one item)
    is one subtraction. ``weights`` (blocks of :func:`resample_counts` over the same items)
    lets several coefficients share one set of resamples.

    Only items with two or more judgments count (the others carry no agreement information).
    """
    arr = _as_matrix(data)
    values, counts = _unit_counts(arr)
    keep = counts.sum(axis=1) >= 2
    if keep.sum() < 2 or len(values) == 0:
        return (float("nan"), float("nan"))
    features = _item_features(kind, counts[keep])
    blocks = (
        (w[:, keep] for w in weights)
        if weights is not None
        else resample_counts(len(features), n_resamples, seed)
    )

    def stat(sums: NDArray[np.float64]) -> NDArray[np.float64]:
        return _stats_from_sums(kind, level, values, sums)

    return _interval(stat, features, blocks, confidence, method)


def _cohen_weights(k: int, weights: Weights) -> NDArray[np.float64]:
    pos = np.arange(k)
    if weights is None:
        return 1.0 - np.eye(k)
    if weights == "linear":
        return np.abs(np.subtract.outer(pos, pos)).astype(np.float64)
    if weights == "quadratic":
        return np.subtract.outer(pos, pos).astype(np.float64) ** 2
    raise UsageError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}")


def bootstrap_cohen_interval(
    a: ArrayLike,
    b: ArrayLike,
    weights: Weights = None,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int | np.random.Generator = 0,
    method: CiMethod = "bca",
    weights_blocks: list[NDArray[np.uint16]] | None = None,
) -> tuple[float, float]:
    """Return the BCa bootstrap interval of Cohen's kappa between two judges, resampling items.

    Items are the clusters (Davison & Hinkley 1997, §3.8); each item both judges labelled
    adds one to a cell of the k × k agreement table, so a resample's table is one matrix
    product and kappa (as :func:`cohen_kappa`) follows from it; Efron's (1987) BCa interval
    from those replicates and the leave-one-item-out jackknife. ``weights_blocks``
    (:func:`resample_counts` over the same items as ``a`` and ``b``) shares one set of
    resamples of all items between judge pairs; the items a pair did not both judge then
    carry no weight.
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise UsageError("bootstrap_cohen_interval needs two 1-d label arrays of the same length")
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    if len(x) < 2:
        return (float("nan"), float("nan"))
    blocks = (
        (w[:, keep] for w in weights_blocks)
        if weights_blocks is not None
        else resample_counts(len(x), n_resamples, seed)
    )
    labels = np.unique(np.concatenate([x, y]))
    k = len(labels)
    cell = np.searchsorted(labels, x) * k + np.searchsorted(labels, y)
    features = np.zeros((len(x), k * k))
    features[np.arange(len(x)), cell] = 1.0
    w = _cohen_weights(k, weights).ravel()

    def stat(sums: NDArray[np.float64]) -> NDArray[np.float64]:
        table = sums.reshape(-1, k, k)
        expected = (table.sum(axis=2)[:, :, None] * table.sum(axis=1)[:, None, :]).reshape(-1, k * k)
        expected /= sums.sum(axis=1)[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            denom = expected @ w
            kappa: NDArray[np.float64] = 1.0 - (sums @ w) / denom
        return np.where(denom == 0, np.nan, kappa)

    return _interval(stat, features, blocks, confidence, method)
