"""``preflab demo``: a demo workspace (HH-RLHF sample, users, guidelines), audited, exported, served."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from preflab.server.demo import DemoInfo

def _run_cli(args: list[str]) -> str:
    """Run one preflab command in this process and return what it printed."""
    from preflab.cli.main import app

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        app(args=args, standalone_mode=False)
    return buffer.getvalue()


def audit_and_export(workspace: Path, info: DemoInfo, console: Console) -> dict[str, Path]:
    """Audit the demo project and export its pairs for TRL, inside the workspace.

    Returns the paths written: the HTML and JSON audit reports and the export folder.
    """
    reports = workspace / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    html, js = reports / "audit.html", reports / "audit.json"
    out = workspace / "exports" / "trl-preference"
    db = ["--db", info.database_url, "--project", info.project_id]
    with console.status("Auditing the demo project…"):
        raw = _run_cli(["audit", *db, "--html", str(html), "--json", "--resamples", "200"])
        js.write_text(raw, encoding="utf-8")
    with console.status("Exporting TRL preference pairs…"):
        raw = _run_cli(["export", *db, "--format", "trl-preference", "--out", str(out),
                        "--overwrite", "--json"])
    result = json.loads(raw)
    console.print(
        f"Audit report: [bold]{html}[/] (figures in {js.name}); "
        f"TRL export: [bold]{out}[/] "
        + ", ".join(f"{split} {n:,}" for split, n in result["splits"].items()),
        highlight=False,
    )
    return {"html": html, "json": js, "export": out}


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        workspace: Path = typer.Option(Path("preflab-demo"), "--workspace", "-w",
                                       help="Folder of the demo workspace (created)."),
        data: Path = typer.Option(None, "--data", help="HH-RLHF file to import (default: "
                                  "$PREFLAB_DEMO_DATA, else the sample in $PREFLAB_TEST_DATA, "
                                  "else downloaded once from the Hugging Face Hub, else "
                                  "built-in synthetic items; the demo prints which)."),
        host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
        port: int = typer.Option(8000, "--port", help="Port to listen on."),
        no_serve: bool = typer.Option(False, "--no-serve", help="Set up only; do not start."),
    ) -> None:
        """Open the web app on a demo project judged from the HH-RLHF sample.

        Creates (or reopens) a SQLite workspace, imports the HH-RLHF sample (the first 400 pairs
        of harmless-base test) into a pairwise project with demo users and guidelines, writes an
        audit report (reports/audit.html) and a TRL preference export (exports/trl-preference/)
        into it, then serves the app. It prints which data it used.

        Example: `preflab demo` then open the printed URL and log in as alice.
        """
        from preflab.cli.serve import run_app
        from preflab.server.demo import find_demo_data, setup_demo
        from preflab.settings import Settings

        settings = Settings()
        console = Console()
        with console.status("Looking for the HH-RLHF sample…"):
            found = find_demo_data(data or settings.demo_data, settings.test_data,
                                   workspace / "data")
        info = setup_demo(workspace, found.path, found.description)
        state = "created" if info.created else "reopened"
        console.print(f"Demo workspace {state}: [bold]{workspace}[/] ({info.items} items)",
                      highlight=False)
        console.print(f"Demo data: {info.source}", highlight=False, soft_wrap=True)
        audit_and_export(workspace, info, console)
        table = Table("user", "password", "role", title="Demo logins")
        for user, password, role in info.logins:
            table.add_row(user, password, role)
        console.print(table)
        url = f"http://{host}:{port}/projects/{info.project_id}"
        if no_serve:  # nothing serves the URL yet: say how to start it
            console.print(f"Not serving (--no-serve). Start the app with [bold]preflab serve "
                          f"--workspace {workspace} --port {port}[/], then open {url}",
                          highlight=False, soft_wrap=True)
            return
        console.print(f"Open [bold]{url}[/]")
        run_app(Settings(workspace=workspace, database_url=info.database_url, host=host,
                         port=port))
