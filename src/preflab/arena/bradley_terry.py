"""Bradley–Terry maximum likelihood on aggregated battle counts, with named tie rules.

The fit never looks at single battles: :func:`aggregate_battles` turns a battle table into
counts per (model pair, outcome), so the cost of a fit grows with the number of model pairs
(at most ``K (K - 1) / 2``), not with the number of battles. Covariates (style control) are the
one case that needs one cell per battle; the same solver handles both.

Model (Bradley & Terry 1952): model ``i`` has strength ``θ_i`` and beats ``j`` with probability
``σ(θ_i - θ_j)``. Ties follow one named rule (:data:`TieRule`):

* ``"half"`` — a tie counts as half a win for each side. This is what Chatbot Arena does
  (Chiang et al. 2024, "Chatbot Arena", §5; its ``compute_mle_elo`` duplicates tie rows with
  one win each way at half weight).
* ``"drop"`` — ties carry no information and are removed.
* ``"rao_kupper"`` — Rao & Kupper (1967), "Ties in paired-comparison experiments: a
  generalization of the Bradley-Terry model", JASA 62: ``P(i > j) = π_i / (π_i + θ π_j)`` and
  ``P(tie) = (θ² - 1) π_i π_j / ((π_i + θ π_j)(θ π_i + π_j))`` with ``θ ≥ 1`` fitted.
* ``"davidson"`` — Davidson (1970), "On extending the Bradley-Terry model to accommodate ties
  in paired comparison experiments", JASA 65: ``P(i > j) ∝ π_i``, ``P(j > i) ∝ π_j`` and
  ``P(tie) ∝ ν √(π_i π_j)`` with ``ν > 0`` fitted.

``both_bad`` votes (Chatbot Arena's "tie (bothbad)") are ties unless ``both_bad="drop"``.

Ratings are reported on the Elo scale: ``rating = 400 / ln(10) · θ`` shifted so that the anchor
model has ``anchor_rating`` (or, without an anchor, so that the mean is 1000), the convention of
the Chatbot Arena leaderboard (``SCALE=400, BASE=10, INIT_RATING=1000``).

The optimizer is SciPy's ``trust-exact`` Newton method with the exact gradient and Hessian.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np
import polars as pl
import pyarrow as pa
from scipy.optimize import minimize
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from preflab.errors import InputError, UsageError

__all__ = [
    "ELO_BASE",
    "ELO_SCALE",
    "OUTCOMES",
    "BothBadRule",
    "PairCounts",
    "RatingFit",
    "TieRule",
    "aggregate_battles",
    "fit_bradley_terry",
    "fit_cells",
    "strengths_to_elo",
]

TieRule = Literal["half", "drop", "rao_kupper", "davidson"]
BothBadRule = Literal["tie", "drop"]
OUTCOMES: tuple[str, ...] = ("a", "b", "tie", "both_bad")
TIE_RULES: tuple[str, ...] = get_args(TieRule)
BOTH_BAD_RULES: tuple[str, ...] = get_args(BothBadRule)

#: Elo points per factor 10 in odds (Chatbot Arena's ``SCALE``).
ELO_SCALE = 400.0
#: Mean rating when no anchor is given (Chatbot Arena's ``INIT_RATING``).
ELO_BASE = 1000.0
#: Ridge used for bootstrap rounds that lose strong connectivity; the same strength as
#: Chatbot Arena's ``LogisticRegression(C=1e6)`` (penalty ``||w||² / (2C)``).
FALLBACK_L2 = 1e-6
#: Above this many (pair, outcome) cells, counts are gathered sparsely instead of densely.
_DENSE_CELLS = 1 << 22


@dataclass(frozen=True, slots=True)
class PairCounts:
    """Battle counts per unordered model pair.

    Attributes:
        models: model names; indices below refer to this tuple.
        i: index of the first model of each pair (``i < j``).
        j: index of the second model of each pair.
        counts: ``(pairs, 4)`` counts of ``[i wins, j wins, tie, both_bad]``.
    """

    models: tuple[str, ...]
    i: np.ndarray
    j: np.ndarray
    counts: np.ndarray

    @property
    def n_battles(self) -> int:
        """Return the number of battles counted."""
        return int(round(float(self.counts.sum())))

    def with_counts(self, counts: np.ndarray) -> PairCounts:
        """Return the same pairs with other counts (a bootstrap resample)."""
        return PairCounts(self.models, self.i, self.j, counts)

    def matrix(self, column: int) -> np.ndarray:
        """Return a ``K × K`` matrix of one outcome column, oriented row beats column.

        Column 0/1 give wins (row over column); 2/3 give ties / both-bad (symmetric).
        """
        k = len(self.models)
        out = np.zeros((k, k))
        if column == 0 or column == 1:
            out[self.i, self.j] = self.counts[:, column]
            out[self.j, self.i] = self.counts[:, 1 - column]
        else:
            out[self.i, self.j] = self.counts[:, column]
            out[self.j, self.i] = self.counts[:, column]
        return out


@dataclass(frozen=True, slots=True)
class RatingFit:
    """The maximum-likelihood fit.

    Attributes:
        models: model names, in the order of ``strengths`` and ``ratings``.
        strengths: ``θ`` on the natural-log odds scale (mean zero, or ridge-centred).
        ratings: Elo-scale ratings (anchored).
        tie_rule: the tie rule used.
        both_bad: how both-bad votes were counted.
        anchor: the anchor model, if any.
        anchor_rating: rating given to the anchor (or the mean without one).
        tie_parameter: Rao–Kupper ``θ`` or Davidson ``ν``; None for ``half`` / ``drop``.
        coefficients: covariate coefficients (style control), by name, in logit units.
        log_likelihood: log-likelihood at the optimum (without penalty).
        n_battles: battles that entered the fit (after the tie rule).
        iterations: Newton iterations.
        l2: ridge strength used.
    """

    models: tuple[str, ...]
    strengths: np.ndarray
    ratings: np.ndarray
    tie_rule: str
    both_bad: str
    anchor: str | None
    anchor_rating: float
    tie_parameter: float | None
    coefficients: dict[str, float] = field(default_factory=dict)
    log_likelihood: float = 0.0
    n_battles: int = 0
    iterations: int = 0
    l2: float = 0.0

    def rating_of(self, model: str) -> float:
        """Return the Elo rating of one model."""
        return float(self.ratings[self.models.index(model)])


def _as_polars(battles: pl.DataFrame | pa.Table) -> pl.DataFrame:
    if isinstance(battles, pa.Table):
        out = pl.from_arrow(battles)
        assert isinstance(out, pl.DataFrame)
        return out
    return battles


def aggregate_battles(
    battles: pl.DataFrame | pa.Table, models: tuple[str, ...] | None = None
) -> PairCounts:
    """Return counts per (model pair, outcome) from a battle table.

    Args:
        battles: table with ``model_a``, ``model_b`` and ``outcome`` (one of :data:`OUTCOMES`).
        models: model order to use; defaults to the sorted names found.

    Returns:
        The aggregated counts (pairs that never met are absent).

    Raises:
        InputError: a missing column, an unknown outcome, a null model, or a model battling
            itself (row numbers are 1-based table rows).

    >>> import polars as pl
    >>> c = aggregate_battles(pl.DataFrame({"model_a": ["x", "y"], "model_b": ["y", "x"],
    ...                                     "outcome": ["a", "tie"]}))
    >>> c.models, c.counts.tolist()
    (('x', 'y'), [[1.0, 0.0, 1.0, 0.0]])
    """
    df = _as_polars(battles)
    for column in ("model_a", "model_b", "outcome"):
        if column not in df.columns:
            raise InputError(
                f"the battle table has no {column!r} column (columns: {df.columns}); "
                "a battle table needs model_a, model_b and outcome",
                field=column,
            )
    df = df.select("model_a", "model_b", "outcome")
    for column in ("model_a", "model_b", "outcome"):
        nulls = df.get_column(column).is_null()
        if nulls.any():
            row = int(nulls.arg_true()[0]) + 1
            raise InputError(f"row {row}: {column} is empty", line=row, field=column)
    if models is None:
        names = set(df.get_column("model_a").unique().cast(pl.String).to_list())
        names |= set(df.get_column("model_b").unique().cast(pl.String).to_list())
        models = tuple(sorted(names))
    k = len(models)
    enum = pl.Enum(list(models))
    try:
        codes = df.select(
            pl.col("model_a").cast(pl.String).cast(enum).to_physical().cast(pl.Int32).alias("a"),
            pl.col("model_b").cast(pl.String).cast(enum).to_physical().cast(pl.Int32).alias("b"),
            pl.col("outcome")
            .cast(pl.String)
            .cast(pl.Enum(list(OUTCOMES)), strict=False)  # unknown → null, reported below
            .to_physical()
            .cast(pl.Int32)
            .alias("o"),
        )
    except pl.exceptions.InvalidOperationError as exc:
        raise InputError(
            f"the battle table names a model outside the given model list: {exc}",
            field="model_a",
        ) from exc
    bad = codes.get_column("o").is_null()
    if bad.any():
        row = int(bad.arg_true()[0])
        value = df.get_column("outcome")[row]
        raise InputError(
            f"row {row + 1}: outcome {value!r} is not one of {list(OUTCOMES)}",
            line=row + 1,
            field="outcome",
            value=value,
        )
    same = codes.get_column("a") == codes.get_column("b")
    if same.any():
        row = int(same.arg_true()[0])
        name = models[int(codes.get_column("a")[row])]
        raise InputError(
            f"row {row + 1}: model {name!r} battles itself; drop such rows "
            "(apply_hygiene does) before fitting",
            line=row + 1,
            field="model_b",
            value=name,
        )
    a, b, o = pl.col("a"), pl.col("b"), pl.col("o")
    if k * k * 4 >= 2**31:
        a, b, o = a.cast(pl.Int64), b.cast(pl.Int64), o.cast(pl.Int64)
    # pairs are stored as (lower index, higher index); when a model_a has the higher index, a
    # win of "a" is a win of the pair's second model
    flipped = pl.when((a > b) & (o < 2)).then(1 - o).otherwise(o)
    cell = (pl.min_horizontal(a, b) * k + pl.max_horizontal(a, b)) * 4 + flipped
    cells = codes.lazy().select(cell.alias("c")).collect().get_column("c").to_numpy()
    del codes
    if k * k * 4 <= _DENSE_CELLS:
        flat = np.bincount(cells, minlength=k * k * 4).reshape(k * k, 4).astype(np.float64)
        present = np.flatnonzero(flat.sum(axis=1) > 0)
        table = flat[present]
    else:  # many models: count only the cells that occur
        values, freq = np.unique(cells, return_counts=True)
        present, slot = np.unique(values // 4, return_inverse=True)
        table = np.zeros((len(present), 4))
        np.add.at(table, (slot, values % 4), freq)
    return PairCounts(
        models=models,
        i=(present // k).astype(np.int64),
        j=(present % k).astype(np.int64),
        counts=table,
    )


def _cell_terms(
    rule: str, d: np.ndarray, w: np.ndarray, lo: np.ndarray, t: np.ndarray, tau: float
) -> tuple[np.ndarray, ...]:
    """Return per-cell ℓ, ℓ_d, ℓ_dd, ℓ_τ, ℓ_dτ, ℓ_ττ for the difference ``d = θ_i - θ_j``."""
    if rule in ("half", "drop"):
        ww = w + 0.5 * t if rule == "half" else w
        ll = lo + 0.5 * t if rule == "half" else lo
        n = ww + ll
        p = 0.5 * (1.0 + np.tanh(0.5 * d))  # σ(d) without overflow
        log_p = -np.logaddexp(0.0, -d)  # log σ(d); log σ(-d) = log σ(d) - d
        loglik = n * log_p - ll * d
        zero = np.zeros_like(d)
        return loglik, ww - n * p, -n * p * (1.0 - p), zero, zero, zero
    n = w + lo + t
    if rule == "davidson":
        # a softmax over the logits (d/2, -d/2, log ν)
        z = np.stack([0.5 * d, -0.5 * d, np.full_like(d, tau)])
        log_den = np.logaddexp(np.logaddexp(z[0], z[1]), z[2])
        p1, p2, p3 = np.exp(z - log_den)
        loglik = w * z[0] + lo * z[1] + t * tau - n * log_den
        g_d = 0.5 * (w - lo) - 0.5 * n * (p1 - p2)
        g_t = t - n * p3
        h_dd = -n * (0.25 * (p1 + p2) - 0.25 * (p1 - p2) ** 2)
        h_dt = 0.5 * n * p3 * (p1 - p2)
        h_tt = -n * p3 * (1.0 - p3)
        return loglik, g_d, h_dd, g_t, h_dt, h_tt
    # Rao–Kupper with κ = log θ = exp(τ) > 0: P(i) = σ(d - κ), P(j) = σ(-d - κ) and
    # P(tie) = (e^{2κ} - 1) σ(d - κ) σ(-d - κ).
    kappa = math.exp(tau)
    a = d - kappa
    b = -d - kappa
    big_w = w + t
    big_l = lo + t
    sig_a = 0.5 * (1.0 + np.tanh(0.5 * a))
    sig_b = 0.5 * (1.0 + np.tanh(0.5 * b))
    qa, qb = 1.0 - sig_a, 1.0 - sig_b
    sa, sb = sig_a * qa, sig_b * qb
    em = -math.expm1(-2.0 * kappa)  # 1 - e^{-2κ}
    log_tie_const = 2.0 * kappa + math.log(em)
    g1 = 2.0 / em
    g2 = -4.0 * math.exp(-2.0 * kappa) / em**2
    loglik = -big_w * np.logaddexp(0.0, -a) - big_l * np.logaddexp(0.0, -b) + t * log_tie_const
    g_d = big_w * qa - big_l * qb
    g_k = -big_w * qa - big_l * qb + t * g1
    h_dd = -big_w * sa - big_l * sb
    h_dk = big_w * sa - big_l * sb
    h_kk = -big_w * sa - big_l * sb + t * g2
    return loglik, g_d, h_dd, kappa * g_k, kappa * h_dk, kappa * g_k + kappa**2 * h_kk


class _Objective:
    """Negative penalized log-likelihood over cells, with exact gradient and Hessian."""

    def __init__(
        self,
        k: int,
        i: np.ndarray,
        j: np.ndarray,
        counts: np.ndarray,
        rule: str,
        covariates: np.ndarray | None,
        l2: float,
    ) -> None:
        self.k, self.i, self.j, self.rule, self.l2 = k, i, j, rule, l2
        self.w, self.lo, self.t = counts[:, 0], counts[:, 1], counts[:, 2]
        self.x = covariates
        self.p = 0 if covariates is None else covariates.shape[1]
        self.has_tau = rule in ("rao_kupper", "davidson")
        self.size = k + self.p + (1 if self.has_tau else 0)
        self._key: bytes | None = None
        self._cache: tuple[float, np.ndarray, np.ndarray] | None = None

    def split(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        theta = x[: self.k]
        gamma = x[self.k : self.k + self.p]
        tau = float(x[-1]) if self.has_tau else 0.0
        return theta, gamma, tau

    def evaluate(self, x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        key = x.tobytes()
        if key == self._key and self._cache is not None:
            return self._cache
        k, i, j = self.k, self.i, self.j
        theta, gamma, tau = self.split(x)
        d = theta[i] - theta[j]
        if self.x is not None:
            d = d + self.x @ gamma
        ll, g_d, h_dd, g_t, h_dt, h_tt = _cell_terms(self.rule, d, self.w, self.lo, self.t, tau)
        grad = np.zeros(self.size)
        grad[:k] = np.bincount(i, g_d, k) - np.bincount(j, g_d, k)
        hess = np.zeros((self.size, self.size))
        diag = np.bincount(i, h_dd, k) + np.bincount(j, h_dd, k)
        off = np.bincount(i * k + j, h_dd, k * k).reshape(k, k)
        hess[:k, :k] = np.diag(diag) - off - off.T
        if self.x is not None:
            p = self.p
            grad[k : k + p] = self.x.T @ g_d
            weighted = self.x * h_dd[:, None]
            for c in range(p):
                col = weighted[:, c]
                hess[:k, k + c] = np.bincount(i, col, k) - np.bincount(j, col, k)
            hess[k : k + p, :k] = hess[:k, k : k + p].T
            hess[k : k + p, k : k + p] = self.x.T @ weighted
        if self.has_tau:
            grad[-1] = g_t.sum()
            hess[:k, -1] = np.bincount(i, h_dt, k) - np.bincount(j, h_dt, k)
            if self.x is not None:
                hess[k : k + self.p, -1] = self.x.T @ h_dt
            hess[-1, :-1] = hess[:-1, -1]
            hess[-1, -1] = h_tt.sum()
        value = -float(ll.sum())
        grad = -grad
        hess = -hess
        if self.l2 > 0:
            value += 0.5 * self.l2 * float(theta @ theta)
            grad[:k] += self.l2 * theta
            hess[np.arange(k), np.arange(k)] += self.l2
        else:
            # the likelihood is unchanged by adding a constant to every θ; this gauge term
            # pins Σθ = 0 at the optimum without moving it and makes the Hessian definite
            total = float(theta.sum())
            value += 0.5 * total * total
            grad[:k] += total
            hess[:k, :k] += 1.0
        self._key, self._cache = key, (value, grad, hess)
        return value, grad, hess

    def fun(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad, _ = self.evaluate(x)
        return value, grad

    def hess(self, x: np.ndarray) -> np.ndarray:
        return self.evaluate(x)[2]

    def log_likelihood(self, x: np.ndarray) -> float:
        theta, gamma, tau = self.split(x)
        d = theta[self.i] - theta[self.j]
        if self.x is not None:
            d = d + self.x @ gamma
        return float(_cell_terms(self.rule, d, self.w, self.lo, self.t, tau)[0].sum())


def _check_rules(ties: str, both_bad: str) -> None:
    if ties not in TIE_RULES:
        raise UsageError(f"ties must be one of {list(TIE_RULES)}, got {ties!r}", field="ties")
    if both_bad not in BOTH_BAD_RULES:
        raise UsageError(
            f"both_bad must be one of {list(BOTH_BAD_RULES)}, got {both_bad!r}", field="both_bad"
        )


def _effective_counts(counts: np.ndarray, ties: str, both_bad: str) -> np.ndarray:
    """Return ``(cells, 3)`` counts ``[wins, losses, ties]`` after the both-bad rule."""
    out = counts[:, :3].astype(np.float64, copy=True)
    if both_bad == "tie":
        out[:, 2] += counts[:, 3]
    if ties == "drop":
        out[:, 2] = 0.0
    return out


def _is_strongly_connected(k: int, i: np.ndarray, j: np.ndarray, eff: np.ndarray) -> bool:
    """Ford's (1957) condition for a finite MLE: the "beat or tied" graph is strongly connected."""
    fwd = (eff[:, 0] + eff[:, 2]) > 0
    back = (eff[:, 1] + eff[:, 2]) > 0
    rows = np.concatenate([i[fwd], j[back]])
    cols = np.concatenate([j[fwd], i[back]])
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(k, k))
    n_comp, _ = connected_components(graph, directed=True, connection="strong")
    return bool(n_comp == 1)


