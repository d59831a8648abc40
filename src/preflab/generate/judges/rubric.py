"""Rubric AI judge: a rating per response per aspect (UltraFeedback-style).

One request per (response, aspect) asks for a rationale and a ``Rating: N`` on the scale,
after UltraFeedback's per-aspect annotation (Cui et al. 2023, §2.2, Appendix G). Answers are
read by :func:`~preflab.generate.judges.parsing.parse_rating`; an answer without an
unambiguous in-range rating is recorded as a failure, never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine

from preflab.errors import UsageError
from preflab.generate.endpoints import ChatClientFactory, EndpointConfig
from preflab.generate.jobs import (
    ChatRequest,
    JobSummary,
    ProgressHook,
    Via,
    make_request,
    run_job,
)
from preflab.generate.judges.config import RubricJudgeConfig, judgment_id_of, make_ai_judge
from preflab.generate.judges.judge_run import (
    JudgeFailure,
    JudgeRunResult,
    render_conversation,
    store_judge_run,
)
from preflab.generate.judges.parsing import parse_rating
from preflab.generate.writeback import check_project
from preflab.records import (
    Judge,
    Judgment,
    JudgmentKind,
    Prompt,
    RatingValue,
    Response,
    ResponseId,
)
from preflab.store.tables import utcnow

__all__ = ["RUBRIC_TEMPLATE", "RubricJudgeResult", "judge_rubric", "rubric_judge"]

RUBRIC_TEMPLATE = """\
Evaluate the assistant's response to the conversation below on one aspect.

Aspect: {aspect}
Question: {question}

Rate the response from {low} (worst) to {high} (best) on this aspect only. Write a short \
rationale, then end with a line of the form "Rating: N".

[The Start of the Conversation]
{conversation}
[The End of the Conversation]

[The Start of the Response]
{response}
[The End of the Response]"""


@dataclass(slots=True)
class RubricJudgeResult(JudgeRunResult):
    """Rating judgments (one per response), failures per (response, aspect), the judge.

    ``already_stored`` of the judgments were stored by an earlier run of the same judge;
    ``unparseable`` counts (response, aspect) answers without a readable rating.
    """

    judge: Judge
    judgments: list[Judgment]
    failures: list[JudgeFailure]
    summary: JobSummary
    already_stored: int = 0
    unparseable: int = 0


def rubric_judge(ep: EndpointConfig, config: RubricJudgeConfig) -> Judge:
    """Return the identity of the rubric judge ``config`` on endpoint ``ep``.

    It covers the model and its revision, the template, the aspects with their questions,
    the scale, the template version and the sampling parameters.
    """
    rubric = "\n".join(f"- {name}: {q}" for name, q in sorted(config.aspects.items()))
    text = (
        f"{RUBRIC_TEMPLATE}\n\n[Aspects]\n{rubric}\n"
        f"[Scale] {config.scale_min} to {config.scale_max}"
    )
    return make_ai_judge(
        ep.model,
        ep.revision,
        config.template_name,
        config.template_version,
        text,
        {**ep.params, **config.params},
    )


def judge_rubric(
    engine: Engine,
    endpoints: Mapping[str, EndpointConfig],
    items: Sequence[tuple[Prompt, Response]],
    config: RubricJudgeConfig,
    *,
    project_id: str | None = None,
    dry_run: bool = False,
    retry_failed: bool = False,
    retry_unparseable: bool = False,
    client_factory: ChatClientFactory | None = None,
    on_progress: ProgressHook | None = None,
    via: Via = "online",
    poll_interval: float = 5.0,
) -> RubricJudgeResult:
    """Rate each ``(prompt, response)`` on every aspect and store one rating judgment per response.

    A response whose answers parse for some aspects only gets a judgment with those aspects;
    each unparseable or failed aspect is a :class:`JudgeFailure` (reason names the aspect).

    Raises:
        UsageError: the judge endpoint is not configured, no aspect is given, or
            ``project_id`` names no stored project (raised before any call).
    """
    if config.endpoint not in endpoints:
        raise UsageError(f"judge endpoint {config.endpoint!r} is not configured", field="endpoint")
    if not config.aspects:
        raise UsageError("a rubric judge needs at least one aspect", field="aspects")
    if project_id is not None:
        with engine.connect() as conn:
            check_project(conn, project_id)
    ep = endpoints[config.endpoint]
    judge = rubric_judge(ep, config)
    plans: list[tuple[Prompt, Response, str, ChatRequest]] = []
    for prompt, response in items:
        for aspect, question in config.aspects.items():
            body = RUBRIC_TEMPLATE.format(
                aspect=aspect,
                question=question,
                low=config.scale_min,
                high=config.scale_max,
                conversation=render_conversation(prompt),
                response=response.content,
            )
            req = make_request(
                ep,
                [{"role": "user", "content": body}],
                config.params,
                seed=0,
                meta={
                    "prompt_id": prompt.prompt_id,
                    "response_id": response.response_id,
                    "aspect": aspect,
                },
            )
            plans.append((prompt, response, aspect, req))
    job = run_job(
        engine,
        endpoints,
        [p[3] for p in plans],
        kind="judge-rubric",
        dry_run=dry_run,
        retry_failed=retry_failed,
        retry_unparseable=retry_unparseable,
        client_factory=client_factory,
        on_progress=on_progress,
        via=via,
        poll_interval=poll_interval,
    )
    result = RubricJudgeResult(judge, [], [], job.summary)
    if dry_run:
        return result
    scores: dict[ResponseId, dict[str, float]] = {}
    prompts: dict[str, Prompt] = {}
    responses: dict[ResponseId, Response] = {}
    unparseable: dict[str, str] = {}
    for prompt, response, aspect, req in plans:
        prompts[prompt.prompt_id] = prompt
        responses[response.response_id] = response
        text = job.reply_text(req)
        ids = (response.response_id,)
        if text is None:
            why = job.failures.get(req.key) or "no reply"
            result.failures.append(JudgeFailure(prompt.prompt_id, ids, f"{aspect}: {why}"))
            continue
        value = parse_rating(text, config.scale_min, config.scale_max)
        if value is None:
            unparseable[req.key] = "unparseable rating"
            result.unparseable += 1
            result.failures.append(
                JudgeFailure(prompt.prompt_id, ids, f"{aspect}: unparseable rating", text)
            )
            continue
        scores.setdefault(response.response_id, {})[aspect] = value
    now = utcnow()
    for rid, by_aspect in scores.items():
        r = responses[rid]
        jid = judgment_id_of(judge.judge_id, r.prompt_id, rid)
        result.judgments.append(
            Judgment(
                judgment_id=jid,
                prompt_id=r.prompt_id,
                response_ids=(rid,),
                kind=JudgmentKind.RATING,
                judge_id=judge.judge_id,
                rating=RatingValue(
                    scores={rid: by_aspect}, scale_min=config.scale_min, scale_max=config.scale_max
                ),
                project_id=project_id,
                submitted_at=now,
                idempotency_key=jid,
                source="ai-judge",
            )
        )
    result.already_stored = store_judge_run(
        engine,
        job,
        judge,
        result.judgments,
        prompts.values(),
        responses.values(),
        unparseable,
    )
    return result
