"""UltraFeedback (Cui et al. 2023, huggingface.co/datasets/openbmb/UltraFeedback).

One row per instruction: ``source``, ``instruction`` (the prompt), ``models`` and
``completions``, a list of ``{model, principle, custom_system_prompt, response, annotations,
fine-grained_score, overall_score, critique}``. ``annotations`` maps each aspect
(``helpfulness``, ``honesty``, ``instruction_following``, ``truthfulness``) to
``{"Rating": "1".."5" or "N/A", "Rationale": …}`` (a one-element list of that object is accepted
too, as in the raw GitHub release).

Each row becomes, over its completions (responses tagged with their ``model``; ``principle``
and ``custom_system_prompt`` kept in ``params``), two **rating judgments** by GPT-4:

- judge ``ultrafeedback/gpt-4/aspects``: per response the four aspect ratings and
  ``fine_grained_score`` (their mean as published), scale 1–5;
- judge ``ultrafeedback/gpt-4/critique``: per response ``overall_score``, scale 1–10.

The **binarized** layout (HuggingFaceH4/ultrafeedback_binarized: ``prompt``, ``chosen``,
``rejected``, ``score_chosen``, ``score_rejected``) is recognised row by row and read by the
rules of :mod:`preflab.formats.ultrafeedback_binarized` (also registered on its own as
``ultrafeedback-binarized``): one rating judgment of the two scored answers.

``N/A`` ratings are left out (``counts["na_ratings"]``). Completions with an empty response are
dropped (``dropped_empty_response``, per completion); rows with no usable completion are dropped
(``dropped_no_completions``). The prompt is tagged ``source:<source>``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from preflab.formats.base import ImportChunk
from preflab.formats.chunk_builder import ChunkBuilder
from preflab.formats.driver import read_file
from preflab.formats.fields import RowError, describe, get_number, get_str, optional_str
from preflab.formats.ultrafeedback_binarized import is_binarized_row
from preflab.formats.ultrafeedback_binarized import parse_row as parse_binarized_row

__all__ = ["ASPECTS", "ASPECTS_JUDGE", "CRITIQUE_JUDGE", "read_ultrafeedback", "parse_row"]

ASPECTS = ("helpfulness", "honesty", "instruction_following", "truthfulness")
ASPECTS_JUDGE = "ultrafeedback/gpt-4/aspects"
CRITIQUE_JUDGE = "ultrafeedback/gpt-4/critique"


def _rating(annotations: Mapping[str, Any], aspect: str, field: str) -> float | None:
    value = annotations.get(aspect)
    if value is None:
        return None
    if isinstance(value, list):
        if not value:
            return None
        value = value[0]
    if not isinstance(value, Mapping):
        raise RowError(
            f"{field}.{aspect}", f"expected {{Rating, Rationale}}, got {describe(value)}", value
        )
    rating = value.get("Rating")
    if rating is None or (isinstance(rating, str) and rating.strip().upper() in ("N/A", "NA", "")):
        return None
    return get_number(value, "Rating", field=f"{field}.{aspect}.Rating", lo=1, hi=5)


def parse_row(b: ChunkBuilder, row: dict[str, Any]) -> None:
    """Check one input row and add its records to ``b`` (rules in the module docstring)."""
    if "instruction" not in row and is_binarized_row(row):
        parse_binarized_row(b, row)
        return
    instruction = get_str(row, "instruction")
    completions = row.get("completions")
    if not isinstance(completions, list):
        raise RowError(
            "completions",
            f"expected a list of completions, got {describe(completions)}",
            completions,
        )
    source = optional_str(row, "source")
    prompt_id = b.add_prompt(
        [{"role": "user", "content": instruction}],
        field="instruction",
        tags=[f"source:{source}"] if source else [],
    )
    shown: list[str] = []
    aspect_scores: list[dict[str, Any]] = []
    overall_scores: list[dict[str, Any]] = []
    for i, comp in enumerate(completions):
        field = f"completions[{i}]"
        if not isinstance(comp, Mapping):
            raise RowError(field, f"expected a completion object, got {describe(comp)}", comp)
        model = optional_str(comp, "model")
        text = comp.get("response")
        if text is None or (isinstance(text, str) and not text.strip()):
            b.drop("empty_response", f"completion {i} ({model}) has no response", field=field)
            continue
        text = get_str(comp, "response", field=f"{field}.response")
        rid = b.add_response(
            prompt_id,
            text,
            field=f"{field}.response",
            model=model,
            origin="model",
            params={
                "principle": optional_str(comp, "principle"),
                "system_prompt": optional_str(comp, "custom_system_prompt"),
            },
        )
        if rid in shown:
            b.drop(
                "duplicate_completion",
                f"completion {i} ({model}) repeats an earlier completion's text and model",
                field=f"{field}.response",
            )
            continue
        shown.append(rid)
        annotations = comp.get("annotations") or {}
        if not isinstance(annotations, Mapping):
            raise RowError(
                f"{field}.annotations",
                f"expected an object of aspects, got {describe(annotations)}",
            )
        for aspect in ASPECTS:
            score = _rating(annotations, aspect, f"{field}.annotations")
            if score is None:
                b.count("na_ratings")
                continue
            aspect_scores.append({"response_id": rid, "attribute": aspect, "score": score})
        if comp.get("fine-grained_score") is not None:
            aspect_scores.append(
                {
                    "response_id": rid,
                    "attribute": "fine_grained_score",
                    "score": get_number(
                        comp, "fine-grained_score", field=f"{field}.fine-grained_score", lo=1, hi=5
                    ),
                }
            )
        if comp.get("overall_score") is not None:
            overall_scores.append(
                {
                    "response_id": rid,
                    "attribute": "overall_score",
                    "score": get_number(
                        comp, "overall_score", field=f"{field}.overall_score", lo=1, hi=10
                    ),
                }
            )
    if not shown:
        b.rollback_row()
        b.drop("no_completions", "no completion with a response", field="completions")
        return
    if aspect_scores:
        b.add_judge(ASPECTS_JUDGE, "ai", model="gpt-4", template="ultrafeedback-aspects")
        b.add_judgment(
            prompt_id=prompt_id,
            response_ids=shown,
            kind="rating",
            judge_id=ASPECTS_JUDGE,
            rating={"scores": aspect_scores, "scale_min": 1.0, "scale_max": 5.0},
        )
    if overall_scores:
        b.add_judge(CRITIQUE_JUDGE, "ai", model="gpt-4", template="ultrafeedback-critique")
        b.add_judgment(
            prompt_id=prompt_id,
            response_ids=shown,
            kind="rating",
            judge_id=CRITIQUE_JUDGE,
            rating={"scores": overall_scores, "scale_min": 1.0, "scale_max": 10.0},
        )


def read_ultrafeedback(
    path: str | Path,
    *,
    chunk_size: int = 10_000,
    skip_invalid: bool = False,
    max_problems: int = 100,
) -> Iterator[ImportChunk]:
    """Yield chunks of records read from an UltraFeedback file (JSONL or Parquet; see module doc).

    Args:
        path: the file.
        chunk_size: input rows per chunk.
        skip_invalid: report and leave out bad rows instead of stopping.
        max_problems: problems collected before giving up.
    """
    return read_file(
        path,
        parse_row,
        format="ultrafeedback",
        chunk_size=chunk_size,
        skip_invalid=skip_invalid,
        max_problems=max_problems,
    )
