"""AI judges: pairwise with principles (both orders), rubric ratings, agreement with humans."""

from preflab.generate.judges.agreement import AGREEMENT_SCHEMA, judge_agreement
from preflab.generate.judges.config import (
    DEFAULT_CONSTITUTION,
    ULTRAFEEDBACK_ASPECTS,
    PairwiseJudgeConfig,
    RubricJudgeConfig,
    judge_id_of,
)
from preflab.generate.judges.pairwise import (
    JudgeFailure,
    PairwiseJudgeResult,
    judge_pairwise,
    pairwise_judge,
)
from preflab.generate.judges.parsing import parse_rating, parse_verdict
from preflab.generate.judges.rubric import RubricJudgeResult, judge_rubric, rubric_judge

__all__ = [
    "AGREEMENT_SCHEMA",
    "DEFAULT_CONSTITUTION",
    "ULTRAFEEDBACK_ASPECTS",
    "JudgeFailure",
    "PairwiseJudgeConfig",
    "PairwiseJudgeResult",
    "RubricJudgeConfig",
    "RubricJudgeResult",
    "judge_agreement",
    "judge_id_of",
    "judge_pairwise",
    "judge_rubric",
    "pairwise_judge",
    "parse_rating",
    "parse_verdict",
    "rubric_judge",
]
