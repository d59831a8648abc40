"""Shared pieces of the live page tests: a paced loopback model server, a live project on it,
and the keyboard steps of starting a conversation."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from tests.generate import fakeserver

from preflab.collect import EndpointCreate, LiveConfig, ProjectCreate, add_endpoint, set_live_config
from preflab.store.tables import PromptRow, ResponseRow

from .conftest import login, support

MODELS = {"ep-alpha": "model-alpha", "ep-beta": "model-beta"}


def model_server(token_rate: float, stream_tokens: int | None = None) -> Iterator[Any]:
    """Run a loopback model server streaming ``token_rate`` words per second (a fixture body)."""
    server = fakeserver.start_fake_server(token_rate=token_rate, stream_tokens=stream_tokens)
    yield server
    fakeserver.stop_fake_server(server)


def live_project(seeded: Any, fake: Any, *, modes: tuple[str, ...] = ("chat", "arena"),
                 turn_limit: int = 5, name: str = "Live") -> str:
    """A pairwise 5-point project with two endpoints of distinct models on the fake server."""
    pid = support.seed_project(seeded.db, ProjectCreate(name=name, scale=5), ["alice"])
    with seeded.db.transaction() as conn:
        for seed, (ep_name, model) in enumerate(MODELS.items(), start=1):
            # distinct seeds: scripted replies say "{seed}", so the two answers differ
            add_endpoint(conn, pid, EndpointCreate(name=ep_name, base_url=fake.base_url,
                                                   model=model, timeout=10.0,
                                                   params={"seed": seed}))
        set_live_config(conn, pid, LiveConfig(modes=list(modes), k=2, turn_limit=turn_limit))
    return pid


def rows_of(seeded: Any, table: Any, **where: Any) -> list[Any]:
    with seeded.db.read() as s:
        q = select(table)
        for k, v in where.items():
            q = q.where(getattr(table, k) == v)
        return list(s.scalars(q))


def prompt_of(seeded: Any, prompt_id: str) -> list[dict[str, str]]:
    with seeded.db.read() as s:
        row = s.get(PromptRow, prompt_id)
        assert row is not None
        return [{"role": m["role"], "content": m["content"]} for m in row.messages]


def response_of(seeded: Any, response_id: str) -> ResponseRow:
    with seeded.db.read() as s:
        row = s.get(ResponseRow, response_id)
        assert row is not None
        return row


def start_chat(page: Any, pid: str, message: str, mode: str = "chat") -> str:
    """Log in as alice, write the first message, Ctrl+Enter; return the conversation id."""
    page.on("console", lambda m: print("console:", m.type, m.text))  # shown when a test fails
    login(page, "alice")
    page.goto(f"/projects/{pid}/live?mode={mode}")
    page.wait_for_selector("#message:focus")
    page.keyboard.type(message)
    page.keyboard.press("Control+Enter")
    page.wait_for_url(re.compile(r"/live/c_[0-9a-f]+$"))
    return str(page.url.rsplit("/", 1)[-1])


def wait_ready(page: Any, turn: int) -> None:
    """Wait until the turn's answers are complete and its controls take keys."""
    page.wait_for_selector(
        f"#live[data-controls='ready'] #turn-state[data-turn='{turn}'][data-ready='1']")


def card_texts(page: Any) -> list[str]:
    return page.eval_on_selector_all("#responses .response .response-text",
                                     "els => els.map(e => e.innerText.trim())")
