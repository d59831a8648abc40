"""Where the bench scripts find the real HH-RLHF sample: ``$PREFLAB_TEST_DATA`` (no fixed path).

``PREFLAB_TEST_DATA`` is the folder of third-party data files the tests use (``.ci/run`` points
it at ``../shared/data``); the sample is ``hh-rlhf/harmless-base-test-first400.jsonl.gz`` in it
(Anthropic HH-RLHF, harmless-base test split, first 400 lines; MIT). A script run without it
stops with one line saying how to get the file.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HH_SAMPLE_NAME = "hh-rlhf/harmless-base-test-first400.jsonl.gz"


def hh_sample_path() -> Path:
    """Return the sample's path, or exit with a one-line message saying how to get it."""
    folder = os.environ.get("PREFLAB_TEST_DATA", "").strip()
    path = Path(folder).expanduser() / HH_SAMPLE_NAME if folder else None
    if path is None or not path.is_file():
        sys.exit(f"{HH_SAMPLE_NAME} not found{f' in {folder}' if folder else ''}: set "
                 "PREFLAB_TEST_DATA to a folder holding it (the first 400 lines of "
                 "harmless-base/test.jsonl.gz of github.com/anthropics/hh-rlhf or the Hugging "
                 "Face Hub dataset Anthropic/hh-rlhf)")
    return path
