"""Jobs: the request cache, failures recorded with reasons, dry runs, and resume after kill -9."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from preflab.generate.cache import open_engine
from preflab.generate.jobs import make_request, run_job
from preflab.store.tables import GenerationRequest, JobRow
from tests.generate.job_runs import (
    assert_one_result_per_item,
    candidates_command,
    chat_requests,
    kill_hard,
    rerun,
    start_until,
)


def test_rerun_of_a_finished_job_makes_no_call(fake, db_url) -> None:
    ep = fake.endpoint()
    engine = open_engine(db_url)
    reqs = chat_requests(ep, [f"question {i}" for i in range(12)])
    first = run_job(engine, {"fake": ep}, reqs)
    calls = fake.total_calls()
    second = run_job(engine, {"fake": ep}, reqs)
    assert (first.summary.done, first.summary.cached) == (12, 0)
    assert (second.summary.done, second.summary.cached, second.summary.calls) == (0, 12, 0)
    assert fake.total_calls() == calls == 12
    assert second.replies == first.replies
    engine.dispose()


def test_failed_request_is_stored_with_its_reason_and_retried_when_asked(fake, db_url) -> None:
    ep = fake.endpoint(max_attempts=2)
    engine = open_engine(db_url)
    reqs = chat_requests(ep, ["fine", "broken [[fault:500:2]]"])
    first = run_job(engine, {"fake": ep}, reqs)
    assert (first.summary.done, first.summary.failed) == (1, 1)
    with engine.connect() as conn:
        row = conn.execute(
            select(GenerationRequest).where(GenerationRequest.request_key == reqs[1].key)
        ).one()
    assert row.status == "failed"
    assert "HTTP 500" in row.error and row.attempts == 2
    # a plain re-run leaves it failed and says so
    kept = run_job(engine, {"fake": ep}, reqs)
    assert (kept.summary.calls, kept.summary.failed, kept.summary.failed_earlier) == (0, 1, 1)
    # the fault clears after two calls: the re-run asked to retry calls only the failed request
    second = run_job(engine, {"fake": ep}, reqs, retry_failed=True)
    assert (second.summary.done, second.summary.cached, second.summary.failed) == (1, 1, 0)
    assert second.summary.failed_earlier == 0
    assert fake.calls() == {"fake-model|1|fine": 1, "fake-model|1|broken [[fault:500:2]]": 3}
    engine.dispose()


def test_failed_requests_are_kept_by_default(fake, sqlite_url) -> None:
    ep = fake.endpoint(max_attempts=1)
    engine = open_engine(sqlite_url)
    reqs = chat_requests(ep, ["broken [[fault:500:1]]"])
    run_job(engine, {"fake": ep}, reqs)
    again = run_job(engine, {"fake": ep}, reqs)
    assert again.summary.failed == 1 and again.summary.calls == 0
    assert again.summary.failed_earlier == 1
    assert "HTTP 500" in again.failures[reqs[0].key]


def test_dry_run_calls_nothing_and_writes_nothing(fake, sqlite_url) -> None:
    ep = fake.endpoint()
    engine = open_engine(sqlite_url)
    reqs = chat_requests(ep, ["a", "b", "c"])
    run_job(engine, {"fake": ep}, reqs[:1])
    result = run_job(engine, {"fake": ep}, reqs, dry_run=True)
    assert result.summary.planned == {"fake": 2}
    assert result.summary.cached == 1
    assert fake.total_calls() == 1
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(GenerationRequest)).scalar() == 1


def test_same_request_twice_in_a_job_is_called_once(fake, sqlite_url) -> None:
    ep = fake.endpoint()
    engine = open_engine(sqlite_url)
    reqs = chat_requests(ep, ["same", "same", "other"])
    result = run_job(engine, {"fake": ep}, reqs)
    assert result.summary.total == 2
    assert fake.calls() == {"fake-model|1|same": 1, "fake-model|1|other": 1}


def test_tokens_are_counted_per_job(fake, sqlite_url) -> None:
    ep = fake.endpoint()
    engine = open_engine(sqlite_url)
    result = run_job(engine, {"fake": ep}, chat_requests(ep, ["one two", "three"]))
    # prompt tokens = words of the prompt; completion = words of "echo[...]: <prompt>"
    assert (result.summary.prompt_tokens, result.summary.completion_tokens) == (3, 5)
    with engine.connect() as conn:
        job = conn.execute(select(JobRow)).one()
    assert job.status == "done" and job.job_id == result.summary.job_id


def test_seed_and_params_are_part_of_the_key(fake, sqlite_url) -> None:
    ep = fake.endpoint()
    a = make_request(ep, [{"role": "user", "content": "x"}], seed=1)
    b = make_request(ep, [{"role": "user", "content": "x"}], seed=2)
    c = make_request(ep, [{"role": "user", "content": "x"}], {"temperature": 0.3}, seed=1)
    assert len({a.key, b.key, c.key}) == 3


def test_concurrency_limit_is_respected(start_server, sqlite_url) -> None:
    server = start_server(delay=0.05)
    ep = server.endpoint(concurrency=3)
    result = run_job(
        open_engine(sqlite_url), {"fake": ep}, chat_requests(ep, [f"q{i}" for i in range(24)])
    )
    assert result.summary.done == 24
    assert server.max_inflight() == 3


def test_replicas_share_the_load_and_the_cache_key(start_server, sqlite_url) -> None:
    one, two = start_server(delay=0.05), start_server(delay=0.05)
    single = one.endpoint(concurrency=2)
    ep = one.endpoint(concurrency=2, replicas=[two.base_url])
    reqs = chat_requests(ep, [f"q{i}" for i in range(30)])
    alone = chat_requests(single, [f"q{i}" for i in range(30)])
    assert [r.key for r in reqs] == [r.key for r in alone]
    result = run_job(open_engine(sqlite_url), {"fake": ep}, reqs)
    assert result.summary.done == 30
    assert one.total_calls() > 0 and two.total_calls() > 0
    assert one.total_calls() + two.total_calls() == 30
    assert max(one.max_inflight(), two.max_inflight()) == 2


def test_rate_limiter_spaces_requests() -> None:
    import asyncio

    from preflab.generate.endpoints import RateLimiter

    now = [100.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(round(seconds, 6))

    limiter = RateLimiter(10, clock=lambda: now[0], sleep=sleep)

    async def go() -> None:
        for _ in range(5):
            await limiter.wait()
        now[0] += 2.0  # idle long enough: the next call goes at once
        await limiter.wait()

    asyncio.run(go())
    assert slept == [0.1, 0.2, 0.3, 0.4]


def _done_rows(engine):
    with engine.connect() as conn:
        rows = conn.execute(
            select(GenerationRequest.request_key, GenerationRequest.request).where(
                GenerationRequest.status == "done"
            )
        ).all()
    return {r.request_key: r.request for r in rows}


def _server_key(request: dict) -> str:
    return f"killtest-model|{request['seed']}|{request['messages'][-1]['content']}"


def _processes_running(marker: str) -> list[int]:
    """Return the pids whose command line contains ``marker`` (the job and its workers)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            pids.append(int(entry.name))
    return pids


