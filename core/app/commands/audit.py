"""``aidgraph audit --user U --since DATE``: read the append-only audit log from the command line;
``aidgraph audit verify`` checks its hash chain and names any changed, deleted or inserted row;
``aidgraph audit seal`` chains rows that raw batch writers left unsealed.

The CLI runs as the system (it has the database credentials), so it sees every row; ``--region`` narrows
to records of one region and below.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from sqlalchemy import func, select

from aidgraph.core.storage.config import load_settings
from aidgraph.core.storage.db import make_sync_engine, session_scope
from aidgraph.core.storage.models import AuditLog
from aidgraph.core.graph import audit
from aidgraph.core.graph.privacy import audit_filter
from aidgraph.core.access.scope import Scope, is_level_code
from aidgraph.core.app.terminal import console, err


def audit_command(
    ctx: typer.Context,
    user: Optional[str] = typer.Option(None, "--user", help="only this user's entries"),
    since: Optional[str] = typer.Option(None, "--since", help="from this date on (YYYY-MM-DD)"),
    action: Optional[str] = typer.Option(None, "--action", help="only this action (read_sensitive, create, ...)"),
    region: Optional[str] = typer.Option(None, "--region", help="only records of this region and below"),
    limit: int = typer.Option(200, "--limit", min=1, max=100000, help="at most this many entries, newest first"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object per line instead of a table"),
) -> None:
    """Show audit log entries (who, what, which record, when, from where), newest first."""
    if ctx.invoked_subcommand is not None:
        return
    start = None
    if since:
        try:
            start = dt.date.fromisoformat(since)
        except ValueError:
            err.print(f"[red]error:[/red] --since {since!r} is not a date (YYYY-MM-DD)", highlight=False)
            raise typer.Exit(1)
    if region is not None and not is_level_code(region):
        err.print(f"[red]error:[/red] --region {region!r} is not a region code", highlight=False)
        raise typer.Exit(1)
    scope = Scope.of([region]) if region else Scope.everything()
    settings = load_settings()
    engine = make_sync_engine(settings.database_url)
    with session_scope(engine) as session:
        rows = session.scalars(select(AuditLog).where(*audit_filter(scope, user, start, action))
                               .order_by(AuditLog.id.desc()).limit(limit)).all()
    if as_json:
        for r in rows:
            print(json.dumps({"at": r.at.isoformat(), "actor": r.actor, "action": r.action,
                              "object_type": r.object_type, "object_id": r.object_id, "region_code": r.region_code,
                              "remote_addr": r.remote_addr, "detail": r.detail}, ensure_ascii=False))
        return
    table = Table("at", "user", "action", "object", "region", "from", "detail")
    for r in rows:
        table.add_row(r.at.isoformat(timespec="seconds"), r.actor, r.action,
                      f"{r.object_type}:{r.object_id}" if r.object_id else r.object_type, r.region_code or "",
                      r.remote_addr or "", json.dumps(r.detail, ensure_ascii=False) if r.detail else "")
    console.print(table)
    console.print(f"{len(rows)} entries", highlight=False)


def verify_command(
    as_json: bool = typer.Option(False, "--json", help="the findings as one JSON object"),
) -> None:
    """Verify the audit log's hash chain: exit 1 naming every changed, deleted or inserted row."""
    engine = make_sync_engine(load_settings().database_url)
    try:
        with session_scope(engine) as session:
            total = session.execute(select(func.count()).select_from(AuditLog)).scalar_one()
            with Progress(TextColumn("verifying the audit chain"), BarColumn(), MofNCompleteColumn(),
                          console=err, transient=True, disable=as_json) as progress:
                task = progress.add_task("verify", total=total)
                result = audit.verify(session, progress=lambda n: progress.advance(task, n))
    finally:
        engine.dispose()
    if as_json:
        print(json.dumps({"ok": result.ok, "checked": result.checked, "unsealed": result.unsealed,
                          "head": {"seq": result.head_seq, "hash": result.head_hash},
                          "findings": [f.as_dict() for f in result.findings]}, ensure_ascii=False))
    else:
        for f in result.findings:
            style = "yellow" if f.kind == "unsealed" else "red"
            console.print(f"[{style}]{f.kind}[/{style}] {f.message}", highlight=False)
        console.print(f"{result.checked} rows checked; chain head seq {result.head_seq} hash {result.head_hash}"
                      + ("" if result.ok else "; [red]the audit log was tampered with[/red]"), highlight=False)
    if not result.ok:
        raise typer.Exit(1)


def seal_command() -> None:
    """Chain the audit rows that raw batch writers left unsealed (normally done when each write commits)."""
    engine = make_sync_engine(load_settings().database_url)
    try:
        with session_scope(engine) as session:
            count = audit.seal(session)
    finally:
        engine.dispose()
    console.print(f"{count} rows sealed", highlight=False)


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="The audit log: read it, verify its hash chain, seal pending rows.",
                        invoke_without_command=True)
    group.callback()(audit_command)
    group.command("verify")(verify_command)
    group.command("seal")(seal_command)
    app.add_typer(group, name="audit")
