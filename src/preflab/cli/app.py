"""The Typer app of the ``preflab`` command (run it through :func:`preflab.cli.main.main`).

Each command group lives in its own module under ``preflab.cli`` and exposes
``register(app: typer.Typer) -> None``.
"""

from __future__ import annotations

import importlib

import typer

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

#: Set by the global ``--debug`` flag; read by :func:`preflab.cli.main.main`.
state = {"debug": False}


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    state["debug"] = debug


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
