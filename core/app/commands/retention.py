"""``aidgraph retention run [--dry-run]``: delete, or keep for storage only, what is past its retention period.

Periods are each province's ``retention.toml`` parameters in force on the run's day (a province configuring
less than a legal minimum fails to load: nothing is touched). The run is one transaction: it deletes what is
due, moves to storage only what a statutory period still holds (no read path returns it; search drops it
through the outbox), prunes the audit log's oldest rows as a prefix of its hash chain, writes one audit row and
a deletion report (JSON, under the state directory). ``--dry-run`` reports the same counts and changes nothing.
Running it again finds nothing more to do.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Optional

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn
from rich.table import Table
from sqlalchemy.orm import sessionmaker

from aidgraph.core.access.actor import system_actor
from aidgraph.core.graph import retention
from aidgraph.core.policy.parameters import ParameterError
from aidgraph.core.policy.provinces import available_provinces, load_province
from aidgraph.core.storage.config import load_settings
from aidgraph.core.storage.db import make_sync_engine
from aidgraph.core.workflow.retention_params import periods
from aidgraph.core.app.terminal import console, err


def run_command(
    dry_run: bool = typer.Option(False, "--dry-run", help="count what is due; change nothing"),
    today: Optional[str] = typer.Option(None, "--today", help="run as of this date (YYYY-MM-DD; default today)"),
    province: Optional[list[str]] = typer.Option(None, "--province", help="only these provinces (default: all "
                                                                          "configured)"),
    report_dir: Optional[Path] = typer.Option(None, "--report-dir", help="where the deletion report goes "
                                                                         "(default: STATE_DIR/retention)"),
) -> None:
    """Apply the provinces' retention periods: delete what is due, keep for storage only what must be kept."""
    settings = load_settings()
    try:
        day = dt.date.fromisoformat(today) if today else dt.date.today()
    except ValueError:
        err.print(f"[red]error:[/red] --today {today!r} is not a date (YYYY-MM-DD)", highlight=False)
        raise typer.Exit(1)
    codes = province or available_provinces(settings)
    try:
        chosen = [periods(load_province(code, settings).params, day) for code in codes]
    except (ParameterError, ValueError, FileNotFoundError) as e:
        err.print(f"[red]error:[/red] {e}; nothing was changed", highlight=False)
        raise typer.Exit(1)
    engine = make_sync_engine(settings.database_url)
    session = sessionmaker(engine, expire_on_commit=False)()
    try:
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=err, transient=True) as progress:
            task = progress.add_task("retention", total=None)
            seen: dict[str, int] = {}

            def step(label: str, n: int) -> None:
                seen[label] = seen.get(label, 0) + n
                progress.update(task, description=", ".join(f"{k}: {v}" for k, v in seen.items()))

            report = retention.run(session, system_actor("retention"), chosen, today=day, dry_run=dry_run,
                                   progress=step)
        if dry_run:
            session.rollback()
        else:
            session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
        engine.dispose()
    path = retention.write_report(report, report_dir or settings.state_dir / "retention")
    table = Table("record class", "deleted", "stored only", "kept (still referenced)",
                  title=f"retention {'(dry run) ' if dry_run else ''}as of {day.isoformat()}")
    classes = sorted(set(report.deleted) | set(report.stored_only) | set(report.kept_referenced))
    for c in classes:
        table.add_row(c, str(report.deleted.get(c, 0)), str(report.stored_only.get(c, 0)),
                      str(report.kept_referenced.get(c, 0)))
    console.print(table)
    if not classes:
        console.print("nothing is due", highlight=False)
    console.print(f"report: {path}", highlight=False)


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Retention of personal data (保存期限): delete or keep for storage only what is due.")
    group.command("run")(run_command)
    app.add_typer(group, name="retention")
