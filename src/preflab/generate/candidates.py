"""Candidate responses: n samples per prompt per model, a mix rule, and duplicate detection.

The mix rule follows Tulu 3's on-policy preference data (Lambert et al. 2024, "Tulu 3",
§5.2.1): each prompt gets responses from models sampled out of a pool *plus* at least one from
the on-policy checkpoint being trained, so that pairs always contain on-policy text. The rules
themselves (plan, duplicates, pairs, responses from replies) live in
:mod:`preflab.generate.candidate_rules`; this module runs the job and stores what it made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import Engine

from preflab.generate.candidate_rules import (
    CandidateResult,
    DuplicateGroup,
    MixRule,
    candidate_pairs,
    find_duplicate_responses,
    missing_on_policy,
    plan_candidates,
    responses_from_replies,
)
from preflab.generate.endpoints import ChatClientFactory, EndpointConfig
from preflab.generate.jobs import ProgressHook, Via, run_job
from preflab.generate.writeback import save_prompts, save_responses
from preflab.records import Prompt
from preflab.store.unit_of_work import write_scope

__all__ = [
    "CandidateResult",
    "DuplicateGroup",
    "MixRule",
    "candidate_pairs",
    "find_duplicate_responses",
    "generate_candidates",
    "plan_candidates",
]


def generate_candidates(
    engine: Engine,
    prompts: Sequence[Prompt],
    endpoints: Mapping[str, EndpointConfig],
    *,
    n: int = 1,
    mix: MixRule | None = None,
    seed: int = 0,
    params: Mapping[str, object] | None = None,
    dry_run: bool = False,
    retry_failed: bool = False,
    job_id: str | None = None,
    client_factory: ChatClientFactory | None = None,
    on_progress: ProgressHook | None = None,
    processes: int | None = None,
    via: Via = "online",
    poll_interval: float = 5.0,
) -> CandidateResult:
    """Sample candidate responses, store them with their prompts, and check the mix rule.

    Each Response is tagged with the endpoint's model and revision, the sampling parameters
    and seed, and ``origin="model"``. Prompts and responses are written in one transaction
    once the job has ended (results are already safe in the request cache before that).

    ``processes``, ``retry_failed``, ``via`` and ``poll_interval`` are passed to
    :func:`~preflab.generate.jobs.run_job` (worker processes making the calls, None picks by
    job size; requests failed in an earlier run are called again only with ``retry_failed``;
    ``via="batch"`` goes through the batch API).

    Returns:
        The job summary, responses (also for cached requests), duplicate groups, and the prompt
        ids that lack ``mix.min_on_policy`` on-policy responses (e.g. after failed requests).
    """
    requests = plan_candidates(prompts, endpoints, n=n, mix=mix, seed=seed, params=params)
    result = run_job(
        engine,
        endpoints,
        requests,
        kind="generate",
        job_id=job_id,
        dry_run=dry_run,
        retry_failed=retry_failed,
        client_factory=client_factory,
        on_progress=on_progress,
        processes=processes,
        via=via,
        poll_interval=poll_interval,
    )
    out, merged, empty = responses_from_replies(requests, result.replies, endpoints)
    result.summary.merged = merged
    missing = missing_on_policy(prompts, out, endpoints, mix)
    if not dry_run and out:
        with write_scope(engine) as conn:
            save_prompts(conn, prompts)
            save_responses(conn, out)
    return CandidateResult(
        summary=result.summary,
        responses=out,
        duplicates=find_duplicate_responses(out),
        missing_on_policy=missing if not dry_run else [],
        failures=result.failures,
        merged=merged,
        empty=empty,
    )
