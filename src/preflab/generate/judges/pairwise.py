"""Pairwise AI judge with principles, run in both orders.

The judge sees the conversation and two responses and answers ``[[A]]``, ``[[B]]`` or
``[[C]]`` (tie), the output format of MT-Bench's pairwise judge (Zheng et al. 2023, "Judging
LLM-as-a-Judge", Figure 5). Every pair is judged twice with the responses swapped; a verdict
that changes with the order (position bias, ibid. §3.3) becomes a tie or goes to humans.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine

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
from preflab.generate.judges.config import PairwiseJudgeConfig, judgment_id_of, make_ai_judge
from preflab.generate.judges.judge_run import (
    JudgeFailure,
    JudgeRunResult,
    render_conversation,
    store_judge_run,
)
from preflab.generate.judges.parsing import Verdict, parse_verdict
from preflab.generate.writeback import check_project, save_items
from preflab.records import (
    Judge,
    Judgment,
    JudgmentKind,
    PairwiseValue,
    Prompt,
    Response,
)
from preflab.store.tables import utcnow

__all__ = [
    "PAIRWISE_TEMPLATE",
    "JudgeFailure",
    "PairwiseJudgeResult",
    "judge_pairwise",
    "pairwise_judge",
    "render_conversation",
]

PAIRWISE_TEMPLATE = """\
Please act as an impartial judge and evaluate the quality of the two responses provided by \
two AI assistants to the conversation below. Judge them by these principles:

{constitution}

Avoid any position bias: the order in which the responses appear must not influence you. \
Do not let the length of the responses influence you. Be as objective as possible. First \
explain your reasoning briefly, then give your final verdict strictly in this format: \
"[[A]]" if assistant A is better, "[[B]]" if assistant B is better, "[[C]]" for a tie.

[The Start of the Conversation]
{conversation}
[The End of the Conversation]

