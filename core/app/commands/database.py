"""``aidgraph init-db`` and ``aidgraph load-regions``: schema migration and the division tree."""

from __future__ import annotations

import time

import typer
from rich.progress import Progress

from aidgraph.core.storage.config import load_settings
from aidgraph.core.storage.db import make_sync_engine
from aidgraph.core.storage.migrate import upgrade
from aidgraph.core.graph.regions import division_files, load_regions
from aidgraph.core.app.terminal import console


def init_db() -> None:
    """Create or migrate the database schema to the newest revision."""
    settings = load_settings()
    engine = make_sync_engine(settings.database_url)
    upgrade(engine)
    console.print(f"[green]database at head[/green] ({engine.url.render_as_string(hide_password=True)})")


def load_regions_command() -> None:
    """Load the NBS 2023 division tree (idempotent; a second run changes nothing)."""
    settings = load_settings()
    engine = make_sync_engine(settings.database_url)
    upgrade(engine)
    started = time.perf_counter()
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("loading regions", total=len(division_files()))
        counts = load_regions(engine, progress=lambda name, n: progress.advance(task))
    elapsed = time.perf_counter() - started
    summary = ", ".join(f"{level.lower()} {n}" for level, n in sorted(counts.items()))
    console.print(f"[green]regions loaded[/green] in {elapsed:.1f} s: {summary}")


def register(app: typer.Typer) -> None:
    app.command("init-db")(init_db)
    app.command("load-regions")(load_regions_command)
