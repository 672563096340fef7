"""``aidgraph monitor run --province CODE --month YYYY-MM``: the monthly monitoring run (see :mod:`aidgraph.core.monitoring.cycle`).

One transaction for the whole run: either every alert of the month is raised or updated, or none is.
"""

from __future__ import annotations

import datetime as dt
import time

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from aidgraph.core.access.actor import system_actor
from aidgraph.core.storage.config import load_settings
from aidgraph.core.storage.db import make_sync_engine, session_scope
from aidgraph.core.monitoring.cycle import MonitoringError, check_month, run_month
from aidgraph.core.policy.parameters import ParameterError
from aidgraph.core.policy.provinces import load_province
from aidgraph.core.policy.host import build_plugin_manager, category_programs, flatten
from aidgraph.core.app.terminal import console

monitor_app = typer.Typer(help="低收入人口动态监测: monthly scoring and alerts.", no_args_is_help=True)


def load_monitoring(province: str, settings=None):
    """The province's parameters, every registered indicator and the low-income table (program key -> category),
    from the plugins and province_configs/."""

    pm = build_plugin_manager(settings)
    try:
        config = load_province(province, settings, pm)
    except ParameterError as exc:
        raise MonitoringError(str(exc)) from None
    indicators = flatten(pm.hook.aidgraph_monitoring_indicators())
    return config.params, indicators, category_programs(pm)


@monitor_app.command("run")
def run_command(
    province: str = typer.Option(..., "--province", help="2-digit province code (44, 35, 62)"),
    month: str = typer.Option(..., "--month", help="the month to score, YYYY-MM (not in the future)"),
) -> None:
    """Score every monitored person and household of a province for a month; raise or update alerts."""
    settings = load_settings()
    started = time.perf_counter()
    engine = make_sync_engine(settings.database_url)
    try:
        if not (province.isdigit() and len(province) == 2):
            raise MonitoringError(f"--province must be a 2-digit province code, not {province!r}")
        check_month(month, dt.date.today())
        params, indicators, categories = load_monitoring(province, settings)
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                      transient=True) as bar:
            task = bar.add_task(f"scoring province {province}, {month}", total=None)
            with session_scope(engine) as session:
                summary = run_month(session, province, month, params=params, indicators=indicators,
                                    category_programs=categories, actor=system_actor("monitor"),
                                    progress=lambda phase: bar.update(task, description=f"{phase}: {month}"))
    except MonitoringError as exc:
        console.print(f"[red]cannot run monitoring:[/red] {exc}")
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    elapsed = time.perf_counter() - started
    hits = ", ".join(f"{k} {n}" for k, n in summary.hits_by_indicator.items())
    levels = ", ".join(f"{k} {n}" for k, n in sorted(summary.households_by_level.items()))
    console.print(f"[green]province {province}, {month}[/green] in {elapsed:.1f} s: persons with hits "
                  f"{summary.persons_scored}, households scored {summary.households_scored}")
    console.print(f"hits: {hits or 'none'}")
    console.print(f"households by warning level: {levels or 'none'}")
    console.print(f"alerts raised {summary.alerts_raised}, updated {summary.alerts_updated}, unchanged "
                  f"{summary.alerts_unchanged}, not raised again (closed this month) "
                  f"{summary.skipped_closed_this_month}")
    if summary.illustrative:
        console.print(f"[yellow]running on illustrative parameters[/yellow] (no source gives them): "
                      f"{', '.join(summary.illustrative)}")


def register(app: typer.Typer) -> None:
    app.add_typer(monitor_app, name="monitor")