[The Start of Assistant A's Answer]
{a}
[The End of Assistant A's Answer]

[The Start of Assistant B's Answer]
{b}
[The End of Assistant B's Answer]"""


@dataclass(slots=True)
class PairwiseJudgeResult(JudgeRunResult):
    """Judgments made, items sent to humans, failures, the judge identity and job summary.

    ``judgments`` holds this judge's verdict on every item it could read; ``already_stored``
    of them were stored by an earlier run of the same judge (so ``new_judgments`` were
    added now). ``unparseable`` counts items whose verdict could not be read.
    """

    judge: Judge
    judgments: list[Judgment]
    to_humans: list[tuple[str, tuple[str, str]]]
    failures: list[JudgeFailure]
    summary: JobSummary
    inconsistent: int = 0
    verdicts: dict[str, tuple[Verdict | None, Verdict | None]] = field(default_factory=dict)
    already_stored: int = 0
    unparseable: int = 0


def _request(
    ep: EndpointConfig, config: PairwiseJudgeConfig, prompt: Prompt, a: Response, b: Response
) -> ChatRequest:
    text = PAIRWISE_TEMPLATE.format(
        constitution=config.constitution.strip(),
        conversation=render_conversation(prompt),
        a=a.content,
        b=b.content,
    )
    return make_request(
        ep,
        [{"role": "user", "content": text}],
        config.params,
        seed=0,
        meta={"prompt_id": prompt.prompt_id, "shown": [a.response_id, b.response_id]},
    )


def pairwise_judge(ep: EndpointConfig, config: PairwiseJudgeConfig) -> Judge:
    """Return the identity of the pairwise judge ``config`` on endpoint ``ep``.

    It covers the model and its revision, the template with the constitution's text, the
    template version and the sampling parameters (the endpoint's defaults merged with the
    judge's), so a changed constitution or another revision is another judge.
    """
    text = PAIRWISE_TEMPLATE.replace("{constitution}", config.constitution.strip())
    return make_ai_judge(
        ep.model,
        ep.revision,
        config.template_name,
        config.template_version,
        text,
        {**ep.params, **config.params},
    )


def judge_pairwise(
    engine: Engine,
    endpoints: Mapping[str, EndpointConfig],
    items: Sequence[tuple[Prompt, Response, Response]],
    config: PairwiseJudgeConfig,
    *,
    project_id: str | None = None,
    dry_run: bool = False,
    retry_failed: bool = False,
    retry_unparseable: bool = False,
    client_factory: ChatClientFactory | None = None,
    on_progress: ProgressHook | None = None,
    via: Via = "online",
    poll_interval: float = 5.0,
) -> PairwiseJudgeResult:
    """Judge each ``(prompt, a, b)`` in both orders and store the judgments.

    A consistent verdict becomes a pairwise judgment (2-point scale, or a tie). An inconsistent
    one becomes a tie flagged ``position_inconsistent`` (``on_inconsistent="tie"``) or, with
    ``"humans"``, no AI judgment: the item is returned in ``to_humans`` and queued as an item
    of project ``project_id``. Unparseable answers are failures, counted as ``unparseable``
    in the summary (not as done) and noted on the cached request; ``retry_unparseable`` asks
    the judge again. Requests that failed in an earlier run are called again only with
    ``retry_failed``.

    Raises:
        UsageError: the judge endpoint is not configured; ``on_inconsistent="humans"``
            without ``project_id``; an unknown ``project_id``; an item pairs a response with
            itself or with a response to another prompt. All are raised before any call.
    """
    if config.endpoint not in endpoints:
        raise UsageError(f"judge endpoint {config.endpoint!r} is not configured", field="endpoint")
    if config.on_inconsistent == "humans" and project_id is None:
        raise UsageError(
            "on_inconsistent='humans' sends position-inconsistent items to annotators, which "
            "needs the project that receives them: pass --project (or project_id=); "
            "nothing was called.",
            field="project",
        )
    if project_id is not None:
        with engine.connect() as conn:
            check_project(conn, project_id)
    ep = endpoints[config.endpoint]
    judge = pairwise_judge(ep, config)
    plans: list[tuple[Prompt, Response, Response, ChatRequest, ChatRequest]] = []
    for prompt, a, b in items:
        if a.response_id == b.response_id:
            raise UsageError(
                f"prompt {prompt.prompt_id}: cannot judge response {a.response_id} against itself"
            )
        if a.prompt_id != prompt.prompt_id or b.prompt_id != prompt.prompt_id:
            raise UsageError(f"prompt {prompt.prompt_id}: responses belong to another prompt")
        plans.append(
            (prompt, a, b, _request(ep, config, prompt, a, b), _request(ep, config, prompt, b, a))
        )
    requests = [r for p in plans for r in (p[3], p[4])]
    job = run_job(
        engine,
        endpoints,
        requests,
        kind="judge-pairwise",
        dry_run=dry_run,
        retry_failed=retry_failed,
        retry_unparseable=retry_unparseable,
        client_factory=client_factory,
        on_progress=on_progress,
        via=via,
        poll_interval=poll_interval,
    )
    result = PairwiseJudgeResult(judge, [], [], [], job.summary)
    if dry_run:
        return result
    unparseable: dict[str, str] = {}
    now = utcnow()
    for prompt, a, b, ab, ba in plans:
        ids = (a.response_id, b.response_id)
        texts = (job.reply_text(ab), job.reply_text(ba))
        if texts[0] is None or texts[1] is None:
            reason = job.failures.get(ab.key) or job.failures.get(ba.key) or "no reply"
            result.failures.append(JudgeFailure(prompt.prompt_id, ids, reason))
            continue
        v_ab, v_ba = parse_verdict(texts[0]), parse_verdict(texts[1])
        result.verdicts[f"{prompt.prompt_id}|{a.response_id}|{b.response_id}"] = (v_ab, v_ba)
        bad = [(req, t) for req, t, v in ((ab, texts[0], v_ab), (ba, texts[1], v_ba)) if v is None]
        if bad:
            for req, _ in bad:
                unparseable[req.key] = "unparseable verdict"
            result.unparseable += 1
            result.failures.append(
                JudgeFailure(prompt.prompt_id, ids, "unparseable verdict", bad[0][1])
            )
            continue
        # map each order's verdict to a response id (or tie)
        first = {"A": a.response_id, "B": b.response_id, "tie": None}[v_ab]  # type: ignore[index]
        second = {"A": b.response_id, "B": a.response_id, "tie": None}[v_ba]  # type: ignore[index]
        flags: tuple[str, ...] = ("both_orders",)
        if first != second:
            result.inconsistent += 1
            if config.on_inconsistent == "humans":
                result.to_humans.append((prompt.prompt_id, ids))
                continue
            value = PairwiseValue(scale=2, preferred=None, strength=0, tie=True)
            flags = (*flags, "position_inconsistent")
        elif first is None:
            value = PairwiseValue(scale=2, preferred=None, strength=0, tie=True)
        else:
            value = PairwiseValue(scale=2, preferred=first, strength=1)
        jid = judgment_id_of(judge.judge_id, prompt.prompt_id, ids[0], ids[1])
        result.judgments.append(
            Judgment(
                judgment_id=jid,
                prompt_id=prompt.prompt_id,
                response_ids=ids,
                kind=JudgmentKind.PAIRWISE,
                judge_id=judge.judge_id,
                pairwise=value,
                project_id=project_id,
                submitted_at=now,
                comment=f"order AB: {v_ab}; order BA: {v_ba}",
                flags=flags,
                idempotency_key=jid,
                source="ai-judge",
            )
        )

    def queue_for_humans(conn: Connection) -> None:
        if project_id is not None and result.to_humans:
            save_items(conn, project_id, result.to_humans, source=f"inconsistent:{judge.judge_id}")

    result.already_stored = store_judge_run(
        engine,
        job,
        judge,
        result.judgments,
        [p[0] for p in plans],
        [r for p in plans for r in (p[1], p[2])],
        unparseable,
        also=queue_for_humans,
    )
    return result
