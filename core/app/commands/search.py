"""``aidgraph index`` and ``aidgraph reindex``: the search index from the command line.

Both reach the cluster of ``AIDGRAPH_OPENSEARCH_URL``, or else the embedded engine of a running
``aidgraph serve`` of this database (its address is in a state file beside it). ``index`` drains the outbox once, or forever
with ``--follow``; ``index --verify`` compares ids and versions between database and index and repairs the
differences (``--no-repair`` only reports). ``reindex`` builds a new index from the database with a progress
bar and swaps the alias. All are safe to re-run.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Optional

import pluggy
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from aidgraph.core.storage.config import load_settings
from aidgraph.core.storage.db import make_sync_engine
from aidgraph.core.search.client import (BULK_TIMEOUT, CLIENT_ERRORS, SearchUnavailable, embedded_state_file,
                                         make_client, resolve_url, unavailable_from)
from aidgraph.core.search.indexer import (
    IndexMissing,
    IndexOutdated,
    dead_letter_count,
    dead_letters,
    drain,
    follow,
    pending_count,
    purge_processed,
    retry_dead_letters,
)
from aidgraph.core.search.mapping import DEFAULT_ALIAS, build_layout
from aidgraph.core.search.rebuild import ForeignIndexError, RepairTooLarge, check_owner, reindex, row_counts, verify
from aidgraph.core.storage.identity import UnidentifiedDatabase
from aidgraph.core.policy.host import build_plugin_manager
from aidgraph.core.app.terminal import console, err


def _plugin_manager() -> pluggy.PluginManager:
    return build_plugin_manager()


def _connect():
    settings = load_settings()
    url = resolve_url(settings)
    if url is None:
        console.print("[red]no search engine:[/red] set AIDGRAPH_OPENSEARCH_URL, or start `aidgraph serve` on this "
                      f"database (its embedded engine is found through {embedded_state_file(settings)})")
        raise typer.Exit(2)
    return settings, url, make_client(url, settings, timeout=BULK_TIMEOUT), make_sync_engine(settings.database_url)


def _reindex_with_progress(engine, client, alias, layout, batch: int, keep_old: bool, force: bool = False):
    totals = row_counts(engine)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("docs"),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("reindex", total=sum(totals.values()))

        def advance(kind: str, n: int) -> None:
            progress.update(task, advance=n, description=f"reindex {kind.lower()}")

        return reindex(engine, client, alias, layout, batch=batch, progress=advance, keep_old=keep_old, force=force)


def index_command(
    follow_: bool = typer.Option(False, "--follow", help="Keep draining the outbox until interrupted."),
    verify_: bool = typer.Option(False, "--verify", help="Compare ids and versions between database and index."),
    repair: bool = typer.Option(True, "--repair/--no-repair", help="With --verify: repair what differs."),
    interval: float = typer.Option(1.0, help="With --follow: seconds between passes."),
    alias: str = typer.Option(DEFAULT_ALIAS, help="The index alias."),
    purge: bool = typer.Option(False, "--purge", help="Delete outbox rows processed longer ago than --keep-hours."),
    dead_letters_: bool = typer.Option(False, "--dead-letters",
                                       help="List the outbox rows whose documents the engine refused too often."),
    retry_dead: bool = typer.Option(False, "--retry-dead-letters", help="Queue every dead letter again."),
    keep_hours: Optional[int] = typer.Option(None, "--keep-hours", min=0,
                                             help="With --purge: hours to keep (default AIDGRAPH_OUTBOX_KEEP_HOURS)."),
    force: bool = typer.Option(False, "--force", help="Touch an index built from another database (or without an "
                                                      "identity), or repair more than "
                                                      "AIDGRAPH_SEARCH_REPAIR_MAX_DELETE_PERCENT of it."),
) -> None:
    """Drain the search outbox into the index (once, or with --follow), --verify the index, or --purge the
    outbox rows already processed."""
    if dead_letters_ or retry_dead:
        engine = make_sync_engine(load_settings().database_url)
        try:
            if retry_dead:
                console.print(f"{retry_dead_letters(engine)} dead letter(s) queued again")
                return
            rows = dead_letters(engine)
            table = Table("outbox id", "record", "refused passes", "last error", "dead since")
            for outbox_id, entity, entity_id, attempts, error, dead_at in rows:
                table.add_row(str(outbox_id), f"{entity.lower()} {entity_id}", str(attempts), (error or "")[:120],
                              dead_at.isoformat(timespec="seconds") if dead_at else "")
            console.print(table)
            console.print(f"{dead_letter_count(engine)} dead letter(s)")
        finally:
            engine.dispose()
        return
    if purge:
        settings = load_settings()
        engine = make_sync_engine(settings.database_url)
        hours = settings.outbox_keep_hours if keep_hours is None else keep_hours
        try:
            deleted = purge_processed(engine, dt.timedelta(hours=hours))
        finally:
            engine.dispose()
        console.print(f"purged {deleted} outbox row(s) processed more than {hours} hour(s) ago; pending rows kept")
        return
    settings, url, client, engine = _connect()
    layout = build_layout(_plugin_manager())
    rebuild = lambda: _reindex_with_progress(engine, client, alias, layout, 5000, False, force)  # noqa: E731
    try:
        if verify_:
            checked = verify(engine, client, alias, layout, repair=repair, force=force,
                             max_delete_share=settings.search_repair_max_delete_percent / 100)
            table = Table("kind", "database", "index", "missing", "stale", "ahead", "extra", "repaired", "failed")
            for k in checked.kinds.values():
                table.add_row(k.kind.lower(), str(k.in_database), str(k.in_index), str(k.missing), str(k.stale),
                              str(k.ahead), str(k.extra), str(k.repaired), str(len(k.failed)))
            console.print(table)
            for name, fields in checked.outdated.items():
                console.print(f"index {name} predates this release's layout: it lacks {', '.join(fields)}")
            if checked.reindexed is not None:
                console.print(f"documents ahead of the database: rebuilt as {checked.reindexed.index}")
            failed = sum(len(k.failed) for k in checked.kinds.values())
            if failed:
                console.print(f"[red]{failed} document(s) could not be repaired[/red]")
                raise typer.Exit(1)
            if checked.differences and not repair:
                raise typer.Exit(1)
            return
        if not force:
            check_owner(engine, client, alias, unmarked_ok=True)  # never drain into another database's index
        if follow_:
            console.print(f"following the outbox into {url} (alias {alias}); Ctrl-C to stop")

            def report(result, error):
                if error:
                    console.print(f"[yellow]search unavailable:[/yellow] {error}; outbox kept")
                elif result and result.rows:
                    console.print(f"indexed {result.indexed}, deleted {result.deleted}, already newer "
                                  f"{result.conflicts}, failed {len(result.failed)}; outbox rows done {result.processed}")

            stop = threading.Event()
            try:
                follow(engine, client, alias, layout, interval=interval, on_pass=report, stop=stop, rebuild=rebuild)
            except KeyboardInterrupt:
                stop.set()
            return
        try:
            result = drain(engine, client, alias, layout)
        except IndexMissing as e:
            reason = str(e) if isinstance(e, IndexOutdated) else f"alias {alias} does not exist"
            console.print(f"{reason}: building the index from the database")
            rebuild()
            result = drain(engine, client, alias, layout)
        console.print(f"outbox rows {result.rows}: indexed {result.indexed}, deleted {result.deleted}, already newer "
                      f"{result.conflicts}, failed {len(result.failed)}; still pending {pending_count(engine)}")
        for key, reason in list(result.failed.items())[:10]:
            console.print(f"  [red]{key}[/red]: {reason}")
        if result.failed:
            raise typer.Exit(1)
    except (SearchUnavailable, *CLIENT_ERRORS) as e:
        console.print(f"[red]search unavailable:[/red] {unavailable_from(e)}; the outbox is kept")
        raise typer.Exit(3)
    except (ForeignIndexError, RepairTooLarge, UnidentifiedDatabase) as e:
        err.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(2)
    finally:
        engine.dispose()


def reindex_command(
    batch: int = typer.Option(5000, "--batch-size", help="Rows read and documents sent per batch."),
    keep_old: bool = typer.Option(False, "--keep-old", help="Keep the previous index (no longer behind the alias)."),
    alias: str = typer.Option(DEFAULT_ALIAS, help="The index alias."),
    force: bool = typer.Option(False, "--force", help="Replace an index built from another database."),
) -> None:
    """Build a new search index from the database and swap the alias to it."""
    _, url, client, engine = _connect()
    try:
        result = _reindex_with_progress(engine, client, alias, build_layout(_plugin_manager()), batch, keep_old, force)
    except (SearchUnavailable, *CLIENT_ERRORS) as e:
        console.print(f"[red]search unavailable:[/red] {unavailable_from(e)}")
        raise typer.Exit(3)
    except (ForeignIndexError, UnidentifiedDatabase) as e:
        err.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(2)
    finally:
        engine.dispose()
    rate = result.documents / result.seconds if result.seconds else 0.0
    counts = ", ".join(f"{k.lower()} {v}" for k, v in result.counts.items())
    console.print(f"[green]{alias} -> {result.index}[/green]: {result.documents} documents ({counts}) in "
                  f"{result.seconds:.1f} s, {rate:,.0f} docs/s; replaced {', '.join(result.replaced) or 'nothing'}; "
                  f"caught up {result.caught_up} outbox rows")


def register(app: typer.Typer) -> None:
    app.command("index")(index_command)
    app.command("reindex")(reindex_command)
