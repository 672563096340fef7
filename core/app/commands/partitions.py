"""``aidgraph partitions ensure|list``: the monthly partitions of the history tables (PostgreSQL).

Why a command: the feed import and the seeder create the partitions of the months they write
(:mod:`aidgraph.core.storage.partitions`), but rows also arrive one at a time (the ``recordEconomicItem``
mutation runs as the application role, which may not create tables) and land in the default partition. The
server runs the same work by itself (:mod:`aidgraph.core.app.maintenance`); run by hand or from cron (where the
server does not log in as the tables' owner), ``ensure`` creates the current month and ``--months-ahead`` after
it, and gives every month whose rows wait in the default partition (within the partitions' window) its own
partition, moving the rows; ``list`` shows each partition's month, rows and size. On SQLite both say there is
nothing to do: its tables are not partitioned.
"""

from __future__ import annotations

import datetime as dt
from typing import Optional

import typer
from rich.table import Table

from aidgraph.core.storage.config import load_settings
from aidgraph.core.storage.db import make_sync_engine
from aidgraph.core.storage.partitions import (
    HISTORY_MONTHS,
    MONTHS_AHEAD,
    PARTITIONED,
    Ensured,
    is_partitioned,
    keep_ahead,
    list_partitions,
)
from aidgraph.core.app.terminal import console, err


def _tables(table: Optional[str]) -> list[str]:
    if table is None:
        return list(PARTITIONED)
    if table not in PARTITIONED:
        err.print(f"[red]error:[/red] --table {table!r} is not partitioned; partitioned tables: "
                  f"{', '.join(PARTITIONED)}", highlight=False)
        raise typer.Exit(1)
    return [table]


def ensure_command(
    months_ahead: int = typer.Option(MONTHS_AHEAD, "--months-ahead", min=0, max=24,
                                     help="months after the current one to create"),
    table: Optional[str] = typer.Option(None, "--table", help=f"only this table ({', '.join(PARTITIONED)})"),
    today: Optional[str] = typer.Option(None, "--today", help="as of this date (YYYY-MM-DD; default today)"),
) -> None:
    """Create the monthly partitions ahead, and give months stranded in the default partition their own."""
    try:
        day = dt.date.fromisoformat(today) if today else dt.date.today()
    except ValueError:
        err.print(f"[red]error:[/red] --today {today!r} is not a date (YYYY-MM-DD)", highlight=False)
        raise typer.Exit(1)
    tables = _tables(table)
    engine = make_sync_engine(load_settings().database_url)
    try:
        if engine.dialect.name != "postgresql":
            console.print("SQLite: the tables are not partitioned; nothing to do", highlight=False)
            return
        report = Table("table", "partitions created", "rows moved from the default partition",
                       title=f"monthly partitions as of {day:%Y-%m}, {months_ahead} month(s) ahead")
        for name in tables:
            with engine.begin() as conn:
                if not is_partitioned(conn, name):
                    err.print(f"[red]error:[/red] {name} is not partitioned: run aidgraph init-db first",
                              highlight=False)
                    raise typer.Exit(1)
                done: Ensured = keep_ahead(conn, name, day, months_ahead)
            report.add_row(name, ", ".join(done.created) or "none", str(done.moved))
        console.print(report)
    finally:
        engine.dispose()


def list_command(
    table: Optional[str] = typer.Option(None, "--table", help=f"only this table ({', '.join(PARTITIONED)})"),
    exact: bool = typer.Option(False, "--exact", help="count each partition's rows (default: the planner's "
                                                       "estimate)"),
) -> None:
    """List the monthly partitions with their rows and size."""
    tables = _tables(table)
    engine = make_sync_engine(load_settings().database_url)
    try:
        if engine.dialect.name != "postgresql":
            console.print("SQLite: the tables are not partitioned", highlight=False)
            return
        with engine.connect() as conn:
            for name in tables:
                parts = list_partitions(conn, name, exact=exact)
                out = Table("partition", "month", "rows" if exact else "rows (estimate)", "size (MiB)",
                            title=f"{name}: {len(parts)} partition(s), window {HISTORY_MONTHS} months back")
                for p in parts:
                    out.add_row(p.name, f"{p.month:%Y-%m}" if p.month else "default (any other month)", str(p.rows),
                                f"{p.bytes / 2 ** 20:.1f}")
                console.print(out)
    finally:
        engine.dispose()


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Monthly partitions of economic_item and feed_record (PostgreSQL): create ahead, list.",
                        no_args_is_help=True)
    group.command("ensure")(ensure_command)
    group.command("list")(list_command)
    app.add_typer(group, name="partitions")
