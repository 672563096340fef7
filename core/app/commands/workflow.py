"""The workflow's scheduled work as commands: ``aidgraph reviews run`` and ``aidgraph payments run``.

Both reuse the workflow services (:mod:`aidgraph.core.workflow.enrollment`), act as a system actor named for
the command, and are safe to re-run: a review moves the enrolment's next review date past the run's date (or
ends it, or starts its gradual exit), so a second run finds nothing due; a payment run pays each receiving
enrolment once per month (set-at-a-time, two INSERT ... SELECT statements).

``reviews run``: every ACTIVE enrolment whose review (复核) is due on ``--as-of`` (default today), set-at-a-time
in batches of :data:`REVIEW_BATCH` (one transaction each; an enrolment that cannot be reviewed, e.g. of a program its province
no longer enables, is reported and left as it is), then the gradual exits (渐退期) that are over,
set-at-a-time. ``payments run --month``: one transaction.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from sqlalchemy import func, select

from aidgraph.core.access.actor import system_actor
from aidgraph.core.access.scope import Scope
from aidgraph.core.policy.engine import PolicyEngine
from aidgraph.core.storage.config import load_settings
from aidgraph.core.storage.db import async_session_factory, make_async_engine
from aidgraph.core.storage.errors import DomainError
from aidgraph.core.storage.models import Enrollment
from aidgraph.core.workflow.enrollment import disburse_month, end_gradual_exits, review_due
from aidgraph.core.app.terminal import console

reviews_app = typer.Typer(help="复核: the periodic reviews of running enrolments.", no_args_is_help=True)
payments_app = typer.Typer(help="发放: the monthly payments of receiving enrolments.", no_args_is_help=True)


def _scope(province: str | None) -> Scope:
    if province is None:
        return Scope.everything()
    if not (province.isdigit() and len(province) == 2):
        console.print(f"[red]--province must be a 2-digit province code, not {province!r}[/red]")
        raise typer.Exit(2)
    return Scope.of([province])


def _as_of(value: str | None) -> dt.date:
    if value is None:
        return dt.date.today()
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        console.print(f"[red]--as-of must be a date YYYY-MM-DD, not {value!r}[/red]")
        raise typer.Exit(2) from None
    if day > dt.date.today():
        console.print(f"[red]--as-of {day} is in the future: a review reads the facts recorded by then[/red]")
        raise typer.Exit(2)
    return day


REVIEW_BATCH = 150
"""Enrolments reviewed per transaction. Kept below 200 audit rows per commit: core.graph.audit seals more than
200 through core.bulk.update_frame, which fails on an asyncio SQLite session ('Result' object has no attribute
'executemany', seen 2026-12-02); with 150 a batch stays on the path that works on both engines."""


async def run_reviews(database_url: str, scope: Scope, on: dt.date, progress=None, batch: int = REVIEW_BATCH
                      ) -> dict[str, int]:
    """Review every enrolment due on ``on`` in ``scope``, set-at-a-time in batches of ``batch`` (one transaction
    each), then end the gradual exits that are over. Returns counts: due, kept (no change), repriced,
    gradual_exit, ended, failed, exits_ended."""
    actor = system_actor("reviews-run")
    policy = PolicyEngine(load_settings())
    engine = make_async_engine(database_url)
    counts = {"due": 0, "kept": 0, "repriced": 0, "gradual_exit": 0, "ended": 0, "failed": 0, "exits_ended": 0}
    failed: dict[int, str] = {}
    done: set[int] = set()
    try:
        factory = async_session_factory(engine)
        async with factory() as session:
            counts["due"] = (await session.execute(select(func.count()).select_from(Enrollment).where(
                Enrollment.status == "ACTIVE", Enrollment.next_review_date <= on,
                scope.predicate(Enrollment.region_code)))).scalar_one()
        if progress is not None:
            progress("start", counts["due"])
        while True:
            async with factory() as session:
                try:
                    reviewed, failures = await review_due(session, actor, policy, scope, on, batch, set(failed))
                    await session.commit()
                except BaseException:
                    await session.rollback()
                    raise
            if reviewed and all(e.id in done for e in reviewed):
                break  # a review left these due on ``on`` (no interval for the program): not again in this run
            done.update(e.id for e in reviewed)
            for e in reviewed:
                review = (e.details or {}).get("review") or {}
                if e.status == "GRADUAL_EXIT":
                    counts["gradual_exit"] += 1
                elif e.status == "ENDED":
                    counts["ended"] += 1
                elif review.get("previous_amount") != review.get("amount"):
                    counts["repriced"] += 1
                else:
                    counts["kept"] += 1
            for enrollment_id, why in failures.items():
                console.print(f"[yellow]enrolment {enrollment_id} not reviewed:[/yellow] {why}")
            failed.update(failures)
            if progress is not None:
                progress("advance", len(reviewed) + len(failures))
            if not reviewed and not failures:
                break
        counts["failed"] = len(failed)
        async with factory() as session:
            counts["exits_ended"] = await end_gradual_exits(session, actor, policy, scope, on)
            await session.commit()
    finally:
        await engine.dispose()
    return counts


async def run_payments(database_url: str, scope: Scope, period: str) -> int:
    """Pay ``period`` (YYYY-MM) for every receiving enrolment in ``scope`` not yet paid for it; one transaction."""
    engine = make_async_engine(database_url)
    try:
        async with async_session_factory(engine)() as session:
            try:
                paid = await disburse_month(session, system_actor("payments-run"), period, scope)
                await session.commit()
            except BaseException:
                await session.rollback()
                raise
    finally:
        await engine.dispose()
    return paid


@reviews_app.command("run")
def reviews_run(
    province: str | None = typer.Option(None, "--province", help="2-digit province code (default: every province)"),
    as_of: str | None = typer.Option(None, "--as-of", help="review on the facts of this date, YYYY-MM-DD "
                                                           "(default today)"),
) -> None:
    """Conduct every due review (复核) and end the gradual exits (渐退期) that are over; safe to re-run."""
    scope, on = _scope(province), _as_of(as_of)
    settings = load_settings()
    started = time.perf_counter()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task(f"reviews due on {on}", total=None)

        def progress(kind: str, n: int) -> None:
            if kind == "start":
                bar.update(task, total=n)
            else:
                bar.advance(task, n)

        counts = asyncio.run(run_reviews(settings.database_url, scope, on, progress))
    elapsed = time.perf_counter() - started
    console.print(f"[green]reviews on {on}[/green] ({province or 'every province'}) in {elapsed:.1f} s: due "
                  f"{counts['due']}, unchanged {counts['kept']}, re-priced {counts['repriced']}, gradual exit "
                  f"{counts['gradual_exit']}, ended {counts['ended']}, not reviewed {counts['failed']}; gradual "
                  f"exits over and ended {counts['exits_ended']}")
    if counts["failed"]:
        raise typer.Exit(1)


@payments_app.command("run")
def payments_run(
    month: str = typer.Option(..., "--month", help="the month to pay, YYYY-MM"),
    province: str | None = typer.Option(None, "--province", help="2-digit province code (default: every province)"),
) -> None:
    """Record the month's payments of every receiving enrolment not yet paid for it; safe to re-run."""
    scope = _scope(province)
    settings = load_settings()
    started = time.perf_counter()
    try:
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                      transient=True) as bar:
            bar.add_task(f"payments for {month}", total=None)
            paid = asyncio.run(run_payments(settings.database_url, scope, month))
    except DomainError as exc:
        console.print(f"[red]cannot pay:[/red] {exc}")
        raise typer.Exit(2) from None
    console.print(f"[green]payments for {month}[/green] ({province or 'every province'}) in "
                  f"{time.perf_counter() - started:.1f} s: {paid} new payment(s)")


def register(app: typer.Typer) -> None:
    app.add_typer(reviews_app, name="reviews")
    app.add_typer(payments_app, name="payments")
