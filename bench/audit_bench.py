"""Speed of the audit at HH-RLHF scale (issue 3, "Speed"). Prints figures; asserts nothing.

Data: the real HH-RLHF sample (``$PREFLAB_TEST_DATA/hh-rlhf/…``, 399 pairs after import) repeated to 160,800 pairs.
For prompt near-duplicate detection each copy gets one word changed at a random place, so
all 160,800 prompts are distinct texts and MinHash really runs on every one of them.

Each part runs in its own process so its peak memory (ru_maxrss) is its own. The ``cli`` part
writes the sample repeated to ``--pairs`` lines and runs ``preflab audit hh-rlhf FILE --json``
as a subprocess (wall, CPU and peak RSS of the child from ``RUSAGE_CHILDREN``; issue 15).
``--pairs 1600000`` runs only the whole audit, at 10× and at today's 160,800 pairs, and prints
the ratio (issue 15: under 10× the time and 4 GiB):

    PREFLAB_TEST_DATA=../shared/data .venv/bin/python bench/audit_bench.py   # all parts
    PREFLAB_TEST_DATA=../shared/data .venv/bin/python bench/audit_bench.py --part similarity
    PREFLAB_TEST_DATA=../shared/data .venv/bin/python bench/audit_bench.py --pairs 1600000
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

BASE_PAIRS = 160_800  # today's bench size (issue 3); --pairs scales the whole audit from it
N_PAIRS = BASE_PAIRS
SAMPLE = hh_sample_path()  # $PREFLAB_TEST_DATA/hh-rlhf/…, see bench/hh_sample.py


def _set_pairs(n: int) -> None:
    global N_PAIRS
    N_PAIRS = n


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _load() -> tuple[pl.DataFrame, Any]:
    from preflab.audit import pairs_from_judgments
    from preflab.formats.registry import read

    chunk = read("hh-rlhf", SAMPLE)
    pairs = pairs_from_judgments(chunk.judgments, chunk.responses, chunk.prompts)
    idx = np.arange(N_PAIRS) % pairs.height
    return pairs[idx.tolist()], chunk


def _perturbed_prompts(pairs: pl.DataFrame, block: int = 50_000) -> pl.Series:
    """Return each prompt with one word changed (a block of Python strings at a time)."""
    from preflab.audit.duplicates import prompt_text

    rng = np.random.default_rng(0)
    parts = []
    for lo in range(0, pairs.height, block):
        out = []
        for i, text in enumerate(prompt_text(pairs.slice(lo, block)).to_list(), start=lo):
            words = text.split(" ")
            k = int(rng.integers(len(words)))
            words[k] = f"{words[k]}v{i}"
            out.append(" ".join(words))
        parts.append(pl.Series("prompt", out, dtype=pl.String))
    return pl.concat(parts) if parts else pl.Series("prompt", [], dtype=pl.String)


def part_similarity() -> dict[str, Any]:
    from preflab.audit.duplicates import near_duplicate_pairs, prompt_text

    pairs, _ = _load()
    t0 = time.perf_counter()
    near_duplicate_pairs(pairs)  # the sample's 399 distinct response pairs, repeated
    t_resp = time.perf_counter() - t0
    # every transcript a distinct text (one prompt word changed per copy), so that work done
    # once per distinct pair saves nothing here and the ratio to difflib stays honest
    pairs = pairs.with_columns(_perturbed_prompts(pairs))
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
    texts = _perturbed_prompts(pairs).to_list()
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
    pairs = pairs.drop("prompt_id").with_columns(_perturbed_prompts(pairs))
    t0, c0 = time.perf_counter(), time.process_time()
    report = audit_dataset(pairs, judgments, include_agreement=False)
    total, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"pairs": N_PAIRS, "total_s": total, "cpu_s": cpu, "by_check_s": report["timings"],
            "peak_mb": _peak_mb()}


def part_cli() -> dict[str, Any]:
    """``preflab audit hh-rlhf FILE --json`` as a user runs it, in a child process of this one."""
    import gzip
    import tempfile
    from pathlib import Path

    with gzip.open(SAMPLE, "rb") as f:
        block = b"".join(line if line.endswith(b"\n") else line + b"\n" for line in f if line.strip())
    lines = block.count(b"\n")
    copies = max(1, round(N_PAIRS / lines))
    exe = Path(sys.executable).with_name("preflab")
    with tempfile.TemporaryDirectory(prefix="audit-bench-") as tmp:
        path = Path(tmp) / "hh-repeated.jsonl"
        with open(path, "wb") as out:
            out.writelines(block for _ in range(copies))
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run([str(exe), "audit", "hh-rlhf", str(path), "--json"], capture_output=True, check=True)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    report = json.loads(proc.stdout)
    return {"lines": lines * copies, "pairs": report["pairs"], "wall_s": wall,
            "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "child_peak_mb": after.ru_maxrss / 1024.0, "findings": len(report["findings"]),
            "by_check_s": report.get("timings", {})}


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


PARTS = {"cli": part_cli, "similarity": part_similarity, "minhash": part_minhash, "audit": part_audit, "alpha": part_alpha,
         "agreement": part_agreement}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=sorted(PARTS), help="run one part in this process")
    parser.add_argument("--pairs", type=int, default=BASE_PAIRS,
                        help="pairs in the repeated sample (160,800 = today's bench; 1,600,000 = 10×)")
    args = parser.parse_args()
    _set_pairs(args.pairs)
    if args.part:
        load = os.getloadavg()[0]
        print(json.dumps({**PARTS[args.part](), "load": load}))
        return
    print(f"{os.cpu_count()} CPUs; 1-minute load average {os.getloadavg()[0]:.1f} "
          "(other processes share the machine: figures scale with the load)")
    runs = [(name, BASE_PAIRS) for name in ("cli", "similarity", "minhash", "audit", "alpha", "agreement")]
    if args.pairs != BASE_PAIRS:  # the whole audit scaled up, beside today's size in the same run
        runs = [("audit", BASE_PAIRS), ("audit", args.pairs)]
    audit_runs: dict[int, dict[str, Any]] = {}
    for name, n in runs:
        proc = subprocess.run([sys.executable, __file__, "--part", name, "--pairs", str(n)],
                              capture_output=True, text=True, check=True)
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"== {name}" + (f" ({n:,} pairs)" if name == "audit" else ""))
        if name == "cli":
            print(f"  preflab audit hh-rlhf FILE --json as a subprocess, {res['lines']:,} lines "
                  f"({res['pairs']:,} pairs): wall {res['wall_s']:.2f} s, CPU {res['cpu_s']:.2f} s, "
                  f"peak RSS {res['child_peak_mb']:.0f} MB (goal ≤ 5 s, ≤ 1,024 MB)")
            print("  checks inside (s): " + ", ".join(f"{k} {v:.2f}" for k, v in res["by_check_s"].items()))
            res["peak_mb"] = res["child_peak_mb"]
        elif name == "similarity":
            print(f"  chosen/rejected similarity, {res['pairs']:,} pairs: responses {res['responses_s']:.2f} s "
                  f"(399 distinct pairs repeated), whole transcripts {res['transcripts_s']:.2f} s "
                  "(every transcript distinct)")
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
            print(f"  whole audit without agreement, {res['pairs']:,} pairs + judgments: {res['total_s']:.2f} s "
                  f"(CPU {res['cpu_s']:.1f} s, all threads)")
            print("  by check: " + ", ".join(f"{k} {v:.2f}" for k, v in res["by_check_s"].items()))
            audit_runs[n] = res
            if len(audit_runs) == 2:
                small, big = audit_runs[BASE_PAIRS], audit_runs[args.pairs]
                scale = args.pairs / BASE_PAIRS
                print(f"  {scale:.1f}× the pairs: {big['total_s'] / small['total_s']:.1f}× the time "
                      f"({big['cpu_s'] / small['cpu_s']:.1f}× the CPU) "
                      f"(goal < {scale:.0f}×), peak {big['peak_mb']:.0f} MB vs {small['peak_mb']:.0f} MB "
                      "(goal < 4,096 MB)")
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
