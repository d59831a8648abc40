"""Arena speed: Bradley–Terry fit + 100 bootstrap rounds on 1,000,000 battles among 50 models.

Prints wall time (best and median of repeats), extra memory (tracemalloc peak of Python/NumPy
allocations, and peak RSS growth sampled from /proc, which also sees Polars' allocations), and
the ratio against the per-battle scikit-learn LogisticRegression that older Chatbot Arena code
used (dense design, one row per battle and tie rows doubled, refitted per bootstrap round),
measured here on a slice and scaled linearly to the full run.

Run: ``.venv/bin/python bench/arena_bench.py`` (``--battles``, ``--models``, ``--rounds``,
``--repeats``, ``--slice`` to change the sizes). Targets (issue 6): ≤ 2.3 s, ≤ 100 MiB extra.
"""

from __future__ import annotations

import argparse
import gc
import math
import statistics
import threading
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import polars as pl
from sklearn.linear_model import LogisticRegression

from preflab.arena import aggregate_battles, bootstrap_ratings, fit_bradley_terry

MIB = 1024 * 1024


def make_battles(n: int, k: int, seed: int) -> pl.DataFrame:
    """Return ``n`` battles among ``k`` models with known strengths and 10% ties, 3% both-bad."""
    rng = np.random.default_rng(seed)
    strengths = rng.normal(0, 1, k)
    a = rng.integers(0, k, n)
    b = (a + rng.integers(1, k, n)) % k
    p = 1 / (1 + np.exp(-(strengths[a] - strengths[b])))
    u = rng.random(n)
    outcome = np.where(
        u < 0.10, "tie", np.where(u < 0.13, "both_bad", np.where(rng.random(n) < p, "a", "b"))
    )
    names = np.array([f"model-{m:02d}" for m in range(k)])
    return pl.DataFrame({"model_a": names[a], "model_b": names[b], "outcome": outcome})


def _rss_bytes() -> int:
    with Path("/proc/self/statm").open() as fh:
        return int(fh.read().split()[1]) * 4096


class RssPeak:
    """Sample RSS every millisecond in a thread; report the peak above the starting value."""

    def __enter__(self) -> RssPeak:
        self.start = _rss_bytes()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(0.001)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())

    @property
    def extra(self) -> int:
        return self.peak - self.start


def run_preflab(battles: pl.DataFrame, rounds: int) -> np.ndarray:
    """Aggregate, fit, bootstrap: what ``preflab leaderboard`` does after reading the file."""
    counts = aggregate_battles(battles)
    fit_bradley_terry(counts)
    boot = bootstrap_ratings(counts, rounds=rounds, seed=0)
    return boot.ci_high - boot.ci_low


def _baseline_fit(
    model_a: np.ndarray, model_b: np.ndarray, outcome: np.ndarray, k: int
) -> np.ndarray:
    """Older Arena style: one dense row per battle (doubled), ties as one win each way."""
    n = len(model_a)
    rows = 2 * n
    x = np.zeros((rows, k))
    idx = np.arange(rows)
    a = np.concatenate([model_a, model_a])
    b = np.concatenate([model_b, model_b])
    x[idx, a] = math.log(10)
    x[idx, b] = -math.log(10)
    y = np.zeros(rows)
    y[:n] = outcome == 0
    y[n:] = outcome == 0
    tie = outcome >= 2
    y[:n][tie] = 1.0  # first copy of a tie: a wins; the second copy: b wins
    model = LogisticRegression(fit_intercept=False, C=1e6, tol=1e-6, max_iter=1000)
    model.fit(x, y)
    return 400 * model.coef_[0] + 1000


