"""``aidgraph serve``, ``aidgraph demo`` and ``aidgraph export-schema``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from core.config import PROJECT_ROOT, load_settings

console = Console()
SCHEMA_FILE = PROJECT_ROOT / "schema" / "schema.graphql"


def serve(host: str = typer.Option("127.0.0.1", help="interface to listen on"),
          port: int = typer.Option(8000, help="TCP port")) -> None:
    """Serve the GraphQL API (POST /graphql; GraphiQL at GET /graphql in development)."""
    import uvicorn

    from core.server import create_app, default_components

    settings = load_settings()
    components = default_components(settings)
    console.print(f"aidgraph on http://{host}:{port}/graphql ({settings.env}; "
                  f"database {settings.database_url.split('@')[-1]})")
    uvicorn.run(create_app(components), host=host, port=port, log_level="info")


def export_schema(output: Path = typer.Option(SCHEMA_FILE, help="where to write the SDL")) -> None:
    """Write the live schema's SDL (the committed schema/schema.graphql)."""
    from schema.build import schema_sdl
    from core.server import default_components

    sdl = schema_sdl(default_components().schema)
    output.write_text(sdl, encoding="utf-8")
    console.print(f"schema written to {output} ({len(sdl.splitlines())} lines)")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("export-schema")(export_schema)
