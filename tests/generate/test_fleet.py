"""Fleets: several loopback servers of one model, least outstanding requests, failing ones out."""

from __future__ import annotations

from pathlib import Path

from preflab.generate.cache import open_engine
from preflab.generate.jobs import make_request, run_job


def _requests(ep, n: int):
    return [make_request(ep, [{"role": "user", "content": f"q{i}"}], seed=1) for i in range(n)]


def _answered(server) -> int:
    return sum(v for k, v in server.calls().items() if not k.startswith("_"))


def test_three_servers_one_failing_give_the_results_of_one_server(
    start_server, tmp_path: Path
) -> None:
    bad, good1, good2 = (start_server(delay=0.03) for _ in range(3))
    bad.fail(503)
    fast = {"max_attempts": 2, "backoff_base": 0.05, "backoff_max": 0.5, "concurrency": 4}
    # the failing server is the first one (its URL keys the cache): the fleet still answers all
    fleet = bad.endpoint(replicas=[good1.base_url, good2.base_url], **fast)
    alone = good1.endpoint(**fast)
    reqs = _requests(fleet, 80)

    result = run_job(open_engine(f"sqlite:///{tmp_path / 'fleet.sqlite'}"), {"fake": fleet}, reqs)
    assert (result.summary.done, result.summary.failed) == (80, 0)
    failed_calls = bad.calls().get("_failed", 0)
    assert failed_calls >= 1  # it was tried, failed, and was taken out
    assert _answered(bad) == 0
    assert _answered(good1) > 0 and _answered(good2) > 0
    assert _answered(good1) + _answered(good2) == 80  # each request answered exactly once
    assert max(good1.max_inflight(), good2.max_inflight()) <= 4

    good1.reset()
    single = run_job(
        open_engine(f"sqlite:///{tmp_path / 'one.sqlite'}"), {"fake": alone}, _requests(alone, 80)
    )
    by_text = {r.messages[0]["content"]: result.reply_text(r) for r in reqs}
    assert by_text == {r.messages[0]["content"]: single.reply_text(r) for r in single.requests}


def test_a_server_taken_out_is_tried_again_later_and_rejoins(start_server, tmp_path: Path) -> None:
    flaky, steady = start_server(delay=0.03), start_server(delay=0.03)
    flaky.fail(503)
    ep = flaky.endpoint(
        replicas=[steady.base_url], concurrency=2, max_attempts=2, backoff_base=0.05
    )
    healed: list[int] = []

    def heal(finished: int, total: int) -> None:
        if finished >= 20 and not healed:
            flaky.fail(None)  # the server comes back mid-job
            healed.append(finished)

    result = run_job(
        open_engine(f"sqlite:///{tmp_path / 'ws.sqlite'}"),
        {"fake": ep},
        _requests(ep, 120),
        on_progress=heal,
    )
    assert healed and result.summary.failed == 0
    # probed after its cool-down, it answered again once healed
    assert _answered(flaky) > 0
    assert _answered(flaky) + _answered(steady) == 120


def test_every_server_failing_fails_each_request_with_the_reason(
    start_server, tmp_path: Path
) -> None:
    servers = [start_server() for _ in range(3)]
    for s in servers:
        s.fail(500)
    ep = servers[0].endpoint(
        replicas=[s.base_url for s in servers[1:]], max_attempts=2, backoff_base=0.01
    )
    engine = open_engine(f"sqlite:///{tmp_path / 'ws.sqlite'}")
    result = run_job(engine, {"fake": ep}, _requests(ep, 4))
    assert result.summary.failed == 4
    reason = next(iter(result.failures.values()))
    assert "over 3 servers" in reason and "HTTP 500" in reason and "server is down" in reason
