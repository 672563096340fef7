"""``aidgraph audit --user U --since DATE``: read the append-only audit log from the command line.

The CLI runs as the system (it has the database credentials), so it sees every row; ``--region`` narrows
to records of one region and below.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from aidgraph.core.storage.config import load_settings
from aidgraph.core.storage.db import make_sync_engine, session_scope
from aidgraph.core.storage.models import AuditLog
from aidgraph.core.graph.privacy import audit_filter
from aidgraph.core.access.scope import Scope, is_level_code

console = Console()
err = Console(stderr=True)


def audit_command(
    user: Optional[str] = typer.Option(None, "--user", help="only this user's entries"),
    since: Optional[str] = typer.Option(None, "--since", help="from this date on (YYYY-MM-DD)"),
    action: Optional[str] = typer.Option(None, "--action", help="only this action (read_sensitive, create, ...)"),
    region: Optional[str] = typer.Option(None, "--region", help="only records of this region and below"),
    limit: int = typer.Option(200, "--limit", min=1, max=100000, help="at most this many entries, newest first"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object per line instead of a table"),
) -> None:
    """Show audit log entries (who, what, which record, when, from where), newest first."""
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


def register(app: typer.Typer) -> None:
    app.command("audit")(audit_command)
