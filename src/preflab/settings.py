"""One settings class, read once at start-up (env prefix ``PREFLAB_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "default_database_url"]


def default_database_url(workspace: Path) -> str:
    """Return the SQLite URL of a workspace folder (``<workspace>/preflab.sqlite``)."""
    return f"sqlite:///{(Path(workspace) / 'preflab.sqlite').resolve()}"


class Settings(BaseSettings):
    """Effective configuration. Precedence: CLI flag > environment > default."""

    model_config = SettingsConfigDict(env_prefix="PREFLAB_", extra="ignore")

    workspace: Path = Field(
        default=Path("preflab-workspace"),
        description="Folder holding the SQLite database, Parquet files and exports.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; SQLite in the workspace when unset, "
        "e.g. postgresql+psycopg://user@127.0.0.1:5432/preflab for teams.",
    )
    secret_key: str | None = Field(
        default=None,
        description="Key signing session cookies; generated and kept in the workspace when unset.",
    )
    host: str = Field(default="127.0.0.1", description="Address the web app listens on.")
    port: int = Field(default=8000, description="Port the web app listens on.")
    reservation_seconds: int = Field(
        default=900, description="How long a served task stays reserved for its annotator."
    )
    demo_data: Path | None = Field(
        default=None,
        description="HH-RLHF file `preflab demo` imports; when unset the demo looks in "
        "`test_data`, then downloads the public sample once from the Hugging Face Hub, else "
        "uses a few built-in synthetic items, and says which.",
    )
    test_data: Path | None = Field(
        default=None,
        description="Folder of third-party data files laid out as the shared data folder "
        "(`hh-rlhf/harmless-base-test-first400.jsonl.gz`, …), read by the test suite and "
        "`preflab demo`; `.ci/run` points it at `../shared/data`.",
    )

    live_cancel_grace: float = Field(
        default=20.0,
        ge=0,
        description="Seconds a live conversation may have no open event stream (page closed) "
        "before its generation is cancelled; a reload within this time reattaches to the "
        "running stream, later connections regenerate the cancelled candidates.",
    )
    live_stale_after: float = Field(
        default=300.0,
        gt=0,
        description="Seconds after which a candidate still marked as streaming by another "
        "server process is taken to belong to a dead process and is generated again.",
    )

    max_body_bytes: int = Field(
        default=8 << 20,
        ge=1024,
        description="Largest request body the app reads (JSON, forms), also once a gzip or "
        "deflate Content-Encoding is inflated; larger ones answer 413.",
    )
    max_upload_bytes: int = Field(
        default=512 << 20,
        ge=1024,
        description="Largest multipart upload (the import page) as sent; larger ones answer 413.",
    )
    max_upload_expanded_bytes: int = Field(
        default=512 << 20,
        ge=1024,
        description="Largest size an uploaded import file may decompress to (.gz, .bz2, .zst); "
        "checked by streaming before the import, so a compression bomb is refused with 413.",
    )

    secure_cookies: Literal["auto", "always", "never"] = Field(
        default="auto",
        description="When the session cookie carries the `Secure` flag: `auto` when the "
        "request came over https (directly, or as a trusted proxy says with "
        "X-Forwarded-Proto, see `trust_proxy_headers`), `always`, or `never`.",
    )
    trust_proxy_headers: bool = Field(
        default=False,
        description="Take the client address and scheme from X-Forwarded-For / "
        "X-Forwarded-Proto when the request comes from one of `trusted_proxies` (set it "
        "when the app runs behind a reverse proxy that sets them); login limits then count "
        "the real client, and `secure_cookies=auto` sees https.",
    )
    trusted_proxies: str = Field(
        default="127.0.0.1",
        description="Comma-separated addresses (or `*`) whose X-Forwarded-* headers are "
        "believed when `trust_proxy_headers` is on.",
    )

    def effective_database_url(self) -> str:
        """Return ``database_url`` or the workspace's SQLite file."""
        return self.database_url or default_database_url(self.workspace)
