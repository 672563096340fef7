"""``aidgraph init-db``, ``aidgraph load-regions`` and ``aidgraph copy-db``: schema migration, the division tree,
and a SQLite database rewritten with another page size."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.progress import Progress

from aidgraph.core.storage.config import load_settings
from aidgraph.core.storage.db import SQLITE_PAGE_SIZE, copy_sqlite, make_sync_engine
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


def copy_db(target: Path = typer.Argument(..., help="the copy's path: a new file"),
            page_size: int = typer.Option(SQLITE_PAGE_SIZE, help="bytes a page of the copy")) -> None:
    """Write a packed copy of the SQLite database with the page size given (a database made before 16 KiB pages
    were the default keeps its own). To use it, stop the server and jobs and put it in place of the database."""
    settings = load_settings()
    engine = make_sync_engine(settings.database_url)
    started = time.perf_counter()
    try:
        with console.status(f"copying into {target} with {page_size}-byte pages"):
            copy_sqlite(engine, target, page_size)
    except ValueError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    database = Path(engine.url.database or "")
    console.print(f"[green]copied[/green] {database} ({database.stat().st_size / 1e9:.2f} GB) to {target} "
                  f"({target.stat().st_size / 1e9:.2f} GB, {page_size}-byte pages) in "
                  f"{time.perf_counter() - started:.1f} s")


def register(app: typer.Typer) -> None:
    app.command("init-db")(init_db)
    app.command("load-regions")(load_regions_command)
    app.command("copy-db")(copy_db)
