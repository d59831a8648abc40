"""A process killed in the middle of importing a big HH-RLHF file leaves nothing; a re-import works."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from preflab.formats.registry import iter_read
from preflab.store.engine import make_engine
from preflab.store.imports import import_chunks
from preflab.store.migrate import upgrade_to_head
from preflab.store.queries import count_rows

SCRIPT = textwrap.dedent(
    """
    import sys

    from preflab.formats.registry import iter_read
    from preflab.store.engine import make_engine
    from preflab.store.imports import import_chunks

    written = 0


    def report(chunk):
        global written
        written += 1
        print(f"written {written}", flush=True)


    engine = make_engine(sys.argv[1])
    chunks = iter_read("hh-rlhf", sys.argv[2], chunk_size=500)
    import_chunks(engine, chunks, format="hh-rlhf", path=sys.argv[2], on_chunk=report)
    print("finished", flush=True)
    """
)
COPIES = 25  # 10,000 distinct conversations


def _write_big_file(hh_sample: Path, target: Path) -> None:
    with gzip.open(hh_sample, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    with target.open("w", encoding="utf-8") as out:
        for copy in range(COPIES):
            for row in rows:
                tagged = {
                    k: row[k].replace("Human: ", f"Human: [{copy}] ", 1)
                    for k in ("chosen", "rejected")
                }
                out.write(json.dumps(tagged) + "\n")


@pytest.mark.slow
def test_import_killed_midway_leaves_zero_rows_and_reimport_works(
    db_url: str, tmp_path: Path, hh_sample: Path
) -> None:
    engine = make_engine(db_url)
    upgrade_to_head(engine)
    source = tmp_path / "big.jsonl"
    _write_big_file(hh_sample, source)
    script = tmp_path / "importer.py"
    script.write_text(SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script), db_url, str(source)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().strip() for _ in range(3)]
        assert ["written 1", "written 2", "written 3"] == lines, (
            proc.stderr.read() if proc.stderr else ""
        )
        os.kill(proc.pid, signal.SIGKILL)
        assert -signal.SIGKILL == proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()

    counts = count_rows(engine)
    assert {0} == set(counts.values()), counts

    result = import_chunks(engine, iter_read("hh-rlhf", source), format="hh-rlhf", path=source)
    assert not result.already_imported
    dropped = result.counts["dropped_empty_response"]  # one row of the sample has an empty answer
    assert (COPIES, 400 * COPIES - COPIES) == (dropped, count_rows(engine)["judgments"])
    assert 1 == count_rows(engine)["imports"]
    engine.dispose()
