"""The examples in the store's docstrings run (pytest collects tests/ only)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "preflab.store.engine",
    "preflab.store.items",
    "preflab.store.judgment_values",
    "preflab.store.prefetch",
    "preflab.store.queries.projects",
    "preflab.store.unit_of_work",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert 0 == result.failed
