"""A re-run answered wholly from the cache (plain sqlite3) reports what the job path reports.

Each test first runs the job for real against the loopback server, then compares
:func:`answer_from_cache` with what :func:`generate_candidates` says on the same re-run, and
checks the cases where the cache must not answer (the job path runs instead).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import delete, update

from preflab.generate.cache import open_engine
from preflab.generate.cached_rerun import answer_from_cache, sqlite_file
from preflab.generate.candidates import MixRule, generate_candidates, plan_candidates
from preflab.records import Message, Prompt
from preflab.store.tables import GenerationRequest, ResponseRow


def _prompts(*texts: str) -> list[Prompt]:
    return [Prompt(messages=(Message(role="user", content=t),), source="test") for t in texts]


def _same_as_job(fast: Any, job: Any) -> None:
    """Assert the cache's answer and the job path's re-run agree on everything they report."""
    a, b = fast.summary.to_json(), job.summary.to_json()
    a.pop("elapsed_s"), b.pop("elapsed_s")
    assert a == b
    assert [r.model_dump() for r in fast.responses] == [r.model_dump() for r in job.responses]
    assert (fast.merged, fast.empty, fast.failures) == (job.merged, job.empty, job.failures)
    assert fast.duplicates == job.duplicates
    assert fast.missing_on_policy == job.missing_on_policy


def test_rerun_from_the_cache_matches_the_job_rerun_and_calls_nothing(fake, sqlite_url) -> None:
    eps = {
        "ckpt": fake.endpoint("ckpt", model="org/ckpt", revision="step-5"),
        "other": fake.endpoint("other", model="org/other", params={"temperature": 0.7}),
    }
    prompts = _prompts("What is 2+2?", "Name a colour.", "Say hi.")
    mix = MixRule(on_policy="ckpt")
    engine = open_engine(sqlite_url)
    first = generate_candidates(engine, prompts, eps, n=2, mix=mix, seed=4)
    assert first.summary.done == 12
    calls = fake.total_calls()
    fast = answer_from_cache(sqlite_url, prompts, eps, n=2, mix=mix, seed=4)
    assert fast is not None
    assert fast.summary.cached == 12 and fast.summary.calls == 0
    job = generate_candidates(engine, prompts, eps, n=2, mix=mix, seed=4)
    _same_as_job(fast, job)
    assert fake.total_calls() == calls
    engine.dispose()


def test_merged_samples_and_duplicates_are_counted_alike(fake, sqlite_url) -> None:
    fake.script([{"pattern": "^same", "reply": "One answer for every seed."}])
    eps = {"m": fake.endpoint("m", model="org/m")}
    prompts = _prompts("same question", "another question")
    engine = open_engine(sqlite_url)
    generate_candidates(engine, prompts, eps, n=3)
    fast = answer_from_cache(sqlite_url, prompts, eps, n=3)
    job = generate_candidates(engine, prompts, eps, n=3)
    assert fast is not None and fast.merged == 2
    _same_as_job(fast, job)
    engine.dispose()


def test_a_failed_request_leaves_the_rerun_to_the_job(fake, sqlite_url) -> None:
    eps = {"m": fake.endpoint("m", model="org/m", max_attempts=1)}
    prompts = _prompts("fine", "broken [[fault:400]]")
    engine = open_engine(sqlite_url)
    assert generate_candidates(engine, prompts, eps).summary.failed == 1
    assert answer_from_cache(sqlite_url, prompts, eps) is None
    engine.dispose()


def test_a_pending_request_leaves_the_rerun_to_the_job(fake, sqlite_url) -> None:
    eps = {"m": fake.endpoint("m", model="org/m")}
    prompts = _prompts("one", "two")
    engine = open_engine(sqlite_url)
    generate_candidates(engine, prompts, eps)
    key = plan_candidates(prompts, eps)[0].key
    with engine.begin() as conn:  # as a job killed mid-way leaves it
        conn.execute(
            update(GenerationRequest)
            .where(GenerationRequest.request_key == key)
            .values(status="pending", result=None)
        )
    assert answer_from_cache(sqlite_url, prompts, eps) is None
    engine.dispose()


def test_a_request_never_made_leaves_the_rerun_to_the_job(fake, sqlite_url) -> None:
    eps = {"m": fake.endpoint("m", model="org/m")}
    engine = open_engine(sqlite_url)
    generate_candidates(engine, _prompts("one"), eps)
    assert answer_from_cache(sqlite_url, _prompts("one", "new"), eps) is None
    assert answer_from_cache(sqlite_url, _prompts("one"), eps, n=2) is None
    engine.dispose()


def test_responses_not_stored_leave_the_rerun_to_the_job_which_stores_them(
    fake, sqlite_url
) -> None:
    eps = {"m": fake.endpoint("m", model="org/m")}
    prompts = _prompts("one", "two")
    engine = open_engine(sqlite_url)
    generate_candidates(engine, prompts, eps)
    with engine.begin() as conn:  # as a job that died after its replies, before its writes
        conn.execute(delete(ResponseRow))
    assert answer_from_cache(sqlite_url, prompts, eps) is None
    job = generate_candidates(engine, prompts, eps)
    assert job.summary.calls == 0 and len(job.responses) == 2
    assert answer_from_cache(sqlite_url, prompts, eps) is not None
    engine.dispose()


def test_another_database_or_no_file_leaves_the_rerun_to_the_job(fake, tmp_path: Path) -> None:
    eps = {"m": fake.endpoint("m", model="org/m")}
    prompts = _prompts("one")
    assert answer_from_cache("postgresql+psycopg://127.0.0.1:5432/test", prompts, eps) is None
    assert answer_from_cache(f"sqlite:///{tmp_path / 'none.sqlite'}", prompts, eps) is None
    assert sqlite_file("sqlite:///:memory:") is None
    assert fake.total_calls() == 0


def test_cli_rerun_loads_neither_the_store_nor_arrow_nor_a_client(
    fake, tmp_path: Path, sqlite_url
) -> None:
    eps = tmp_path / "eps.yaml"
    eps.write_text(f"endpoints:\n  - {{name: m, base_url: '{fake.base_url}', model: org/m}}\n")
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "one"}\n{"prompt": "two"}\n')
    argv = [
        "generate",
        "candidates",
        "--endpoints",
        str(eps),
        "--prompts",
        str(prompts),
        "-n",
        "2",
        "--database-url",
        sqlite_url,
        "--json",
    ]
    code = (
        "import sys\n"
        "from preflab.cli.main import main\n"
        f"main({argv!r})\n"
        "heavy = ('sqlalchemy', 'pyarrow', 'numpy', 'aiohttp', 'openai')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))\n"
    )

    def run() -> list[str]:
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip().splitlines()

    first = run()
    assert first[-1] != "[]"  # the job ran: store, client and all
    again = run()
    assert again[-1] == "[]"
    assert '"cached": 4' in "\n".join(again) and '"calls": 0' in "\n".join(again)
    assert fake.total_calls() == 4
