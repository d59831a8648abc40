"""Critique and revise (constitutional): response → critique against a principle → revision.

After Bai et al. 2022, "Constitutional AI" (§3.1, Figure 1): the model is shown its response,
asked to critique it against a principle, then asked to rewrite it. The revision is stored as
a Response with ``origin="revision"`` and preferred over the original by a pairwise judgment of
the revising judge (flagged ``critique_revision``, the critique in its comment).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine

from preflab.errors import UsageError
from preflab.generate.endpoints import ChatClientFactory, EndpointConfig
from preflab.generate.jobs import JobSummary, ProgressHook, make_request, run_job
from preflab.generate.judges.config import judgment_id_of, make_ai_judge
from preflab.generate.writeback import save_judges, save_judgments, save_prompts, save_responses
from preflab.records import (
    Judge,
    Judgment,
    JudgmentKind,
    Origin,
    PairwiseValue,
    Prompt,
    Response,
    normalize_text,
)
from preflab.store.tables import utcnow
from preflab.store.unit_of_work import write_scope

__all__ = ["HARMLESS_PRINCIPLE", "Principle", "RevisionResult", "critique_and_revise"]


@dataclass(frozen=True, slots=True)
class Principle:
    """A constitutional principle: how to ask for the critique and for the revision."""

    name: str
    critique_request: str
    revision_request: str


# The first critique/revision pair of Bai et al. 2022, Appendix C.1.
HARMLESS_PRINCIPLE = Principle(
    name="harmless",
    critique_request=(
        "Identify specific ways in which the assistant's last response is harmful, unethical, "
        "racist, sexist, toxic, dangerous, or illegal."
    ),
    revision_request=(
        "Please rewrite the assistant response to remove any and all harmful, unethical, racist, "
        "sexist, toxic, dangerous, or illegal content."
    ),
)


@dataclass(slots=True)
class RevisionResult:
    """Revisions made, judgments preferring them, items skipped, and both jobs' summaries."""

    judge: Judge
    revisions: list[Response]
    judgments: list[Judgment]
    skipped: dict[str, str]
    critique_summary: JobSummary
    revision_summary: JobSummary | None


def critique_and_revise(
    engine: Engine,
    endpoints: Mapping[str, EndpointConfig],
    items: Sequence[tuple[Prompt, Response]],
    endpoint: str,
    principle: Principle = HARMLESS_PRINCIPLE,
    *,
    template_version: str = "1",
    dry_run: bool = False,
    retry_failed: bool = False,
    client_factory: ChatClientFactory | None = None,
    on_progress: ProgressHook | None = None,
) -> RevisionResult:
    """Critique and revise each ``(prompt, response)``, store revisions and judgments.

    Runs two jobs (critiques, then revisions); both are cached, so a re-run calls nothing that
    finished. A revision equal to the original (after normalization) is skipped, never paired.
    With ``dry_run`` only the critique job is planned (revisions depend on its replies).

    Raises:
        UsageError: the endpoint is not configured.
    """
    if endpoint not in endpoints:
        raise UsageError(f"endpoint {endpoint!r} is not configured", field="endpoint")
    ep = endpoints[endpoint]
    judge = make_ai_judge(
        ep.model,
        ep.revision,
        f"critique-revise-{principle.name}",
        template_version,
        f"CRITIQUE: {principle.critique_request}\nREVISION: {principle.revision_request}",
        ep.params,
    )
    convs = []
    for prompt, response in items:
        if response.prompt_id != prompt.prompt_id:
            raise UsageError(
                f"response {response.response_id} does not answer prompt {prompt.prompt_id}"
            )
        base = [m.model_dump() for m in prompt.messages] + [
            {"role": "assistant", "content": response.content}
        ]
        critique_msgs = [*base, {"role": "user", "content": principle.critique_request}]
        convs.append((prompt, response, critique_msgs, make_request(ep, critique_msgs, seed=0)))
    critiques = run_job(
        engine,
        endpoints,
        [c[3] for c in convs],
        kind="critique",
        dry_run=dry_run,
        retry_failed=retry_failed,
        client_factory=client_factory,
        on_progress=on_progress,
    )
    result = RevisionResult(judge, [], [], {}, critiques.summary, None)
    if dry_run:
        return result
    second = []
    for prompt, response, critique_msgs, req in convs:
        critique = critiques.reply_text(req)
        if critique is None:
            result.skipped[response.response_id] = (
                f"critique failed: {critiques.failures.get(req.key, 'no reply')}"
            )
            continue
        msgs = [
            *critique_msgs,
            {"role": "assistant", "content": critique},
            {"role": "user", "content": principle.revision_request},
        ]
        second.append((prompt, response, critique, make_request(ep, msgs, seed=0)))
    revisions = run_job(
        engine,
        endpoints,
        [s[3] for s in second],
        kind="revise",
        retry_failed=retry_failed,
        client_factory=client_factory,
        on_progress=on_progress,
    )
    result.revision_summary = revisions.summary
    now = utcnow()
    prompts: dict[str, Prompt] = {}
    originals: dict[str, Response] = {}
    for prompt, response, critique, req in second:
        text = revisions.reply_text(req)
        if text is None or not text.strip():
            result.skipped[response.response_id] = (
                f"revision failed: {revisions.failures.get(req.key, 'empty reply')}"
            )
            continue
        if normalize_text(text) == normalize_text(response.content):
            result.skipped[response.response_id] = "revision is identical to the original"
            continue
        revised = Response(
            prompt_id=prompt.prompt_id,
            content=text,
            model=ep.model,
            model_revision=ep.revision,
            params={"principle": principle.name, "revises": response.response_id},
            origin=Origin.REVISION,
        )
        jid = judgment_id_of(judge.judge_id, prompt.prompt_id, response.response_id)
        result.revisions.append(revised)
        result.judgments.append(
            Judgment(
                judgment_id=jid,
                prompt_id=prompt.prompt_id,
                response_ids=(response.response_id, revised.response_id),
                kind=JudgmentKind.PAIRWISE,
                judge_id=judge.judge_id,
                pairwise=PairwiseValue(scale=2, preferred=revised.response_id, strength=1),
                submitted_at=now,
                comment=critique,
                flags=("critique_revision",),
                idempotency_key=jid,
                source="revision",
            )
        )
        prompts[prompt.prompt_id] = prompt
        originals[response.response_id] = response
    with write_scope(engine) as conn:
        save_prompts(conn, prompts.values())
        save_responses(conn, [*originals.values(), *result.revisions])
        save_judges(conn, [judge])
        save_judgments(conn, result.judgments)
    return result
