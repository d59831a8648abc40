"""Regenerate the initial migration from ``preflab.store.tables``.

Run ``python -m preflab.store.migrations.regenerate`` after changing the tables while the
project has not shipped a release yet: it deletes every revision under ``versions/`` and
autogenerates one initial revision from ``Base.metadata`` against an empty database. Once
a release is out, add revisions with ``alembic revision --autogenerate`` instead.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from alembic import command

from preflab.store.engine import make_engine
from preflab.store.migrate import MIGRATIONS_DIR, alembic_config

INITIAL_REVISION = "0001"


def regenerate_initial_revision() -> Path:
    """Delete the revisions and write a fresh initial one; return its path."""
    versions = MIGRATIONS_DIR / "versions"
    versions.mkdir(exist_ok=True)
    for old in versions.glob("*.py"):
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'empty.sqlite'}")
        try:
            script = command.revision(
                alembic_config(engine),
                message="initial schema",
                autogenerate=True,
                rev_id=INITIAL_REVISION,
            )
        finally:
            engine.dispose()
    assert script is not None and not isinstance(script, list)
    path = Path(script.path)
    _format(path)
    return path


def _format(path: Path) -> None:
    """Format the generated file with ruff when it is installed (a development tool)."""
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if Path(ruff).exists():
        subprocess.run([ruff, "format", "--quiet", str(path)], check=False)


if __name__ == "__main__":
    print(f"wrote {regenerate_initial_revision()}")
