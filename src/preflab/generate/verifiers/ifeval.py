"""Instruction-constraint pairs (IFEval-style), checked by lm-eval's IFEval verifiers.

The checks are lm-eval's own (``lm_eval.tasks.ifeval``: the instruction registry of Zhou et
al. 2023, "Instruction-Following Evaluation for Large Language Models", and its strict
test); nothing here re-implements a checker. A prompt is generated once *with* the verifiable
constraint appended and once *without*; both answers are checked against the constraint, and
when exactly one satisfies it, it becomes chosen over the other. The stored prompt always
includes the constraint text (and the constraint itself in ``Prompt.constraints``), so the
pair is a fair comparison on the constrained prompt.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from types import ModuleType
from typing import Any

from sqlalchemy import Engine

from preflab.errors import DependencyError, InputError, UsageError
from preflab.generate.endpoints import ChatClientFactory, EndpointConfig
from preflab.generate.jobs import JobSummary, ProgressHook, make_request, run_job
from preflab.generate.judges.config import judgment_id_of
from preflab.generate.writeback import save_judges, save_judgments, save_prompts, save_responses
from preflab.records import (
    Judge,
    JudgeKind,
    Judgment,
    JudgmentKind,
    Message,
    Origin,
    PairwiseValue,
    Prompt,
    Response,
    ResponseId,
)
from preflab.store.tables import utcnow
from preflab.store.unit_of_work import write_scope

__all__ = [
    "Constraint",
    "ConstraintPairResult",
    "check_constraints",
    "constrain_prompt",
    "describe_constraint",
    "generate_constraint_pairs",
    "ifeval_judge",
    "pair_by_constraints",
    "unavailable_checks",
]


def _ifeval() -> tuple[ModuleType, ModuleType]:
    try:
        # lm-eval tries to download NLTK's punkt_tab on import and prints about it; keep
        # that out of our output (checks that need it raise DependencyError instead).
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            from lm_eval.tasks.ifeval import instructions_registry, utils
    except ImportError as exc:
        raise DependencyError(
            f"IFEval verifiers need lm-eval ({exc.name} is missing). "
            "Install them with: pip install 'preflab[ifeval]'"
        ) from None
    return instructions_registry, utils


@dataclass(frozen=True, slots=True)
class Constraint:
    """One verifiable instruction: an IFEval instruction id and its arguments.

    >>> Constraint.from_json('{"id": "punctuation:no_comma", "kwargs": {}}').instruction_id
    'punctuation:no_comma'
    """

    instruction_id: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """Return the JSON stored in ``Prompt.constraints``."""
        return json.dumps({"id": self.instruction_id, "kwargs": dict(self.kwargs)}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Constraint:
        """Parse a constraint stored by :meth:`to_json`.

        Raises:
            InputError: the text is not such a JSON object.
        """
        try:
            data = json.loads(text)
            return cls(str(data["id"]), dict(data.get("kwargs") or {}))
        except (ValueError, KeyError, TypeError):
            raise InputError(
                'a constraint must be JSON like {"id": "punctuation:no_comma", "kwargs": {}}',
                field="constraints",
                value=text,
            ) from None


def _instruction(c: Constraint) -> Any:
    registry, _ = _ifeval()
    cls = registry.INSTRUCTION_DICT.get(c.instruction_id)
    if cls is None:
        raise InputError(
            f"unknown IFEval instruction {c.instruction_id!r}; known: "
            f"{', '.join(sorted(registry.INSTRUCTION_DICT))}",
            field="constraints",
            value=c.instruction_id,
        )
    return cls(c.instruction_id)


def describe_constraint(c: Constraint) -> str:
    """Return the instruction text lm-eval writes for ``c`` (what the model is told).

    >>> describe_constraint(Constraint("punctuation:no_comma"))
    'In your entire response, refrain from the use of any commas.'
    """
    inst = _instruction(c)
    try:
        return str(inst.build_description(**{k: v for k, v in c.kwargs.items() if v is not None}))
    except TypeError as exc:
        raise InputError(
            f"bad arguments for {c.instruction_id}: {exc}",
            field="constraints",
            value=dict(c.kwargs),
        ) from None


def constrain_prompt(prompt: Prompt, constraints: Sequence[Constraint]) -> Prompt:
    """Return ``prompt`` with the constraints' instructions appended to its last user turn."""
    texts = [describe_constraint(c) for c in constraints]
    last = prompt.messages[-1]
    messages = (
        *prompt.messages[:-1],
        Message(role="user", content=f"{last.content}\n\n" + " ".join(texts)),
    )
    return Prompt(
        messages=messages,
        source=prompt.source,
        tags=(*prompt.tags, "ifeval"),
        constraints=tuple(c.to_json() for c in constraints),
        reference=prompt.reference,
    )


