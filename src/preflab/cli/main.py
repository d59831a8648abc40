"""The ``preflab`` command: one Typer app, one error handler.

Each command group lives in its own module under ``preflab.cli`` and exposes
``register(app: typer.Typer) -> None``. Library errors are printed on one or two lines and
exit with status 1 (2 for usage errors); ``--debug`` shows the traceback.
"""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console

from preflab.errors import PreflabError, UsageError

app = typer.Typer(
    name="preflab",
    help="Preference data for RLHF: collect, generate, derive, audit and ship judgments.\n\n"
    "Start with `preflab demo`, which opens the web app on a demo project.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)

# Order is the order of `preflab --help`.
COMMAND_MODULES = (
    "demo",
    "serve",
    "import_cmd",
    "export_cmd",
    "snapshot_cmd",
    "derive_cmd",
    "audit_cmd",
    "leaderboard",
    "generate_cmd",
    "users",
    "projects",
)

_state = {"debug": False}


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    _state["debug"] = debug


def _register_all() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"preflab.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"preflab.cli.{name}":
                continue  # command group not built yet
            raise
        module.register(app)


_register_all()

err_console = Console(stderr=True)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; translate library errors into short messages and exit codes."""
    try:
        app(args=argv, standalone_mode=False)
    except PreflabError as exc:
        if _state["debug"]:
            raise
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
        sys.exit(2 if isinstance(exc, UsageError) else 1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(1)
    except Exception as exc:  # click usage errors arrive here in non-standalone mode
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
