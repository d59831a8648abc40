"""Synthetic battles drawn from known strengths, shared by the arena tests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl
import pytest

# the web app's seeded database (SQLite and PostgreSQL), for the live leaderboard tests
from tests.server.conftest import seeded  # noqa: F401

Simulate = Callable[..., tuple[pl.DataFrame, np.ndarray]]


def simulate(
    strengths: np.ndarray,
    n: int,
    *,
    seed: int = 0,
    tie_model: str = "none",
    tie_share: float = 0.0,
    nu: float = 1.0,
    theta: float = 1.5,
) -> tuple[pl.DataFrame, np.ndarray]:
    """Return ``n`` battles among ``len(strengths)`` models and the true strengths (natural log).

    ``tie_model``: ``none`` (no ties), ``random`` (a share of ties regardless of strength),
    ``davidson`` (ties with Davidson's ν) or ``rao_kupper`` (ties with Rao–Kupper's θ).
    """
    rng = np.random.default_rng(seed)
    k = len(strengths)
    a = rng.integers(0, k, n)
    b = (a + rng.integers(1, k, n)) % k
    d = strengths[a] - strengths[b]
    u = rng.random(n)
    if tie_model == "davidson":
        den = np.exp(d / 2) + np.exp(-d / 2) + nu
        p_a, p_t = np.exp(d / 2) / den, nu / den
        out = np.where(u < p_a, "a", np.where(u < p_a + p_t, "tie", "b"))
    elif tie_model == "rao_kupper":
        pi_a, pi_b = np.exp(strengths[a]), np.exp(strengths[b])
        p_a = pi_a / (pi_a + theta * pi_b)
        p_b = pi_b / (pi_b + theta * pi_a)
        out = np.where(u < p_a, "a", np.where(u < 1 - p_b, "tie", "b"))
    else:
        p = 1 / (1 + np.exp(-d))
        out = np.where(rng.random(n) < p, "a", "b")
        if tie_model == "random":
            out = np.where(u < tie_share, "tie", out)
    names = np.array([f"m{x:02d}" for x in range(k)])
    df = pl.DataFrame({"model_a": names[a], "model_b": names[b], "outcome": out})
    return df, strengths


@pytest.fixture
def simulate_battles() -> Simulate:
    """Return the battle simulator."""
    return simulate
