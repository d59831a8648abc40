"""A project's live-collection settings (issue 12), stored as ``project.config["live"]``.

What annotators may start (live chat, arena battle, or nothing), how many candidates a chat
turn samples and how (from k distinct models, or one model at k temperatures), the turn limit,
the arena's pairing policy, and whether annotators see the leaderboard. A project without the
key gets the defaults. Functions take a ``Connection`` (or a ``Session``) and never commit.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import Connection, update
from sqlalchemy.orm import Session

from preflab.collect.core_tables import PROJECTS as _P
from preflab.collect.projects import get_project
from preflab.collect.rows import Project
from preflab.errors import ConfigError, InputError, field_path
from preflab.store.queries.scope import connection_of

__all__ = [
    "ARENA_POLICIES",
    "LIVE_MODES",
    "SAMPLING_RULES",
    "LiveConfig",
    "LiveMode",
    "get_live_config",
    "parse_live_config",
    "set_live_config",
]

LiveMode = Literal["chat", "arena"]
LIVE_MODES: tuple[LiveMode, ...] = ("chat", "arena")
SAMPLING_RULES = ("models", "temperatures")
ARENA_POLICIES = ("uniform", "fewest_battles", "widest_interval")


class LiveConfig(BaseModel):
    """How a project collects live: modes, candidates per turn, sampling, turn limit, arena.

    >>> LiveConfig().modes, LiveConfig().k
    (['chat'], 2)
    """

    model_config = ConfigDict(extra="forbid")

    modes: list[LiveMode] = Field(
        default_factory=lambda: list[LiveMode](["chat"]),
        description="What annotators may start: chat, arena, both, or none ([]: live off).")
    k: int = Field(default=2, ge=2, le=4, description="Candidates per chat turn.")
    sampling: Literal["models", "temperatures"] = Field(
        default="models",
        description="models: k distinct enabled endpoints per turn; temperatures: one endpoint "
        "at k of the temperatures.")
    temperatures: list[float] = Field(
        default_factory=lambda: [0.3, 1.0], min_length=1, max_length=16,
        description="Temperatures to sample from when sampling is 'temperatures'.")
    turn_limit: int = Field(default=5, ge=1, le=50,
                            description="Assistant turns per conversation at most.")
    arena_policy: Literal["uniform", "fewest_battles", "widest_interval"] = Field(
        default="uniform",
        description="How arena pairs are drawn: uniformly, favouring pairs with few battles, or "
        "pairs with wide rating intervals.")
    leaderboard_for_annotators: bool = Field(
        default=False, description="Annotators may see the project's leaderboard.")
    prompt_pool: bool = Field(
        default=True, description="Annotators may draw a prompt from the project's items.")

    @model_validator(mode="after")
    def _check(self) -> LiveConfig:
        if len(set(self.modes)) != len(self.modes):
            raise ValueError(f"modes lists a mode twice: {self.modes}")
        bad = [t for t in self.temperatures if not 0.0 <= t <= 2.0]
        if bad:
            raise ValueError(f"temperatures must be in 0..2, got {bad}")
        if len(set(self.temperatures)) != len(self.temperatures):
            raise ValueError(f"temperatures lists a value twice: {self.temperatures}")
        if self.sampling == "temperatures" and len(self.temperatures) < self.k:
            raise ValueError(
                f"sampling 'temperatures' needs at least k={self.k} temperatures, got "
                f"{len(self.temperatures)}; add temperatures or lower k")
        return self


def parse_live_config(data: Any) -> LiveConfig:  # Any: a request body or form, checked here
    """Return a validated :class:`LiveConfig` from plain data.

    Raises:
        InputError: a bad field, named (``k``, ``temperatures[1]`` …).
    """
    try:
        return LiveConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = f"unknown field; LiveConfig takes {', '.join(LiveConfig.model_fields)}"
        elif err["loc"]:
            msg = f"{msg}, got {err.get('input')!r}"
        raise InputError(msg, field=field_path(err["loc"]) or None) from None


def get_live_config(project: Project) -> LiveConfig:
    """Return the project's live config (the defaults when it has none).

    Raises:
        ConfigError: the stored config no longer validates (field named).
    """
    stored = (project.config or {}).get("live")
    if stored is None:
        return LiveConfig()
    try:
        return LiveConfig.model_validate(stored)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(
            f"project {project.project_id!r}: stored live config is invalid: "
            f"{str(err['msg']).removeprefix('Value error, ')}; set it again with "
            f"`preflab projects live-config {project.project_id}`",
            field="config.live." + (field_path(err["loc"]) or ""),
        ) from None


def set_live_config(session: Session | Connection, project_id: str, cfg: LiveConfig) -> Project:
    """Store ``cfg`` as the project's live config; return the project as stored.

    Raises:
        NotFoundError: no such project.
    """
    conn = connection_of(session)
    project = get_project(conn, project_id)
    config = {**(project.config or {}), "live": cfg.model_dump(mode="json")}
    conn.execute(update(_P).where(_P.c.project_id == project_id).values(config=config))
    return get_project(conn, project_id)
