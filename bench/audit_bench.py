"""Speed of the audit at HH-RLHF scale (issue 3, "Speed"). Prints figures; asserts nothing.

Data: the real HH-RLHF sample (``$PREFLAB_TEST_DATA/hh-rlhf/…``, 399 pairs after import) repeated to 160,800 pairs.
For prompt near-duplicate detection each copy gets one word changed at a random place, so
all 160,800 prompts are distinct texts and MinHash really runs on every one of them.

Each part runs in its own process so its peak memory (ru_maxrss) is its own:

    PREFLAB_TEST_DATA=../shared/data .venv/bin/python bench/audit_bench.py   # all parts
    PREFLAB_TEST_DATA=../shared/data .venv/bin/python bench/audit_bench.py --part similarity
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import resource
import subprocess
import sys
import time
from statistics import median
from typing import Any

import numpy as np
import polars as pl
from hh_sample import hh_sample_path  # bench/ is on sys.path when a script here runs

N_PAIRS = 160_800
SAMPLE = hh_sample_path()  # $PREFLAB_TEST_DATA/hh-rlhf/…, see bench/hh_sample.py


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _load() -> tuple[pl.DataFrame, Any]:
    from preflab.audit import pairs_from_judgments
    from preflab.formats.registry import read

    chunk = read("hh-rlhf", SAMPLE)
    pairs = pairs_from_judgments(chunk.judgments, chunk.responses, chunk.prompts)
    idx = np.arange(N_PAIRS) % pairs.height
    return pairs[idx.tolist()], chunk


def _perturbed_prompts(pairs: pl.DataFrame) -> list[str]:
    from preflab.audit.duplicates import prompt_text

    rng = np.random.default_rng(0)
    out = []
    for i, text in enumerate(prompt_text(pairs).to_list()):
        words = text.split(" ")
        k = int(rng.integers(len(words)))
        words[k] = f"{words[k]}v{i}"
        out.append(" ".join(words))
    return out


def part_similarity() -> dict[str, Any]:
    from preflab.audit.duplicates import near_duplicate_pairs, prompt_text

    pairs, _ = _load()
    t0 = time.perf_counter()
    near_duplicate_pairs(pairs)
    t_resp = time.perf_counter() - t0
    t0 = time.perf_counter()
    res_t = near_duplicate_pairs(pairs, include_prompt=True)
    t_trans = time.perf_counter() - t0
    # the reference notebook's loop: difflib.SequenceMatcher on the whole transcripts
    n_slice = 2000
    p = prompt_text(pairs.head(n_slice))
    a = (p + "\n" + pairs["chosen"].head(n_slice)).to_list()
    b = (p + "\n" + pairs["rejected"].head(n_slice)).to_list()
    t0 = time.perf_counter()
    ref = [difflib.SequenceMatcher(None, x, y).ratio() for x, y in zip(a, b, strict=True)]
    t_slice = time.perf_counter() - t0
    t_difflib = t_slice * N_PAIRS / n_slice
    ours = np.asarray(res_t["values"][:n_slice])
    return {
        "pairs": N_PAIRS,
        "responses_s": t_resp,
        "transcripts_s": t_trans,
        "difflib_loop_est_s": t_difflib,
        "difflib_slice": n_slice,
        "speedup_vs_difflib": t_difflib / t_trans,
        "share_high_ours": res_t["share_high"],
        "flag_agreement_with_difflib": float(np.mean((ours > 0.9) == (np.asarray(ref) > 0.9))),
        "max_gap_vs_difflib": float(np.max(ours - np.asarray(ref))),
        "peak_mb": _peak_mb(),
    }


def part_minhash() -> dict[str, Any]:
    from datasketch import MinHash

    from preflab.audit.duplicates import near_duplicate_texts

    pairs, _ = _load()
    texts = _perturbed_prompts(pairs)
    t0 = time.perf_counter()
    res = near_duplicate_texts(texts, threshold=0.8)
    t_ours = time.perf_counter() - t0
    n_slice = 2000
    t0 = time.perf_counter()
    for text in texts[:n_slice]:  # the usual loop: one MinHash per text, 5-word shingles
        words = text.lower().split()
        m = MinHash(num_perm=128)
        m.update_batch([" ".join(words[k : k + 5]).encode() for k in range(max(len(words) - 4, 1))])
    t_ds = (time.perf_counter() - t0) * len(texts) / n_slice
    return {
        "prompts": len(texts),
        "ours_s": t_ours,
        "datasketch_loop_est_s": t_ds,
        "datasketch_slice": n_slice,
        "speedup_vs_datasketch": t_ds / t_ours,
        "near_clusters": res["near_clusters"],
        "near_duplicates": res["near_duplicates"],
        "bands_rows": [res["bands"], res["rows"]],
        "peak_mb": _peak_mb(),
    }


def part_audit() -> dict[str, Any]:
    from preflab.audit import audit_dataset

    pairs, chunk = _load()
    j = pl.from_arrow(chunk.judgments)
    idx = (np.arange(N_PAIRS) % j.height).tolist()
    judgments = j[idx].with_columns((pl.col("judgment_id") + "-" + pl.int_range(pl.len()).cast(pl.String)).alias("judgment_id"))
    # worst case: every prompt a distinct text (one word changed per copy), so the MinHash
    # step runs on all 160,800 prompts instead of the 399 distinct prompt_ids
    pairs = pairs.drop("prompt_id").with_columns(pl.Series("prompt", _perturbed_prompts(pairs)))
    t0 = time.perf_counter()
    report = audit_dataset(pairs, judgments, include_agreement=False)
    total = time.perf_counter() - t0
    return {"pairs": N_PAIRS, "total_s": total, "by_check_s": report["timings"], "peak_mb": _peak_mb()}


def part_alpha() -> dict[str, Any]:
    import krippendorff

    from preflab.audit.agreement import krippendorff_alpha

    rng = np.random.default_rng(0)
    truth = rng.integers(1, 6, 200_000)
    data = np.where(rng.random((5, 200_000)) < 0.8, truth, rng.integers(1, 6, (5, 200_000))).astype(float)
    data[rng.random(data.shape) < 0.3] = np.nan
    out: dict[str, Any] = {"shape": list(data.shape), "missing": 0.3}
    for level in ("nominal", "ordinal", "interval"):
        ours, theirs = [], []
        for _ in range(3):
            t0 = time.perf_counter()
            a = krippendorff_alpha(data, level)
            ours.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            b = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
            theirs.append(time.perf_counter() - t0)
        out[level] = {"ours_s": median(ours), "krippendorff_s": median(theirs),
                      "speedup": median(theirs) / median(ours), "abs_diff": abs(a - b)}
    out["peak_mb"] = _peak_mb()
    return out


def part_agreement() -> dict[str, Any]:
    import pyarrow as pa

    from preflab.audit.agreement import agreement_summary
    from preflab.records import JUDGMENT_SCHEMA

    rng = np.random.default_rng(0)
    n_items, judges = 50_000, [f"j{i}" for i in range(5)]
    truth = rng.random(n_items) < 0.5
    cols: dict[str, list[Any]] = {k: [] for k in ("judgment_id", "prompt_id", "response_ids", "kind", "judge_id", "pairwise")}
    for judge in judges:
        for u in np.flatnonzero(rng.random(n_items) < 0.7).tolist():
            a, b = f"a{u}", f"b{u}"
            pick = a if truth[u] ^ (rng.random() < 0.2) else b
            cols["judgment_id"].append(f"{judge}-{u}")
            cols["prompt_id"].append(f"p{u}")
            cols["response_ids"].append([a, b])
            cols["kind"].append("pairwise")
            cols["judge_id"].append(judge)
            cols["pairwise"].append({"scale": 5, "preferred": pick, "strength": int(rng.integers(1, 3)),
                                     "tie": False, "both_bad": False})
    table = pa.Table.from_pydict(cols, schema=pa.schema([JUDGMENT_SCHEMA.field(k) for k in cols]))
    t0 = time.perf_counter()
    summary = agreement_summary(table, n_resamples=1000)
    return {"judgments": table.num_rows, "items": n_items, "coefficients": len(summary["coefficients"]),
            "seconds": time.perf_counter() - t0, "peak_mb": _peak_mb()}


PARTS = {"similarity": part_similarity, "minhash": part_minhash, "audit": part_audit, "alpha": part_alpha,
         "agreement": part_agreement}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=sorted(PARTS), help="run one part in this process")
    args = parser.parse_args()
    if args.part:
        load = os.getloadavg()[0]
        print(json.dumps({**PARTS[args.part](), "load": load}))
        return
    print(f"{os.cpu_count()} CPUs; 1-minute load average {os.getloadavg()[0]:.1f} "
          "(other processes share the machine: figures scale with the load)")
    for name in ("similarity", "minhash", "audit", "alpha", "agreement"):
        proc = subprocess.run([sys.executable, __file__, "--part", name], capture_output=True, text=True, check=True)
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"== {name}")
        if name == "similarity":
            print(f"  chosen/rejected similarity, {res['pairs']:,} pairs: responses {res['responses_s']:.2f} s, "
                  f"whole transcripts {res['transcripts_s']:.2f} s")
            print(f"  difflib.SequenceMatcher loop (transcripts, {res['difflib_slice']:,}-pair slice scaled): "
                  f"{res['difflib_loop_est_s']:.1f} s → ratio {res['speedup_vs_difflib']:.0f}×")
            print(f"  >0.9 flag agrees with difflib on {100 * res['flag_agreement_with_difflib']:.1f}% of the slice; "
                  f"largest gap {res['max_gap_vs_difflib']:.3f} (ours ≥ difflib)")
        elif name == "minhash":
            print(f"  near-duplicate prompts (MinHash LSH, 128 perms, bands×rows {res['bands_rows']}), "
                  f"{res['prompts']:,} prompts: {res['ours_s']:.2f} s")
            print(f"  datasketch MinHash loop ({res['datasketch_slice']:,}-prompt slice scaled): "
                  f"{res['datasketch_loop_est_s']:.1f} s → ratio {res['speedup_vs_datasketch']:.1f}×")
            print(f"  found {res['near_clusters']:,} clusters, {res['near_duplicates']:,} near-duplicates")
        elif name == "audit":
            print(f"  whole audit without agreement, {res['pairs']:,} pairs + judgments: {res['total_s']:.2f} s")
            print("  by check: " + ", ".join(f"{k} {v:.2f}" for k, v in res["by_check_s"].items()))
        elif name == "agreement":
            print(f"  agreement summary, 5-point Likert, {res['judgments']:,} judgments on {res['items']:,} items: "
                  f"{res['coefficients']} coefficients with 1,000-resample bootstrap intervals, Cohen per judge "
                  f"pair, consensus, hardest items, clusters in {res['seconds']:.2f} s")
        else:
            for level in ("nominal", "ordinal", "interval"):
                r = res[level]
                print(f"  Krippendorff's alpha {level}, 5 × 200,000, 30% missing: ours {r['ours_s']:.3f} s, "
                      f"krippendorff {r['krippendorff_s']:.3f} s → ratio {r['speedup']:.1f}× (|Δ| {r['abs_diff']:.1e})")
        print(f"  peak memory of this part: {res['peak_mb']:.0f} MB; load average before: {res['load']:.1f}")


if __name__ == "__main__":
    main()