@pytest.mark.slow
@pytest.mark.parametrize("processes", [1, 2])
def test_job_killed_mid_run_resumes_without_repeating_done_calls(
    tmp_path: Path, db_url: str, start_server, processes: int
) -> None:
    server = start_server(delay=0.15)
    n_items = 30
    endpoint = {
        "name": "ckpt",
        "base_url": server.base_url,
        "model": "killtest-model",
        "revision": "step-1",
        "concurrency": 3,
        "timeout": 5,
    }
    eps, cmd = candidates_command(
        tmp_path, endpoint, n_items, db_url, "--processes", str(processes)
    )
    engine = open_engine(db_url)
    proc = start_until(cmd, lambda: len(_done_rows(engine)) >= 8, "job made no progress")
    assert len(_processes_running(str(eps))) == 1 + (processes if processes > 1 else 0)
    kill_hard(proc)
    # worker processes (forks: the same command line) die with the job
    deadline = time.monotonic() + 10
    while _processes_running(str(eps)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _processes_running(str(eps)) == []

    done_at_kill = _done_rows(engine)
    calls_at_kill = server.calls()
    assert 8 <= len(done_at_kill) < n_items, "kill landed after the job finished"
    for request in done_at_kill.values():
        assert calls_at_kill[_server_key(request)] == 1

    summary = rerun(cmd)
    calls_after = server.calls()

    # no call repeated for an item whose result was committed before the kill
    for request in done_at_kill.values():
        assert calls_after[_server_key(request)] == 1
    # the re-run called exactly the items without a committed result, once each
    rerun_calls = {k: calls_after[k] - calls_at_kill.get(k, 0) for k in calls_after}
    called = {k for k, v in rerun_calls.items() if v}
    assert all(v <= 1 for v in rerun_calls.values())
    assert len(called) == n_items - len(done_at_kill) == summary["done"]
    assert summary["cached"] == len(done_at_kill) and summary["failed"] == 0
    # exactly one result per item, in the cache and in the responses table
    assert_one_result_per_item(engine, n_items)
    engine.dispose()
