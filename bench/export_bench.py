"""Export speed: 160,800 HH-RLHF pairs (the shared sample repeated) → TRL Parquet.

Each variant runs in its own child process so that its peak RSS is its own:

- ``ours``: ``write_trl_preference`` (validation, conversion, per-split Parquet, card), in the
  standard and the conversational style;
- ``derive``: the same judgments → pairs with ``derive`` + ``assign_splits`` (the step before);
- ``baseline``: a plain Python loop building one dict per pair and ``json.dumps``-ing it to a
  JSONL file (no validation, no splits, no card) — what a hand-written script would do.

Prints wall time, peak RSS and the ratio baseline / ours. Run:
``PREFLAB_TEST_DATA=../shared/data .venv/bin/python bench/export_bench.py`` (``--copies`` to change the size; 403 copies of
the 399 valid sample pairs ≈ 160,800). Target (issue 2): export ≤ 10 s, peak ≤ 2 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from hh_sample import hh_sample_path  # bench/ is on sys.path when a script here runs

HH = hh_sample_path()  # $PREFLAB_TEST_DATA/hh-rlhf/…, see bench/hh_sample.py


def _suffix(col: pa.ChunkedArray | pa.Array, tag: str) -> pa.Array:
    return pc.binary_join_element_wise(col, pa.scalar(tag), "")


def repeat_records(copies: int) -> tuple[pa.Table, pa.Table, pa.Table]:
    """Return prompts/responses/judgments of the HH sample repeated with distinct ids per copy."""
    from preflab.formats.registry import read

    chunk = read("hh-rlhf", HH)
    prompts, responses, judgments = [], [], []
    for k in range(copies):
        tag = f"-{k}"
        prompts.append(chunk.prompts.set_column(0, "prompt_id", _suffix(chunk.prompts.column(0), tag)))
        r = chunk.responses
        r = r.set_column(0, "response_id", _suffix(r.column("response_id"), tag))
        r = r.set_column(1, "prompt_id", _suffix(r.column("prompt_id"), tag))
        responses.append(r)
        j = chunk.judgments
        ids = j.column("response_ids").combine_chunks()
        new_ids = pa.ListArray.from_arrays(ids.offsets, _suffix(ids.values, tag))
        pw = j.column("pairwise").combine_chunks()
        new_pw = pa.StructArray.from_arrays(
            [pw.field(i) if pw.type.field(i).name != "preferred" else _suffix(pw.field(i), tag)
             for i in range(pw.type.num_fields)],
            fields=list(pw.type),
        )
        j = j.set_column(0, "judgment_id", _suffix(j.column("judgment_id"), tag))
        j = j.set_column(1, "prompt_id", _suffix(j.column("prompt_id"), tag))
        j = j.set_column(j.schema.get_field_index("response_ids"), j.schema.field("response_ids"), new_ids)
        j = j.set_column(j.schema.get_field_index("pairwise"), j.schema.field("pairwise"), new_pw)
        judgments.append(j)
    return pa.concat_tables(prompts), pa.concat_tables(responses), pa.concat_tables(judgments)


def pair_table(copies: int) -> pa.Table:
    """Return the derived pairs of the sample, repeated with distinct prompt ids per copy."""
    from preflab.derive import assign_splits, derive
    from preflab.formats.registry import read

    chunk = read("hh-rlhf", HH)
    pairs = derive(chunk.prompts, chunk.responses, chunk.judgments).pairs
    parts = [pairs.set_column(0, "prompt_id", _suffix(pairs.column(0), f"-{k}")) for k in range(copies)]
    return assign_splits(pa.concat_tables(parts).combine_chunks())


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_variant(variant: str, copies: int, out: Path) -> dict[str, float]:
    """Run one variant in this process; return its figures."""
    if variant == "derive":
        tables = repeat_records(copies)
        before = peak_rss_mib()
        from preflab.derive import assign_splits, derive

        start, cpu = time.perf_counter(), time.process_time()
        result = derive(*tables)
        assign_splits(result.pairs)
        seconds = time.perf_counter() - start
        return {"rows": result.pairs.num_rows, "seconds": seconds, "cpu": time.process_time() - cpu,
                "peak_rss_mib": peak_rss_mib(), "rss_before_mib": before}
    pairs = pair_table(copies)
    before = peak_rss_mib()
    start, cpu = time.perf_counter(), time.process_time()
    if variant.startswith("ours"):
        from preflab.formats.trl import write_trl_preference

        style = variant.split("-", 1)[1]
        write_trl_preference(pairs, out, style=style)  # type: ignore[arg-type]
    else:  # the plain json loop
        with open(out.with_suffix(".jsonl"), "w", encoding="utf-8") as f:
            f.writelines(json.dumps({"prompt": row["prompt"], "chosen": row["chosen"],
                                    "rejected": row["rejected"]}, ensure_ascii=False) + "\n" for row in pairs.select(["prompt", "chosen", "rejected"]).to_pylist())
    seconds = time.perf_counter() - start
    return {"rows": pairs.num_rows, "seconds": seconds, "cpu": time.process_time() - cpu,
            "peak_rss_mib": peak_rss_mib(), "rss_before_mib": before}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=403)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.copies, Path(args.out))))
        return
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        for variant in ("ours-standard", "ours-conversational", "baseline", "derive"):
            proc = subprocess.run(
                [sys.executable, __file__, "--variant", variant, "--copies", str(args.copies),
                 "--out", str(Path(tmp) / variant)],
                capture_output=True, text=True, check=True,
            )
            figures[variant] = json.loads(proc.stdout.strip().splitlines()[-1])
    load = os.getloadavg()[0]
    print(f"load average at start: {load:.1f} on {os.cpu_count()} CPUs (wall time suffers when it is high)")
    print(f"{'variant':<22}{'rows':>10}{'wall s':>9}{'CPU s':>8}{'peak RSS MiB':>14}{'RSS before':>12}")
    for name, f in figures.items():
        print(f"{name:<22}{int(f['rows']):>10,}{f['seconds']:>9.2f}{f['cpu']:>8.2f}{f['peak_rss_mib']:>14.0f}"
              f"{f['rss_before_mib']:>12.0f}")
    for name in ("ours-standard", "ours-conversational"):
        wall = figures["baseline"]["seconds"] / figures[name]["seconds"]
        cpu = figures["baseline"]["cpu"] / figures[name]["cpu"]
        print(f"ratio baseline / {name}: {wall:.2f}x wall, {cpu:.2f}x CPU")


if __name__ == "__main__":
    main()
