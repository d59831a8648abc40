"""Batch API (/v1/files, /v1/batches) against the loopback server: delays, partial failures,
kill -9 while polling, and no batch submitted twice."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import select, update

from preflab.generate.cache import open_engine
from preflab.generate.jobs import run_job
from preflab.generate.judges import PairwiseJudgeConfig, judge_pairwise
from preflab.records import Message, Prompt, Response
from preflab.store.tables import GenerationRequest, JobRow
from tests.generate.job_runs import (
    assert_one_result_per_item,
    candidates_command,
    chat_requests,
    kill_hard,
    rerun,
    start_until,
)


def test_batch_job_maps_results_by_custom_id_and_keeps_partial_failures(
    start_server, db_url
) -> None:
    server = start_server(batch_delay=0.3)
    ep = server.endpoint(max_attempts=2)
    engine = open_engine(db_url)
    texts = [f"q{i}" for i in range(8)] + ["broken [[fault:500]]"]
    reqs = chat_requests(ep, texts)
    first = run_job(engine, {"fake": ep}, reqs, via="batch", poll_interval=0.05)
    assert (first.summary.done, first.summary.failed, first.summary.batches) == (8, 1, 1)
    assert first.reply_text(reqs[3]) == "echo[fake-model|seed=1]: q3"
    (batch,) = server.batches()
    assert batch["metadata"]["preflab_job"] == first.summary.job_id
    reason = first.failures[reqs[-1].key]
    assert batch["id"] in reason and "HTTP 500" in reason and "injected 500" in reason

    # a re-run submits nothing: the failure stays until asked
    again = run_job(engine, {"fake": ep}, reqs, via="batch", poll_interval=0.05)
    assert (again.summary.cached, again.summary.failed_earlier, again.summary.calls) == (8, 1, 0)
    assert len(server.batches()) == 1
    retried = run_job(
        engine, {"fake": ep}, reqs, via="batch", poll_interval=0.05, retry_failed=True
    )
    assert retried.summary.calls == 1 and len(server.batches()) == 2
    assert server.calls()["fake-model|1|broken [[fault:500]]"] == 2
    assert all(server.calls()[f"fake-model|1|q{i}"] == 1 for i in range(8))
    engine.dispose()


def test_judge_through_the_batch_api_gives_the_online_verdicts(start_server, tmp_path) -> None:
    server = start_server(batch_delay=0.1)
    server.script(
        [
            {"pattern": r"Assistant A's Answer\]\nGOOD", "reply": "[[A]]"},
            {"pattern": r"Assistant B's Answer\]\nGOOD", "reply": "[[B]]"},
        ]
    )
    eps = {"judge": server.endpoint("judge", model="judge-model")}
    p = Prompt(messages=(Message(role="user", content="Pick one."),))
    items = [(p, Response(prompt_id=p.prompt_id, content="GOOD", model="a"),
              Response(prompt_id=p.prompt_id, content="bad", model="b"))]
    config = PairwiseJudgeConfig(endpoint="judge")
    batch = judge_pairwise(
        open_engine(f"sqlite:///{tmp_path / 'b.sqlite'}"), eps, items, config, via="batch",
        poll_interval=0.05,
    )
    online = judge_pairwise(open_engine(f"sqlite:///{tmp_path / 'o.sqlite'}"), eps, items, config)
    assert [j.pairwise.preferred for j in batch.judgments] == [items[0][1].response_id]
    assert [j.judgment_id for j in batch.judgments] == [j.judgment_id for j in online.judgments]
    assert len(server.batches()) == 1 and batch.summary.via == "batch"


def _done_rows(engine) -> int:
    with engine.connect() as conn:
        return len(
            conn.execute(
                select(GenerationRequest.request_key).where(GenerationRequest.status == "done")
            ).all()
        )


@pytest.mark.slow
@pytest.mark.parametrize("record_lost", [False, True], ids=["recorded", "record-lost"])
def test_kill_during_polling_then_rerun_answers_each_request_once(
    start_server, db_url, tmp_path: Path, record_lost: bool
) -> None:
    server = start_server(batch_delay=2.5)
    n_items = 12
    endpoint = {"name": "ckpt", "base_url": server.base_url, "model": "batch-model", "timeout": 5}
    _, cmd = candidates_command(
        tmp_path, endpoint, n_items, db_url, "--batch", "--poll-interval", "0.1"
    )
    engine = open_engine(db_url)
    proc = start_until(cmd, lambda: bool(server.batches()), "no batch was submitted")
    time.sleep(0.3)  # polling now: the batch is in progress for 2.5 s
    assert server.batches()[0]["status"] == "in_progress"
    kill_hard(proc)
    assert _done_rows(engine) == 0
    if record_lost:  # as if the kill had landed between the batch's creation and its record
        with engine.begin() as conn:
            conn.execute(update(JobRow).values(config={}))

    summary = rerun(cmd)
    assert (summary["done"], summary["failed"], summary["batches"]) == (n_items, 0, 1)
    (batch,) = server.batches()  # the rerun found the first batch: nothing submitted twice
    assert batch["status"] == "completed"
    calls = server.calls()
    assert sorted(calls.values()) == [1] * n_items
    assert_one_result_per_item(engine, n_items)
    engine.dispose()
