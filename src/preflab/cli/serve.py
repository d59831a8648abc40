"""``preflab serve``: run the annotation web app on a workspace (SQLite) or a database URL."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from preflab.settings import Settings


def run_app(settings: Settings, workers: int = 1) -> None:
    """Start uvicorn with the app for ``settings`` (blocks until stopped).

    With ``workers`` > 1, uvicorn forks that many processes; each builds the app from the
    environment, so the effective settings are passed down as ``PREFLAB_*`` variables.
    """
    import os

    import uvicorn

    if workers > 1:
        os.environ["PREFLAB_DATABASE_URL"] = settings.effective_database_url()
        os.environ["PREFLAB_WORKSPACE"] = str(settings.workspace)
        from preflab.server.app import load_secret_key

        os.environ["PREFLAB_SECRET_KEY"] = load_secret_key(settings)  # one key for all workers
        uvicorn.run("preflab.server.app:create_app", factory=True, host=settings.host,
                    port=settings.port, workers=workers, log_level="warning", access_log=False)
        return
    from preflab.server.app import create_app

    app = create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning",
                access_log=False)


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        workspace: Path = typer.Option(None, "--workspace", "-w",
                                       help="Workspace folder (SQLite file inside)."),
        db: str = typer.Option(None, "--db", help="Database URL, e.g. postgresql://…"),
        host: str = typer.Option(None, "--host", help="Address to listen on."),
        port: int = typer.Option(None, "--port", help="Port to listen on."),
        workers: int = typer.Option(1, "--workers", min=1,
                                    help="App processes. PostgreSQL scales with them; on SQLite (one writer) "
                                         "one process is fastest on a small machine, and "
                                         "several queue their writes on a lock file."),
    ) -> None:
        """Run the annotation web app.

        Example: `preflab serve --workspace ./ws --port 8000`
        """
        from preflab.settings import Settings

        overrides = {k: v for k, v in {"workspace": workspace, "database_url": db, "host": host,
                                       "port": port}.items() if v is not None}
        settings = Settings(**overrides)
        typer.echo(f"preflab on http://{settings.host}:{settings.port}/  (Ctrl-C to stop)")
        run_app(settings, workers)
