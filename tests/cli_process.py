"""Run ``preflab`` as a real process, the way a user does, for the CLI tests.

One recipe for every test that runs the command line: the interpreter of the test run, no
``PREFLAB_`` settings inherited from the developer's shell (the test passes what it means), and
a wide terminal so rich does not wrap the lines the tests read.
"""

from __future__ import annotations

import os
import subprocess
import sys


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m preflab.cli.main *args`` and return the finished process (never raises
    on a non-zero exit; the test asserts on ``returncode``)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PREFLAB_")}
    full_env.update(env or {})
    full_env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "preflab.cli.main", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        check=False,
    )
