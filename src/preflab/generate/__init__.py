"""preflab.generate: endpoints, jobs (retries, cache, resume), judges, verifiers, revision.

Everything runs as cached jobs against OpenAI-compatible endpoints; results are ordinary
records (Prompt, Response, Judgment) written to the workspace store. Live sessions stream one
reply at a time through :func:`stream_chat` (same endpoints, limits and retries).

Names are imported on first use (PEP 562): the OpenAI client loads only when needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from preflab.generate.cache import open_engine, request_key
    from preflab.generate.candidates import (
        CandidateResult,
        DuplicateGroup,
        MixRule,
        candidate_pairs,
        find_duplicate_responses,
        generate_candidates,
        plan_candidates,
    )
    from preflab.generate.endpoints import (
        ChatReply,
        EndpointConfig,
        complete_chat,
        make_client,
        parse_endpoints,
        read_endpoints,
    )
    from preflab.generate.jobs import (
        ChatRequest,
        JobResult,
        JobSummary,
        make_request,
        run_job,
        run_job_async,
    )
    from preflab.generate.revise import (
        HARMLESS_PRINCIPLE,
        Principle,
        RevisionResult,
        critique_and_revise,
    )
    from preflab.generate.streaming import (
        EndpointLimiter,
        StreamBrokenError,
        StreamDelta,
        StreamDone,
        StreamRetry,
        stream_chat,
    )

__all__ = [
    "HARMLESS_PRINCIPLE",
    "CandidateResult",
    "ChatReply",
    "ChatRequest",
    "DuplicateGroup",
    "EndpointConfig",
    "EndpointLimiter",
    "JobResult",
    "JobSummary",
    "MixRule",
    "Principle",
    "RevisionResult",
    "StreamBrokenError",
    "StreamDelta",
    "StreamDone",
    "StreamRetry",
    "candidate_pairs",
    "complete_chat",
    "critique_and_revise",
    "find_duplicate_responses",
    "generate_candidates",
    "make_client",
    "make_request",
    "open_engine",
    "parse_endpoints",
    "plan_candidates",
    "read_endpoints",
    "request_key",
    "run_job",
    "run_job_async",
    "stream_chat",
]

_EXPORTS = {
    "cache": ("open_engine", "request_key"),
    "candidates": (
        "CandidateResult",
        "DuplicateGroup",
        "MixRule",
        "candidate_pairs",
        "find_duplicate_responses",
        "generate_candidates",
        "plan_candidates",
    ),
    "endpoints": (
        "ChatReply",
        "EndpointConfig",
        "complete_chat",
        "make_client",
        "parse_endpoints",
        "read_endpoints",
    ),
    "jobs": ("ChatRequest", "JobResult", "JobSummary", "make_request", "run_job", "run_job_async"),
    "revise": ("HARMLESS_PRINCIPLE", "Principle", "RevisionResult", "critique_and_revise"),
    "streaming": (
        "EndpointLimiter",
        "StreamBrokenError",
        "StreamDelta",
        "StreamDone",
        "StreamRetry",
        "stream_chat",
    ),
}
_ORIGIN = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _ORIGIN.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
