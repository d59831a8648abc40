"""Contamination check on the HH-RLHF sample: recall on light paraphrases, false alarms, time.

Prints, for the three tests of :mod:`preflab.audit.contamination` (exact after normalization,
13-gram, character 5-gram similarity):

- verbatim short items (first user turns of 1–8 words, case and punctuation changed) found;
- light paraphrases (one word of 3+ letters replaced, punctuation dropped) of 50 short (3–8
  words) and 50 longer first turns found;
- false alarms: 1,000 unrelated eval texts (lm-eval's few-shot examples, 4+ words, seeded choice)
  and the first 1,000 distinct first turns of HH helpful-online (same genre, other prompts);
- CPU and wall time of the check.

With ``--copies N``: the sample repeated N times, one word of every message changed per copy
(so every prompt is distinct and each HH turn has N near-copies), checked against the 1,000
unrelated texts plus 100 HH first turns: wall and CPU time and peak RSS (before and after).

Run: ``PREFLAB_TEST_DATA=../shared/data .venv/bin/python bench/contamination_bench.py [--copies 400]``
"""

from __future__ import annotations

import os
import random
import re
import resource
import sys
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.audit.test_contamination import _unrelated_eval_texts

from preflab.audit import pairs_from_judgments
from preflab.audit.contamination import contamination
from preflab.formats.registry import read

REPLACEMENTS = ["thing", "person", "really", "maybe", "house", "money", "people", "good", "someone", "stuff"]


def _pairs(name: str):  # type: ignore[no-untyped-def]
    chunk = read("hh-rlhf", Path(os.environ["PREFLAB_TEST_DATA"]) / "hh-rlhf" / name)
    return pairs_from_judgments(chunk.judgments, chunk.responses, chunk.prompts)


def _paraphrase(text: str, rng: random.Random) -> str:
    words = text.split()
    idx = [i for i, w in enumerate(words) if len(re.sub(r"\W", "", w)) >= 3] or list(range(len(words)))
    i = rng.choice(idx)
    words[i] = rng.choice([r for r in REPLACEMENTS if r != words[i].lower()])
    return re.sub(r"[^\w\s]", "", " ".join(words))


def _found(pairs, items: list[str]) -> tuple[int, dict[str, int], float, float]:  # type: ignore[no-untyped-def]
    t0, c0 = time.perf_counter(), time.process_time()
    res = contamination(pairs, items, examples=10**9)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return res["eval_items_hit"], {t: v["eval_items_hit"] for t, v in res["by_test"].items()}, wall, cpu


def scale(copies: int) -> None:
    """Print time and memory of the check on the sample repeated ``copies`` times."""
    hh = _pairs("harmless-base-test-first400.jsonl.gz")
    rng = random.Random(0)
    rows = []
    for k in range(copies):
        for msgs, c, r in zip(hh["prompt"].to_list(), hh["chosen"].to_list(), hh["rejected"].to_list(), strict=True):
            new = []
            for m in msgs:
                words = m["content"].split()
                if words:
                    words[rng.randrange(len(words))] = f"w{k}x{rng.randrange(1000)}"
                new.append({"role": m["role"], "content": " ".join(words)})
            rows.append({"prompt": new, "chosen": c, "rejected": r})
    df = pl.DataFrame(rows)
    evals = _unrelated_eval_texts(1000) + list(dict.fromkeys(m[0]["content"] for m in hh["prompt"].to_list()))[:100]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n, per, wall, cpu = _found(df, evals)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{df.height:,} pairs x {len(evals):,} eval texts: {wall:.1f} s wall, {cpu:.1f} s CPU, peak RSS "
          f"{peak:.0f} MB ({before:.0f} MB before the check), load {os.getloadavg()[0]:.1f}; {n} items hit {per}")


def main() -> None:
    """Print the figures."""
    if "--copies" in sys.argv:
        scale(int(sys.argv[sys.argv.index("--copies") + 1]))
        return
    hh = _pairs("harmless-base-test-first400.jsonl.gz")
    first = list(dict.fromkeys(m[0]["content"] for m in hh["prompt"].to_list()))
    rng = random.Random(3)
    short = [t for t in first if 3 <= len(t.split()) <= 8]
    longer = [t for t in first if len(t.split()) > 8]
    verbatim = [t.upper().replace("?", "") + " ?" for t in first if 1 <= len(t.split()) <= 8]
    print(f"HH harmless sample: {hh.height} pairs; load average {os.getloadavg()[0]:.1f}")
    n, per, wall, cpu = _found(hh, verbatim)
    print(f"verbatim short items: {n} of {len(verbatim)} found {per} ({wall:.2f} s wall, {cpu:.2f} s CPU)")
    for label, pool in (("short (3-8 words)", short), ("longer (9+ words)", longer)):
        items = [_paraphrase(t, rng) for t in rng.sample(pool, 50)]
        n, per, wall, cpu = _found(hh, items)
        print(f"light paraphrases, {label}: {n} of 50 found {per}")
    unrelated = _unrelated_eval_texts(1000)
    n, per, wall, cpu = _found(hh, unrelated)
    print(f"false alarms, 1,000 lm-eval few-shot texts: {n} {per} ({wall:.2f} s wall, {cpu:.2f} s CPU)")
    helpful = _pairs("helpful-online-test.jsonl.gz")
    other = list(dict.fromkeys(m[0]["content"] for m in helpful["prompt"].to_list()))[:1000]
    n, per, wall, cpu = _found(hh, other)
    print(f"false alarms, 1,000 HH helpful-online first turns: {n} {per}")
    n, per, wall, cpu = _found(helpful, unrelated)
    print(f"false alarms, 1,000 lm-eval texts vs helpful-online ({helpful.height} pairs): {n} {per}")


if __name__ == "__main__":
    main()