def check_constraints(
    response: str, constraints: Sequence[Constraint], prompt_text: str = ""
) -> list[bool]:
    """Return, per constraint, whether ``response`` follows it (lm-eval's strict IFEval test).

    Raises:
        DependencyError: lm-eval (or an NLTK resource some checks need) is missing.
    """
    _, utils = _ifeval()
    example = utils.InputExample(
        key=0,
        instruction_id_list=[c.instruction_id for c in constraints],
        prompt=prompt_text,
        kwargs=[dict(c.kwargs) for c in constraints],
    )
    for c in constraints:
        _instruction(c)  # names unknown ids as InputError before lm-eval's KeyError
    try:
        out = utils.test_instruction_following_strict(example, response)
    except LookupError as exc:  # NLTK data (punkt_tab) absent on an offline machine
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip().strip("*")]
        found = next((ln for ln in lines if ln.startswith("Resource")), lines[0] if lines else "")
        name = re.search(r"Resource\s+'?([\w./-]+)'?", found)
        resource = name.group(1) if name else "punkt_tab"
        raise DependencyError(
            f"this IFEval check needs NLTK's {resource!r} data, which is not installed "
            f"({found.rstrip('.')}). Run: python -m nltk.downloader {resource}"
        ) from None
    return [bool(x) for x in out.follow_instruction_list]


_SAMPLE_RESPONSE = (
    "This is a short sample answer. It has two sentences, a few words and no special format."
)


def unavailable_checks(constraints: Sequence[Constraint]) -> dict[str, str]:
    """Return the instruction ids among ``constraints`` that cannot run here, with the reason.

    Some lm-eval checks tokenize with NLTK and need its ``punkt_tab`` data, which an offline
    machine may lack; each distinct instruction is run once on a sample answer to find out,
    so that a job learns it before any call rather than after all of them. The others
    (punctuation, case, format, keywords…) run offline.

    Raises:
        DependencyError: lm-eval itself is missing.
        InputError: an unknown instruction id or bad arguments.
    """
    out: dict[str, str] = {}
    seen: set[str] = set()
    for c in constraints:
        if c.instruction_id in seen:
            continue
        seen.add(c.instruction_id)
        try:
            check_constraints(_SAMPLE_RESPONSE, [c], "Sample prompt.")
        except DependencyError as exc:
            out[c.instruction_id] = exc.message
    return out


def ifeval_judge() -> Judge:
    """Return the judge identity of the IFEval verifier (with lm-eval's version)."""
    try:
        ver = version("lm-eval")
    except PackageNotFoundError:
        ver = "unknown"
    return Judge(
        judge_id=f"verifier:ifeval@lm-eval-{ver}",
        kind=JudgeKind.VERIFIER,
        name="IFEval strict (lm-eval)",
        template="ifeval-strict",
        template_version=ver,
    )


def pair_by_constraints(
    prompt: Prompt, responses: Sequence[Response], *, judge: Judge | None = None
) -> tuple[list[Judgment], dict[ResponseId, list[bool]]]:
    """Return verifier judgments preferring responses that satisfy every constraint of ``prompt``.

    Each (satisfying, violating) pair of responses gives one pairwise judgment; responses that
    all pass or all fail give none. Also returns the check results by response id.

    Raises:
        UsageError: the prompt has no constraints.
    """
    if not prompt.constraints:
        raise UsageError(f"prompt {prompt.prompt_id} has no constraints to verify")
    constraints = [Constraint.from_json(c) for c in prompt.constraints]
    judge = judge or ifeval_judge()
    text = prompt.messages[-1].content
    checks = {r.response_id: check_constraints(r.content, constraints, text) for r in responses}
    good = [r for r in responses if all(checks[r.response_id])]
    bad = [r for r in responses if not all(checks[r.response_id])]
    now = utcnow()
    out = []
    for g in good:
        for b in bad:
            jid = judgment_id_of(judge.judge_id, prompt.prompt_id, g.response_id, b.response_id)
            failed = [
                c.instruction_id
                for c, ok in zip(constraints, checks[b.response_id], strict=True)
                if not ok
            ]
            out.append(
                Judgment(
                    judgment_id=jid,
                    prompt_id=prompt.prompt_id,
                    response_ids=(g.response_id, b.response_id),
                    kind=JudgmentKind.PAIRWISE,
                    judge_id=judge.judge_id,
                    pairwise=PairwiseValue(scale=2, preferred=g.response_id, strength=1),
                    submitted_at=now,
                    comment="rejected violates: " + ", ".join(failed),
                    flags=("verifier", "ifeval"),
                    idempotency_key=jid,
                    source="verifier",
                )
            )
    return out, checks


