"""Fixtures: a real loopback OpenAI-compatible server (``fakeserver.py``) in a subprocess."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

_spec = importlib.util.spec_from_file_location(
    "preflab_test_fakeserver", Path(__file__).with_name("fakeserver.py")
)
assert _spec is not None and _spec.loader is not None
fakeserver = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fakeserver)


@pytest.fixture(scope="session")
def fake_server_session() -> Iterator[Any]:
    server = fakeserver.start_fake_server(slow_seconds=3.0)
    yield server
    fakeserver.stop_fake_server(server)


@pytest.fixture
def fake(fake_server_session: Any) -> Any:
    """The shared loopback server with its counts and scripts reset."""
    fake_server_session.reset()
    return fake_server_session


@pytest.fixture
def start_server() -> Iterator[Callable[..., Any]]:
    """Start a private loopback server (e.g. with a reply delay); stopped after the test."""
    started: list[Any] = []

    def start(**kw: Any) -> Any:
        server = fakeserver.start_fake_server(**kw)
        started.append(server)
        return server

    yield start
    for server in started:
        fakeserver.stop_fake_server(server)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ws.sqlite'}"
