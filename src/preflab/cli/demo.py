"""``preflab demo``: set up a demo workspace (HH-RLHF sample, users, guidelines) and serve it."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from preflab.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[3]


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        workspace: Path = typer.Option(Path("preflab-demo"), "--workspace", "-w",
                                       help="Folder of the demo workspace (created)."),
        data: Path = typer.Option(None, "--data", help="HH-RLHF file to import "
                                  "(default: $PREFLAB_DEMO_DATA or ../shared/data/…)."),
        host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
        port: int = typer.Option(8000, "--port", help="Port to listen on."),
        no_serve: bool = typer.Option(False, "--no-serve", help="Set up only; do not start."),
    ) -> None:
        """Open the web app on a demo project judged from the HH-RLHF sample.

        Example: `preflab demo` then open the printed URL and log in as alice.
        """
        import os

        from preflab.cli.serve import run_app
        from preflab.server.demo import find_demo_data, setup_demo

        source = data or find_demo_data(os.environ.get("PREFLAB_DEMO_DATA"), REPO_ROOT)
        info = setup_demo(workspace, source)
        console = Console()
        state = "created" if info.created else "reopened"
        console.print(f"Demo workspace {state}: [bold]{workspace}[/] "
                      f"({info.items} items from {info.source})")
        table = Table("user", "password", "role", title="Demo logins")
        for user, password, role in info.logins:
            table.add_row(user, password, role)
        console.print(table)
        url = f"http://{host}:{port}/projects/{info.project_id}"
        console.print(f"Open [bold]{url}[/]")
        if no_serve:
            return
        run_app(Settings(workspace=workspace, database_url=info.database_url, host=host,
                         port=port))
