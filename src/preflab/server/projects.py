"""Project configs: the question (pairwise, ranking, rating, binary), overlap and gold share."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from preflab.records.models import PAIRWISE_SCALES
from preflab.store.tables import ProjectRow

__all__ = ["DEFAULT_SPAN_LABELS", "HELPSTEER_ATTRIBUTES", "ProjectCreate", "ProjectPublic",
           "build_project_row", "slugify"]

# HelpSteer2 (Wang et al., 2024, arXiv:2406.08673, sec. 2): five attributes on a 0-4 scale.
HELPSTEER_ATTRIBUTES = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")

# Span labels of fine-grained feedback, after Wu et al. (2023, arXiv:2306.01693): a span of a
# response is flagged as a factual error, unsafe or irrelevant content.
DEFAULT_SPAN_LABELS = ("factual error", "unsafe", "irrelevant")


def slugify(name: str) -> str:
    """Return a URL-safe project id from a name (``"HH demo!"`` → ``"hh-demo"``)."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:60] or "project"


class ProjectCreate(BaseModel):
    """A new project's question config, overlap target and gold share."""

    name: str = Field(min_length=1, max_length=200)
    kind: Literal["pairwise", "ranking", "rating", "binary"] = "pairwise"
    scale: int = 5
    allow_tie: bool = True
    allow_both_bad: bool = True
    attributes: list[str] = Field(default_factory=list)
    overlap: int = Field(default=1, ge=1, le=50)
    overlap_share: float = Field(default=1.0, ge=0.0, le=1.0)
    gold_share: float = Field(default=0.0, ge=0.0, le=0.5)
    reason_tags: list[str] = Field(default_factory=list)
    allow_comment: bool = True
    span_flags: bool = False
    span_labels: list[str] = Field(default_factory=list, max_length=9)
    critique: bool | Literal["required"] = False

    @model_validator(mode="after")
    def _check(self) -> ProjectCreate:
        if self.span_flags and not self.span_labels:
            self.span_labels = list(DEFAULT_SPAN_LABELS)
        labels = [x.strip() for x in self.span_labels]
        if any(not x or len(x) > 60 for x in labels) or len(set(labels)) != len(labels):
            raise ValueError("span_labels must be distinct, non-empty and at most 60 characters")
        self.span_labels = labels
        if self.kind == "pairwise" and self.scale not in PAIRWISE_SCALES:
            raise ValueError(f"scale must be one of {PAIRWISE_SCALES}, got {self.scale}")
        if self.kind == "rating" and not self.attributes:
            self.attributes = list(HELPSTEER_ATTRIBUTES)
        if self.kind == "binary" and not self.reason_tags:
            self.reason_tags = ["unhelpful", "incorrect", "harmful", "off-topic"]
        return self


class ProjectPublic(BaseModel):
    """A project as the API shows it."""

    project_id: str
    name: str
    kind: str
    scale: int
    allow_tie: bool
    allow_both_bad: bool
    attributes: list[str]
    overlap: int
    overlap_share: float
    gold_share: float
    config: dict[str, Any]

    @classmethod
    def of(cls, row: ProjectRow) -> ProjectPublic:
        return cls(
            project_id=row.project_id, name=row.name, kind=row.kind, scale=row.scale,
            allow_tie=row.allow_tie, allow_both_bad=row.allow_both_bad,
            attributes=list(row.attributes or []), overlap=row.overlap,
            overlap_share=row.overlap_share, gold_share=row.gold_share,
            config=dict(row.config or {}),
        )


def _critique_mode(critique: bool | str) -> str:
    return "required" if critique == "required" else ("optional" if critique else "off")


def build_project_row(spec: ProjectCreate, project_id: str | None = None) -> ProjectRow:
    """Return the project row for a validated config."""
    return ProjectRow(
        project_id=project_id or slugify(spec.name),
        name=spec.name,
        kind=spec.kind,
        scale=spec.scale if spec.kind == "pairwise" else 0,
        allow_tie=spec.allow_tie,
        allow_both_bad=spec.allow_both_bad,
        attributes=list(spec.attributes),
        overlap=spec.overlap,
        overlap_share=spec.overlap_share,
        gold_share=spec.gold_share,
        config={"reason_tags": spec.reason_tags, "allow_comment": spec.allow_comment,
                "scale_min": 0, "scale_max": 4, "span_flags": spec.span_flags,
                "span_labels": spec.span_labels if spec.span_flags else [],
                "critique": _critique_mode(spec.critique)},
    )
