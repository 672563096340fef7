"""``aidgraph seed``: fill a database with a synthetic province (see :mod:`aidgraph.core.app.seed`).

The command migrates the database first, needs the region tree (``aidgraph load-regions``), shows a progress
bar of households, and prints what it wrote and how fast. Running it again with the same arguments writes
nothing; an interrupted run continues from its last complete chunk.
"""

from __future__ import annotations

import datetime as dt

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from aidgraph.core.storage.config import load_settings
from aidgraph.core.storage.db import make_sync_engine
from aidgraph.core.storage.migrate import upgrade
from aidgraph.core.app.seed import DEFAULT_CHUNK_HOUSEHOLDS, SeedError, seed_province, summary_lines
from aidgraph.core.app.terminal import console


def seed_command(
    province: str = typer.Option(..., "--province", help="2-digit NBS province code, e.g. 44 (Guangdong)"),
    households: int = typer.Option(..., "--households", help="number of households to have for this seed"),
    seed: int = typer.Option(0, "--seed", help="random seed, 0-99999 (part of the household numbers)"),
    as_of: str = typer.Option(None, "--as-of", help="reference date YYYY-MM-DD for ages and the 12 income months "
                                                     "(default: today)"),
    chunk_size: int = typer.Option(DEFAULT_CHUNK_HOUSEHOLDS, "--chunk-size",
                                   help="households per transaction (memory stays bounded by one chunk)"),
) -> None:
    """Seed synthetic but realistic households and persons for a province (deterministic for a seed)."""
    try:
        reference = dt.date.fromisoformat(as_of) if as_of else dt.date.today()
    except ValueError:
        console.print(f"[red]--as-of must be a date YYYY-MM-DD, not {as_of!r}[/red]")
        raise typer.Exit(2) from None
    settings = load_settings()
    engine = make_sync_engine(settings.database_url)
    try:
        upgrade(engine)
        with Progress(TextColumn("seeding households"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      TimeRemainingColumn(), console=console, transient=True) as bar:
            task = bar.add_task("seed", total=households)
            result = seed_province(engine, province, households, seed, as_of=reference, chunk_size=chunk_size,
                                   progress=lambda done, total: bar.update(task, completed=done))
    except SeedError as exc:
        console.print(f"[red]seed: {exc}[/red]")
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    for line in summary_lines(result):
        console.print(line)


def register(app: typer.Typer) -> None:
    app.command("seed")(seed_command)
