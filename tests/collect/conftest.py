"""Fixtures of the annotation layer's tests: the web app tests' seeded database.

``seeded`` (one pairwise project of small items, an admin, two member annotators and an
outsider, on SQLite and on PostgreSQL) is shared with ``tests/server``.
"""

from __future__ import annotations

from tests.server.conftest import (  # noqa: F401 - fixtures and helpers re-exported
    PASSWORDS,
    Seeded,
    add_prompt_items,
    password_hash,
    seed_project,
    seeded,
)

__all__ = ["PASSWORDS", "Seeded", "add_prompt_items", "password_hash", "seed_project", "seeded"]
