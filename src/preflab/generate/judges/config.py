"""Configs of the AI judges: which endpoint, which template and version, which principles."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from preflab.records import Judge, JudgeKind, JudgmentId

__all__ = [
    "DEFAULT_CONSTITUTION",
    "ULTRAFEEDBACK_ASPECTS",
    "InconsistentPolicy",
    "PairwiseJudgeConfig",
    "RubricJudgeConfig",
    "judge_id_of",
    "judgment_id_of",
    "make_ai_judge",
]

InconsistentPolicy = Literal["tie", "humans"]

# A short constitution in the spirit of Bai et al. 2022, "Constitutional AI" (Appendix C
# principles); replace it with the team's own text.
DEFAULT_CONSTITUTION = (
    "1. Prefer the response that is more helpful, honest and harmless.\n"
    "2. Prefer the response that answers the user's actual question accurately and completely.\n"
    "3. Prefer the response that avoids harmful, unethical, toxic, dangerous or illegal content.\n"
    "4. Do not let the length of a response or its position influence your decision."
)

# The four aspects of UltraFeedback (Cui et al. 2023, "UltraFeedback", §2.2 and Appendix G),
# with their annotation questions shortened.
ULTRAFEEDBACK_ASPECTS: dict[str, str] = {
    "instruction_following": "How well does the response follow the user's instructions?",
    "helpfulness": "How informative, correct and useful is the response for the user's task?",
    "honesty": "How well does the response express uncertainty and avoid confident mistakes?",
    "truthfulness": "Is the response free of hallucinations and factual errors?",
}


def judge_id_of(
    model: str,
    template: str,
    version: str,
    *,
    revision: str | None = None,
    text: str = "",
    params: Mapping[str, Any] | None = None,
) -> str:
    """Return the identity of an AI judge: everything that can change its verdicts.

    The readable part names the model, the template and its version; the suffix is a content
    hash of the model, its revision, the template name and version, the full template text
    (with the constitution or rubric in it) and the sampling parameters. Changing any of them
    makes another judge, whose judgments are stored beside the first one's, never instead.

    >>> a = judge_id_of("gpt-x", "pairwise-principles", "1", text="Prefer honesty.")
    >>> a.startswith("ai:gpt-x:pairwise-principles@1:")
    True
    >>> a == judge_id_of("gpt-x", "pairwise-principles", "1", text="Prefer brevity.")
    False
    >>> a == judge_id_of("gpt-x", "pairwise-principles", "1", text="Prefer honesty.",
    ...                  revision="step-2")
    False
    """
    payload = {
        "model": model,
        "revision": revision,
        "template": template,
        "version": version,
        "text": text,
        "params": dict(params or {}),
    }
    raw = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    digest = hashlib.sha256(raw.encode("utf-8")).hexdigest()[:12]
    head = f"ai:{model}:{template}@{version}"
    room = _JUDGE_ID_MAX - len(digest) - 1
    if len(head) > room:  # the store's column holds 200 characters; the hash keeps it unique
        head = head[: room - 1] + "…"
    return f"{head}:{digest}"


_JUDGE_ID_MAX = 200


def judgment_id_of(judge_id: str, *parts: str) -> JudgmentId:
    """Return the stable id of a judge's judgment on an item (re-running a judge is a no-op).

    >>> judgment_id_of("ai:m:t@1", "p_1", "r_1", "r_2").startswith("j_")
    True
    """
    raw = "|".join((judge_id, *parts))
    return JudgmentId("j_" + hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32])


class PairwiseJudgeConfig(BaseModel):
    """A pairwise judge: compares two responses under a constitution, in both orders.

    Args:
        endpoint: endpoint name of the judge model.
        constitution: the principles text shown to the judge.
        template_version: a name for this version of the template and constitution; part of
            the judge's identity (so is the constitution's text itself).
        on_inconsistent: what to do when the two orders disagree: record a ``tie`` (flagged
            ``position_inconsistent``) or send the item to ``humans`` (no AI judgment).
        params: sampling parameters (greedy by default).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    endpoint: str
    constitution: str = DEFAULT_CONSTITUTION
    template_name: str = "pairwise-principles"
    template_version: str = "1"
    on_inconsistent: InconsistentPolicy = "tie"
    params: dict[str, Any] = Field(default_factory=lambda: {"temperature": 0.0})


class RubricJudgeConfig(BaseModel):
    """A rubric judge: rates each response on each aspect (UltraFeedback-style, 1–5).

    Args:
        endpoint: endpoint name of the judge model.
        aspects: aspect name → the question the judge answers.
        scale_min: lowest rating.
        scale_max: highest rating.
        template_version: bump when the template changes meaning.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    endpoint: str
    aspects: dict[str, str] = Field(default_factory=lambda: dict(ULTRAFEEDBACK_ASPECTS))
    scale_min: int = 1
    scale_max: int = 5
    template_name: str = "rubric-ultrafeedback"
    template_version: str = "1"
    params: dict[str, Any] = Field(default_factory=lambda: {"temperature": 0.0})


def make_ai_judge(
    model: str,
    revision: str | None,
    template_name: str,
    template_version: str,
    text: str,
    params: Mapping[str, Any],
) -> Judge:
    """Return the Judge record of an AI judge (see :func:`judge_id_of` for its identity).

    ``name`` shows the model with its revision, since the record has no revision field.
    """
    return Judge(
        judge_id=judge_id_of(
            model, template_name, template_version, revision=revision, text=text, params=params
        ),
        kind=JudgeKind.AI,
        name=f"{template_name}@{template_version} by {model}"
        + (f" (revision {revision})" if revision else ""),
        model=model,
        template=text,
        template_version=template_version,
    )
