"""preflab.generate: endpoints, jobs (retries, cache, resume), judges, verifiers, revision.

Everything runs as cached jobs against OpenAI-compatible endpoints; results are ordinary
records (Prompt, Response, Judgment) written to the workspace store.
"""

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

__all__ = [
    "HARMLESS_PRINCIPLE",
    "CandidateResult",
    "ChatReply",
    "ChatRequest",
    "DuplicateGroup",
    "EndpointConfig",
    "JobResult",
    "JobSummary",
    "MixRule",
    "Principle",
    "RevisionResult",
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
]