def _check_connected(models: tuple[str, ...], i: np.ndarray, j: np.ndarray) -> None:
    k = len(models)
    graph = coo_matrix((np.ones(len(i)), (i, j)), shape=(k, k))
    n_comp, labels = connected_components(graph, directed=False)
    if n_comp > 1:
        groups = [[models[m] for m in np.flatnonzero(labels == c)][:5] for c in range(n_comp)]
        raise InputError(
            f"the models form {n_comp} groups that never battled each other ({groups}); "
            "ratings across groups are not comparable. Collect battles between the groups "
            "or rate each group on its own",
            field="model_a",
        )


def strengths_to_elo(
    strengths: np.ndarray,
    models: tuple[str, ...],
    anchor: str | None = None,
    anchor_rating: float = ELO_BASE,
) -> np.ndarray:
    """Return Elo-scale ratings: ``400/ln 10 · θ``, shifted to put ``anchor`` at ``anchor_rating``.

    Without an anchor the mean rating is ``anchor_rating``.

    >>> strengths_to_elo(np.array([0.0, math.log(10)]), ("a", "b"), anchor="a").tolist()
    [1000.0, 1400.0]
    """
    elo: np.ndarray = strengths * (ELO_SCALE / math.log(10.0))
    shift = float(elo.mean()) if anchor is None else float(elo[models.index(anchor)])
    return elo - shift + anchor_rating


