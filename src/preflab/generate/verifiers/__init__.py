"""Verifiers: IFEval instruction constraints (lm-eval) and math final answers (math-verify)."""

from preflab.generate.verifiers.ifeval import (
    Constraint,
    ConstraintPairResult,
    check_constraints,
    constrain_prompt,
    describe_constraint,
    generate_constraint_pairs,
    ifeval_judge,
    pair_by_constraints,
    unavailable_checks,
)
from preflab.generate.verifiers.math import (
    MathPairResult,
    extract_final_answer,
    generate_math_pairs,
    is_correct,
    math_judge,
    pair_by_answer,
)

__all__ = [
    "Constraint",
    "ConstraintPairResult",
    "MathPairResult",
    "check_constraints",
    "constrain_prompt",
    "describe_constraint",
    "extract_final_answer",
    "generate_constraint_pairs",
    "generate_math_pairs",
    "ifeval_judge",
    "is_correct",
    "math_judge",
    "pair_by_answer",
    "pair_by_constraints",
    "unavailable_checks",
]
