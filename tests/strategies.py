"""Shared Hypothesis strategies for preflab records (import as ``from tests.strategies import …``).

Strategies build valid records by construction: prompts end with a user turn and have no empty
turn; judgments name only responses they show, never the same response twice; pairwise values
respect their scale. Use them for property tests of readers, writers, derivations and audits.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from preflab.records import (
    Judge,
    Judgment,
    Prompt,
    Response,
    Span,
    make_prompt_id,
    make_response_id,
)

__all__ = [
    "conversations",
    "judges",
    "judgments",
    "pairwise_values",
    "prompt_messages",
    "prompts",
    "prompts_with_responses",
    "responses",
    "spans_of",
    "texts",
]

_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")


def texts(
    *, min_size: int = 1, max_size: int = 40, alphabet: Any = _CHARS
) -> st.SearchStrategy[str]:
    """Texts that are non-empty after stripping (the rule for prompt turns and responses)."""
    return st.text(alphabet=alphabet, min_size=min_size, max_size=max_size).filter(
        lambda s: bool(s.strip())
    )


@st.composite
def conversations(
    draw: st.DrawFn,
    *,
    min_turns: int = 1,
    max_turns: int = 5,
    text: st.SearchStrategy[str] | None = None,
    system: bool | None = None,
) -> list[dict[str, str]]:
    """Alternating user/assistant messages starting and ending with a user turn.

    Args:
        min_turns: fewest user turns.
        max_turns: most user turns.
        text: strategy for message texts (default :func:`texts`).
        system: force (True) or forbid (False) a leading system message; random when None.
    """
    text = texts() if text is None else text
    n = draw(st.integers(min_turns, max_turns))
    messages = []
    if system is True or (system is None and draw(st.booleans())):
        messages.append({"role": "system", "content": draw(text)})
    for i in range(n):
        if i:
            messages.append({"role": "assistant", "content": draw(text)})
        messages.append({"role": "user", "content": draw(text)})
    return messages


def prompt_messages(**kwargs: Any) -> st.SearchStrategy[list[dict[str, str]]]:
    """Alias of :func:`conversations`: the messages of a valid prompt."""
    return conversations(**kwargs)


@st.composite
def prompts(draw: st.DrawFn, **kwargs: Any) -> Prompt:
    """Valid :class:`~preflab.records.Prompt` records (ids derived from the messages)."""
    messages = draw(conversations(**kwargs))
    tags = draw(st.lists(st.sampled_from(["lang:en", "split:train", "domain:x"]), unique=True))
    return Prompt(messages=messages, tags=tuple(tags), source=draw(st.none() | st.just("f.jsonl")))


@st.composite
def responses(draw: st.DrawFn, prompt_id: str | None = None) -> Response:
    """Valid :class:`~preflab.records.Response` records, for ``prompt_id`` or a made-up one."""
    pid = prompt_id or make_prompt_id([{"role": "user", "content": draw(texts())}])
    model = draw(st.none() | st.sampled_from(["gpt-4", "llama-3-8b", "ckpt-100"]))
    return Response(prompt_id=pid, content=draw(texts()), model=model)


@st.composite
def prompts_with_responses(
    draw: st.DrawFn, *, min_responses: int = 2, max_responses: int = 4
) -> tuple[Prompt, list[Response]]:
    """A prompt and distinct responses to it (distinct ids and distinct normalized texts)."""
    prompt = draw(prompts())
    contents = draw(
        st.lists(
            texts(),
            min_size=min_responses,
            max_size=max_responses,
            unique_by=lambda s: make_response_id("", s),
        )
    )
    return prompt, [Response(prompt_id=prompt.prompt_id, content=c) for c in contents]


@st.composite
def pairwise_values(draw: st.DrawFn, a: str, b: str) -> dict[str, Any]:
    """A valid pairwise value between response ids ``a`` and ``b`` on a random scale."""
    scale = draw(st.sampled_from([2, 5, 7, 8]))
    outcome = draw(st.sampled_from(["a", "b", "tie", "both_bad"]))
    if outcome in ("tie", "both_bad"):
        return {
            "scale": scale,
            "preferred": None,
            "strength": 0,
            "tie": outcome == "tie",
            "both_bad": outcome == "both_bad",
        }
    strength = draw(st.integers(1, scale // 2))
    return {
        "scale": scale,
        "preferred": a if outcome == "a" else b,
        "strength": strength,
        "tie": False,
        "both_bad": False,
    }


@st.composite
def judges(draw: st.DrawFn) -> Judge:
    """Human, AI or imported judges with short ids."""
    kind = draw(st.sampled_from(["human", "ai", "imported"]))
    judge_id = draw(st.from_regex(r"[a-z]{1,6}-[0-9]{1,3}", fullmatch=True))
    return Judge(judge_id=judge_id, kind=kind, model="gpt-4" if kind == "ai" else None)


@st.composite
def spans_of(draw: st.DrawFn, shown: list[Response], max_spans: int = 3) -> tuple[Span, ...]:
    """Spans flagging slices of the ``shown`` responses' texts (none, often)."""
    out = []
    for _ in range(draw(st.integers(0, max_spans))):
        response = draw(st.sampled_from(shown))
        content = response.content
        start = draw(st.integers(0, len(content) - 1))
        end = draw(st.integers(start + 1, len(content)))
        out.append(Span(response_id=response.response_id, start=start, end=end,
                        label=draw(st.sampled_from(["factual error", "unsafe", "irrelevant"])),
                        text=content[start:end]))
    return tuple(out)


@st.composite
def judgments(draw: st.DrawFn, kind: str | None = None) -> tuple[Prompt, list[Response], Judgment]:
    """A prompt, its responses and one valid judgment of ``kind`` (random kind when None).

    The judgment may carry spans of its responses and a critique.
    """
    kind = kind or draw(st.sampled_from(["pairwise", "ranking", "rating", "binary"]))
    n = {"pairwise": 2, "binary": 1}.get(kind)
    prompt, resps = draw(prompts_with_responses(min_responses=n or 2, max_responses=n or 4))
    ids = [r.response_id for r in resps]
    shown = draw(st.permutations(ids))
    value: dict[str, Any] = {}
    if kind == "pairwise":
        value["pairwise"] = draw(pairwise_values(shown[0], shown[1]))
    elif kind == "ranking":
        order = draw(st.permutations(ids))
        cuts = sorted(draw(st.sets(st.integers(1, len(order) - 1), max_size=len(order) - 1)))
        bounds = [0, *cuts, len(order)]
        value["ranking"] = tuple(
            tuple(order[i:j]) for i, j in zip(bounds, bounds[1:], strict=False)
        )
    elif kind == "rating":
        attrs = draw(
            st.lists(
                st.sampled_from(["helpfulness", "correctness", "verbosity"]),
                min_size=1,
                unique=True,
            )
        )
        value["rating"] = {
            "scores": {rid: {a: float(draw(st.integers(0, 4))) for a in attrs} for rid in ids},
            "scale_min": 0,
            "scale_max": 4,
        }
    else:
        value["binary"] = {"response_id": ids[0], "label": draw(st.booleans())}
    value["spans"] = draw(spans_of(resps))
    value["critique"] = draw(st.none() | texts(max_size=60))
    judge = draw(judges())
    judgment = Judgment(
        judgment_id="j_" + draw(st.from_regex(r"[0-9a-f]{8}", fullmatch=True)),
        prompt_id=prompt.prompt_id,
        response_ids=tuple(shown),
        kind=kind,
        judge_id=judge.judge_id,
        **value,
    )
    return prompt, resps, judgment
