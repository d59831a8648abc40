"""Coverage of the agreement coefficients' 95% bootstrap intervals on data from a known model.

Issue 15: percentile intervals covered 91.5–92.6% on 4 judges × 60 items. This draws seeded
datasets from a one-coin Dawid–Skene model (a true label per item; each judge right with its
own accuracy, else a random other label; optional missing judgments), takes the population
value of each coefficient from 400,000 items of the same model, and prints the share of
intervals that hold it, for the percentile and the BCa interval (the same datasets and
resamples for both). Prints figures; asserts nothing (the test with assertions is
``tests/audit/test_coefficients.py``)::

    .venv/bin/python scripts/agreement_coverage.py --datasets 1000
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from preflab.audit.coefficients import (
    bootstrap_cohen_interval,
    bootstrap_counts_interval,
    cohen_kappa,
    counts_table,
    fleiss_kappa,
    krippendorff_alpha,
    raw_agreement,
)

MODELS = {
    "three-labels-missing": ((0.85, 0.8, 0.75, 0.7), (0.45, 0.1, 0.45), 0.2),
    "three-labels": ((0.85, 0.8, 0.75, 0.7), (0.45, 0.1, 0.45), 0.0),
    "binary-high-agreement": ((0.95, 0.9, 0.9, 0.85), (0.5, 0.5), 0.0),
    "binary-imbalanced": ((0.9, 0.9, 0.85, 0.85), (0.8, 0.2), 0.0),
}


def draw(rng: np.random.Generator, n: int, accuracy: tuple[float, ...],
         prevalence: tuple[float, ...], missing: float) -> np.ndarray:
    """Return judges × items labels from the one-coin model."""
    k = len(prevalence)
    truth = rng.choice(k, n, p=prevalence)
    rows = [np.where(rng.random(n) < a, truth, (truth + rng.integers(1, k, n)) % k) for a in accuracy]
    data = np.vstack(rows).astype(float)
    data[rng.random(data.shape) < missing] = np.nan
    return data


def coverage(model: str, datasets: int, items: int, resamples: int) -> dict[str, dict[str, float]]:
    """Return, per interval method, the coverage of each coefficient and pooled."""
    accuracy, prevalence, missing = MODELS[model]
    big = draw(np.random.default_rng(0), 400_000, accuracy, prevalence, missing)
    truth = {"raw": raw_agreement(big), "fleiss": fleiss_kappa(counts_table(big)),
             "alpha": krippendorff_alpha(big), "cohen": cohen_kappa(big[0], big[1])}
    out = {}
    for method in ("percentile", "bca"):
        rng = np.random.default_rng(1)
        hits = dict.fromkeys(truth, 0)
        for r in range(datasets):
            d = draw(rng, items, accuracy, prevalence, missing)
            kw = {"seed": r, "method": method, "n_resamples": resamples}
            cis = {
                "raw": bootstrap_counts_interval("raw", d, **kw),  # type: ignore[arg-type]
                "fleiss": bootstrap_counts_interval("fleiss", d, **kw),  # type: ignore[arg-type]
                "alpha": bootstrap_counts_interval("alpha", d, **kw),  # type: ignore[arg-type]
                "cohen": bootstrap_cohen_interval(d[0], d[1], **kw),  # type: ignore[arg-type]
            }
            for key, (lo, hi) in cis.items():
                hits[key] += lo <= truth[key] <= hi
        out[method] = {k: v / datasets for k, v in hits.items()}
        out[method]["pooled"] = sum(hits.values()) / (4 * datasets)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=1000)
    parser.add_argument("--items", type=int, default=60)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--model", action="append", choices=sorted(MODELS))
    args = parser.parse_args()
    print(f"{args.datasets} datasets of 4 judges × {args.items} items, {args.resamples} resamples; "
          f"load average {os.getloadavg()[0]:.1f}")
    print("| model | interval | raw | Cohen (judges 1, 2) | Fleiss | alpha | pooled |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for model in args.model or list(MODELS):
        start = time.process_time()
        res = coverage(model, args.datasets, args.items, args.resamples)
        for method, c in res.items():
            print(f"| {model} | {method} | " + " | ".join(
                f"{100 * c[k]:.1f}%" for k in ("raw", "cohen", "fleiss", "alpha", "pooled")) + " |")
        print(f"<!-- {model}: {time.process_time() - start:.1f} s CPU -->")


if __name__ == "__main__":
    main()
