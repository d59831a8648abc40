"""Worker processes: a job's calls in forked workers, the parent the one cache writer."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from preflab.errors import UsageError
from preflab.generate.cache import open_engine
from preflab.generate.endpoints import EndpointConfig, make_client
from preflab.generate.jobs import run_job
from preflab.generate.worker_processes import (
    can_fork,
    choose_processes,
    split_endpoint,
    split_requests,
)
from preflab.store.tables import GenerationRequest
from tests.generate.job_runs import chat_requests

needs_fork = pytest.mark.skipif(not can_fork(), reason="worker processes fork (Linux)")


def _statuses(engine) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(select(GenerationRequest.request_key, GenerationRequest.status)).all()
    return {r.request_key: r.status for r in rows}


@pytest.mark.parametrize("processes", [1, 2, 3, 5])
@pytest.mark.parametrize("concurrency", [1, 2, 3, 7, 64])
@pytest.mark.parametrize("replicas", [0, 1, 2])
def test_split_endpoint_keeps_each_server_concurrency_and_the_rate_as_totals(
    processes, concurrency, replicas
) -> None:
    urls = [f"http://127.0.0.1:{9000 + k}/v1" for k in range(replicas + 1)]
    ep = EndpointConfig(
        name="a",
        base_url=urls[0],
        model="m",
        replicas=urls[1:],
        concurrency=concurrency,
        rate_limit=12.0,
    )
    shares = [s for s in split_endpoint(ep, processes) if s is not None]
    per_server = {url: 0 for url in urls}
    for share in shares:
        assert share.concurrency > 0
        for server in share.servers:
            assert server.replicas == [] and server.rate_limit is None
            per_server[server.base_url] += server.concurrency
    assert per_server == {url: concurrency for url in urls}
    assert sum(s.rate_limit or 0 for s in shares) == pytest.approx(12.0)
    assert len(shares) == min(processes, concurrency * len(urls))


def test_split_requests_deals_in_proportion_and_keeps_every_item_once() -> None:
    parts = split_requests([3, 0, 1], list(range(40)))
    assert [len(p) for p in parts] == [30, 0, 10]
    assert sorted(parts[0] + parts[2]) == list(range(40))


def test_small_jobs_stay_in_process_and_bad_counts_are_refused() -> None:
    assert choose_processes(None, 100, 64, cpus=8) == 1
    assert choose_processes(None, 5000, 8, cpus=8) == 1  # too few in flight to share
    assert choose_processes(None, 5000, 256, cpus=2) == 1  # one CPU is left to the job itself
    assert choose_processes(2, 1, 64) == 1
    if can_fork():
        assert choose_processes(None, 2000, 64, cpus=4) in (1, 2)  # 1 if a thread is running
    with pytest.raises(UsageError, match="processes must be 1 or more"):
        choose_processes(0, 10, 8)


@needs_fork
def test_job_in_two_processes_retries_faults_and_records_failures(fake, sqlite_url) -> None:
    ep = fake.endpoint(concurrency=4, max_attempts=3)
    engine = open_engine(sqlite_url)
    texts = [f"q{i}" for i in range(20)] + ["flaky [[fault:500:1]]", "refused [[fault:400]]"]
    reqs = chat_requests(ep, texts)
    seen: list[tuple[int, int]] = []
    result = run_job(
        engine, {"fake": ep}, reqs, processes=2, on_progress=lambda f, t: seen.append((f, t))
    )
    assert result.summary.processes == 2
    assert (result.summary.done, result.summary.failed) == (21, 1)
    assert "HTTP 400" in result.failures[reqs[-1].key]
    assert result.reply_text(reqs[0]) == "echo[fake-model|seed=1]: q0"
    calls = fake.calls()
    assert calls["fake-model|1|flaky [[fault:500:1]]"] == 2
    assert all(calls[f"fake-model|1|q{i}"] == 1 for i in range(20))
    assert seen[-1] == (22, 22)
    statuses = _statuses(engine)
    assert sorted(statuses.values()) == ["done"] * 21 + ["failed"]
    # the re-run reads the cache: no call
    again = run_job(engine, {"fake": ep}, reqs, processes=2, retry_failed=False)
    assert (again.summary.cached, again.summary.calls) == (21, 0)
    assert fake.total_calls() == sum(calls.values())
    engine.dispose()


@needs_fork
def test_concurrency_is_a_total_over_the_processes(start_server, sqlite_url) -> None:
    server = start_server(delay=0.05)
    ep = server.endpoint(concurrency=3)
    result = run_job(
        open_engine(sqlite_url), {"fake": ep}, chat_requests(ep, [f"q{i}" for i in range(30)]),
        processes=2,
    )
    assert (result.summary.processes, result.summary.done) == (2, 30)
    assert server.max_inflight() == 3


@needs_fork
def test_replicas_are_shared_by_the_processes(start_server, sqlite_url) -> None:
    one, two = start_server(delay=0.05), start_server(delay=0.05)
    ep = one.endpoint(concurrency=1, replicas=[two.base_url])
    result = run_job(
        open_engine(sqlite_url), {"fake": ep}, chat_requests(ep, [f"q{i}" for i in range(12)]),
        processes=2,
    )
    assert result.summary.done == 12
    assert one.total_calls() > 0 and two.total_calls() > 0
    assert one.total_calls() + two.total_calls() == 12
    assert max(one.max_inflight(), two.max_inflight()) == 1


@needs_fork
@pytest.mark.slow
def test_killed_worker_loses_no_request(start_server, sqlite_url, tmp_path: Path) -> None:
    server = start_server(delay=0.1)
    ep = server.endpoint(concurrency=4)
    parent, claim = os.getpid(), tmp_path / "killed-worker"

    def factory(config: EndpointConfig):
        if os.getpid() != parent:
            try:  # the first worker to get here is killed 0.35 s later, mid-job
                os.close(os.open(claim, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                pass
            else:
                threading.Timer(0.35, os.kill, (os.getpid(), signal.SIGKILL)).start()
        return make_client(config)

    engine = open_engine(sqlite_url)
    reqs = chat_requests(ep, [f"q{i}" for i in range(40)])
    result = run_job(engine, {"fake": ep}, reqs, processes=2, client_factory=factory)
    assert claim.exists()
    summary = result.summary
    assert summary.failed > 0 and summary.done > 0
    assert summary.done + summary.failed == 40
    assert summary.interrupted == summary.failed
    assert set(result.replies) | set(result.failures) == {r.key for r in reqs}
    assert all("was killed by SIGKILL" in reason for reason in result.failures.values())
    statuses = _statuses(engine)
    # cut off by a dead worker, not failed by the server: called again without being asked
    assert sorted(set(statuses.values())) == ["done", "interrupted"]
    # a re-run calls exactly the interrupted requests, never one that is done
    done_before = {k for k, v in statuses.items() if v == "done"}
    calls_before = server.calls()
    rerun = run_job(engine, {"fake": ep}, reqs, processes=1)
    assert (rerun.summary.cached, rerun.summary.done) == (len(done_before), summary.failed)
    after = server.calls()
    assert sum(after.values()) - sum(calls_before.values()) == summary.failed
    for r in reqs:
        if r.key in done_before:
            assert after[f"fake-model|1|{r.messages[-1]['content']}"] == 1
    engine.dispose()