def fit_cells(
    models: tuple[str, ...],
    i: np.ndarray,
    j: np.ndarray,
    counts: np.ndarray,
    *,
    ties: TieRule = "half",
    both_bad: BothBadRule = "tie",
    covariates: np.ndarray | None = None,
    covariate_names: tuple[str, ...] = (),
    anchor: str | None = None,
    anchor_rating: float = ELO_BASE,
    l2: float = 0.0,
    start: np.ndarray | None = None,
    check: bool = True,
) -> tuple[RatingFit, np.ndarray]:
    """Fit Bradley–Terry on cells (model pairs, or single battles when covariates are given).

    Args:
        models: model names.
        i: first model index of each cell.
        j: second model index of each cell.
        counts: ``(cells, 4)`` counts ``[i wins, j wins, tie, both_bad]`` (weights allowed).
        ties: the tie rule.
        both_bad: count both-bad votes as ties or drop them.
        covariates: optional ``(cells, p)`` covariates entering ``d = θ_i - θ_j + xᵀγ``.
        covariate_names: names of the covariate columns.
        anchor: model whose rating is fixed to ``anchor_rating``.
        anchor_rating: the anchor's rating (or the mean rating without an anchor).
        l2: ridge ``l2/2 · Σθ²``; 0 means the plain maximum-likelihood estimate.
        start: starting parameter vector (a warm start, as the bootstrap does).
        check: verify connectivity and the existence of the estimate.

    Returns:
        The fit and the raw parameter vector (for warm starts).

    Raises:
        InputError: models in separate groups, a maximum-likelihood estimate that does not
            exist (a model that never lost or never won), or a tie-aware rule without ties.
        UsageError: unknown rule names or anchor.
    """
    _check_rules(ties, both_bad)
    k = len(models)
    if anchor is not None and anchor not in models:
        raise UsageError(
            f"anchor model {anchor!r} has no battles; known models: {list(models)[:10]}",
            field="anchor",
            value=anchor,
        )
    eff = _effective_counts(counts, ties, both_bad)
    if check:
        if k < 2:
            raise InputError("a leaderboard needs battles between at least two models")
        _check_connected(models, i, j)
        if l2 == 0 and not _is_strongly_connected(k, i, j, eff):
            wins = np.bincount(i, eff[:, 0], k) + np.bincount(j, eff[:, 1], k)
            losses = np.bincount(i, eff[:, 1], k) + np.bincount(j, eff[:, 0], k)
            ties_ = np.bincount(i, eff[:, 2], k) + np.bincount(j, eff[:, 2], k)
            never_lost = [models[m] for m in range(k) if losses[m] + ties_[m] == 0]
            never_won = [models[m] for m in range(k) if wins[m] + ties_[m] == 0]
            raise InputError(
                "the maximum-likelihood ratings do not exist: some models are never beaten "
                f"by the rest ({never_lost[:5] or 'a group of models'}) or never beat them "
                f"({never_won[:5] or 'a group of models'}), so their ratings run to infinity. "
                f"Add a weak prior (l2={FALLBACK_L2}, as Chatbot Arena's C=1e6) or collect "
                "more battles",
                field="outcome",
            )
        if ties in ("rao_kupper", "davidson") and eff[:, 2].sum() == 0:
            raise InputError(
                f"the {ties} tie rule estimates how often ties happen, but there are no ties; "
                "use ties='drop' or 'half'",
                field="outcome",
            )
    p = 0 if covariates is None else covariates.shape[1]
    objective = _Objective(k, i, j, eff, ties, covariates, l2)
    if start is None:
        start = np.zeros(objective.size)
        if ties == "davidson":
            start[-1] = 0.0  # ν = 1
        elif ties == "rao_kupper":
            start[-1] = math.log(0.5)  # θ = e^{0.5}
    n_total = float(eff.sum())
    result = minimize(
        objective.fun,
        start,
        jac=True,
        hess=objective.hess,
        method="trust-exact",
        options={"gtol": 1e-10 * max(1.0, n_total), "maxiter": 500},
    )
    x = np.asarray(result.x, dtype=np.float64)
    # trust-exact can stop with "bad approximation" when the gradient is at rounding level
    # for very large counts; accept that, refuse a fit that really did not converge
    if check and not result.success and float(np.abs(result.jac).max()) > 1e-8 * max(1.0, n_total):
        raise InputError(
            f"the {ties} fit did not converge ({result.message}); the data may be too sparse "
            f"for this rule. Try ties='half' or a weak prior l2={FALLBACK_L2}",
            field="outcome",
        )
    theta, gamma, tau = objective.split(x)
    if ties == "davidson":
        tie_parameter: float | None = math.exp(tau)
    elif ties == "rao_kupper":
        tie_parameter = math.exp(math.exp(tau))
    else:
        tie_parameter = None
    centred = theta - theta.mean()
    fit = RatingFit(
        models=models,
        strengths=centred,
        ratings=strengths_to_elo(centred, models, anchor, anchor_rating),
        tie_rule=ties,
        both_bad=both_bad,
        anchor=anchor,
        anchor_rating=anchor_rating,
        tie_parameter=tie_parameter,
        coefficients={name: float(g) for name, g in zip(covariate_names, gamma, strict=True)}
        if p
        else {},
        log_likelihood=objective.log_likelihood(x),
        n_battles=int(round(n_total)),
        iterations=int(result.nit),
        l2=l2,
    )
    return fit, x


