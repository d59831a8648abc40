"""Verifiable math: final answers extracted and compared with the reference symbolically.

Extraction and equivalence use Hugging Face's ``math-verify`` (LaTeX and plain expressions,
``\\boxed{}``, sets, intervals; SymPy underneath), so ``0.5``, ``\\frac{1}{2}`` and ``1/2``
match and ``2\\sqrt{2}`` equals ``\\sqrt{8}``. When ``math-verify`` is not installed a SymPy
fallback compares plain expressions (``sympify`` and ``simplify(a - b) == 0``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from sqlalchemy import Engine

from preflab.errors import UsageError
from preflab.generate.candidates import MixRule, generate_candidates
from preflab.generate.endpoints import ChatClientFactory, EndpointConfig
from preflab.generate.jobs import JobSummary, ProgressHook
from preflab.generate.judges.config import judgment_id_of
from preflab.generate.writeback import save_judges, save_judgments
from preflab.records import (
    Judge,
    JudgeKind,
    Judgment,
    JudgmentKind,
    PairwiseValue,
    Prompt,
    Response,
    ResponseId,
)
from preflab.store.tables import utcnow
from preflab.store.unit_of_work import write_scope

__all__ = [
    "MathPairResult",
    "extract_final_answer",
    "generate_math_pairs",
    "is_correct",
    "math_judge",
    "pair_by_answer",
]

_GSM_MARK = re.compile(r"####\s*(.+)")
_ANSWER_IS = re.compile(
    r"(?:final\s+answer|answer)\s*(?:is|:)\s*\$?([^\n$]+?)\$?\s*(?:\.|$)", re.IGNORECASE
)


def _timeouts() -> int | None:
    # math-verify's timeouts use signals, which work in the main thread only
    return 5 if threading.current_thread() is threading.main_thread() else None


def extract_final_answer(text: str) -> str | None:
    """Return the final answer of a solution (``\\boxed{}``, ``#### x``, "answer is x") or None.

    >>> extract_final_answer("So we get $\\\\boxed{\\\\frac{3}{4}}$.")
    '\\\\frac{3}{4}'
    >>> extract_final_answer("9 * 2 = 18 dollars.\\n#### 18")
    '18'
    >>> extract_final_answer("I am not sure.") is None
    True
    """
    parsed = _parse_answer(text)
    if parsed is None:
        return None
    return parsed[1]


def _parse_answer(text: str) -> tuple[object, str] | None:
    gsm = _GSM_MARK.findall(text)
    candidate = gsm[-1].strip() if gsm else text
    try:
        from math_verify import parse
    except ImportError:
        return _sympy_parse(candidate)
    found = parse(candidate, parsing_timeout=_timeouts())
    if len(found) < 2:
        return None
    return found[0], str(found[1])


def _sympy_parse(text: str) -> tuple[object, str] | None:
    import sympy

    boxed = re.findall(r"\\boxed\{([^{}]*)\}", text)
    said = _ANSWER_IS.findall(text)
    nums = re.findall(r"-?\d+(?:\.\d+)?(?:/\d+)?", text)
    raw = boxed[-1] if boxed else said[-1] if said else nums[-1] if nums else None
    if raw is None:
        return None
    try:
        return sympy.sympify(raw.replace("^", "**").strip()), raw.strip()
    except (sympy.SympifyError, SyntaxError, TypeError):
        return None


def is_correct(response: str, reference: str) -> bool | None:
    """Return whether the response's final answer equals ``reference`` symbolically.

    None when no answer can be extracted from the response.

    >>> is_correct("The answer is $\\\\boxed{0.5}$", "\\\\frac{1}{2}")
    True
    >>> is_correct("#### 19", "18")
    False
    """
    ans = _parse_answer(response)
    if ans is None:
        return None
    ref = reference.strip()
    try:
        from math_verify import parse, verify
    except ImportError:
        import sympy

        gold = _sympy_parse(rf"\boxed{{{ref}}}")
        if gold is None:
            return ans[1] == ref
        return bool(sympy.simplify(sympy.sympify(ans[0]) - sympy.sympify(gold[0])) == 0)
    gold = parse(ref if ref.startswith("$") else f"${ref}$", parsing_timeout=_timeouts())
    if not gold:
        gold = parse(ref, parsing_timeout=_timeouts())
    return bool(verify(gold, [ans[0], ans[1]], timeout_seconds=_timeouts()))


def math_judge() -> Judge:
    """Return the judge identity of the math verifier (with math-verify's version)."""
    try:
        ver = version("math-verify")
    except PackageNotFoundError:
        ver = "sympy"
    return Judge(
        judge_id=f"verifier:math@math-verify-{ver}",
        kind=JudgeKind.VERIFIER,
        name="final-answer equivalence",
        template="math-final-answer",
        template_version=ver,
    )


def pair_by_answer(
    prompt: Prompt, responses: Sequence[Response], *, max_pairs: int = 4, judge: Judge | None = None
) -> tuple[list[Judgment], dict[ResponseId, bool | None]]:
    """Return verifier judgments preferring correct answers over incorrect ones.

    Responses without an extractable answer count as incorrect. At most ``max_pairs``
    (correct, incorrect) pairs per prompt, in response order.

    Raises:
        UsageError: the prompt has no reference answer.
    """
    if not prompt.reference:
        raise UsageError(f"prompt {prompt.prompt_id} has no reference answer to verify against")
    judge = judge or math_judge()
    verdicts = {r.response_id: is_correct(r.content, prompt.reference) for r in responses}
    good = [r for r in responses if verdicts[r.response_id]]
    bad = [r for r in responses if not verdicts[r.response_id]]
    now = utcnow()
    out: list[Judgment] = []
    for g in good:
        for b in bad:
            if len(out) >= max_pairs:
                break
            jid = judgment_id_of(judge.judge_id, prompt.prompt_id, g.response_id, b.response_id)
            why = "no final answer" if verdicts[b.response_id] is None else "wrong final answer"
            out.append(
                Judgment(
                    judgment_id=jid,
                    prompt_id=prompt.prompt_id,
                    response_ids=(g.response_id, b.response_id),
                    kind=JudgmentKind.PAIRWISE,
                    judge_id=judge.judge_id,
                    pairwise=PairwiseValue(scale=2, preferred=g.response_id, strength=1),
                    submitted_at=now,
                    comment=f"rejected: {why}",
                    flags=("verifier", "math"),
                    idempotency_key=jid,
                    source="verifier",
                )
            )
    return out, verdicts


@dataclass(slots=True)
class MathPairResult:
    """Sampled responses, verifier judgments, verdicts by response, prompts without a pair."""

    responses: list[Response]
    judgments: list[Judgment]
    verdicts: dict[ResponseId, bool | None]
    skipped: dict[str, str]
    summary: JobSummary


def generate_math_pairs(
    engine: Engine,
    endpoints: Mapping[str, EndpointConfig],
    prompts: Sequence[Prompt],
    *,
    n: int = 4,
    mix: MixRule | None = None,
    seed: int = 0,
    max_pairs: int = 4,
    dry_run: bool = False,
    retry_failed: bool = False,
    client_factory: ChatClientFactory | None = None,
    on_progress: ProgressHook | None = None,
) -> MathPairResult:
    """Sample ``n`` solutions per prompt, verify final answers, store correct-over-incorrect pairs.

    Raises:
        UsageError: a prompt has no reference answer.
    """
    missing = [p.prompt_id for p in prompts if not p.reference]
    if missing:
        raise UsageError(
            f"{len(missing)} prompt(s) have no reference answer (first: {missing[0]}); "
            'give each line a "reference" field',
            field="reference",
        )
    cands = generate_candidates(
        engine,
        prompts,
        endpoints,
        n=n,
        mix=mix,
        seed=seed,
        dry_run=dry_run,
        retry_failed=retry_failed,
        client_factory=client_factory,
        on_progress=on_progress,
    )
    result = MathPairResult(cands.responses, [], {}, {}, cands.summary)
    if dry_run:
        return result
    judge = math_judge()
    dropped = {rid for g in cands.duplicates for rid in g.dropped}
    by_prompt: dict[str, list[Response]] = {}
    for r in cands.responses:
        if r.response_id not in dropped:
            by_prompt.setdefault(r.prompt_id, []).append(r)
    for prompt in prompts:
        judgments, verdicts = pair_by_answer(
            prompt, by_prompt.get(prompt.prompt_id, []), max_pairs=max_pairs, judge=judge
        )
        result.verdicts.update(verdicts)
        result.judgments.extend(judgments)
        if not judgments:
            right = sum(bool(v) for v in verdicts.values())
            result.skipped[prompt.prompt_id] = (
                "all answers correct" if right and right == len(verdicts) else "no correct answer"
            )
    with write_scope(engine) as conn:
        save_judges(conn, [judge])
        save_judgments(conn, result.judgments)
    return result
