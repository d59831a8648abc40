"""The rules of candidate generation, free of the store and of HTTP: what to ask, what it made.

Which endpoints answer each prompt (the mix rule, Tulu 3 §5.2.1: Lambert et al. 2024), which
replies become which responses (identical samples merge, blank replies make none), which
responses say the same thing (never paired), and which prompts lack on-policy text. Both the
job (:func:`preflab.generate.candidates.generate_candidates`) and a re-run answered wholly from
the cache (:mod:`preflab.generate.cached_rerun`) go through these functions, so both count the
same way.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rapidfuzz import fuzz

from preflab.errors import UsageError
from preflab.generate.endpoints import EndpointConfig
from preflab.generate.requests import ChatRequest, JobSummary, make_request
from preflab.records import Origin, Prompt, Response, normalize_text

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "CandidateResult",
    "DuplicateGroup",
    "MixRule",
    "candidate_pairs",
    "find_duplicate_responses",
    "missing_on_policy",
    "plan_candidates",
    "responses_from_replies",
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
        from preflab.records import RESPONSE_SCHEMA, records_to_table

        return (
            records_to_table(self.responses, cls=Response)
            if self.responses
            else RESPONSE_SCHEMA.empty_table()
        )


def responses_from_replies(
    requests: Sequence[ChatRequest],
    replies: Mapping[str, Mapping[str, Any]],
    endpoints: Mapping[str, EndpointConfig],
) -> tuple[list[Response], int, int]:
    """Return the responses the replies make, how many samples merged, how many were blank.

    Each Response is tagged with the endpoint's model and revision, the sampling parameters
    and seed, and ``origin="model"``; a reply with the same text as another sample of the same
    model and prompt is the same response (its id hashes prompt, text, model and revision) and
    counts as merged; a blank reply makes no response. Requests without a reply are skipped.
    """
    responses: dict[str, Response] = {}
    merged = empty = 0
    for req in requests:
        reply = replies.get(req.key)
        if reply is None:
            continue
        text = str(reply["content"])
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
    return list(responses.values()), merged, empty


def missing_on_policy(
    prompts: Sequence[Prompt],
    responses: Sequence[Response],
    endpoints: Mapping[str, EndpointConfig],
    mix: MixRule | None,
) -> list[str]:
    """Return the ids of prompts with fewer on-policy responses than the mix rule asks."""
    mix = mix or MixRule()
    if mix.on_policy is None:
        return []
    ep = endpoints[mix.on_policy]
    counts: dict[str, int] = {}
    for r in responses:
        if r.model == ep.model and r.model_revision == ep.revision:
            counts[r.prompt_id] = counts.get(r.prompt_id, 0) + 1
    return [p.prompt_id for p in prompts if counts.get(p.prompt_id, 0) < mix.min_on_policy]
