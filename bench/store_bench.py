"""Import HH-RLHF at full scale into SQLite; print time, peak memory and the ratio to a naive ORM loop.

Run: ``PREFLAB_TEST_DATA=../shared/data .venv/bin/python bench/store_bench.py`` (``--copies 402`` gives the issue's 160,800 pairs;
``--distinct`` makes every copy a different conversation, the worst case for the store:
160,800 distinct prompts instead of 400). Each measurement runs in a fresh child process so
its peak memory (max RSS) is its own. Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hh_sample import hh_sample_path  # bench/ is on sys.path when a script here runs

HH_SAMPLE = hh_sample_path()  # $PREFLAB_TEST_DATA/hh-rlhf/…, see bench/hh_sample.py


def build_file(target: Path, copies: int, *, distinct: bool) -> int:
    """Write the sample repeated ``copies`` times to ``target``; return the number of pairs."""
    with gzip.open(HH_SAMPLE, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    n = 0
    with target.open("w", encoding="utf-8") as out:
        for k in range(copies):
            for row in rows:
                if distinct:
                    tag = f"\n\nHuman: [copy {k}] "
                    row = {
                        key: row[key].replace("\n\nHuman: ", tag, 1)
                        for key in ("chosen", "rejected")
                    }
                out.write(json.dumps(row) + "\n")
                n += 1
    return n


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu() -> float:
    """CPU seconds of this process (all threads): wall time without waiting for a busy CPU."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def phase_read(path: Path) -> dict[str, float]:
    from preflab.formats.registry import iter_read

    start, cpu = time.perf_counter(), _cpu()
    rows = sum(c.counts.get("rows", 0) for c in iter_read("hh-rlhf", path, chunk_size=10_000))
    return {
        "seconds": time.perf_counter() - start,
        "cpu": _cpu() - cpu,
        "rows": rows,
        "peak_mb": _peak_mb(),
    }


def phase_import(path: Path, db: Path, url: str | None = None) -> dict[str, float]:
    from preflab.formats.registry import iter_read
    from preflab.store.engine import open_workspace
    from preflab.store.imports import import_chunks

    engine = open_workspace(url or f"sqlite:///{db}")
    start, cpu = time.perf_counter(), _cpu()
    result = import_chunks(
        engine, iter_read("hh-rlhf", path, chunk_size=10_000), format="hh-rlhf", path=path
    )
    seconds, cpu = time.perf_counter() - start, _cpu() - cpu
    peak = _peak_mb()
    from preflab.store.queries import write_parquet_snapshot

    start, cpu_start = time.perf_counter(), _cpu()
    write_parquet_snapshot(engine, db.parent / "snapshot")
    snapshot, snapshot_cpu = time.perf_counter() - start, _cpu() - cpu_start
    engine.dispose()
    c = result.counts
    return {
        "seconds": seconds,
        "cpu": cpu,
        "rows": c["rows"],
        "prompts": c["prompts"],
        "responses": c["responses"],
        "judgments": c["judgments"],
        "peak_mb": peak,
        "db_mb": 0.0 if url else db.stat().st_size / 2**20,
        "snapshot_seconds": snapshot,
        "snapshot_cpu": snapshot_cpu,
        "snapshot_peak_mb": _peak_mb(),
    }


