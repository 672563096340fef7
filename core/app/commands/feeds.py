"""``aidgraph import KIND FILE``: load one department feed file (see :mod:`aidgraph.core.monitoring.feeds`);
``aidgraph import-month FOLDER``: a month's files together (:func:`aidgraph.core.monitoring.feeds.import_feeds`).

Prints rows read, stored, skipped as already stored and rejected; rejected rows go to ``FILE.rejected.csv``
with their line number and reason. Exits non-zero only when the file as a whole cannot be read.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import Engine

from aidgraph.core.storage.config import load_settings
from aidgraph.core.storage.db import make_sync_engine
from aidgraph.core.monitoring.feeds import FEEDS, FeedFileError, ImportSummary, import_feed, import_feeds
from aidgraph.core.monitoring.feeds import Progress as ImportProgress
from aidgraph.core.app.terminal import console


def _run(first: str, label: str, job: Callable[[Engine, ImportProgress], list[ImportSummary]]
         ) -> list[ImportSummary]:
    """Run an import job on the configured database with a progress bar; a file that cannot be read exits 2."""
    engine = make_sync_engine(load_settings().database_url)
    try:
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=True) as bar:
            task = bar.add_task(first, total=None)

            def progress(phase: str, done: int, total: int) -> None:
                bar.update(task, description=f"{phase} {label}", completed=done, total=total)

            return job(engine, progress)
    except FeedFileError as exc:
        console.print(f"[red]cannot import:[/red] {exc}")
        raise typer.Exit(2) from None
    finally:
        engine.dispose()


def import_command(
    kind: str = typer.Argument(..., help=f"feed kind: {', '.join(FEEDS)}"),
    file: Path = typer.Argument(..., help="CSV with a header row, or JSON lines"),
    encoding: str = typer.Option(None, "--encoding", help="file encoding (default: UTF-8, else GBK detected)"),
    province: str = typer.Option(None, "--province", help="reject rows for persons living outside this province"),
) -> None:
    """Import a department feed file (医保, 教育, 残联, 人社, 户籍, economic-verification sources)."""
    started = time.perf_counter()
    summary, = _run(f"reading {file.name}", file.name, lambda engine, progress: [import_feed(
        engine, kind, file, encoding=encoding, province=province, progress=progress)])
    _report(summary, file, time.perf_counter() - started)


def _report(summary: ImportSummary, file: Path, elapsed: float) -> None:
    console.print(
        f"[green]{summary.kind}[/green] {file.name} ({summary.format}, {summary.encoding}) in {elapsed:.1f} s: "
        f"rows read {summary.read}, stored {summary.stored}, skipped as already stored {summary.already_stored}, "
        f"rejected {summary.rejected}; persons updated {summary.persons_updated}, "
        f"economic items {summary.economic_items}"
    )
    console.print("time by phase: " + ", ".join(f"{phase} {seconds:.1f} s" for phase, seconds in summary.seconds.items()))
    if summary.partitions_created:
        console.print("monthly partitions created: " + ", ".join(summary.partitions_created), highlight=False)
    if summary.rejected_file:
        console.print(f"rejected rows with line numbers and reasons: {summary.rejected_file}")


MONTH_FILE_SUFFIXES = (".csv", ".jsonl", ".json", ".txt")
"""The files ``import-month`` takes from its folder: ``<kind><suffix>``, e.g. ``income.csv``."""


def month_files(folder: Path) -> list[tuple[str, Path]]:
    """The feed files of a month's folder, ``(kind, path)`` in the order of :data:`FEEDS`; FeedFileError naming
    every file whose name is not a feed kind (nothing is imported then)."""
    if not folder.is_dir():
        raise FeedFileError(f"{folder}: not a folder")
    files = sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in MONTH_FILE_SUFFIXES
                   and not f.name.endswith(".rejected.csv"))
    unknown = [f.name for f in files if f.stem not in FEEDS]
    if unknown:
        raise FeedFileError(f"{folder}: {', '.join(unknown)} not named after a feed kind (<kind>.csv or "
                            f"<kind>.jsonl; kinds: {', '.join(FEEDS)})")
    if not files:
        raise FeedFileError(f"{folder}: no feed file (<kind>.csv or <kind>.jsonl; kinds: {', '.join(FEEDS)})")
    order = list(FEEDS)
    return [(f.stem, f) for f in sorted(files, key=lambda f: (order.index(f.stem), f.name))]


def import_month_command(
    folder: Path = typer.Argument(..., help="folder of the month's files, each named after its kind: income.csv, ..."),
    encoding: str = typer.Option(None, "--encoding", help="file encoding (default: UTF-8, else GBK detected)"),
    province: str = typer.Option(None, "--province", help="reject rows for persons living outside this province"),
) -> None:
    """Import a month's department files together: each stored as `import` stores it, the persons read once."""
    started = time.perf_counter()
    files: list[tuple[str, Path]] = []

    def job(engine: Engine, progress: ImportProgress) -> list[ImportSummary]:
        files.extend(month_files(folder))
        return import_feeds(engine, files, encoding=encoding, province=province, progress=progress)

    summaries = _run(f"reading {folder.name}", f"({folder.name})", job)
    for summary, (_, file) in zip(summaries, files):
        _report(summary, file, summary.elapsed)
    console.print(f"{len(files)} files in {time.perf_counter() - started:.1f} s")


def register(app: typer.Typer) -> None:
    app.command("import")(import_command)
    app.command("import-month")(import_month_command)
