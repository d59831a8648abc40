"""A job's requests and its summary: what to call, under which key, and what came of it.

Kept apart from :mod:`preflab.generate.jobs` (which runs them) so that reading a job's
requests and counting a re-run answered wholly from the cache
(:mod:`preflab.generate.cached_rerun`) imports neither SQLAlchemy nor an HTTP client.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from preflab.generate.endpoints import EndpointConfig

if TYPE_CHECKING:
    from preflab.generate.cache import Outcome

__all__ = [
    "ChatRequest",
    "JobSummary",
    "ProgressHook",
    "Via",
    "make_job_id",
    "make_request",
    "request_key",
]


def request_key(
    base_url: str,
    model: str,
    revision: str | None,
    messages: Sequence[Mapping[str, str]],
    params: Mapping[str, Any],
    seed: int | None,
) -> str:
    """Return the cache key of one chat call: a SHA-256 of its canonical JSON.

    >>> k = request_key("http://x/v1", "m", None, [{"role": "user", "content": "hi"}], {}, 1)
    >>> k == request_key("http://x/v1", "m", None, [{"content": "hi", "role": "user"}], {}, 1)
    True
    >>> len(k)
    64
    """
    payload = {
        "endpoint": base_url.rstrip("/"),
        "model": model,
        "revision": revision,
        "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
        "params": dict(params),
        "seed": seed,
    }
    raw = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One chat call of a job: endpoint name, messages, parameters, seed, and its cache key.

    ``meta`` carries the caller's bookkeeping (prompt id, sample index…); it is not part of
    the key.
    """

    endpoint: str
    messages: tuple[Mapping[str, str], ...]
    params: Mapping[str, Any]
    seed: int | None
    key: str
    meta: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Return the request as stored in the cache row."""
        return {
            "endpoint": self.endpoint,
            "messages": [dict(m) for m in self.messages],
            "params": dict(self.params),
            "seed": self.seed,
            "meta": dict(self.meta),
        }


def make_request(
    endpoint: EndpointConfig,
    messages: Sequence[Mapping[str, str]],
    params: Mapping[str, Any] | None = None,
    seed: int | None = None,
    meta: Mapping[str, Any] | None = None,
) -> ChatRequest:
    """Return a request to ``endpoint``; ``params`` override the endpoint's default parameters.

    >>> ep = EndpointConfig(name="a", base_url="http://127.0.0.1:1/v1", model="m",
    ...                     params={"temperature": 0.7})
    >>> make_request(ep, [{"role": "user", "content": "hi"}], {"max_tokens": 8}, seed=3).params
    {'temperature': 0.7, 'max_tokens': 8}
    """
    merged = {**endpoint.params, **(params or {})}
    msgs = tuple({"role": m["role"], "content": m["content"]} for m in messages)
    key = request_key(endpoint.base_url, endpoint.model, endpoint.revision, msgs, merged, seed)
    return ChatRequest(endpoint.name, msgs, merged, seed, key, dict(meta or {}))


def make_job_id(kind: str, requests: Iterable[ChatRequest]) -> str:
    """Return a job id derived from its kind and request keys (so a re-run finds its job)."""
    h = hashlib.sha256(kind.encode())
    for key in sorted({r.key for r in requests}):
        h.update(key.encode())
    return f"{kind}-{h.hexdigest()[:16]}"


Via = Literal["online", "batch"]
"""How a job's calls are made: one HTTP call each (``online``) or through the batch API."""


@dataclass(slots=True)
class JobSummary:
    """Counts of one run: requests, results committed now, cached before, failed; tokens.

    ``failed`` counts every request without a result at the end (``failed_earlier`` of them
    failed in an earlier run and were not called again: see ``retry_failed``). A judge moves
    replies it could not read from ``done``/``cached`` to ``unparseable``. ``interrupted`` of
    the failed were cut off by a dead worker process (called again by any re-run). ``merged`` counts
    replies that became the same record as another one (identical samples).
    """

    job_id: str
    total: int = 0
    done: int = 0
    cached: int = 0
    failed: int = 0
    failed_earlier: int = 0
    interrupted: int = 0
    unparseable: int = 0
    merged: int = 0
    calls: int = 0
    attempts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    elapsed: float = 0.0
    dry_run: bool = False
    planned: dict[str, int] = field(default_factory=dict)
    processes: int = 1
    via: str = "online"
    batches: int = 0

    def to_json(self) -> dict[str, Any]:
        """Return the summary as plain JSON."""
        return {
            "job_id": self.job_id,
            "total": self.total,
            "done": self.done,
            "cached": self.cached,
            "failed": self.failed,
            "failed_earlier": self.failed_earlier,
            "interrupted": self.interrupted,
            "unparseable": self.unparseable,
            "merged": self.merged,
            "calls": self.calls,
            "attempts": self.attempts,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "elapsed_s": round(self.elapsed, 4),
            "dry_run": self.dry_run,
            "planned": dict(self.planned),
            "processes": self.processes,
            "via": self.via,
            "batches": self.batches,
        }

    def count_committed(
        self,
        outcomes: Iterable[Outcome],
        replies: dict[str, dict[str, Any]],
        failures: dict[str, str],
    ) -> None:
        """Count outcomes committed: each result into ``replies``, each error into ``failures``."""
        for o in outcomes:
            self.calls += 1
            self.attempts += o.attempts
            self.prompt_tokens += o.prompt_tokens
            self.completion_tokens += o.completion_tokens
            if o.error is None and o.result is not None:
                replies[o.request_key] = o.result
                self.done += 1
            else:
                failures[o.request_key] = o.error or "failed"
                self.failed += 1
                self.interrupted += o.interrupted

    def note_unparseable(self, called_now: bool) -> None:
        """Count a reply a judge could not read as unparseable instead of done or cached."""
        self.unparseable += 1
        if called_now:
            self.done -= 1
        else:
            self.cached -= 1


ProgressHook = Callable[[int, int], None]
"""Called as ``hook(finished, total)`` after each committed batch (finished includes cached)."""
