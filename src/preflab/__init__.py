"""preflab: preference data for RLHF.

The public API: records and errors here; each layer (``preflab.formats``, ``preflab.derive``,
``preflab.audit``, ``preflab.arena``, ``preflab.generate``, ``preflab.store``) has its own.
"""

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
