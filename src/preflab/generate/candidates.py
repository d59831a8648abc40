"""Candidate responses: n samples per prompt per model, a mix rule, and duplicate detection.

The mix rule follows Tulu 3's on-policy preference data (Lambert et al. 2024, "Tulu 3",
§5.2.1): each prompt gets responses from models sampled out of a pool *plus* at least one from
the on-policy checkpoint being trained, so that pairs always contain on-policy text.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pyarrow as pa
from rapidfuzz import fuzz
from sqlalchemy import Engine

from preflab.errors import UsageError
from preflab.generate.endpoints import ClientFactory, EndpointConfig, make_client
from preflab.generate.jobs import (
    ChatRequest,
    JobSummary,
    ProgressHook,
    Via,
    make_request,
    run_job,
)
from preflab.generate.writeback import save_prompts, save_responses
from preflab.records import (
    RESPONSE_SCHEMA,
    Origin,
    Prompt,
    Response,
    normalize_text,
    records_to_table,
)
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


@dataclass(frozen=True, slots=True)
class MixRule:
    """Which endpoints answer each prompt.

    Args:
        on_policy: endpoint name of the checkpoint being trained; it answers every prompt.
        min_on_policy: on-policy responses wanted per prompt (at least this many samples).
        models_per_prompt: if set, this many other endpoints are drawn per prompt from the
            pool (Tulu 3 draws 4); otherwise every endpoint answers every prompt.
    """

    on_policy: str | None = None
    min_on_policy: int = 1
    models_per_prompt: int | None = None


def plan_candidates(
    prompts: Sequence[Prompt],
    endpoints: Mapping[str, EndpointConfig],
    *,
    n: int = 1,
    mix: MixRule | None = None,
    seed: int = 0,
    params: Mapping[str, object] | None = None,
) -> list[ChatRequest]:
    """Return the requests that sample ``n`` responses per prompt per chosen endpoint.

    Sample ``i`` is sent with seed ``seed + i``, so samples differ and re-runs hit the cache.

    Raises:
        UsageError: ``n < 1``, no endpoint, or the mix rule names an unknown endpoint.
    """
    if n < 1:
        raise UsageError(f"n must be at least 1, got {n}", field="n")
    if not endpoints:
        raise UsageError("no endpoint to generate with; pass at least one --model")
    mix = mix or MixRule()
    if mix.on_policy is not None and mix.on_policy not in endpoints:
        raise UsageError(
            f"on-policy endpoint {mix.on_policy!r} is not configured "
            f"(known: {', '.join(sorted(endpoints))})",
            field="on_policy",
        )
    pool = sorted(name for name in endpoints if name != mix.on_policy)
    rng = random.Random(seed)
    requests: list[ChatRequest] = []
    for prompt in prompts:
        chosen = list(pool)
        if mix.models_per_prompt is not None and mix.models_per_prompt < len(pool):
            chosen = sorted(rng.sample(pool, mix.models_per_prompt))
        plan = [(name, n) for name in chosen]
        if mix.on_policy is not None:
            plan.append((mix.on_policy, max(n, mix.min_on_policy)))
        messages = [m.model_dump() for m in prompt.messages]
        for name, count in plan:
            for i in range(count):
                requests.append(
                    make_request(
                        endpoints[name],
                        messages,
                        params,
                        seed=seed + i,
                        meta={"prompt_id": prompt.prompt_id, "sample": i},
                    )
                )
    return requests


@dataclass(frozen=True, slots=True)
class DuplicateGroup:
    """Responses to one prompt that say the same thing; ``kept`` represents the group."""

    prompt_id: str
    kept: str
    dropped: tuple[str, ...]


def find_duplicate_responses(
    responses: Sequence[Response], *, threshold: float = 0.97
) -> list[DuplicateGroup]:
    """Return groups of duplicate responses to the same prompt.

    Two responses are duplicates when their normalized texts are equal or their
    ``rapidfuzz.fuzz.ratio`` similarity is at least ``threshold`` (0–1). The first response of
    a group (in input order) is kept.

    >>> a = Response(prompt_id="p", content="Paris.", model="x")
    >>> b = Response(prompt_id="p", content="  Paris. ", model="y")
    >>> [g.dropped == (b.response_id,) for g in find_duplicate_responses([a, b])]
    [True]
    """
    by_prompt: dict[str, list[Response]] = {}
    for r in responses:
        by_prompt.setdefault(r.prompt_id, []).append(r)
    groups: list[DuplicateGroup] = []
    for prompt_id, items in by_prompt.items():
        seen_ids: set[str] = set()
        reps: list[tuple[Response, str, list[str]]] = []
        for r in items:
            if r.response_id in seen_ids:
                continue  # the same sample twice: same id
            seen_ids.add(r.response_id)
            text = normalize_text(r.content)
            for rep, rep_text, dropped in reps:
                if text == rep_text or fuzz.ratio(text, rep_text) >= threshold * 100:
                    dropped.append(r.response_id)
                    break
            else:
                reps.append((r, text, []))
        groups.extend(
            DuplicateGroup(prompt_id, rep.response_id, tuple(dropped))
            for rep, _, dropped in reps
            if dropped
        )
    return groups


def candidate_pairs(
    responses: Sequence[Response], duplicates: Sequence[DuplicateGroup] | None = None
) -> list[tuple[Response, Response]]:
    """Return every pair of distinct, non-duplicate responses to the same prompt.

    Duplicates (see :func:`find_duplicate_responses`) are never paired: only each group's kept
    response takes part.
    """
    dups = find_duplicate_responses(responses) if duplicates is None else duplicates
    dropped = {rid for g in dups for rid in g.dropped}
    by_prompt: dict[str, dict[str, Response]] = {}
    for r in responses:
        if r.response_id not in dropped:
            by_prompt.setdefault(r.prompt_id, {}).setdefault(r.response_id, r)
    return [
        pair for items in by_prompt.values() for pair in itertools.combinations(items.values(), 2)
    ]


@dataclass(slots=True)
class CandidateResult:
    """What a candidate job produced: responses, duplicates, prompts missing on-policy text.

    ``merged`` counts replies that were the same text as another sample of the same model
    and prompt, so they became one response (a response's id hashes prompt, text, model and
    revision); ``empty`` counts blank replies, which make no response.
    """

    summary: JobSummary
    responses: list[Response]
    duplicates: list[DuplicateGroup]
    missing_on_policy: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    merged: int = 0
    empty: int = 0

    def table(self) -> pa.Table:
        """Return the responses as an Arrow table (``RESPONSE_SCHEMA``)."""
        return (
            records_to_table(self.responses, cls=Response)
            if self.responses
            else RESPONSE_SCHEMA.empty_table()
        )


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
    client_factory: ClientFactory = make_client,
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
    responses: dict[str, Response] = {}
    merged = empty = 0
    for req in requests:
        text = result.reply_text(req)
        if text is None:
            continue
        if not text.strip():
            empty += 1
            continue
        ep = endpoints[req.endpoint]
        r = Response(
            prompt_id=req.meta["prompt_id"],
            content=text,
            model=ep.model,
            model_revision=ep.revision,
            params={**dict(req.params), "seed": req.seed, "endpoint": ep.name},
            origin=Origin.MODEL,
        )
        if r.response_id in responses:
            merged += 1
        else:
            responses[r.response_id] = r
    result.summary.merged = merged
    out = list(responses.values())
    missing: list[str] = []
    mix = mix or MixRule()
    if mix.on_policy is not None:
        ep = endpoints[mix.on_policy]
        counts: dict[str, int] = {}
        for r in out:
            if r.model == ep.model and r.model_revision == ep.revision:
                counts[r.prompt_id] = counts.get(r.prompt_id, 0) + 1
        missing = [p.prompt_id for p in prompts if counts.get(p.prompt_id, 0) < mix.min_on_policy]
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
