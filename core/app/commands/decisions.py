"""``aidgraph decisions refresh`` and ``aidgraph decisions status``: the eligibility decisions kept for 政策找人;
``aidgraph decisions keep-frames`` / ``frames`` / ``drop-frames``: the household frames kept for 政策模拟.

Reads keep the decisions current by themselves (:mod:`aidgraph.core.policy.decisions`), but the first read of
a day, or after a parameter change, would otherwise recompute a whole province while a caseworker waits. The
nightly job, and the end of the monthly import, run ``refresh``: every configured province (or ``--province``)
in full for ``--as-of`` (default today), with progress, then whatever the triggers marked since. Re-running it
gives the same rows; an interrupted run changes nothing (one transaction per province).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aidgraph.core.app.terminal import console, err
from aidgraph.core.policy import decisions, frames
from aidgraph.core.policy.engine import PolicyEngine
from aidgraph.core.policy.simulation import first_of_next_month
from aidgraph.core.storage.config import load_settings
from aidgraph.core.storage.db import async_session_factory, make_async_engine

decisions_app = typer.Typer(help="政策找人: the eligibility decisions kept current.", no_args_is_help=True)


@asynccontextmanager
async def _sessions() -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the configured database for one command, the engine disposed after it."""
    engine = make_async_engine(load_settings().database_url)
    try:
        yield async_session_factory(engine)
    finally:
        await engine.dispose()


def _as_of(value: str | None) -> dt.date:
    if value is None:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        err.print(f"[red]--as-of must be a date YYYY-MM-DD, not {value!r}[/red]")
        raise typer.Exit(2) from None


@decisions_app.command("refresh")
def refresh(
    province: list[str] | None = typer.Option(None, "--province", help="2-digit province code (repeatable; "
                                                                       "default: every configured province)"),
    as_of: str | None = typer.Option(None, "--as-of", help="decide on the facts of this date, YYYY-MM-DD "
                                                           "(default today)"),
) -> None:
    """Recompute the decisions of every configured province (or --province) in full, then the stale ones."""
    settings = load_settings()
    policy = PolicyEngine(settings)
    on = _as_of(as_of)
    try:
        codes = decisions.provinces_of(policy, province or None)
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None

    async def work(bar: Progress) -> list[decisions.RefreshReport]:
        reports = []
        async with _sessions() as factory:
            for code in codes:
                task = bar.add_task(f"province {code}, {on}", total=None)

                def progress(done: int, total: int, task=task) -> None:
                    bar.update(task, completed=done, total=total)

                report = await decisions.refresh_province(factory, policy, code, on, progress=progress)
                if report is not None:
                    reports.append(report)
            reports.append(await decisions.refresh_stale(factory, policy))
        return reports

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        reports = asyncio.run(work(bar))
    for r in reports:
        what = f"province {r.province_code} in full" if r.full else "households marked stale since"
        console.print(f"[green]{what}[/green]: {r.households:,} households, {r.decisions:,} decisions "
                      f"(eligible or enrolled) in {r.seconds:.1f} s")


@decisions_app.command("status")
def status() -> None:
    """When each province's decisions were computed, for which date and policy version."""
    settings = load_settings()

    async def work():
        async with _sessions() as factory:
            return await decisions.snapshots(factory)

    rows = asyncio.run(work())
    if not rows:
        console.print("no decisions kept yet: the first EligibilityGaps read of a province, or "
                      "`aidgraph decisions refresh`, computes them")
        return
    policy = PolicyEngine(settings)
    configured = set(policy.province_codes())
    for s in rows:  # one line each (a table would truncate the dates on a narrow terminal)
        current = (s.province_code in configured
                   and s.policy_version == decisions.policy_version(policy.province(s.province_code)))
        console.print(f"province {s.province_code}: as of {s.as_of}, computed {s.computed_at:%Y-%m-%d %H:%M:%S} "
                      f"UTC in {s.seconds:.1f} s, {s.households:,} households, {s.decisions:,} decisions, policy "
                      f"version {s.policy_version[:12]} "
                      + ("(current)" if current else "[yellow](parameters or plugins changed since)[/yellow]"))


@decisions_app.command("keep-frames")
def keep_frames(
    province: str = typer.Option(..., "--province", help="2-digit province code"),
    as_of: str | None = typer.Option(None, "--as-of", help="the facts of this date, YYYY-MM-DD (default: the first "
                                                           "of next month, the simulations' default date)"),
) -> None:
    """Read a province's household facts for a date and keep them, so that its simulations start in seconds
    (the first simulation of a province for a date does this by itself; run it ahead, after the monthly import)."""
    settings = load_settings()
    policy = PolicyEngine(settings)
    on = _as_of(as_of) if as_of is not None else first_of_next_month()
    try:
        (code,) = decisions.provinces_of(policy, [province])
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None

    async def work(bar: Progress) -> int:
        task = bar.add_task(f"province {code}, facts of {on}", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        async with _sessions() as factory:
            return await decisions.keep_frames(factory, code, on, progress=progress)

    started = time.perf_counter()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        asyncio.run(work(bar))
    console.print(f"[green]province {code}: household facts of {on} kept[/green] in "
                  f"{time.perf_counter() - started:.1f} s")


@decisions_app.command("frames")
def list_frames() -> None:
    """The household frames kept: province, date, households, version (changes applied), when built."""

    async def work():
        async with _sessions() as factory, factory() as session:
            return list(await frames.kept_sets(session))

    rows = asyncio.run(work())
    if not rows:
        console.print("no household frames kept: the first simulation of a province for a date keeps them")
        return
    for k in rows:
        console.print(f"province {k.province_code}: facts of {k.as_of}, {k.households:,} households, version "
                      f"{k.version}, built {k.built_at:%Y-%m-%d %H:%M:%S} UTC in {k.seconds:.1f} s, last changed "
                      f"{k.updated_at:%Y-%m-%d %H:%M:%S} UTC"
                      + ("" if k.format == frames.FORMAT else " [yellow](kept by another release: built again on "
                                                              "first use)[/yellow]"))


@decisions_app.command("drop-frames")
def drop_frames(
    province: str = typer.Option(..., "--province", help="2-digit province code"),
    as_of: str = typer.Option(..., "--as-of", help="the kept date, YYYY-MM-DD"),
) -> None:
    """Stop keeping a province's household frame for a date (each kept date costs every refresh a little)."""
    on = _as_of(as_of)

    async def work() -> bool:
        async with _sessions() as factory, factory() as session:
            dropped = await frames.drop(session, province, on)
            await session.commit()
            return dropped

    if not asyncio.run(work()):
        err.print(f"[red]no household frame of province {province!r} is kept for {on}[/red]")
        raise typer.Exit(1)
    console.print(f"[green]province {province}: the household frame of {on} is no longer kept[/green]")


def register(app: typer.Typer) -> None:
    app.add_typer(decisions_app, name="decisions")
