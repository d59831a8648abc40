"""A small builder of prompt/response/judgment tables for the derive tests."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from preflab.derive import Derivation, derive
from preflab.records import (
    BinaryValue,
    EditValue,
    Judgment,
    Message,
    PairwiseValue,
    Prompt,
    RatingValue,
    Response,
    records_to_table,
)


class Tables:
    """Collects records and derives from them."""

    def __init__(self) -> None:
        self.prompts: dict[str, Prompt] = {}
        self.responses: dict[str, Response] = {}
        self.judgments: list[Judgment] = []
        self._ids = itertools.count(1)

    def prompt(self, *turns: str, system: str | None = None) -> Prompt:
        msgs = [Message(role="system", content=system)] if system else []
        roles = itertools.cycle(["user", "assistant"])
        msgs += [Message(role=next(roles), content=t) for t in turns]
        p = Prompt(messages=msgs)
        self.prompts[p.prompt_id] = p
        return p

    def response(self, prompt: Prompt, text: str, model: str | None = None) -> Response:
        r = Response(prompt_id=prompt.prompt_id, content=text, model=model)
        self.responses[r.response_id] = r
        return r

    def _judgment(self, prompt: Prompt, shown: list[Response], kind: str, judge: str,
                  **value: Any) -> Judgment:
        j = Judgment(
            judgment_id=value.pop("judgment_id", None) or f"j{next(self._ids)}",
            prompt_id=prompt.prompt_id,
            response_ids=[r.response_id for r in shown],
            kind=kind,
            judge_id=judge,
            **value,
        )
        self.judgments.append(j)
        return j

    def pairwise(self, prompt: Prompt, a: Response, b: Response, preferred: Response | None = None,
                 *, strength: int = 1, scale: int = 2, tie: bool = False, both_bad: bool = False,
                 judge: str = "ann", **extra: Any) -> Judgment:
        value = PairwiseValue(scale=scale, preferred=preferred.response_id if preferred else None,
                              strength=0 if tie else strength, tie=tie, both_bad=both_bad)
        return self._judgment(prompt, [a, b], "pairwise", judge, pairwise=value, **extra)

    def ranking(self, prompt: Prompt, groups: list[list[Response]], judge: str = "ann") -> Judgment:
        shown = [r for g in groups for r in g]
        ranking = [[r.response_id for r in g] for g in groups]
        return self._judgment(prompt, shown, "ranking", judge, ranking=ranking)

    def rating(self, prompt: Prompt, scores: list[tuple[Response, Any]], judge: str = "ann") -> Judgment:
        """Rate responses: ``[(response, score or {attribute: score}), ...]``."""
        table = {r.response_id: (s if isinstance(s, dict) else {"overall": float(s)}) for r, s in scores}
        shown = [r for r, _ in scores]
        return self._judgment(prompt, shown, "rating", judge, rating=RatingValue(scores=table))

    def binary(self, prompt: Prompt, r: Response, label: bool, judge: str = "ann") -> Judgment:
        return self._judgment(prompt, [r], "binary", judge,
                              binary=BinaryValue(response_id=r.response_id, label=label))

    def edit(self, prompt: Prompt, original: Response, edited: Response, judge: str = "ann") -> Judgment:
        return self._judgment(prompt, [original, edited], "edit", judge,
                              edit=EditValue(original_id=original.response_id, edited_id=edited.response_id))

    def tables(self):
        from preflab.records import JUDGMENT_SCHEMA, PROMPT_SCHEMA, RESPONSE_SCHEMA

        p = records_to_table(list(self.prompts.values())) if self.prompts else PROMPT_SCHEMA.empty_table()
        r = records_to_table(list(self.responses.values())) if self.responses else RESPONSE_SCHEMA.empty_table()
        j = records_to_table(self.judgments) if self.judgments else JUDGMENT_SCHEMA.empty_table()
        return p, r, j

    def derive(self, **options: Any) -> Derivation:
        return derive(*self.tables(), **options)


@pytest.fixture
def tables() -> Tables:
    return Tables()
