"""Read-ahead keeps order, re-raises the reader's errors, and stops the reader early."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from preflab.errors import InputError
from preflab.store.prefetch import prefetch


def test_prefetch_yields_every_item_in_order() -> None:
    assert list(range(100)) == list(prefetch(iter(range(100)), depth=3))


def test_reader_error_is_raised_where_it_happened() -> None:
    def reader() -> Iterator[int]:
        yield 1
        yield 2
        raise InputError("bad row", line=3, field="chosen")

    seen: list[int] = []
    with pytest.raises(InputError) as err:
        seen.extend(prefetch(reader()))
    assert [1, 2] == seen
    assert 3 == err.value.line


def test_consumer_stopping_early_closes_the_reader() -> None:
    closed: list[bool] = []

    def reader() -> Iterator[int]:
        try:
            yield from range(1_000)
        finally:
            closed.append(True)

    for item in prefetch(reader(), depth=1):
        if item == 2:
            break
    assert [True] == closed
