"""The named conversion rules (DESIGN.md, "From judgments to pairs: named rules").

Every rule is a ``Literal`` string; :class:`DeriveConfig` gathers the choices and checks them
once, so a typo in a CLI flag or an API call fails before any row is converted. Each derived
row records the name of the rule that made it (``rule``) and the parameters it used
(``rule_params``, a JSON object).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from preflab.errors import UsageError

__all__ = [
    "HELPSTEER2_WEIGHTS",
    "Aggregate",
    "DeriveConfig",
    "FromPairs",
    "MultiturnRule",
    "RankingRule",
    "RatingRule",
    "TiePolicy",
]

TiePolicy = Literal["drop", "separate"]
"""``drop``: ties are counted and left out. ``separate``: ties are returned in their own table."""

RankingRule = Literal["all", "adjacent", "best_vs_rest"]
"""Pairs from a ranking: every ordered pair of groups, neighbouring groups only, or the top
group against every later one. Responses tied inside a group never form a pair."""

RatingRule = Literal["best_vs_random_lower", "best_vs_worst", "all_above_margin"]
"""Pairs from ratings. ``best_vs_random_lower`` is UltraFeedback's binarization (Cui et al.
2023, arXiv:2310.01377; as published in HuggingFaceH4/ultrafeedback_binarized: the highest mean
score is chosen, one response with a strictly lower score drawn at random is rejected)."""

Aggregate = Literal["none", "majority", "mean_strength", "dawid_skene"]
"""How several judgments of the same item become one outcome. ``dawid_skene`` is Dawid & Skene
(1979), "Maximum likelihood estimation of observer error-rates using the EM algorithm", as
implemented by crowd-kit."""

MultiturnRule = Literal["as_recorded", "continue_chosen"]
"""``as_recorded`` (default): prompts are kept as stored, i.e. as the annotator saw them.
``continue_chosen``: in a later turn's prompt, an earlier assistant turn that was itself judged
is replaced by that turn's chosen answer (RLHF book, "Preference Data", multi-turn data).

Why not rewrite by default: in the HH-RLHF harmless-base sample, 5 of 399 conversations go on
after the answer that was *rejected* at an earlier turn (red-teamers often continued with the
more harmful reply), so the next user turn answers that text; rewriting it would put words
before the user's reply that the user never saw. :func:`preflab.derive.unroll_turns` always
continues with the chosen answer, since it builds the context itself."""

FromPairs = Literal["skip", "unpair"]
"""For unpaired (KTO) data: ``unpair`` also turns every pair into a desirable chosen row and an
undesirable rejected row (as ``trl.data_utils.unpair_preference_dataset`` does)."""

# Nemotron-4-340B-Reward model card (NVIDIA, 2024; trained on HelpSteer2, Wang et al. 2024,
# arXiv:2406.08673): "we recommend using the weights [0, 0, 0, 0, 0.3, 0.74, 0.46, 0.47, -0.33]"
# over (…, helpfulness, correctness, coherence, complexity, verbosity).
HELPSTEER2_WEIGHTS: Mapping[str, float] = {
    "helpfulness": 0.3,
    "correctness": 0.74,
    "coherence": 0.46,
    "complexity": 0.47,
    "verbosity": -0.33,
}


def _check_choice(name: str, value: str, allowed: Any) -> None:
    options = get_args(allowed)
    if value not in options:
        raise UsageError(
            f"{name} must be one of {', '.join(options)}; got {value!r}.",
            field=name,
            value=value,
        )


@dataclass(frozen=True, slots=True)
class DeriveConfig:
    """The rules and parameters used to turn judgments into pairs and unpaired rows.

    Args:
        tie_policy: what happens to pairwise ties (see :data:`TiePolicy`).
        ranking_rule: pairs from rankings (see :data:`RankingRule`).
        rating_rule: pairs from ratings (see :data:`RatingRule`).
        min_margin: ratings only: the smallest score difference that still makes a pair
            (a pair always needs a difference above zero).
        attribute_weights: ratings only: weight per attribute; the score of a response is the
            weighted sum. Without weights it is the mean over the rated attributes.
        aggregate: how several judgments of one item combine (see :data:`Aggregate`).
        multiturn: how earlier turns of a multi-turn prompt are written.
        seed: seed of every random choice (``best_vs_random_lower``).
        from_pairs: unpaired data only (see :data:`FromPairs`).
        judges: only judgments whose ``judge_id`` matches one of these ids or glob patterns
            (``pku-saferlhf/*``); None keeps every judge (see :mod:`preflab.derive.judge_filter`).
    """

    tie_policy: TiePolicy = "drop"
    ranking_rule: RankingRule = "all"
    rating_rule: RatingRule = "best_vs_random_lower"
    min_margin: float = 0.0
    attribute_weights: Mapping[str, float] | None = None
    aggregate: Aggregate = "none"
    multiturn: MultiturnRule = "as_recorded"
    seed: int = 0
    from_pairs: FromPairs = "skip"
    extra: Mapping[str, Any] = field(default_factory=dict)
    judges: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        _check_choice("tie_policy", self.tie_policy, TiePolicy)
        _check_choice("ranking_rule", self.ranking_rule, RankingRule)
        _check_choice("rating_rule", self.rating_rule, RatingRule)
        _check_choice("aggregate", self.aggregate, Aggregate)
        _check_choice("multiturn", self.multiturn, MultiturnRule)
        _check_choice("from_pairs", self.from_pairs, FromPairs)
        if self.min_margin < 0:
            raise UsageError(
                f"min_margin must be zero or more; got {self.min_margin}.",
                field="min_margin",
                value=self.min_margin,
            )
        if self.judges is not None:
            if isinstance(self.judges, str) or not all(
                isinstance(j, str) and j.strip() for j in self.judges
            ):
                raise UsageError(
                    f"judges must be a list of judge ids or glob patterns; got {self.judges!r}.",
                    field="judge",
                    value=self.judges,
                )
            object.__setattr__(self, "judges", tuple(self.judges) or None)
        if self.attribute_weights is not None and not self.attribute_weights:
            raise UsageError(
                "attribute_weights is empty; give at least one attribute or leave it unset.",
                field="attribute_weights",
            )

    def params_json(self, kind: str) -> str:
        """Return the JSON ``rule_params`` recorded on rows derived from ``kind`` judgments."""
        params: dict[str, Any] = {"aggregate": self.aggregate, "multiturn": self.multiturn}
        if self.judges:
            params["judges"] = list(self.judges)
        if kind == "pairwise":
            params["tie_policy"] = self.tie_policy
        elif kind == "ranking":
            params["ranking_rule"] = self.ranking_rule
        elif kind == "rating":
            params["rating_rule"] = self.rating_rule
            params["min_margin"] = self.min_margin
            params["attribute_weights"] = (
                dict(self.attribute_weights) if self.attribute_weights is not None else None
            )
            if self.rating_rule == "best_vs_random_lower":
                params["seed"] = self.seed
        return json.dumps(params, sort_keys=True)