def phase_naive(path: Path, db: Path, limit: int) -> dict[str, float]:
    """The baseline: one ORM object per record, existence checked with get(), one commit."""
    import itertools

    from preflab.formats.registry import iter_read
    from preflab.store.engine import open_workspace
    from preflab.store.judgment_values import value_from_arrow
    from preflab.store.tables import JudgeRow, JudgmentRow, PromptRow, ResponseRow
    from preflab.store.unit_of_work import session_scope

    engine = open_workspace(f"sqlite:///{db}")
    start, cpu = time.perf_counter(), _cpu()
    rows = 0
    with session_scope(engine) as session:
        for chunk in itertools.islice(
            iter_read("hh-rlhf", path, chunk_size=1_000), max(1, limit // 1_000)
        ):
            rows += chunk.counts.get("rows", 0)
            for p in chunk.prompts.to_pylist():
                if session.get(PromptRow, p["prompt_id"]) is None:
                    session.add(
                        PromptRow(
                            prompt_id=p["prompt_id"],
                            messages=p["messages"],
                            source=p["source"],
                            tags=p["tags"] or [],
                            constraints=p["constraints"],
                            reference=p["reference"],
                        )
                    )
            for r in chunk.responses.to_pylist():
                if session.get(ResponseRow, r["response_id"]) is None:
                    session.add(
                        ResponseRow(
                            response_id=r["response_id"],
                            prompt_id=r["prompt_id"],
                            content=r["content"],
                            model=r["model"],
                            model_revision=r["model_revision"],
                            params=json.loads(r["params"] or "{}"),
                            origin=r["origin"] or "import",
                        )
                    )
            for j in chunk.judges.to_pylist():
                if session.get(JudgeRow, j["judge_id"]) is None:
                    session.add(JudgeRow(**{**j, "kind": j["kind"] or "imported"}))
            for j in chunk.judgments.to_pylist():
                if session.get(JudgmentRow, j["judgment_id"]) is None:
                    value = value_from_arrow(j["kind"], j[j["kind"]])
                    fields = {
                        k: v
                        for k, v in j.items()
                        if k not in ("pairwise", "ranking", "rating", "binary", "edit")
                    }
                    session.add(
                        JudgmentRow(**{**fields, "flags": fields["flags"] or [], "value": value})
                    )
    seconds, cpu = time.perf_counter() - start, _cpu() - cpu
    engine.dispose()
    return {"seconds": seconds, "cpu": cpu, "rows": rows, "peak_mb": _peak_mb()}


def _child(*args: str) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--copies", type=int, default=402, help="copies of the 400-pair sample (402 → 160,800)"
    )
    parser.add_argument(
        "--distinct", action="store_true", help="make every copy a different conversation"
    )
    parser.add_argument(
        "--baseline-rows", type=int, default=4_000, help="pairs the naive baseline imports"
    )
    parser.add_argument(
        "--pg",
        metavar="ADMIN_URL",
        help="also import into a fresh PostgreSQL database created through this server URL, "
        "e.g. postgresql://postgres@127.0.0.1:5432/test",
    )
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--phase", choices=["read", "import", "naive"], help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase == "read":
        print(json.dumps(phase_read(args.file)))
        return
    if args.phase == "import":
        print(json.dumps(phase_import(args.file, args.db, args.url)))
        return
    if args.phase == "naive":
        print(json.dumps(phase_naive(args.file, args.db, args.baseline_rows)))
        return

    with tempfile.TemporaryDirectory(prefix="preflab-store-bench-") as tmp:
        data = Path(tmp) / "hh-large.jsonl"
        pairs = build_file(data, args.copies, distinct=args.distinct)
        kind = "distinct copies" if args.distinct else "verbatim copies"
        mib = data.stat().st_size / 2**20
        print(
            f"input: {pairs:,} pairs ({args.copies} {kind} of the HH-RLHF sample), {mib:.0f} MiB of JSON lines"
        )
        print(
            f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
            "(wall times include waiting for a busy CPU; CPU times do not)"
        )
        read = _child("--phase", "read", "--file", str(data))
        print(_line("read only (hh-rlhf reader, no store)", read))
        ours = _child(
            "--phase", "import", "--file", str(data), "--db", str(Path(tmp) / "bulk.sqlite")
        )
        print(
            _line("import into SQLite (bulk, one txn)", ours)
            + f"   +{ours['prompts']:,} prompts, +{ours['responses']:,} responses, +{ours['judgments']:,} "
            f"judgments, database {ours['db_mb']:.0f} MiB; target <= 30 s"
        )
        snap = {
            "seconds": ours["snapshot_seconds"],
            "cpu": ours["snapshot_cpu"],
            "peak_mb": ours["snapshot_peak_mb"],
        }
        print(_line("Parquet snapshot of the store", snap))
        if args.pg:
            pg = _child_on_postgresql(args.pg, data, Path(tmp))
            print(
                _line("import into PostgreSQL (bulk, one txn)", pg)
                + f"   +{pg['judgments']:,} judgments"
            )
        naive_db = str(Path(tmp) / "naive.sqlite")
        naive = _child(
            "--phase",
            "naive",
            "--file",
            str(data),
            "--db",
            naive_db,
            "--baseline-rows",
            str(args.baseline_rows),
        )
        print(_line(f"naive ORM baseline, {int(naive['rows']):,} pairs", naive))
        factor = pairs / max(1, naive["rows"])
        wall, cpu = naive["seconds"] * factor, naive["cpu"] * factor
        print(f"naive ORM baseline scaled to {pairs:,} pairs: {wall:,.0f} s wall, {cpu:,.0f} s CPU")
        print(
            f"ratio naive / bulk: {wall / ours['seconds']:.1f}x wall, {cpu / ours['cpu']:.1f}x CPU; "
            f"store's share of the import CPU: {max(0.0, ours['cpu'] - read['cpu']):.1f} s"
        )


def _child_on_postgresql(admin_url: str, data: Path, tmp: Path) -> dict[str, float]:
    import uuid

    import psycopg

    name = f"preflab_bench_{uuid.uuid4().hex[:10]}"
    admin = admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = admin.rsplit("/", 1)[0] + f"/{name}"
        return _child(
            "--phase", "import", "--file", str(data), "--db", str(tmp / "unused"), "--url", url
        )
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _line(label: str, figures: dict[str, float]) -> str:
    return (
        f"{label:<40} {figures['seconds']:6.1f} s wall {figures['cpu']:6.1f} s CPU   "
        f"peak {figures['peak_mb']:5.0f} MiB"
    )


if __name__ == "__main__":
    main()
