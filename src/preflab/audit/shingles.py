"""Word and character n-gram shingles hashed in bulk, and MinHash signatures computed with numpy.

Texts are lower-cased and split into ``\\w+`` words by Polars; each word is hashed once
(Polars' 64-bit hash, stable within a process) and n-grams are combined with a polynomial
rolling hash over the flat array, so no Python loop runs per text or per shingle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

__all__ = [
    "NORMALIZE_RULE",
    "Shingles",
    "char_shingles",
    "minhash_signatures",
    "normalize_texts",
    "shingle_texts",
    "unique_sorted",
]

_MIX = np.uint64(0x9E3779B97F4A7C15)  # 2^64 / golden ratio, an odd multiplier


@dataclass(frozen=True)
class Shingles:
    """Flat shingle hashes: ``hashes[i]`` belongs to text ``docs[i]``; ``docs`` is sorted."""

    docs: NDArray[np.int64]
    hashes: NDArray[np.uint64]
    n_texts: int

    def starts(self) -> NDArray[np.int64]:
        """Return, per text that has shingles, the offset of its first shingle."""
        return np.flatnonzero(np.r_[True, self.docs[1:] != self.docs[:-1]]) if len(self.docs) else np.zeros(0, np.int64)


def shingle_texts(texts: Sequence[str] | pl.Series, n: int = 5, seed: int = 0) -> Shingles:
    """Return the hashed word ``n``-grams of every text.

    A text with fewer than ``n`` words (but at least one) gets one shingle: all its words.
    Empty texts get none.

    >>> s = shingle_texts(["a b c d", "a b c d", "x"], n=3)
    >>> s.docs.tolist(), bool(s.hashes[0] == s.hashes[2])
    ([0, 0, 1, 1, 2], True)
    """
    series = texts if isinstance(texts, pl.Series) else pl.Series("t", list(texts), dtype=pl.String)
    # the words of extract_all(r"\w+"), found with one regex replace and a split (1.6× faster)
    words = (
        pl.DataFrame({"t": series.fill_null("")})
        .with_row_index("doc")
        .select("doc", pl.col("t").str.to_lowercase().str.replace_all(r"[^\w ]+", " ").str.split(" ").alias("w"))
        .explode("w")
        .filter(pl.col("w") != "")
    )
    docs = words["doc"].cast(pl.Int64).to_numpy()
    h = words["w"].hash(seed=seed).to_numpy()
    m = len(h)
    if m >= n:
        combined = h[: m - n + 1].copy()
        for j in range(1, n):
            combined *= _MIX
            combined += h[j : m - n + 1 + j]
        valid = docs[: m - n + 1] == docs[n - 1 :]
        out_docs = docs[: m - n + 1][valid]
        out_hashes = combined[valid]
    else:
        out_docs = np.zeros(0, np.int64)
        out_hashes = np.zeros(0, np.uint64)
    # texts shorter than n words: one shingle of all their words
    counts = np.bincount(docs, minlength=len(series))
    short_docs = np.flatnonzero((counts > 0) & (counts < n))
    if len(short_docs):
        short = (
            words.filter(pl.col("doc").is_in(pl.Series(short_docs).cast(words["doc"].dtype).implode()))
            .group_by("doc", maintain_order=True)
            .agg(pl.col("w"))
        )
        sd = short["doc"].cast(pl.Int64).to_numpy()
        sh = short["w"].list.join(" ").hash(seed=seed + 1).to_numpy()
        out_docs = np.concatenate([out_docs, sd])
        out_hashes = np.concatenate([out_hashes, sh])
        order = np.argsort(out_docs, kind="stable")
        out_docs, out_hashes = out_docs[order], out_hashes[order]
    return Shingles(out_docs, out_hashes, len(series))


def minhash_signatures(
    shingles: Shingles, num_perm: int = 128, seed: int = 1, block: int = 1 << 17
) -> tuple[NDArray[np.uint32], NDArray[np.bool_]]:
    """Return (signatures n_texts × num_perm, has_shingles) of every text.

    Permutation ``i`` is the multiply-shift hash ``(a_i · x mod 2^64) >> 32`` with odd
    ``a_i`` (Dietzfelbinger et al. 1997, "A reliable randomized algorithm for the
    closest-pair problem"). The shift is monotone, so the minimum is taken on the 64-bit
    products (``np.minimum.reduceat`` per text) and shifted afterwards: two passes over the
    shingles per permutation, made over blocks of about ``block`` shingles (whole texts) so
    that each block stays in the CPU cache for all permutations. Texts without shingles get
    all-``0xFFFFFFFF`` rows and ``has_shingles = False``.
    """
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 2**63, num_perm, dtype=np.uint64) | np.uint64(1)
    sig = np.full((shingles.n_texts, num_perm), 0xFFFFFFFF, dtype=np.uint32)
    has = np.zeros(shingles.n_texts, dtype=bool)
    if len(shingles.hashes) == 0:
        return sig, has
    starts = shingles.starts()
    owners = shingles.docs[starts]
    has[owners] = True
    bounds = np.r_[starts, len(shingles.hashes)]
    cuts = np.unique(np.r_[0, np.searchsorted(bounds, np.arange(block, len(shingles.hashes), block)), len(starts)])
    buf = np.empty(min(len(shingles.hashes), 4 * block + int(np.diff(bounds).max())), dtype=np.uint64)
    for d_lo, d_hi in pairwise(cuts):
        lo, hi = bounds[d_lo], bounds[d_hi]
        x = shingles.hashes[lo:hi]
        local = starts[d_lo:d_hi] - lo
        out = buf[: hi - lo]
        rows = owners[d_lo:d_hi]
        for i in range(num_perm):
            np.multiply(x, a[i], out=out)
            sig[rows, i] = (np.minimum.reduceat(out, local) >> np.uint64(32)).astype(np.uint32)
    return sig, has



def unique_sorted(a: NDArray[Any], *, return_index: bool = False) -> Any:
    """Return the sorted distinct values of ``a`` (and the index of each one's first occurrence).

    A sort and a comparison of neighbours: numpy 2.x's hash-based ``np.unique`` is over 20×
    slower on a million distinct 64-bit values on this machine (bench/audit_bench.py).

    >>> unique_sorted(np.array([3, 1, 3, 2])).tolist()
    [1, 2, 3]
    """
    order = np.argsort(a, kind="stable")
    s = a[order]
    keep = np.r_[True, s[1:] != s[:-1]] if len(s) else np.zeros(0, dtype=bool)
    return (s[keep], order[keep]) if return_index else s[keep]


NORMALIZE_RULE = (
    "lower-cased (Unicode lower case), every character that is neither a letter, digit, "
    "underscore nor whitespace removed (so \"don't\" and \"dont\" agree), runs of whitespace "
    "made one space, outer spaces stripped"
)


def normalize_texts(texts: Sequence[str] | pl.Series) -> pl.Series:
    """Return the texts normalized for matching (see :data:`NORMALIZE_RULE`); nulls become "".

    >>> normalize_texts(["  What's  the\\nANSWER?! "]).to_list()
    ['whats the answer']
    """
    series = texts if isinstance(texts, pl.Series) else pl.Series("t", list(texts), dtype=pl.String)
    return (
        series.fill_null("")
        .str.to_lowercase()
        .str.replace_all(r"[^\w\s]+", "")
        .str.replace_all(r"\s+", " ")
        .str.strip_chars(" ")
    )


def _splitmix(x: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """The splitmix64 finalizer (Steele, Lea & Flood 2014): spreads the bits of each value."""
    x = x ^ (x >> np.uint64(30))
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def char_shingles(texts: Sequence[str] | pl.Series, n: int = 5, *, chunk: int = 20_000) -> Shingles:
    """Return the distinct hashed character ``n``-grams of every text (taken as given).

    Texts are laid end to end as one UTF-32 array (``chunk`` texts at a time, which bounds
    memory); each window of ``n`` code points is combined with a polynomial hash and mixed
    (:func:`_splitmix`), and windows that cross from one text into the next are dropped: no
    Python loop per text. A text shorter than ``n`` characters (but not empty) gets one
    shingle: the whole text. Duplicate shingles of a text are kept once, so ``len`` per text is
    the size of its n-gram set.

    >>> s = char_shingles(["abcdef", "abc", ""], n=5)
    >>> s.docs.tolist()
    [0, 0, 1]
    """
    series = texts if isinstance(texts, pl.Series) else pl.Series("t", list(texts), dtype=pl.String)
    series = series.fill_null("")
    docs_out, hashes_out = [], []
    for lo in range(0, len(series), chunk):
        d, h = _char_shingles_of(series.slice(lo, chunk), n)
        docs_out.append(d + lo)
        hashes_out.append(h)
    if not docs_out:
        return Shingles(np.zeros(0, np.int64), np.zeros(0, np.uint64), 0)
    return Shingles(np.concatenate(docs_out), np.concatenate(hashes_out), len(series))


def _char_shingles_of(series: pl.Series, n: int) -> tuple[NDArray[np.int64], NDArray[np.uint64]]:
    """Return (docs, hashes) of the distinct character n-grams of one chunk (see above)."""
    lens = series.str.len_chars().to_numpy().astype(np.int64)
    codes = np.frombuffer("".join(series.to_list()).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    docs = np.repeat(np.arange(len(series), dtype=np.int64), lens)
    m = len(codes)
    if m >= n:
        combined = codes[: m - n + 1].copy()
        for j in range(1, n):
            combined *= _MIX
            combined += codes[j : m - n + 1 + j]
        valid = docs[: m - n + 1] == docs[n - 1 :]
        out_docs, out_hashes = docs[: m - n + 1][valid], _splitmix(combined[valid])
    else:
        out_docs, out_hashes = np.zeros(0, np.int64), np.zeros(0, np.uint64)
    short = np.flatnonzero((lens > 0) & (lens < n))
    if len(short):
        sh = _splitmix(series.gather(short).hash(seed=7).to_numpy().astype(np.uint64))
        out_docs, out_hashes = np.concatenate([out_docs, short]), np.concatenate([out_hashes, sh])
    # distinct (text, shingle) pairs, sorted by text
    key = pl.DataFrame({"d": out_docs, "h": out_hashes}).unique().sort(["d", "h"])
    return key["d"].to_numpy(), key["h"].to_numpy()