@dataclass(slots=True)
class ConstraintPairResult:
    """Constrained prompts, their two responses, the verifier judgments, and skipped prompts.

    ``unavailable`` names the IFEval checks that cannot run on this machine (instruction id →
    why); prompts using one are skipped before any call.
    """

    prompts: list[Prompt]
    responses: list[Response]
    judgments: list[Judgment]
    skipped: dict[str, str]
    summary: JobSummary
    unavailable: dict[str, str] = field(default_factory=dict)


def generate_constraint_pairs(
    engine: Engine,
    endpoints: Mapping[str, EndpointConfig],
    items: Sequence[tuple[Prompt, Sequence[Constraint]]],
    endpoint: str,
    *,
    seed: int = 0,
    dry_run: bool = False,
    retry_failed: bool = False,
    client_factory: ChatClientFactory | None = None,
    on_progress: ProgressHook | None = None,
) -> ConstraintPairResult:
    """Generate each prompt with and without its constraints, verify both, store the pairs.

    Prompts where both answers pass (or both fail) are skipped with the reason. Checks that
    cannot run here (see :func:`unavailable_checks`) are found before any call: prompts that
    need one are skipped uncalled, the others run.
    """
    if endpoint not in endpoints:
        raise UsageError(f"endpoint {endpoint!r} is not configured", field="endpoint")
    ep = endpoints[endpoint]
    unavailable = unavailable_checks([c for _, cs in items for c in cs])
    skipped_early: dict[str, str] = {}
    plans = []
    for base, constraints in items:
        constrained = constrain_prompt(base, constraints)
        missing = [c.instruction_id for c in constraints if c.instruction_id in unavailable]
        if missing:
            skipped_early[constrained.prompt_id] = (
                f"not called: check {', '.join(missing)} cannot run here "
                f"({unavailable[missing[0]]})"
            )
            continue
        with_c = make_request(
            ep,
            [m.model_dump() for m in constrained.messages],
            seed=seed,
            meta={"prompt_id": constrained.prompt_id, "variant": "with"},
        )
        without = make_request(
            ep,
            [m.model_dump() for m in base.messages],
            seed=seed,
            meta={"prompt_id": constrained.prompt_id, "variant": "without"},
        )
        plans.append((constrained, with_c, without))
    job = run_job(
        engine,
        endpoints,
        [r for _, a, b in plans for r in (a, b)],
        kind="ifeval",
        dry_run=dry_run,
        retry_failed=retry_failed,
        client_factory=client_factory,
        on_progress=on_progress,
    )
    result = ConstraintPairResult([], [], [], dict(skipped_early), job.summary, unavailable)
    if dry_run:
        return result
    judge = ifeval_judge()
    for prompt, with_c, without in plans:
        responses = []
        for req, variant in ((with_c, "with"), (without, "without")):
            text = job.reply_text(req)
            if text is None or not text.strip():
                continue
            responses.append(
                Response(
                    prompt_id=prompt.prompt_id,
                    content=text,
                    model=ep.model,
                    model_revision=ep.revision,
                    params={
                        **dict(req.params),
                        "seed": req.seed,
                        "constraint_shown": variant == "with",
                    },
                    origin=Origin.MODEL,
                )
            )
        if len({r.response_id for r in responses}) < 2:
            result.skipped[prompt.prompt_id] = "fewer than two distinct responses"
            continue
        judgments, checks = pair_by_constraints(prompt, responses, judge=judge)
        if not judgments:
            passed = sum(all(v) for v in checks.values())
            result.skipped[prompt.prompt_id] = (
                "both responses satisfy the constraints"
                if passed == 2
                else "both responses violate the constraints"
            )
        result.prompts.append(prompt)
        result.responses.extend(responses)
        result.judgments.extend(judgments)
    with write_scope(engine) as conn:
        save_prompts(conn, result.prompts)
        save_responses(conn, result.responses)
        save_judges(conn, [judge])
        save_judgments(conn, result.judgments)
    return result
