"""The ``preflab`` command: one Typer app (:mod:`preflab.cli.app`), one error handler.

Library errors are printed on one or two lines and exit with status 1 (2 for usage errors);
``--debug`` shows the traceback.

``preflab --help`` prints the help Typer rendered at 80 columns when the
docs were generated (:mod:`preflab.cli.root_help`, kept in step by
``tests/test_docs_generated.py``), so it answers without importing Typer and Rich, which take
longer than the whole answer may (issue 18: under 0.2 s). Where that rendering would differ
from Typer's own (a terminal narrower than 80 columns, colour forced or switched off through
the environment), Typer renders it.
"""

from __future__ import annotations

import os
import sys
from typing import Any

__all__ = ["app", "main"]

# Terminal conventions Rich reads from the environment (not preflab settings): when one is
# set, the stored rendering may not be what Rich would print, so Typer renders the help.
_TERMINAL_ENV = (
    "COLUMNS",
    "TERMINAL_WIDTH",
    "FORCE_COLOR",
    "PY_COLORS",
    "NO_COLOR",
    "TTY_COMPATIBLE",
    "TTY_INTERACTIVE",
    "GITHUB_ACTIONS",
    "_TYPER_FORCE_DISABLE_TERMINAL",
)


def _stored_help() -> str | None:
    """Return the stored ``preflab --help`` text fit for this output, or None."""
    if any(os.environ.get(name) for name in _TERMINAL_ENV):
        return None
    from preflab.cli import root_help

    stream = sys.stdout
    try:
        is_tty = stream.isatty()
    except (AttributeError, ValueError):
        return None
    if not is_tty:
        return root_help.PLAIN
    if os.environ.get("TERM", "") in ("dumb", "unknown"):
        return None
    try:
        width = os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError):
        return None
    return root_help.ANSI if width >= root_help.WIDTH else None


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; translate library errors into short messages and exit codes."""
    args = sys.argv[1:] if argv is None else argv
    # the stored help names the program "preflab", as the console script is called
    if args == ["--help"] and os.path.basename(sys.argv[0]) == "preflab":
        text = _stored_help()
        if text is not None:
            sys.stdout.write(text + "\n")  # click echoes an empty line after Rich's help
            sys.stdout.flush()
            sys.exit(0)
    import typer

    from preflab.cli.app import app, state
    from preflab.errors import PreflabError, UsageError

    try:
        app(args=argv, standalone_mode=False)
    except PreflabError as exc:
        if state["debug"]:
            raise
        from rich.console import Console

        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
        sys.exit(2 if isinstance(exc, UsageError) else 1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        from rich.console import Console

        Console(stderr=True).print("aborted")
        sys.exit(1)
    except Exception as exc:  # click usage errors arrive here in non-standalone mode
        import click

        # Typer >= 0.29 raises its own vendored click's exceptions (typer.TyperException)
        if isinstance(exc, click.ClickException | typer.TyperException) and hasattr(exc, "show"):
            exc.show()
            sys.exit(getattr(exc, "exit_code", 2))
        raise
    if state.get("exit_now") and argv is None:
        # Asked for by a command that has committed its work and closed its database: the
        # interpreter's own shutdown (freeing what SQLAlchemy, PyArrow and the rest built)
        # took 0.25-0.6 s of `preflab generate candidates` (issue 14).
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except OSError:  # e.g. the reader of a pipe is gone
            os._exit(120)  # the status the interpreter's own exit gives when it cannot flush
        os._exit(0)


def __getattr__(name: str) -> Any:
    """Serve ``app`` from :mod:`preflab.cli.app` on first use (PEP 562)."""
    if name == "app":
        from preflab.cli.app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    main()
