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

from preflab.errors import InputError

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


def _length_controlled(c: np.ndarray, r: np.ndarray, seed: int) -> dict[str, Any]:
    """Logistic model of "response A is chosen" on tanh(length difference / sd).

    As in AlpacaEval's length-controlled win rate (Dubois et al. 2024, "Length-Controlled
    AlpacaEval", eq. 2 and §3): the length term is ``tanh(Δ / σ(Δ))``; the intercept is the
    preference left once length is held equal. Pairs are oriented A/B at random (seeded), so
    the intercept is ≈ 0 and the slope measures how much length alone predicts the choice.
    """
    import statsmodels.api as sm

    if len(c) < 10:
        return {"fitted": False, "reason": "too few pairs or no length variation"}
    rng = np.random.default_rng(seed)
    flip = rng.random(len(c)) < 0.5
    a = np.where(flip, r, c).astype(np.float64)
    b = np.where(flip, c, r).astype(np.float64)
    y = (~flip).astype(np.float64)
    delta = a - b
    sd = float(delta.std())
    if len(c) < 10 or sd == 0:
        return {"fitted": False, "reason": "too few pairs or no length variation"}
    x = np.tanh(delta / sd)
    model = sm.Logit(y, sm.add_constant(x))
    try:
        fit = model.fit(disp=0)
    except np.linalg.LinAlgError:
        return {"fitted": False, "reason": "singular design"}
    lo, hi = fit.conf_int(0.05)[1]
    slope = float(fit.params[1])
    intercept = float(fit.params[0])
    expit = 1.0 / (1.0 + np.exp(-(intercept + slope * np.tanh(1.0))))
    return {
        "fitted": True,
        "slope": slope,
        "slope_ci95": [float(lo), float(hi)],
        "slope_p_value": float(fit.pvalues[1]),
        "intercept": intercept,
        "p_longer_by_1sd_chosen": float(expit),
        "length_controlled_p_chosen": float(1.0 / (1.0 + np.exp(-intercept))),
        "raw_p_longer_chosen": float((c > r).sum() / max((c != r).sum(), 1)),
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
    default to :data:`TOKEN_PATTERN`; ``tokens["unit"]`` says which.

    Returns:
        ``words`` and ``tokens`` summaries (longer/shorter/equal counts and shares,
        mean/median), ``length_model`` (the logistic length-control fit on tokens) and
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
        "length_model": _length_controlled(tokens["c"].to_numpy(), tokens["r"].to_numpy(), seed),
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


def common_prefix_lengths(a: list[str], b: list[str]) -> np.ndarray:
    """Return the length (characters) of the common prefix of each ``a[i]``, ``b[i]``.

    Binary search on slice equality, so each pair costs O(log n) string comparisons in C.

    >>> common_prefix_lengths(["abcd", "x"], ["abXd", "y"]).tolist()
    [2, 0]
    """
    out = np.empty(len(a), dtype=np.int64)
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        lo, hi = 0, min(len(x), len(y))
        if x[:hi] == y[:hi]:
            out[i] = hi
            continue
        while lo < hi:  # invariant: x[:lo] == y[:lo], x[:hi] != y[:hi]
            mid = (lo + hi + 1) // 2
            if x[:mid] == y[:mid]:
                lo = mid
            else:
                hi = mid - 1
        out[i] = lo
    return out


def prefix_bias(pairs: pa.Table | pl.DataFrame, *, share: float = 0.5) -> dict[str, Any]:
    """Return common-prefix figures: mean/median characters, pairs sharing ≥ ``share`` of the
    shorter response (the "prefix" bias of shared/reference/001: pairs that differ only at
    the end), and the indices of the longest ones."""
    df = _frame(pairs, ("chosen", "rejected"))
    chosen, rejected = df["chosen"].to_list(), df["rejected"].to_list()
    pre = common_prefix_lengths(chosen, rejected)
    shorter = np.minimum(df["chosen"].str.len_chars().to_numpy(), df["rejected"].str.len_chars().to_numpy())
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(shorter > 0, pre / np.maximum(shorter, 1), 0.0)
    flagged = np.nonzero(frac >= share)[0]
    order = flagged[np.argsort(-frac[flagged], kind="stable")]
    return {
        "pairs": len(pre),
        "mean_chars": float(pre.mean()) if len(pre) else None,
        "median_chars": float(np.median(pre)) if len(pre) else None,
        "share_threshold": share,
        "shared_prefix_pairs": len(flagged),
        "share_shared_prefix": float(len(flagged) / len(pre)) if len(pre) else None,
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
