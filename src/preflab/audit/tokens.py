"""Token counts from a real tokenizer for the length check (``preflab audit --tokenizer``).

A local Hugging Face tokenizer — a folder written by ``save_pretrained`` or a single
``tokenizer.json`` — counts the tokens of many texts in one batched call. Nothing is
downloaded: folders load with ``local_files_only``. ``tokenizers`` and ``transformers`` are
imported only when a tokenizer is loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from preflab.errors import DependencyError, InputError, NotFoundError

__all__ = ["TokenCounter", "load_tokenizer"]

_CHUNK = 4096  # texts per batched encode call


@dataclass(frozen=True, slots=True)
class TokenCounter:
    """Counts tokens of texts; ``name`` says which tokenizer (shown in the report).

    Attributes:
        name: the tokenizer's path or name.
        count: texts → number of tokens of each (special tokens not added).
    """

    name: str
    count: Callable[[Sequence[str]], list[int]]


def _missing(exc: ImportError) -> DependencyError:
    return DependencyError(
        f"token counts from a tokenizer need the Hugging Face tokenizers ({exc.name} is not "
        "installed): `pip install 'preflab[trl]'`.",
        field="tokenizer",
    )


def _chunked(encode: Callable[[list[str]], list[int]]) -> Callable[[Sequence[str]], list[int]]:
    def count(texts: Sequence[str]) -> list[int]:
        texts = list(texts)
        out: list[int] = []
        for start in range(0, len(texts), _CHUNK):
            out += encode(texts[start : start + _CHUNK])
        return out

    return count


def _from_file(path: Path) -> TokenCounter:
    try:
        from tokenizers import Tokenizer
    except ImportError as exc:
        raise _missing(exc) from exc
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as exc:  # the Rust library raises plain Exception on a bad file
        raise InputError(
            f"{path} is not a Hugging Face tokenizer.json: {exc}", path=str(path), field="tokenizer"
        ) from exc

    def encode(texts: list[str]) -> list[int]:
        return [len(e.ids) for e in tok.encode_batch(texts, add_special_tokens=False)]

    return TokenCounter(str(path), _chunked(encode))


def _from_folder(path: Path) -> TokenCounter:
    try:
        import transformers
    except ImportError as exc:
        raise _missing(exc) from exc
    try:
        tok: Any = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(
            f"{path} holds no Hugging Face tokenizer that loads offline: {exc}",
            path=str(path), field="tokenizer",
        ) from exc

    def encode(texts: list[str]) -> list[int]:
        ids = tok(texts, add_special_tokens=False, verbose=False)["input_ids"]
        return [len(x) for x in ids]

    return TokenCounter(str(path), _chunked(encode))


def load_tokenizer(path: str | Path) -> TokenCounter:
    """Return a :class:`TokenCounter` for a local tokenizer folder or ``tokenizer.json``.

    Raises:
        NotFoundError: ``path`` does not exist.
        InputError: ``path`` holds no tokenizer that loads.
        DependencyError: ``tokenizers`` / ``transformers`` are not installed.
    """
    p = Path(path)
    if not p.exists():
        raise NotFoundError(f"no tokenizer at {p}", path=str(p), field="tokenizer")
    return _from_folder(p) if p.is_dir() else _from_file(p)
