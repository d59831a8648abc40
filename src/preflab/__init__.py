"""preflab: preference data for RLHF.

The public API: records and errors here; each layer (``preflab.formats``, ``preflab.derive``,
``preflab.audit``, ``preflab.arena``, ``preflab.generate``, ``preflab.store``) has its own.

Names are imported on first use (PEP 562), so ``import preflab.errors`` or the ``preflab``
command does not load PyArrow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from preflab.errors import InputError, PreflabError
    from preflab.records import Judgment, Message, Pair, Prompt, Response, Unpaired

__version__ = "0.1.0"

__all__ = [
    "InputError",
    "Judgment",
    "Message",
    "Pair",
    "PreflabError",
    "Prompt",
    "Response",
    "Unpaired",
    "__version__",
]

_ORIGIN = {
    "InputError": "preflab.errors",
    "PreflabError": "preflab.errors",
    **dict.fromkeys(
        ("Judgment", "Message", "Pair", "Prompt", "Response", "Unpaired"), "preflab.records"
    ),
}


def __getattr__(name: str) -> Any:
    module = _ORIGIN.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