def run_baseline_slice(battles: pl.DataFrame, k: int, boot_rounds: int) -> tuple[float, np.ndarray]:
    """Return seconds per fit (point fit + per-battle bootstrap refits) on ``battles``."""
    names = sorted(set(battles["model_a"]) | set(battles["model_b"]))
    enum = pl.Enum(names)
    a = battles["model_a"].cast(enum).to_physical().to_numpy().astype(np.int64)
    b = battles["model_b"].cast(enum).to_physical().to_numpy().astype(np.int64)
    o = battles["outcome"].replace_strict(["a", "b", "tie", "both_bad"], [0, 1, 2, 3]).to_numpy()
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    ratings = _baseline_fit(a, b, o, len(names))
    for _ in range(boot_rounds):
        rows = rng.integers(0, len(a), len(a))
        _baseline_fit(a[rows], b[rows], o[rows], len(names))
    return (time.perf_counter() - start) / (1 + boot_rounds), ratings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--battles", type=int, default=1_000_000)
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--slice", type=int, default=50_000, help="battles for the baseline")
    parser.add_argument("--baseline-rounds", type=int, default=2)
    parser.add_argument(
        "--style-battles", type=int, default=0, help="also time style control on N battles"
    )
    args = parser.parse_args()

    battles = make_battles(args.battles, args.models, seed=1)
    # memory first, in a fresh heap (after a small warm-up that loads every module once), so
    # RSS growth is not hidden by memory freed by an earlier run
    run_preflab(make_battles(10_000, args.models, seed=2), 5)
    gc.collect()
    with RssPeak() as rss:
        tracemalloc.start()
        run_preflab(battles, args.rounds)
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

    times = []
    for _ in range(args.repeats):
        gc.collect()
        start = time.perf_counter()
        run_preflab(battles, args.rounds)
        times.append(time.perf_counter() - start)
    pairs = len(aggregate_battles(battles).i)
    print(
        f"battles {args.battles:,} · models {args.models} · model pairs {pairs:,} · "
        f"bootstrap rounds {args.rounds}"
    )
    best, median = min(times), statistics.median(times)
    print(
        f"preflab fit + {args.rounds} bootstrap rounds: best {best:.3f} s, median {median:.3f} s "
        f"over {args.repeats} runs (target ≤ 2.3 s)"
    )
    print(
        f"extra memory: tracemalloc peak {traced_peak / MIB:.1f} MiB, RSS growth "
        f"{rss.extra / MIB:.1f} MiB (target ≤ 100 MiB)"
    )

    piece = battles.head(args.slice)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        per_fit, base_ratings = run_baseline_slice(piece, args.models, args.baseline_rounds)
    ours = fit_bradley_terry(aggregate_battles(piece)).ratings
    scaled = per_fit * (args.battles / args.slice) * (1 + args.rounds)
    print(
        f"baseline (scikit-learn LogisticRegression, one row per battle): {per_fit:.3f} s per fit "
        f"on {args.slice:,} battles → scaled to {args.battles:,} battles × {1 + args.rounds} fits: "
        f"{scaled:.1f} s"
    )
    shift = (base_ratings - base_ratings.mean()) - (ours - ours.mean())
    print(f"baseline vs preflab ratings on the slice: max |Δ| {np.abs(shift).max():.4f} Elo")
    print(f"speed-up (scaled baseline / preflab median): {scaled / median:.0f}×")

    if args.style_battles:
        from preflab.arena import bootstrap_style_controlled

        styled = make_battles(args.style_battles, args.models, seed=3)
        rng = np.random.default_rng(3)
        styled = styled.with_columns(
            pl.Series(f"style_{name}_{side}", rng.poisson(5, styled.height).astype(float))
            for name in ("length", "headers", "lists", "bold")
            for side in ("a", "b")
        )
        start = time.perf_counter()
        bootstrap_style_controlled(styled, rounds=args.rounds, seed=0)
        print(
            f"style control (one cell per battle) on {args.style_battles:,} battles, fit + "
            f"{args.rounds} rounds: {time.perf_counter() - start:.2f} s"
        )


if __name__ == "__main__":
    main()
