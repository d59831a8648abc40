"""What the job tests share: chat requests, and a ``preflab generate candidates`` run to kill -9.

A kill test writes an endpoints file and ``n`` prompts, starts the command in a subprocess,
kills it hard once it has got far enough, runs it again, and checks that every item ended with
exactly one result.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from preflab.generate.jobs import ChatRequest, make_request
from preflab.store.tables import GenerationRequest, ResponseRow


def chat_requests(ep: Any, texts: Sequence[str], seed: int = 1) -> list[ChatRequest]:
    """Return one single-turn user request per text on endpoint ``ep``."""
    return [make_request(ep, [{"role": "user", "content": t}], seed=seed) for t in texts]


def candidates_command(
    tmp_path: Path, endpoint: dict[str, Any], n_items: int, db_url: str, *extra: str
) -> tuple[Path, list[str]]:
    """Write ``endpoint`` (as the file's one endpoint) and ``n_items`` prompts; return the
    endpoints file and the ``preflab generate candidates --json`` command over them."""
    eps = tmp_path / "endpoints.json"
    eps.write_text(json.dumps([endpoint]))
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"item {i}"}) + "\n" for i in range(n_items)))
    cmd = [
        sys.executable,
        "-m",
        "preflab.cli.main",
        "generate",
        "candidates",
        "--endpoints",
        str(eps),
        "--prompts",
        str(prompts),
        "--database-url",
        db_url,
        "--json",
        *extra,
    ]
    return eps, cmd


def start_until(cmd: list[str], ready: Callable[[], bool], what: str) -> subprocess.Popen[bytes]:
    """Start ``cmd`` and return it once ``ready()`` holds (failing with ``what`` after 60 s)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not ready():
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, what
        time.sleep(0.05)
    return proc


def kill_hard(proc: subprocess.Popen[bytes]) -> None:
    """Kill ``proc`` with SIGKILL and check that this is how it ended."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    if proc.stderr is not None:
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL


def rerun(cmd: list[str]) -> dict[str, Any]:
    """Run ``cmd`` to its end and return the summary of its first job."""
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout)["jobs"][0])


def assert_one_result_per_item(engine: Engine, n_items: int) -> None:
    """Check that each of ``n_items`` requests is done and has exactly one stored response."""
    with engine.connect() as conn:
        statuses = conn.execute(select(GenerationRequest.status)).scalars().all()
        answered = conn.execute(select(ResponseRow.prompt_id)).scalars().all()
    assert statuses == ["done"] * n_items
    assert len(answered) == len(set(answered)) == n_items