def fit_bradley_terry(
    battles: pl.DataFrame | pa.Table | PairCounts,
    *,
    ties: TieRule = "half",
    both_bad: BothBadRule = "tie",
    anchor: str | None = None,
    anchor_rating: float = ELO_BASE,
    l2: float = 0.0,
) -> RatingFit:
    """Return Bradley–Terry ratings (Elo scale) fitted on aggregated counts.

    Args:
        battles: a battle table (``model_a``, ``model_b``, ``outcome``) or its
            :class:`PairCounts`.
        ties: the tie rule (see the module docstring for the papers).
        both_bad: count both-bad votes as ties (``"tie"``, as Chatbot Arena) or drop them.
        anchor: model fixed at ``anchor_rating``; without it the mean rating is
            ``anchor_rating``.
        anchor_rating: the anchor's rating.
        l2: ridge strength on the strengths (0 = maximum likelihood).

    Returns:
        The fit.

    Raises:
        InputError: bad battle rows, or data where the ratings are not identified.
        UsageError: an unknown rule or anchor.

    >>> import polars as pl
    >>> battles = pl.DataFrame({"model_a": ["x"] * 4, "model_b": ["y"] * 4,
    ...                         "outcome": ["a", "a", "b", "tie"]})
    >>> fit = fit_bradley_terry(battles, anchor="y")
    >>> round(fit.rating_of("x") - fit.rating_of("y"), 1)  # 2.5 wins to 1.5: 400·log10(5/3)
    88.7
    """
    counts = battles if isinstance(battles, PairCounts) else aggregate_battles(battles)
    fit, _ = fit_cells(
        counts.models,
        counts.i,
        counts.j,
        counts.counts,
        ties=ties,
        both_bad=both_bad,
        anchor=anchor,
        anchor_rating=anchor_rating,
        l2=l2,
    )
    return fit
