"""HH-RLHF import at full scale into Parquet record tables: time, peak memory, ratio to a json loop.

Builds 160,800 pairs by repeating the shared 400-pair HH-RLHF sample 402 times (written to a
temporary directory, plain JSON lines), then in this one process:

1. baseline: a plain ``for line in file: json.loads(line)`` loop over the same file;
2. preflab: ``iter_read("hh-rlhf", …)`` chunk by chunk, each chunk's prompts, responses,
   judgments and judges appended to four Parquet files (written under temporary names and renamed
   at the end, so no half-written output is left behind).

Prints wall and CPU times (CPU time is steadier on a shared machine), rows per second,
the ratio preflab / baseline, output sizes and the peak
resident memory of the process (``resource.getrusage``). Nothing is asserted.

Usage::

    PREFLAB_TEST_DATA=../shared/data .venv/bin/python bench/import_bench.py [--repeat 402] [--chunk-size 10000] [--gzip]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from hh_sample import hh_sample_path  # bench/ is on sys.path when a script here runs

from preflab.formats.registry import iter_read, open_text
from preflab.records import JUDGE_SCHEMA, JUDGMENT_SCHEMA, PROMPT_SCHEMA, RESPONSE_SCHEMA

SAMPLE = hh_sample_path()  # $PREFLAB_TEST_DATA/hh-rlhf/…, see bench/hh_sample.py


def build_input(directory: Path, repeat: int, compress: bool = False) -> tuple[Path, int]:
    """Write the sample repeated ``repeat`` times as JSON lines (gzip when ``compress``)."""
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as f:
        lines = [line if line.endswith("\n") else line + "\n" for line in f if line.strip()]
    path = directory / ("hh-repeated.jsonl.gz" if compress else "hh-repeated.jsonl")
    block = "".join(lines).encode("utf-8")
    with open(path, "wb") as raw:
        out: Any = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1) if compress else raw
        for _ in range(repeat):
            out.write(block)
        if compress:
            out.close()
    return path, len(lines) * repeat


def run_baseline(path: Path) -> tuple[float, float, int]:
    """Time a plain json.loads loop over ``path``: wall seconds, CPU seconds, rows.

    The file is opened with the same ``open_text`` as the reader, so decompression counts in
    both figures.
    """
    start, cpu = time.perf_counter(), time.process_time()
    n = 0
    with open_text(path) as f:
        for line in f:
            json.loads(line)
            n += 1
    return time.perf_counter() - start, time.process_time() - cpu, n


def run_import(path: Path, out_dir: Path, chunk_size: int) -> tuple[float, float, dict[str, int]]:
    """Read ``path`` with the HH-RLHF reader and write the record tables to Parquet."""
    schemas = {
        "prompts": PROMPT_SCHEMA,
        "responses": RESPONSE_SCHEMA,
        "judgments": JUDGMENT_SCHEMA,
        "judges": JUDGE_SCHEMA,
    }
    start, cpu = time.perf_counter(), time.process_time()
    writers = {
        name: pq.ParquetWriter(out_dir / f".{name}.parquet.tmp", schema)
        for name, schema in schemas.items()
    }
    counts: dict[str, int] = {}
    try:
        for chunk in iter_read("hh-rlhf", path, chunk_size=chunk_size):
            for name, writer in writers.items():
                table = getattr(chunk, name)
                if table.num_rows:
                    writer.write_table(table)
            for key, n in chunk.counts.items():
                counts[key] = counts.get(key, 0) + n
    finally:
        for writer in writers.values():
            writer.close()
    for name in schemas:
        os.replace(out_dir / f".{name}.parquet.tmp", out_dir / f"{name}.parquet")
    return time.perf_counter() - start, time.process_time() - cpu, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=402)
    parser.add_argument("--chunk-size", type=int, default=10_000)
    parser.add_argument("--gzip", action="store_true", help="read a gzip-compressed input")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="preflab-bench-") as tmp:
        tmp_path = Path(tmp)
        path, rows = build_input(tmp_path, args.repeat, compress=args.gzip)
        size_mb = path.stat().st_size / 1e6
        print(
            f"input: {rows:,} HH-RLHF pairs ({args.repeat} x the 400-pair sample), "
            f"{size_mb:.0f} MB {path.name}; python {sys.version.split()[0]}, "
            f"{os.cpu_count()} CPUs"
        )
        base_s, base_cpu, n = run_baseline(path)
        print(
            f"baseline json.loads loop : {base_s:6.2f} s wall, {base_cpu:6.2f} s CPU  "
            f"({n / base_s:,.0f} rows/s)"
        )
        out_dir = tmp_path / "out"
        out_dir.mkdir()
        imp_s, imp_cpu, counts = run_import(path, out_dir, args.chunk_size)
        print(
            f"hh-rlhf -> Parquet tables: {imp_s:6.2f} s wall, {imp_cpu:6.2f} s CPU  "
            f"({rows / imp_s:,.0f} rows/s)  [target <= 10 s]"
        )
        print(
            f"ratio import / baseline  : {imp_s / base_s:6.1f}x wall, {imp_cpu / base_cpu:.1f}x CPU"
        )
        print(
            f"load average (1 min)     : {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs "
            "(other processes slow the wall time)"
        )
        sizes = {p.stem: p.stat().st_size / 1e6 for p in sorted(out_dir.glob("*.parquet"))}
        print(
            "records: "
            + ", ".join(
                f"{k}={counts.get(k, 0):,}"
                for k in ("rows", "prompts", "responses", "judgments", "judges")
            )
        )
        print(
            "dropped: "
            + ", ".join(f"{k}={v:,}" for k, v in sorted(counts.items()) if k.startswith("dropped_"))
        )
        print("parquet MB: " + ", ".join(f"{k}={v:.1f}" for k, v in sizes.items()))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS (whole process) : {peak_mb:,.0f} MB  [target <= 2048 MB]")


if __name__ == "__main__":
    main()
