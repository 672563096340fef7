"""``aidgraph export KIND --as USER --region CODE [--format csv|xlsx] [--filter k=v] -o FILE``: the same
exports as ``GET /exports/<kind>``, from the command line.

The CLI has the database credentials, but an export is always made *as a platform user*: that user's Casbin
grants decide whether the export is allowed, which rows it holds and what is masked, and the audit row names
them (with ``cli`` as where it came from). A refusal prints the reason, exits 1 and writes nothing.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TransferSpeedColumn

import aidgraph.core.app.exports  # noqa: F401  (registers the gaps kind)
from aidgraph.core.access.actor import Actor
from aidgraph.core.access.authz import authorizer_for
from aidgraph.core.access.users import get_user, grants_of
from aidgraph.core.graph import exports
from aidgraph.core.policy.engine import default_engine
from aidgraph.core.storage.config import load_settings
from aidgraph.core.storage.db import async_session_factory, make_async_engine, make_sync_engine, session_scope
from aidgraph.core.app.terminal import console, err


def export_command(
    kind: str = typer.Argument(..., help="households, alerts, gaps or audit"),
    username: str = typer.Option(..., "--as", help="the platform user the export is made for (their rights apply)"),
    region: str = typer.Option(..., "--region", help="region code the list is limited to"),
    fmt: str = typer.Option("csv", "--format", help="csv (UTF-8 with BOM) or xlsx"),
    filters: Optional[list[str]] = typer.Option(None, "--filter", help="KEY=VALUE, e.g. warningLevel=RED"),
    output: Path = typer.Option(..., "--output", "-o", help="file to write (not overwritten if it exists)"),
) -> None:
    """Export a list as CSV or XLSX, masked by the user's rights, watermarked and audited."""
    params: dict[str, str] = {}
    for item in filters or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            err.print(f"[red]error:[/red] --filter {item!r} is not KEY=VALUE", highlight=False)
            raise typer.Exit(1)
        params[key] = value
    if output.exists():
        err.print(f"[red]error:[/red] {output} exists; choose another file", highlight=False)
        raise typer.Exit(1)
    settings = load_settings()
    engine = make_sync_engine(settings.database_url)
    try:
        with session_scope(engine) as session:
            user = get_user(session, username)
            if user is None or not user.active:
                err.print(f"[red]error:[/red] no active user {username!r}", highlight=False)
                raise typer.Exit(1)
            actor = Actor(username=user.username, display_name=user.display_name,
                          grants=grants_of(session, username), remote_addr="cli")
    finally:
        engine.dispose()
    authorizer_for(settings.database_url).bind(actor)
    try:
        policy = default_engine(settings)
        job = exports.prepare(actor, kind, region, params, fmt, {"policy": policy},
                              category_programs=policy.catalogue().category_programs())
    except exports.ExportRefused as e:
        err.print(f"[red]refused ({e.status}):[/red] {e}", highlight=False)
        raise typer.Exit(1)

    async def run() -> int:
        aengine = make_async_engine(settings.database_url)
        factory = async_session_factory(aengine)
        partial = output.with_name(output.name + ".part")
        try:
            with Progress(TextColumn(f"exporting {kind}"), BarColumn(), MofNCompleteColumn(), TransferSpeedColumn(),
                          console=err, transient=True) as progress:
                task = progress.add_task("export", total=None)
                with open(partial, "wb") as f:
                    async for chunk in exports.stream(job, factory):
                        f.write(chunk)
                        progress.update(task, completed=job.rows_written)
            partial.rename(output)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        finally:
            await aengine.dispose()
        return job.rows_written

    rows = asyncio.run(run())
    console.print(f"{rows} rows written to {output} ({fmt}); recorded in the audit log", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("export")(export_command)
