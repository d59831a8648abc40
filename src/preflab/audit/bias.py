"""Bias checks: position, length, format, common prefix and self-identification.

Pair checks take a table with ``chosen`` and ``rejected`` text columns (``PAIR_SCHEMA``);
position checks take judgments (``JUDGMENT_SCHEMA``), whose ``response_ids`` are in the order
the responses were shown.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pyarrow as pa
from scipy.stats import binomtest

from preflab.errors import InputError, UsageError

if TYPE_CHECKING:
    from preflab.audit.tokens import TokenCounter

__all__ = [
    "FORMAT_PATTERNS",
    "IDENTITY_PATTERN",
    "ORDER_UNKNOWN_FLAG",
    "TOKEN_PATTERN",
    "common_prefix_lengths",
    "format_bias",
    "identity_mentions",
    "length_bias",
    "position_bias",
    "prefix_bias",
    "shown_order_known",
]

from preflab.records import ORDER_UNKNOWN_FLAG  # noqa: E402  (set by the importers)

TOKEN_PATTERN = r"\w+|[^\w\s]"
"""Default token count: words and punctuation marks (a tokenizer-free proxy; pass your own
``tokenize`` to :func:`length_bias` for model tokens)."""

# The style features Chatbot Arena's style control counts (LMSYS, "Does style matter?",
# 2024-08-28): headers, bold, lists; plus code blocks and emojis.
FORMAT_PATTERNS: dict[str, str] = {
    "list": r"(?m)^[ \t]*(?:[-*+]|\d+[.)])[ \t]+\S",
    "header": r"(?m)^[ \t]*#{1,6}[ \t]+\S",
    "bold": r"\*\*[^*\n]+\*\*|__[^_\n]+__",
    "code_block": r"```",
    "emoji": "[\U0001f300-\U0001faff\u2600-\u27bf\U0001f000-\U0001f2ff]",
}

IDENTITY_PATTERN = (
    r"(?i)\b(?:as an? (?:ai|artificial intelligence)(?: language)?(?: model| assistant)?"
    r"|as a (?:large )?language model"
    r"|i(?: am|'m|’m) (?:chatgpt|claude|gpt-?\d\S*|gemini|bard|llama|an ai\b|a language model"
    r"|an artificial intelligence)"
    r"|(?:developed|created|made|trained) by (?:openai|anthropic|google|meta|mistral))"
)


def _frame(table: pa.Table | pl.DataFrame, need: tuple[str, ...]) -> pl.DataFrame:
    df = table if isinstance(table, pl.DataFrame) else pl.from_arrow(table)
    assert isinstance(df, pl.DataFrame)
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise InputError(
            f"the table has no column {missing[0]!r} (columns: {', '.join(df.columns)})",
            field=missing[0],
        )
    return df


def _proportion(successes: int, trials: int) -> dict[str, Any]:
    """Share with an exact binomial test against 0.5 and a Wilson 95% interval."""
    if trials == 0:
        return {"successes": 0, "trials": 0, "share": None, "ci95": None, "p_value": None}
    test = binomtest(successes, trials, 0.5)
    ci = test.proportion_ci(0.95, method="wilson")
    return {
        "successes": successes,
        "trials": trials,
        "share": successes / trials,
        "ci95": [float(ci.low), float(ci.high)],
        "p_value": float(test.pvalue),
    }


def shown_order_known(judgments: pa.Table | pl.DataFrame) -> pl.DataFrame:
    """Return the judgments whose ``response_ids`` order is the order shown on screen.

    Drops those flagged :data:`ORDER_UNKNOWN_FLAG` (HH-RLHF, SHP… list chosen first).
    """
    df = judgments if isinstance(judgments, pl.DataFrame) else pl.from_arrow(judgments)
    assert isinstance(df, pl.DataFrame)
    if "flags" not in df.columns:
        return df
    return df.filter(~pl.col("flags").fill_null([]).list.contains(ORDER_UNKNOWN_FLAG))


def position_bias(judgments: pa.Table | pl.DataFrame, *, alpha: float = 0.05) -> dict[str, Any]:
    """Return how often the first-shown response wins, overall, per judge and per batch.

    Ties and both-bad judgments are left out, and so are judgments flagged
    :data:`ORDER_UNKNOWN_FLAG` (their ``response_ids`` order is not the order shown; counted in
    ``order_unknown``). Binomial test against 0.5 with a Wilson interval; a group is
    ``biased`` when p < ``alpha``.
    """
    df = _frame(judgments, ("kind", "response_ids", "pairwise", "judge_id"))
    known = shown_order_known(df)
    order_unknown = df.height - known.height
    df = known
    df = df.filter(pl.col("kind") == "pairwise").with_columns(
        pl.col("pairwise").struct.field("preferred").alias("_pref")
    )
    decided = df.filter(pl.col("_pref").is_not_null()).with_columns(
        (pl.col("_pref") == pl.col("response_ids").list.get(0)).alias("first")
    )
    out: dict[str, Any] = {
        "overall": _proportion(int(decided["first"].sum()), decided.height),
        "ties": int(df.height - decided.height),
        "order_unknown": int(order_unknown),
    }
    for col in ("judge_id", "batch_id"):
        if col not in decided.columns:
            continue
        groups = []
        agg = decided.group_by(col).agg(pl.col("first").sum().alias("k"), pl.len().alias("n"))
        for row in agg.sort(col, nulls_last=True).iter_rows(named=True):
            p = _proportion(int(row["k"]), int(row["n"]))
            p[col] = row[col]
            p["biased"] = p["p_value"] is not None and p["p_value"] < alpha
            groups.append(p)
        out[f"by_{col.removesuffix('_id')}"] = groups
    return out


def _lengths(df: pl.DataFrame, pattern: str, tokenize: Callable[[str], Any] | None) -> pl.DataFrame:
    if tokenize is not None:
        return pl.DataFrame(
            {
                "c": [len(tokenize(t)) for t in df["chosen"].to_list()],
                "r": [len(tokenize(t)) for t in df["rejected"].to_list()],
            }
        )
    return df.select(
        pl.col("chosen").str.count_matches(pattern).alias("c"),
        pl.col("rejected").str.count_matches(pattern).alias("r"),
    )


def _length_summary(lens: pl.DataFrame) -> dict[str, Any]:
    c = lens["c"].to_numpy()
    r = lens["r"].to_numpy()
    n = len(c)
    return {
        "pairs": n,
        "chosen_longer": int((c > r).sum()),
        "chosen_shorter": int((c < r).sum()),
        "equal": int((c == r).sum()),
        "share_chosen_longer": float((c > r).mean()) if n else None,
        "share_chosen_shorter": float((c < r).mean()) if n else None,
        "share_equal": float((c == r).mean()) if n else None,
        "chosen_mean": float(c.mean()) if n else None,
        "chosen_median": float(np.median(c)) if n else None,
        "rejected_mean": float(r.mean()) if n else None,
        "rejected_median": float(np.median(r)) if n else None,
        "longer_wins": _proportion(int((c > r).sum()), int((c != r).sum())),
    }


def _expit(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


def _length_controlled(c: np.ndarray, r: np.ndarray, alpha: float = 0.05) -> dict[str, Any]:
    """Logistic model of "the longer response is chosen" on the size of the length difference.

    The length-controlled idea of AlpacaEval (Dubois et al. 2024, "Length-Controlled
    AlpacaEval", eq. 2 and §3): model the preference with a length term ``tanh(|Δ| / σ(Δ))``
    and read the preference off where that term is 0. Over the pairs of unequal length, with
    ``y`` = 1 when the chosen response is the longer one::

        logit P(longer chosen) = β₀ + β₁ · tanh(|Δ| / σ(Δ))

    ``β₁`` (the length coefficient) says whether the longer answer wins more the larger the
    difference is; ``expit(β₀)`` is the length-controlled preference rate, the share of the
    longer answer winning when the two are (almost) equally long — 0.5 without a length
    preference, above 0.5 when the longer answer wins by its being longer at all. Unlike the
    intercept of a randomly oriented model (0 by construction), both can show a bias; both
    come with Wald 95% intervals from statsmodels' ``Logit``.
    """
    # the two names only: statsmodels.api imports pandas, formulas, datasets and plots too
    # (about 1 s of `preflab audit`'s start; issue 15)
    from statsmodels.discrete.discrete_model import Logit
    from statsmodels.tools.tools import add_constant

    c = np.asarray(c, dtype=np.float64)
    r = np.asarray(r, dtype=np.float64)
    unequal = c != r
    delta = np.abs(c - r)[unequal]
    sd = float((c - r).std()) if len(c) else 0.0
    if unequal.sum() < 10 or sd == 0:
        return {"fitted": False, "reason": "fewer than 10 pairs of unequal length"}
    import warnings

    from statsmodels.tools.sm_exceptions import (
        ConvergenceWarning,
        PerfectSeparationError,
        PerfectSeparationWarning,
    )

    y = (c > r)[unequal].astype(np.float64)
    x = np.tanh(delta / sd)
    if y.min() == y.max():
        return {"fitted": False, "reason": "the longer response is always (or never) the chosen one"}
    if np.ptp(x) == 0:
        return {"fitted": False, "reason": "every pair has the same length difference"}
    try:
        with warnings.catch_warnings(), np.errstate(over="ignore"):
            # separation or no convergence: no finite estimate, reported as not fitted
            warnings.simplefilter("error", PerfectSeparationWarning)
            warnings.simplefilter("error", ConvergenceWarning)
            fit = Logit(y, add_constant(x, has_constant="add")).fit(disp=0)
    except (np.linalg.LinAlgError, PerfectSeparationError, PerfectSeparationWarning,
            ConvergenceWarning):
        return {"fitted": False, "reason": "the length model does not converge (separated data)"}
    ci = fit.conf_int(alpha)
    (b0, b1), (p0, p1) = (float(v) for v in fit.params), (float(v) for v in fit.pvalues)
    slope_ci = [float(ci[1][0]), float(ci[1][1])]
    rate_ci = [_expit(float(ci[0][0])), _expit(float(ci[0][1]))]
    return {
        "fitted": True,
        "model": "logit P(longer chosen) = b0 + b1 * tanh(|Δ| / sd(Δ))",
        "pairs": int(unequal.sum()),
        "sd_length_difference": sd,
        "slope": float(b1),
        "slope_ci95": slope_ci,
        "slope_p_value": p1,
        "intercept": float(b0),
        "intercept_p_value": p0,
        "length_controlled_p_longer_chosen": _expit(b0),
        "length_controlled_ci95": rate_ci,
        "p_longer_by_1sd_chosen": _expit(b0 + b1 * float(np.tanh(1.0))),
        "raw_p_longer_chosen": float(y.mean()),
        "biased": bool(p1 < alpha or p0 < alpha),
    }


def length_bias(
    pairs: pa.Table | pl.DataFrame,
    *,
    tokenize: Callable[[str], Any] | None = None,
    tokenizer: TokenCounter | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Return chosen-vs-rejected length figures in words and tokens, with a length model.

    Words are whitespace-separated runs (``str.split()`` of the reference notebook); tokens
    come from ``tokenizer`` (a :class:`~preflab.audit.tokens.TokenCounter`, batched), from
    ``tokenize`` (one text → its tokens, e.g. a Hugging Face tokenizer's ``tokenize``) or
    default to :data:`TOKEN_PATTERN`; ``tokens["unit"]`` says which. ``seed`` is accepted
    for callers of the earlier, randomly oriented length model and no longer used: the
    length model (:func:`_length_controlled`) is deterministic.

    Returns:
        ``words`` and ``tokens`` summaries (longer/shorter/equal counts and shares,
        mean/median), ``length_model`` (the length-controlled logistic fit on tokens: length
        coefficient and length-controlled rate, each with a 95% interval) and
        per-pair lengths under ``values`` (for plots).
    """
    df = _frame(pairs, ("chosen", "rejected"))
    words = _lengths(df, r"\S+", None)
    if tokenizer is not None:
        tokens = pl.DataFrame({"c": tokenizer.count(df["chosen"].to_list()),
                               "r": tokenizer.count(df["rejected"].to_list())}, schema={"c": pl.Int64, "r": pl.Int64})
        unit = f"tokenizer {tokenizer.name}"
    else:
        tokens = _lengths(df, TOKEN_PATTERN, tokenize)
        unit = "tokenize function" if tokenize is not None else f"regex {TOKEN_PATTERN}"
    diff = words["c"].cast(pl.Int64).to_numpy() - words["r"].cast(pl.Int64).to_numpy()
    order = np.argsort(diff, kind="stable")
    return {
        "examples": {
            "chosen_much_shorter": [int(i) for i in order[:5] if diff[i] < 0],
            "chosen_much_longer": [int(i) for i in order[::-1][:5] if diff[i] > 0],
        },
        "words": _length_summary(words),
        "tokens": {"unit": unit, **_length_summary(tokens)},
        "length_model": _length_controlled(tokens["c"].to_numpy(), tokens["r"].to_numpy()),
        "values": {"chosen_words": words["c"].to_list(), "rejected_words": words["r"].to_list(),
                   "chosen_tokens": tokens["c"].to_list(), "rejected_tokens": tokens["r"].to_list()},
    }


def format_bias(pairs: pa.Table | pl.DataFrame) -> dict[str, Any]:
    """Return, per style feature, how often chosen and rejected use it, and who wins.

    ``when_one_has``: among pairs where exactly one response has the feature, the share
    where it is the chosen one (binomial test against 0.5).
    """
    df = _frame(pairs, ("chosen", "rejected"))
    exprs = []
    for name, pat in FORMAT_PATTERNS.items():
        exprs += [
            pl.col("chosen").str.count_matches(pat).alias(f"c_{name}"),
            pl.col("rejected").str.count_matches(pat).alias(f"r_{name}"),
        ]
    counts = df.select(exprs)
    out: dict[str, Any] = {}
    for name in FORMAT_PATTERNS:
        c = counts[f"c_{name}"].to_numpy()
        r = counts[f"r_{name}"].to_numpy()
        mask_c, mask_r = (c > 0) & (r == 0), (r > 0) & (c == 0)
        only_c, only_r = int(mask_c.sum()), int(mask_r.sum())
        out[name] = {
            "chosen_share": float((c > 0).mean()) if len(c) else None,
            "rejected_share": float((r > 0).mean()) if len(r) else None,
            "chosen_mean_count": float(c.mean()) if len(c) else None,
            "rejected_mean_count": float(r.mean()) if len(r) else None,
            "when_one_has": _proportion(only_c, only_c + only_r),
            "examples": [int(i) for i in np.flatnonzero(mask_c)[:5]] + [int(i) for i in np.flatnonzero(mask_r)[:5]],
        }
    return out


def common_prefix_lengths(a: list[str] | pl.Series, b: list[str] | pl.Series) -> np.ndarray:
    """Return the length (characters) of the common prefix of each ``a[i]``, ``b[i]``.

    A binary search run on all pairs at once: each step compares the ``mid``-character prefixes
    of every open pair in one Polars expression, so there are about log2(longest) steps and no
    Python loop per pair. Nulls count as empty strings.

    >>> common_prefix_lengths(["abcd", "x"], ["abXd", "y"]).tolist()
    [2, 0]
    """
    if len(a) != len(b):
        raise UsageError(f"a has {len(a)} texts but b has {len(b)}; give one b per a")
    df = pl.DataFrame({"a": pl.Series(a, dtype=pl.String), "b": pl.Series(b, dtype=pl.String)}).fill_null("")
    hi = np.minimum(df["a"].str.len_chars().to_numpy(), df["b"].str.len_chars().to_numpy()).astype(np.int64)
    lo = np.zeros_like(hi)
    while True:  # invariant: a[:lo] == b[:lo] and the common prefix is at most hi
        open_ = lo < hi
        if not open_.any():
            return lo
        mid = np.where(open_, (lo + hi + 1) // 2, lo)
        cut = pl.Series("mid", mid)
        same = df.select(pl.col("a").str.slice(0, cut) == pl.col("b").str.slice(0, cut)).to_series().to_numpy()
        lo = np.where(open_ & same, mid, lo)
        hi = np.where(open_ & ~same, mid - 1, hi)


PREFIX_MIN_CHARS = 20
"""Pairs whose shorter response has fewer characters are not checked for a shared prefix: a
one-word answer ("No.", "Sure") is a prefix of many longer answers without the pair differing
"only at the end"."""


def prefix_bias(
    pairs: pa.Table | pl.DataFrame, *, share: float = 0.5, min_chars: int = PREFIX_MIN_CHARS
) -> dict[str, Any]:
    """Return the pairs whose responses share a long common prefix (they differ only at the end).

    The "prefix" bias of shared/reference/001: a pair whose chosen and rejected responses
    begin with the same ``share`` (or more) of the shorter one mostly teaches the ending. Pairs
    whose shorter response has fewer than ``min_chars`` characters, and pairs with identical
    responses (the similarity check reports those), are skipped and counted.

    Returns:
        ``shared_prefix_pairs`` (pairs at or above ``share``) and, for those same pairs,
        ``shared_mean_chars`` and ``shared_mean_share`` (mean common prefix in characters and
        as a share of the shorter response); ``checked``, ``skipped`` with reasons;
        ``mean_chars`` / ``median_chars`` over the checked pairs; ``examples`` (most shared
        first) and the per-pair ``values`` (all pairs, for plots).
    """
    df = _frame(pairs, ("chosen", "rejected"))
    chosen, rejected = df["chosen"].fill_null(""), df["rejected"].fill_null("")
    pre = common_prefix_lengths(chosen, rejected)
    shorter = np.minimum(chosen.str.len_chars().to_numpy(), rejected.str.len_chars().to_numpy())
    identical = (chosen == rejected).to_numpy()
    short = (shorter < min_chars) & ~identical
    checked = ~identical & ~short
    frac = np.where(checked, pre / np.maximum(shorter, 1), 0.0)
    flagged = np.flatnonzero(checked & (frac >= share))
    order = flagged[np.argsort(-frac[flagged], kind="stable")]
    n_checked = int(checked.sum())
    return {
        "pairs": len(pre),
        "checked": n_checked,
        "min_chars": min_chars,
        "skipped": {"shorter response under min_chars": int(short.sum()),
                    "identical responses": int(identical.sum())},
        "mean_chars": float(pre[checked].mean()) if n_checked else None,
        "median_chars": float(np.median(pre[checked])) if n_checked else None,
        "share_threshold": share,
        "shared_prefix_pairs": len(flagged),
        "share_shared_prefix": float(len(flagged) / n_checked) if n_checked else None,
        "shared_mean_chars": float(pre[flagged].mean()) if len(flagged) else None,
        "shared_mean_share": float(frac[flagged].mean()) if len(flagged) else None,
        "examples": [int(i) for i in order[:20]],
        "values": pre.tolist(),
    }


def identity_mentions(pairs: pa.Table | pl.DataFrame) -> dict[str, Any]:
    """Return responses in which a model names itself ("As an AI language model", "I am
    ChatGPT"…), counted in chosen and rejected, with example row indices."""
    df = _frame(pairs, ("chosen", "rejected"))
    flags = df.select(
        pl.col("chosen").str.contains(IDENTITY_PATTERN).alias("c"),
        pl.col("rejected").str.contains(IDENTITY_PATTERN).alias("r"),
    )
    c = flags["c"].to_numpy()
    r = flags["r"].to_numpy()
    return {
        "chosen": int(c.sum()),
        "rejected": int(r.sum()),
        "chosen_share": float(c.mean()) if len(c) else None,
        "rejected_share": float(r.mean()) if len(r) else None,
        "examples": [int(i) for i in np.nonzero(c | r)[0][:20]],
    }
