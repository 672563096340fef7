"""``aidgraph simulate``: policy simulation (政策模拟) from the command line, and saved scenarios.

    aidgraph simulate --province 44 --set dibao.rural_standard=1100 [--set dibao.urban_standard@4401=1500]
                      [--region 4405] [--as-of 2027-01-01] [--json] [--save NAME] [--top 10]
    aidgraph simulate --province 44 --scenario NAME      # run a saved scenario again, compared with its summary
    aidgraph simulate --province 44 --compare A --compare B
    aidgraph simulate --list [--province 44]

``KEY=VALUE`` values are read as JSON (``1100``, ``1.8``, ``true``, ``["low_income"]``), anything else as a
string; ``KEY@REGION=VALUE`` changes one region's override. The run is the one of
:mod:`aidgraph.core.policy.simulation` (the engine of the GraphQL ``simulatePolicy``), as a system job,
audited; it never writes enrolments or parameters.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import typer
from rich.table import Table

from aidgraph.core.access.actor import system_actor
from aidgraph.core.access.scope import Scope
from aidgraph.core.policy.engine import PolicyEngine
from aidgraph.core.policy.parameters import ParameterError
from aidgraph.core.policy.simulation import (
    ParameterChange,
    SimulationError,
    SimulationResult,
    Simulator,
    compare_summaries,
    list_scenarios,
    load_scenario,
    region_names,
    save_scenario,
    scenario_changes,
)
from aidgraph.core.storage.config import load_settings
from aidgraph.core.storage.db import async_session_factory, make_async_engine
from aidgraph.core.app.terminal import console


FRAME_SOURCES = {"memory": "from memory", "kept": "from the kept frames",
                 "tables": "read from the tables (now kept)"}


def parse_change(text: str) -> ParameterChange:
    """``KEY=VALUE`` or ``KEY@REGION=VALUE``; the value as JSON when it parses, else as a string."""
    target, sep, raw = text.partition("=")
    if not sep or not target.strip():
        raise SimulationError("--set", f"{text!r}: expected KEY=VALUE (or KEY@REGION=VALUE)")
    key, _, region = target.strip().partition("@")
    try:
        value: Any = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return ParameterChange(key, value, region or None)


def _money(value: float) -> str:
    return f"{value:,.2f}"


def _delta(a: float, b: float, money: bool = False) -> str:
    d = b - a
    text = _money(d) if money else f"{d:,.0f}"
    return ("+" if d > 0 else "") + text


def _amount(eligible: bool, monthly: float | None, one_off: float | None) -> str:
    if not eligible:
        return "-"
    if monthly is not None:
        return f"{_money(monthly)}/month"
    if one_off is not None:
        return f"{_money(one_off)} once"
    return "eligible"


def print_result(result: SimulationResult, names: dict[str, tuple[str, str]], program_names: dict[str, str],
                 top: int) -> None:
    changes = ", ".join(f"{c.key}{'@' + c.region if c.region else ''}={json.dumps(c.value, ensure_ascii=False)}"
                        for c in result.changes)
    console.print(f"[bold]政策模拟[/bold] province {result.province_code}, region {result.region_code} "
                  f"({names.get(result.region_code, ('', ''))[0]}), from {result.on.isoformat()}: {changes}")
    console.print(f"{result.households_in_scope:,} households in scope; {result.timings['total']:.2f} s "
                  f"(household facts {FRAME_SOURCES.get(result.frame_source, result.frame_source)})")
    table = Table(title="eligible households, persons, monthly cost and one-off grants (yuan): baseline -> reform")
    for column in ("program", "households", "", "persons", "", "monthly cost", "", "change", "one-off", "",
                   "change "):
        table.add_column(column, justify="left" if column == "program" else "right")
    rows = [(program_names.get(k, k), b, r) for k, b, r in result.by_program] + [("total (any program)", result.baseline,
                                                                                  result.reform)]
    for label, b, r in rows:
        table.add_row(label, f"{b.households:,}", f"{r.households:,}", f"{b.persons:,}", f"{r.persons:,}",
                      _money(b.monthly_cost), _money(r.monthly_cost), _delta(b.monthly_cost, r.monthly_cost, True),
                      _money(b.one_off_cost), _money(r.one_off_cost), _delta(b.one_off_cost, r.one_off_cost, True))
    console.print(table)
    console.print(f"a year's cost (12 x monthly + one-off): {_money(result.baseline.year_cost)} -> "
                  f"{_money(result.reform.year_cost)} yuan")
    console.print(f"annual cost change (12 x monthly): [bold]{_delta(0, result.annual_cost_change, True)}[/bold] "
                  f"yuan; a year's cost change (with one-off grants): {_delta(0, result.year_cost_change, True)} yuan")
    console.print(f"newly eligible "
                  f"{result.newly_eligible.households:,} households ({result.newly_eligible.persons:,} persons), no "
                  f"longer eligible {result.no_longer_eligible.households:,} ({result.no_longer_eligible.persons:,})")
    console.print("winners and losers (per-capita income plus aid): "
                  + ", ".join(f"{band} {n:,}" for band, n in result.bands.items()))
    regions = Table(title=f"by child region of {result.region_code}")
    for column in ("region", "name", "households", "", "monthly cost", "", "change"):
        regions.add_column(column, justify="left" if column in ("region", "name") else "right")
    for code, b, r in result.by_region:
        regions.add_row(code, names.get(code, ("?", ""))[0], f"{b.households:,}", f"{r.households:,}",
                        _money(b.monthly_cost), _money(r.monthly_cost), _delta(b.monthly_cost, r.monthly_cost, True))
    console.print(regions)
    if top and result.affected.height:
        page = result.affected.head(top)
        reasons = result.reasons(page)
        affected = Table(title=f"largest changes ({result.affected.height:,} household-program rows change)")
        for column in ("household", "program", "baseline", "reform", "reasons that changed"):
            affected.add_column(column)
        for row in page.iter_rows(named=True):
            affected.add_row(row["household_number"], row["program"],
                             _amount(row["baseline_eligible"], row["baseline_amount"], row["baseline_one_off"]),
                             _amount(row["reform_eligible"], row["reform_amount"], row["reform_one_off"]),
                             "\n".join(reasons.get((row["household_id"], row["program"]), [])))
        console.print(affected)


def print_comparison(title: str, first: dict, second: dict, labels: tuple[str, str]) -> None:
    table = Table(title=title)
    for column in ("figure", labels[0], labels[1], "difference"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    for figure, a, b, d in compare_summaries(first, second):
        table.add_row(figure, "-" if a is None else f"{a:,}", "-" if b is None else f"{b:,}",
                      "-" if d is None else f"{d:+,}")
    console.print(table)


async def _main(province: str | None, sets: list[str], region: str | None, as_of: dt.date | None, as_json: bool,
                save: str | None, scenario: str | None, compare: list[str], list_only: bool, top: int) -> None:
    settings = load_settings()
    engine = make_async_engine(settings.database_url)
    actor = system_actor("simulate")
    try:
        async with async_session_factory(engine)() as session:
            if list_only:
                table = Table(title="saved simulation scenarios")
                for column in ("province", "name", "region", "as of", "changes", "by", "at", "annual cost change"):
                    table.add_column(column)
                for s in await list_scenarios(session, Scope.everything(), province):
                    table.add_row(s.province_code, s.name, s.region_code, s.as_of.isoformat(),
                                  json.dumps(s.changes, ensure_ascii=False), s.created_by, f"{s.created_at:%Y-%m-%d %H:%M}",
                                  _money(s.summary["annualCostChange"]))
                console.print(table)
                return
            if province is None:
                raise SimulationError("--province", "give --province CODE")
            if compare:
                if len(compare) != 2:
                    raise SimulationError("--compare", "give --compare twice: two saved scenario names")
                a, b = [await load_scenario(session, province, name, region) for name in compare]
                if as_json:
                    print(json.dumps({"first": a.summary, "second": b.summary}, ensure_ascii=False, indent=2))
                else:
                    print_comparison(f"scenario {a.name} against {b.name}", a.summary, b.summary, (a.name, b.name))
                return
            saved = None
            if scenario:
                saved = await load_scenario(session, province, scenario, region)
                changes = scenario_changes(saved)
                region = region or saved.region_code
                as_of = as_of or saved.as_of
            else:
                changes = [parse_change(s) for s in sets]
            simulator = Simulator(PolicyEngine(settings))
            result = await simulator.run(session, actor, province, changes, region_code=region, on=as_of)
            if save:
                await save_scenario(session, actor, save, result)
            await session.commit()
            summary = result.summary()
            if as_json:
                out = {**summary, "changes": [c.as_dict() for c in changes], "seconds": round(result.timings["total"], 3)}
                if saved is not None:
                    out["saved"] = saved.summary
                print(json.dumps(out, ensure_ascii=False, indent=2))
                return
            codes = [result.region_code] + [code for code, _, _ in result.by_region]
            names = await region_names(session, codes)
            programs = {k: p.name for k, p in simulator.engine.province(province).programs.items()}
            print_result(result, names, programs, top)
            if saved is not None:
                print_comparison(f"scenario {saved.name}: saved {saved.created_at:%Y-%m-%d %H:%M} by {saved.created_by} "
                                 f"against this run", saved.summary, summary, ("saved", "now"))
            if save:
                console.print(f"[green]saved as scenario {save!r}[/green]")
    finally:
        await engine.dispose()


def simulate(
    province: str = typer.Option(None, "--province", help="2-digit province code (44, 35, 62)"),
    sets: list[str] = typer.Option([], "--set", help="KEY=VALUE or KEY@REGION=VALUE (repeatable)"),
    region: str = typer.Option(None, "--region", help="count the households of this region (default: the province)"),
    as_of: str = typer.Option(None, "--as-of", help="the date the changes take effect (default: first of next month)"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
    save: str = typer.Option(None, "--save", help="keep this simulation as a named scenario"),
    scenario: str = typer.Option(None, "--scenario", help="run a saved scenario again and compare with its summary"),
    compare: list[str] = typer.Option([], "--compare", help="two saved scenario names to compare (give it twice)"),
    list_only: bool = typer.Option(False, "--list", help="list the saved scenarios"),
    top: int = typer.Option(10, "--top", help="how many of the largest changes to list"),
) -> None:
    """政策模拟: what a change of parameters would cost and whom it would reach, by county."""
    try:
        on = dt.date.fromisoformat(as_of) if as_of else None
    except ValueError:
        console.print(f"[red]cannot simulate:[/red] --as-of {as_of!r} is not a date (YYYY-MM-DD)")
        raise typer.Exit(2) from None
    try:
        asyncio.run(_main(province, sets, region, on, as_json, save, scenario, compare, list_only, top))
    except (SimulationError, ParameterError) as exc:
        console.print(f"[red]cannot simulate:[/red] {exc}")
        raise typer.Exit(2) from None


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)
