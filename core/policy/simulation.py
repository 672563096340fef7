"""Policy simulation (政策模拟): what a change of standard or rule would cost, whom it reaches, per county.

A *reform* is the province's parameters with a few dated values added, exactly as a new entry in
``province_configs/<code>/parameters/*.toml`` would add them: each change names a declared key, a value of the
declared type within the declared bounds, optionally a region (for parameters that vary by region), valid
from the simulation date. :func:`reform_params` checks every change with the same checks as loading a
province (:func:`aidgraph.core.policy.parameters._type_ok`, the region rules, the plugins'
``aidgraph_province_validate``), and builds the reform in O(changed parameters): a
:class:`~collections.ChainMap` of the changed :class:`Parameter` objects over the baseline's.

Both sides are evaluated with the very code path of eligibility: the household frame of
:func:`aidgraph.core.policy.engine.household_frame` (every household of the scope, enrolled or not: raising a
standard makes new households eligible) and :meth:`ProvincePolicy.decide`, the reform side by a
:class:`ProvincePolicy` built over the reform parameters. No rule is written here: linked thresholds (the
near-dibao line at 1.5x the standard, the tekun standard at 1.6x) move because the plugins compute them
from the standard. Only the programs whose rules read a changed key are decided again (the keys each program
reads are recorded once per policy and date, :meth:`Simulator.dependencies`); the others keep their baseline rows.

Results (:class:`SimulationResult`): per program and in total, households and persons eligible, the monthly
cost (sum of the monthly amounts, yuan), the one-off cost (sum of the one-off grants: temporary aid 临时救助,
Gansu's entrepreneurship subsidy 一次性创业补贴, any formula a plugin declares with ``period="once"``; the
amounts are the ``one_off_amount`` the plugins' formulas give in :meth:`ProvincePolicy.decide`) and the annual
cost, 12 x monthly + one-off (each household eligible on the simulation date counted as receiving its one-off
grant once in the year), under baseline and reform; newly and no longer eligible households; winners and losers
by the change of per-capita income plus monthly aid (gross monthly income plus monthly aid, per member: a
one-off grant is no monthly income and is left out of the bands); the same totals by child region; the
(household, program) rows whose eligibility, monthly or one-off amount changed, largest annual change first,
explained on demand (reasons are the expensive part, so only a page is explained).

Speed: the household facts of a province for a date are kept in the database (:mod:`aidgraph.core.policy.frames`:
compressed columnar chunks, rewritten from the stale marks database triggers write for every change, whatever
made it) and in this process's memory by :class:`FrameCache`, with the baseline decisions of each region and
scope cut from them. Before each run the marks are applied (the kept decisions' incremental refresh), and the
memory copy is reused while the kept set's version is unchanged; so the frame a simulation uses always equals a
fresh read of the tables. The first simulation of a province for a date reads the tables and keeps the result.
A simulation never writes enrolments or parameters: the only rows it writes are its audit entry, when asked a
saved scenario (``simulation_scenario``), and the kept frames.

Saved scenarios (政策模拟方案, see the section below): :meth:`Simulator.save` runs a simulation over one region of
the caller's scope and keeps it (Casbin ``simulation``/``save_scenario``, audited); :meth:`Simulator.rerun` runs
one again on today's data and compares it with its saved summary (:func:`compare_summaries`); the scenarios a
caller reads are those whose region lies in :func:`scenario_scope`, the predicate applied in the query.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
import threading
import time
from collections import ChainMap, OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from aidgraph.core.access.actor import Actor
from aidgraph.core.access.scope import LEVEL_WIDTHS, Scope, is_level_code
from aidgraph.core.graph import audit, idempotency
from aidgraph.core.policy import decisions, frames
from aidgraph.core.policy.engine import PolicyEngine, ProvincePolicy, household_frame
from aidgraph.core.policy.host import flatten
from aidgraph.core.policy.parameters import (
    DatedValue,
    Parameter,
    ProvinceParams,
    _type_ok,
)
from aidgraph.core.storage.db import async_session_factory
from aidgraph.core.storage.models import (
    Region,
    SimulationScenario,
)

OBJECT = "simulation"
ACTION = "run"
SAVE_ACTION = "save_scenario"
MAX_CHANGES = int(os.environ.get("AIDGRAPH_SIMULATION_MAX_CHANGES", "20"))
"""The most parameter changes one simulation may carry (``AIDGRAPH_SIMULATION_MAX_CHANGES``)."""
CACHE_ENTRIES = 2
"""Province frames a process keeps in memory (a province of 1,880,000 households is about 2 GB)."""
CACHE_VIEWS = 8
"""Regions and scopes cut from one province frame that keep their baseline decisions in memory."""
BANDS = ("GAIN_MORE_THAN_5", "GAIN_UP_TO_5", "NO_CHANGE", "LOSS_UP_TO_5", "LOSS_MORE_THAN_5")
"""Winners and losers: change of per-capita income plus aid, in percent (> 5, (0, 5], 0, [-5, 0), < -5)."""
EPSILON = 0.005
"""Amounts closer than half a fen are equal."""
SOURCE = "simulation"


class SimulationError(ValueError):
    """Bad simulation input: names the input field (``changes.0.value``) and the parameter key; nothing ran."""

    def __init__(self, field: str, message: str, key: str | None = None, code: str = "VALIDATION"):
        self.field = field
        self.key = key
        self.code = code
        self.message = message
        super().__init__(message)


@dataclass(frozen=True)
class ParameterChange:
    """One change: ``key`` takes ``value`` from the simulation date (in ``region`` and below, when given)."""

    key: str
    value: Any
    region: str | None = None

    def as_dict(self) -> dict:
        return {"key": self.key, "value": self.value, "region": self.region}


def first_of_next_month(today: dt.date | None = None) -> dt.date:
    today = today or dt.date.today()
    return dt.date(today.year + (today.month == 12), today.month % 12 + 1, 1)


# --- the reform ---------------------------------------------------------------------------------------------


def check_changes(params: ProvinceParams, changes: list[ParameterChange], on: dt.date,
                  max_changes: int = MAX_CHANGES) -> None:
    """The strict validation of province_configs, applied to each change; raises :class:`SimulationError`."""
    if not changes:
        raise SimulationError("changes", "give at least one parameter change")
    if len(changes) > max_changes:
        raise SimulationError("changes", f"{len(changes)} changes: at most {max_changes} per simulation "
                                         f"(keys {', '.join(c.key for c in changes[max_changes:])} are over)")
    seen: set[tuple[str, str | None]] = set()
    code = params.province_code
    for i, change in enumerate(changes):
        spec = params.specs.get(change.key)
        if spec is None:
            raise SimulationError(f"changes.{i}.key", f"{change.key}: unknown parameter key: no plugin enabled for "
                                                      f"province {code} declares it", change.key)
        problem = _type_ok(spec, change.value)
        if problem:
            raise SimulationError(f"changes.{i}.value", f"{change.key}: bad value: {problem}", change.key)
        if change.region is not None:
            if not spec.regional:
                raise SimulationError(f"changes.{i}.regionCode", f"{change.key}: this parameter does not vary by "
                                                                 f"region", change.key)
            if not is_level_code(change.region) or not change.region.startswith(code):
                raise SimulationError(f"changes.{i}.regionCode", f"{change.key}: region {change.region!r} is not a "
                                                                 f"region code of province {code}", change.key)
        existing = params.parameters.get(change.key)
        if existing is not None:
            first = min(v.start for v in existing.values)
            if on < first:
                raise SimulationError("asOf", f"{change.key}: {on.isoformat()} is before the parameter's history "
                                              f"(its first value takes effect on {first.isoformat()})", change.key)
        if (change.key, change.region) in seen:
            raise SimulationError(f"changes.{i}.key", f"{change.key}: changed twice"
                                                      f"{' for ' + change.region if change.region else ''}", change.key)
        seen.add((change.key, change.region))


def reform_params(params: ProvinceParams, changes: list[ParameterChange], on: dt.date,
                  max_changes: int = MAX_CHANGES) -> ProvinceParams:
    """The baseline parameters with each change added as a value from ``on``: O(changed parameters).

    A value already given for the same date and region is replaced (a file may not hold two), every other
    value is kept, so the most specific region in force still wins exactly as in a province folder.
    """
    check_changes(params, changes, on, max_changes)
    changed: dict[str, Parameter] = {}
    for change in changes:
        base = changed.get(change.key) or params.parameters.get(change.key)
        spec = params.specs[change.key]
        values = [v for v in (base.values if base else []) if (v.start, v.region) != (on, change.region)]
        values.append(DatedValue(on, change.value, change.region, SOURCE))
        values.sort(key=lambda v: (v.start, v.region or ""))
        if base is not None:
            changed[change.key] = dataclasses.replace(base, values=values)
        else:
            changed[change.key] = Parameter(change.key, spec.description, spec.unit, SOURCE, None, values)  # type: ignore[arg-type]
    return ProvinceParams(params.province_code, ChainMap(changed, params.parameters), params.specs)  # type: ignore[arg-type]


def reform_policy(baseline: ProvincePolicy, params: ProvinceParams) -> ProvincePolicy:
    """The province's policy over ``params``: the same plugins, rules and formulas, checked by the plugins'
    ``aidgraph_province_validate`` as loading a province checks them."""
    problems = flatten(baseline.plugins.hook.aidgraph_province_validate(params=params))
    if problems:
        key = problems[0].split(":", 1)[0]
        raise SimulationError("changes", "; ".join(problems), key)
    config = dataclasses.replace(baseline.config, params=params)
    return ProvincePolicy(baseline.plugins.pm, config)


# --- the frame cache ---------------------------------------------------------------------------------------


@dataclass
class _Entry:
    """The households of one region and scope, cut from a province frame, with their baseline decisions."""
    frame: pl.DataFrame
    baseline: dict[str, tuple[ProvincePolicy, pl.DataFrame]] = field(default_factory=dict)
    compared: dict = field(default_factory=dict)
    """The baseline's side of :func:`compare`, by the programs decided again (valid for ``baseline``'s decisions)."""


@dataclass
class _Province:
    frame: pl.DataFrame
    version: int
    views: OrderedDict[tuple, _Entry] = field(default_factory=OrderedDict)


class FrameCache:
    """Province frames in memory, each with the version of the kept set it was read at (see the module's rule).

    Where the facts come from, in order: this process's memory while the kept set's version is unchanged (one
    indexed statement); else the kept household frames in the database (:mod:`aidgraph.core.policy.frames`,
    seconds for a province); else, the first time a province is simulated for a date, the tables, whose frame is
    then kept. Before any of these, the stale marks of every write (database triggers) are applied by the kept
    decisions' incremental refresh, so the frame used always equals a fresh read of the tables.
    """

    def __init__(self, entries: int = CACHE_ENTRIES, views: int = CACHE_VIEWS):
        self.entries = entries
        self.views = views
        self._data: OrderedDict[tuple, _Province] = OrderedDict()
        self._lock = threading.RLock()  # _view is called with it held
        self.hits = 0
        self.misses = 0

    async def get(self, session: AsyncSession, engine: PolicyEngine, on: dt.date, region_code: str,
                  scope: Scope) -> tuple[_Entry, str]:
        """The households under ``region_code`` within ``scope`` for ``on``, and where the facts came from:
        ``memory``, ``kept`` (the kept frames) or ``tables`` (read from the tables, then kept)."""
        bind = session.bind
        assert isinstance(bind, AsyncEngine), "simulations run in sessions bound to an engine"
        factory = async_session_factory(bind, dict(session.info))  # the request's scope, in transactions of its own
        province = region_code[:2]
        if await decisions.any_stale(factory):
            await decisions.refresh_stale(factory, engine)
        async with factory() as s:
            current = await frames.version(s, province, on)
        key = (str(bind.url), province, on)
        with self._lock:
            held = self._data.get(key)
            if held is not None and held.version == current:
                self._data.move_to_end(key)
                self.hits += 1
                return self._view(held, region_code, scope), "memory"
        source = "kept"
        if current is None:
            await decisions.keep_frames(factory, province, on, force=False)
            source = "tables"
        async with factory() as s:
            loaded = await frames.load(s, province, on)
        if loaded is None:  # dropped meanwhile by another process building a fourth date: read the tables
            async with factory() as s:
                frame = await household_frame(s, on=on, region_code=province)
            loaded, source = (frame, -1), "tables"
        held = _Province(loaded[0], loaded[1])
        with self._lock:
            self.misses += 1
            self._data[key] = held
            self._data.move_to_end(key)
            while len(self._data) > self.entries:
                self._data.popitem(last=False)
        return self._view(held, region_code, scope), source

    def _view(self, held: _Province, region_code: str, scope: Scope) -> _Entry:
        key = (region_code, scope.prefixes, scope.unrestricted)
        with self._lock:
            view = held.views.get(key)
            if view is None:
                view = held.views[key] = _Entry(frames.within(held.frame, region_code, scope))
                while len(held.views) > self.views:
                    held.views.popitem(last=False)
            held.views.move_to_end(key)
            return view

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


# --- results -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Totals:
    """Households and persons eligible, and what they cost (yuan): monthly amounts, one-off grants, a year."""

    households: int
    persons: int
    monthly_cost: float
    one_off_cost: float = 0.0

    @property
    def year_cost(self) -> float:
        """A year's cost: 12 x the monthly cost + the one-off grants (each paid once in the year)."""
        return round(12 * self.monthly_cost + self.one_off_cost, 2)

    def as_dict(self) -> dict:
        return {"households": self.households, "persons": self.persons, "monthlyCost": round(self.monthly_cost, 2),
                "oneOffCost": round(self.one_off_cost, 2), "yearCost": self.year_cost}


@dataclass(frozen=True)
class Count:
    households: int
    persons: int


@dataclass
class SimulationResult:
    province_code: str
    region_code: str
    on: dt.date
    changes: list[ParameterChange]
    baseline: Totals
    reform: Totals
    newly_eligible: Count
    no_longer_eligible: Count
    by_program: list[tuple[str, Totals, Totals]]
    by_region: list[tuple[str, Totals, Totals]]
    bands: dict[str, int]
    affected: pl.DataFrame
    """household_id, household_number, region_code, program, baseline_eligible, reform_eligible, baseline_amount,
    reform_amount, change (monthly), baseline_one_off, reform_one_off, one_off_change: the rows whose eligibility,
    monthly or one-off amount changed, largest annual change (12 x change + one_off_change) first."""
    households_in_scope: int
    timings: dict[str, float]
    frame_source: str
    """Where the household facts came from: ``memory``, ``kept`` (the kept frames in the database) or ``tables``."""
    scope: Scope | None = None
    """Where the totals were counted: the region asked, narrowed to the caller's scope."""
    reevaluated: list[str] = field(default_factory=list)
    """Programs whose rules read a changed parameter, decided again; the others keep the baseline's rows."""
    baseline_decisions: pl.DataFrame = field(repr=False, default=None)  # type: ignore[assignment]
    """Every (household, program) decision of the baseline (``ProvincePolicy.decide``'s rows), and of the reform."""
    reform_decisions: pl.DataFrame = field(repr=False, default=None)  # type: ignore[assignment]
    _frame: pl.DataFrame = field(repr=False, default=None)  # type: ignore[assignment]
    _baseline_policy: ProvincePolicy | None = field(repr=False, default=None)
    _reform_policy: ProvincePolicy | None = field(repr=False, default=None)

    @property
    def cached(self) -> bool:
        """The household facts came from this process's memory."""
        return self.frame_source == "memory"

    @property
    def monthly_cost_change(self) -> float:
        return round(self.reform.monthly_cost - self.baseline.monthly_cost, 2)

    @property
    def one_off_cost_change(self) -> float:
        return round(self.reform.one_off_cost - self.baseline.one_off_cost, 2)

    @property
    def annual_cost_change(self) -> float:
        """12 x the monthly difference: the contract's ``annualCostChange`` (one-off grants apart, in
        :attr:`one_off_cost_change`; both together in :attr:`year_cost_change`)."""
        return round(12 * self.monthly_cost_change, 2)

    @property
    def year_cost_change(self) -> float:
        """The difference of a year's cost: 12 x the monthly difference + the one-off difference."""
        return round(self.reform.year_cost - self.baseline.year_cost, 2)

    def reasons(self, page: pl.DataFrame) -> dict[tuple[int, str], list[str]]:
        """The reasons that changed, for the (household_id, program) rows of ``page`` only: ``now: ...`` lines
        the reform gives and the baseline does not, ``was: ...`` lines the baseline gave."""
        if page.height == 0 or self._baseline_policy is None or self._reform_policy is None:
            return {}
        pairs = page.select("household_id", "program")
        before = self._baseline_policy.explain(self._frame, self.on, pairs)
        after = self._reform_policy.explain(self._frame, self.on, pairs)
        was = {(r["household_id"], r["program"]): r["reasons"] for r in before.iter_rows(named=True)}
        result = {}
        for r in after.iter_rows(named=True):
            key = (r["household_id"], r["program"])
            old = was.get(key, [])
            old_set, new_set = set(old), set(r["reasons"])
            result[key] = ([f"now: {line}" for line in r["reasons"] if line not in old_set]
                           + [f"was: {line}" for line in old if line not in new_set])
        return result

    def summary(self) -> dict:
        """What a saved scenario keeps and the audit entry records (JSON)."""
        return {
            "provinceCode": self.province_code, "regionCode": self.region_code, "asOf": self.on.isoformat(),
            "householdsInScope": self.households_in_scope,
            "baseline": self.baseline.as_dict(), "reform": self.reform.as_dict(),
            "monthlyCostChange": self.monthly_cost_change, "oneOffCostChange": self.one_off_cost_change,
            "annualCostChange": self.annual_cost_change, "yearCostChange": self.year_cost_change,
            "newlyEligible": dataclasses.asdict(self.newly_eligible),
            "noLongerEligible": dataclasses.asdict(self.no_longer_eligible),
            "winnersLosers": dict(self.bands),
            "affected": self.affected.height,
            "byProgram": {k: {"baseline": b.as_dict(), "reform": r.as_dict()} for k, b, r in self.by_program},
            "byRegion": {c: {"baseline": b.as_dict(), "reform": r.as_dict()} for c, b, r in self.by_region},
        }


def child_width(region_code: str) -> int:
    """The code width of the child divisions of ``region_code`` (44 -> 4, 4401 -> 6, 440106 -> 9, ...)."""
    widths = [w for w in LEVEL_WIDTHS if w > len(region_code)]
    return widths[0] if widths else len(region_code)


def _totals(eligible: pl.Series, persons: pl.Series, amount: pl.Series, one_off: pl.Series) -> Totals:
    return Totals(int(eligible.sum()), int(persons.filter(eligible).sum() or 0), round(float(amount.sum() or 0.0), 2),
                  round(float(one_off.sum() or 0.0), 2))


@dataclass
class _BaselineSide:
    """What :func:`compare` computes from the baseline alone, for one set of programs decided again: kept with
    the baseline decisions, so that a planner trying values of the same key pays only for the reform's side."""
    members: pl.Series
    by_program: dict[str, Totals]
    unchanged_any: pl.Series
    unchanged_aid: pl.Series
    unchanged_once: pl.Series
    any_b: pl.Series
    aid_b: pl.Series
    once_b: pl.Series


def _baseline_side(frame: pl.DataFrame, base: pl.DataFrame, programs: list[str], changed: set[str]) -> _BaselineSide:
    h = frame.height
    members = frame["member_count"].cast(pl.Int64)
    e_b, a_b, o_b = (base["eligible"].fill_null(False), base["monthly_amount"].fill_null(0.0),
                     base["one_off_amount"].fill_null(0.0))
    no = pl.select(pl.repeat(False, h, dtype=pl.Boolean)).to_series()
    zero = pl.select(pl.repeat(0.0, h, dtype=pl.Float64)).to_series()
    by_program: dict[str, Totals] = {}
    unchanged = [no, zero, zero]
    # the programs decided again are summed last, in the same order on both sides: a household whose rows did not
    # change gets exactly the same sums under the reform (no rounding residue counted as a change)
    for i, key in enumerate(programs):
        sb, mb, ob = e_b.slice(i * h, h), a_b.slice(i * h, h), o_b.slice(i * h, h)
        by_program[key] = _totals(sb, members, mb, ob)
        if key not in changed:
            unchanged = [unchanged[0] | sb, unchanged[1] + mb, unchanged[2] + ob]
    moved = list(unchanged)
    for i, key in enumerate(programs):
        if key in changed:
            moved = [moved[0] | e_b.slice(i * h, h), moved[1] + a_b.slice(i * h, h), moved[2] + o_b.slice(i * h, h)]
    return _BaselineSide(members, by_program, unchanged[0], unchanged[1], unchanged[2], moved[0], moved[1], moved[2])


def compare(frame: pl.DataFrame, base: pl.DataFrame, reform: pl.DataFrame, programs: list[str], region_code: str,
            changed: list[str] | None = None, memo: dict | None = None) -> dict[str, Any]:
    """Totals, bands, regions and affected rows from two decisions over the same frame.

    ``decide`` lays its rows out as one block per program, each in the frame's household order, so both sides
    line up row by row without a join; household totals are sums over the blocks. ``changed``: the programs
    whose rows may differ (default: all): only their blocks are read on the reform's side, the others are the
    baseline's. ``memo``: where the baseline's side is kept between calls over the same frame and baseline.
    """
    h = frame.height
    if base.height != reform.height or base.height != h * len(programs) or any(
            side["program"][i * h] != key for side in (base, reform) for i, key in enumerate(programs) if h):
        raise RuntimeError("baseline and reform decisions do not line up")
    redo = set(programs if changed is None else changed)
    memo_key = tuple(sorted(redo))
    side = memo.get(memo_key) if memo is not None else None
    if side is None:
        side = _baseline_side(frame, base, programs, redo)
        if memo is not None:
            if len(memo) >= 8:
                memo.clear()
            memo[memo_key] = side
    members = side.members
    e_b, e_r = base["eligible"].fill_null(False), reform["eligible"].fill_null(False)
    a_r, o_r = reform["monthly_amount"].fill_null(0.0), reform["one_off_amount"].fill_null(0.0)
    by_program = []
    any_b, aid_b, once_b = side.any_b, side.aid_b, side.once_b
    any_r, aid_r, once_r = side.unchanged_any, side.unchanged_aid, side.unchanged_once
    new_any = lost_any = pl.select(pl.repeat(False, h, dtype=pl.Boolean)).to_series()
    for i, key in enumerate(programs):
        if key not in redo:
            by_program.append((key, side.by_program[key], side.by_program[key]))
            continue
        sb, sr = e_b.slice(i * h, h), e_r.slice(i * h, h)
        mr, or_ = a_r.slice(i * h, h), o_r.slice(i * h, h)
        by_program.append((key, side.by_program[key], _totals(sr, members, mr, or_)))
        any_r, aid_r, once_r = any_r | sr, aid_r + mr, once_r + or_
        new_any, lost_any = new_any | (sr & ~sb), lost_any | (sb & ~sr)
    households = frame.select("household_id", "region_code", "monthly_income").with_columns(
        members=members, any_b=any_b, any_r=any_r, aid_b=aid_b, aid_r=aid_r, once_b=once_b, once_r=once_r)
    n = pl.max_horizontal(pl.col("members"), 1)
    before = (pl.col("monthly_income") + pl.col("aid_b")) / n
    delta = (pl.col("aid_r") - pl.col("aid_b")) / n
    pct = pl.when(delta.abs() < EPSILON).then(0.0).when(before <= 0).then(
        pl.when(delta > 0).then(float("inf")).otherwise(float("-inf"))).otherwise(delta / before * 100)
    band = (pl.when(pct > 5).then(pl.lit(BANDS[0])).when(pct > 0).then(pl.lit(BANDS[1]))
            .when(pct == 0).then(pl.lit(BANDS[2])).when(pct >= -5).then(pl.lit(BANDS[3])).otherwise(pl.lit(BANDS[4])))
    counted = households.select(band=band).group_by("band").len()
    bands = {b: 0 for b in BANDS}
    bands.update(dict(zip(counted["band"].to_list(), counted["len"].to_list())))
    width = child_width(region_code)
    regions = (households.group_by(child=pl.col("region_code").str.slice(0, width)).agg(
        hb=pl.col("any_b").sum(), pb=pl.col("members").filter(pl.col("any_b")).sum(), cb=pl.col("aid_b").sum(),
        ob=pl.col("once_b").sum(),
        hr=pl.col("any_r").sum(), pr=pl.col("members").filter(pl.col("any_r")).sum(), cr=pl.col("aid_r").sum(),
        or_=pl.col("once_r").sum())
        .sort("child"))
    by_region = [(r["child"], Totals(int(r["hb"]), int(r["pb"] or 0), round(float(r["cb"]), 2), round(float(r["ob"]), 2)),
                  Totals(int(r["hr"]), int(r["pr"] or 0), round(float(r["cr"]), 2), round(float(r["or_"]), 2)))
                 for r in regions.iter_rows(named=True)]
    # The affected rows: only the blocks of programs that may differ are laid side by side (a province's blocks
    # of unchanged programs would be millions of rows built to be filtered away).
    wanted = [i for i, key in enumerate(programs) if changed is None or key in set(changed)]

    def side_by_side(b: pl.DataFrame, r: pl.DataFrame) -> pl.DataFrame:
        return b.select("household_id", "household_number", "region_code", "program").with_columns(
            baseline_eligible=b["eligible"].fill_null(False), reform_eligible=r["eligible"].fill_null(False),
            baseline_amount=b["monthly_amount"], reform_amount=r["monthly_amount"],
            change=(r["monthly_amount"].fill_null(0.0) - b["monthly_amount"].fill_null(0.0)).round(2),
            baseline_one_off=b["one_off_amount"], reform_one_off=r["one_off_amount"],
            one_off_change=(r["one_off_amount"].fill_null(0.0) - b["one_off_amount"].fill_null(0.0)).round(2))

    differs = ((pl.col("baseline_eligible") != pl.col("reform_eligible"))
               | (pl.col("change").abs() >= EPSILON) | (pl.col("one_off_change").abs() >= EPSILON))
    blocks = [side_by_side(base.slice(i * h, h), reform.slice(i * h, h)).filter(differs) for i in wanted]
    rows = pl.concat(blocks) if blocks else side_by_side(base.clear(), reform.clear())
    affected = (rows.with_columns(size=(12 * pl.col("change") + pl.col("one_off_change")).abs())
                .sort(["size", "household_id", "program"], descending=[True, False, False]).drop("size"))
    return {
        "baseline": _totals(any_b, members, aid_b, once_b), "reform": _totals(any_r, members, aid_r, once_r),
        "newly_eligible": Count(int(new_any.sum()), int(members.filter(new_any).sum() or 0)),
        "no_longer_eligible": Count(int(lost_any.sum()), int(members.filter(lost_any).sum() or 0)),
        "by_program": by_program, "by_region": by_region, "bands": bands, "affected": affected,
    }


# --- the simulator -------------------------------------------------------------------------------------------


class Simulator:
    """Runs simulations for a deployment: one policy engine, one frame cache (process-wide in the server)."""

    def __init__(self, engine: PolicyEngine, cache: FrameCache | None = None, max_changes: int = MAX_CHANGES):
        self.engine = engine
        self.cache = cache or FrameCache()
        self.max_changes = max_changes
        self._reads: dict[tuple[int, dt.date], dict[str, frozenset[str] | None]] = {}

    def dependencies(self, policy: ProvincePolicy, on: dt.date, frame: pl.DataFrame) -> dict[str, frozenset[str] | None]:
        """The parameter keys each program's rules, formula and the income deductions read on ``on`` (None: it
        may read any), found by building the program's decision once over no rows with parameters that record
        every key looked up. A program whose keys include no changed key gives the same rows under the reform:
        its rules are functions of the values they read, so the same values build the same expressions."""
        key = (id(policy), on)
        if key not in self._reads:
            if len(self._reads) > 64:
                self._reads.clear()
            self._reads[key] = read_keys(policy, on, frame.head(0))
        return self._reads[key]

    def scope_for(self, actor: Actor, province_code: str, region_code: str | None) -> tuple[str, Scope]:
        """(region, scope): the region asked (default the province) narrowed to where the actor may run
        simulations and read households. A region outside the province or the caller's scope is an error."""
        if province_code not in self.engine.province_codes():
            raise SimulationError("provinceCode", f"province {province_code!r} is not configured")
        region = region_code or province_code
        if not is_level_code(region) or not region.startswith(province_code):
            raise SimulationError("regionCode", f"region {region!r} is not a region code of province {province_code}")
        scope = intersect(actor.scope(ACTION, OBJECT), actor.scope("read", "household")).narrow(region)
        if scope.empty:
            raise SimulationError("regionCode", f"region {region} is outside the regions where you may run "
                                                f"simulations", code="FORBIDDEN")
        return region, scope

    async def run(self, session: AsyncSession, actor: Actor, province_code: str, changes: list[ParameterChange],
                  region_code: str | None = None, on: dt.date | None = None, *, record: bool = True,
                  audit_detail: dict | None = None) -> SimulationResult:
        """Check the input, evaluate baseline and reform over the scope, audit the run (in ``session``; the
        caller commits). Raises :class:`SimulationError` before anything runs."""
        timings: dict[str, float] = {}
        started = time.perf_counter()
        on = on or first_of_next_month()
        region, scope = self.scope_for(actor, province_code, region_code)
        baseline = self.engine.province(province_code)
        params = reform_params(baseline.params, changes, on, self.max_changes)
        reform = reform_policy(baseline, params)
        timings["reform"] = time.perf_counter() - started
        t = time.perf_counter()
        entry, source = await self.cache.get(session, self.engine, on, region, scope)
        frame = entry.frame
        timings["frame"] = time.perf_counter() - t
        t = time.perf_counter()
        programs = list(baseline.programs)
        held = entry.baseline.get(province_code)
        if held is None or held[0] is not baseline:  # the baseline decisions of this frame, kept with it
            held = entry.baseline[province_code] = (baseline, await asyncio.to_thread(baseline.decide, frame, on))
            entry.compared.clear()
        base = held[1]
        timings["baseline"] = time.perf_counter() - t
        t = time.perf_counter()
        changed = {c.key for c in changes}
        reads = self.dependencies(baseline, on, frame)
        redo = [k for k in programs if reads[k] is None or reads[k] & changed]  # type: ignore[operator]
        decided = await asyncio.to_thread(_reform_decisions, reform, frame, on, base, programs, redo)
        timings["reform_decide"] = time.perf_counter() - t
        t = time.perf_counter()
        parts = await asyncio.to_thread(compare, frame, base, decided, programs, region, redo, entry.compared)
        timings["compare"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - started
        result = SimulationResult(
            province_code=province_code, region_code=region, on=on, changes=list(changes),
            households_in_scope=frame.height, timings=timings, frame_source=source, baseline_decisions=base,
            reform_decisions=decided, scope=scope, reevaluated=redo, _frame=frame,
            _baseline_policy=baseline, _reform_policy=reform, **parts)
        if record:
            record_run(session, actor, result, audit_detail)
        return result


    def scenario_region(self, actor: Actor, province_code: str, region_code: str | None) -> str:
        """The region a scenario saved by ``actor`` covers: the region asked, or the one region of the actor's
        scope (where they may save scenarios, run simulations and read households) inside it."""
        region, scope = self.scope_for(actor, province_code, region_code)
        saving = intersect(actor.scope(SAVE_ACTION, OBJECT), scope).narrow(region)
        if saving.empty:
            raise SimulationError("regionCode", f"region {region} is outside the regions where you may save "
                                                f"scenarios", code="FORBIDDEN")
        if saving.unrestricted or saving.prefixes == (region,):
            return region
        if len(saving.prefixes) == 1:
            return saving.prefixes[0]
        raise SimulationError("regionCode", f"a scenario covers one region in your scope: name one of "
                                            f"{', '.join(saving.prefixes)}")

    async def save(self, session: AsyncSession, actor: Actor, name: str, province_code: str,
                   changes: list[ParameterChange], region_code: str | None = None, on: dt.date | None = None,
                   idempotency_key: str | None = None) -> SimulationScenario:
        """Run the simulation over the scenario's region and keep it as ``name`` (in ``session``; the caller
        commits): all or nothing. A repeated ``idempotency_key`` answers the first scenario."""
        name = check_name(name)
        region = self.scenario_region(actor, province_code, region_code)
        payload = {"name": name, "provinceCode": province_code, "regionCode": region_code,
                   "asOf": on.isoformat() if on else None, "changes": [c.as_dict() for c in changes]}
        # simulate first (reads only), then claim the key: the claim is the transaction's first write, so on
        # SQLite the write lock is not held while the simulation runs
        result = await self.run(session, actor, province_code, changes, region_code=region, on=on, record=False)
        claim = await idempotency.claim(session, actor, "saveSimulationScenario", idempotency_key, payload)
        if claim.replay is not None:
            replayed = await session.get(SimulationScenario, claim.replay["scenarioId"])
            if replayed is None:
                raise SimulationError("idempotencyKey", "the scenario this key saved no longer exists",
                                      code="NOT_FOUND")
            return replayed
        record_run(session, actor, result)
        scenario = await save_scenario(session, actor, name, result)
        await claim.remember({"scenarioId": scenario.id})
        return scenario

    async def rerun(self, session: AsyncSession, actor: Actor, scenario_id: int | None
                    ) -> tuple[SimulationScenario, SimulationResult, list[tuple[str, Any, Any, Any]]]:
        """Run a saved scenario again on today's data (its changes, region and date) and compare the result with
        the summary it gave when saved: (scenario, result, [(figure, saved, now, now - saved)])."""
        scenario = await get_scenario(session, scenario_scope(actor), scenario_id)
        if scenario is None:
            raise SimulationError("id", "simulation scenario not found", code="NOT_FOUND")
        result = await self.run(session, actor, scenario.province_code, scenario_changes(scenario),
                                region_code=scenario.region_code, on=scenario.as_of,
                                audit_detail={"scenarioId": scenario.id, "scenario": scenario.name})
        return scenario, result, compare_summaries(scenario.summary, result.summary())


def record_run(session: AsyncSession, actor: Actor, result: SimulationResult, detail: dict | None = None) -> None:
    """The audit entry of a simulation: the changes, the scope and the headline figures."""
    scope = result.scope or Scope.nothing()
    audit.record(session, actor, "simulate", OBJECT, None, result.region_code, {
        "changes": [c.as_dict() for c in result.changes], "asOf": result.on.isoformat(),
        "scope": list(scope.prefixes) or ["*"], "householdsInScope": result.households_in_scope,
        "baseline": result.baseline.as_dict(), "reform": result.reform.as_dict(),
        "annualCostChange": result.annual_cost_change, **(detail or {})})


class _RecordingParameters(Mapping):
    """The parameters of a province, noting every key read (iterating them counts as reading all)."""

    def __init__(self, data: Mapping[str, Parameter]):
        self.data = data
        self.read: set[str] = set()
        self.everything = False

    def __getitem__(self, key: str) -> Parameter:
        self.read.add(key)
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return self.data.get(key, default)

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return key in self.data

    def __iter__(self):
        self.everything = True
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


def read_keys(policy: ProvincePolicy, on: dt.date, empty: pl.DataFrame) -> dict[str, frozenset[str] | None]:
    """{program: keys read} through a shadow of ``policy`` over recording parameters (see
    :meth:`Simulator.dependencies`); keys read while building the policy itself count for every program."""
    recording = _RecordingParameters(policy.params.parameters)
    params = ProvinceParams(policy.code, recording, policy.params.specs)  # type: ignore[arg-type]
    shadow = ProvincePolicy(policy.plugins.pm, dataclasses.replace(policy.config, params=params))
    common, everything = set(recording.read), recording.everything
    result: dict[str, frozenset[str] | None] = {}
    for program in policy.programs:
        recording.read, recording.everything = set(), False
        shadow.decide(empty, on, [program])
        result[program] = None if everything or recording.everything else frozenset(recording.read | common)
    return result


def _reform_decisions(reform: ProvincePolicy, frame: pl.DataFrame, on: dt.date, base: pl.DataFrame,
                      programs: list[str], redo: list[str]) -> pl.DataFrame:
    """The reform's rows in the baseline's layout: programs in ``redo`` decided again, the others' blocks reused."""
    h = frame.height
    again = reform.decide(frame, on, redo) if redo else None
    position = {key: i for i, key in enumerate(redo)}
    blocks = [again.slice(position[key] * h, h) if key in position and again is not None else base.slice(i * h, h)
              for i, key in enumerate(programs)]
    return pl.concat(blocks) if blocks else base


def intersect(a: Scope, b: Scope) -> Scope:
    """The regions in both scopes."""
    if a.unrestricted:
        return b
    if b.unrestricted:
        return a
    return Scope.of(p for prefix in a.prefixes for p in b.narrow(prefix).prefixes)


# --- saved scenarios -----------------------------------------------------------------------------------------
#
# A scenario (政策模拟方案) covers one region, all of it in the scope of whoever saved it: a city planner who asks
# for the province keeps a scenario of their city. Who may run simulations in a region (``run``) and read its
# households reads the scenarios of that region and runs them again; the scope predicate is applied here, in
# the query, never by a resolver. Saving is an action of its own (``save_scenario``), audited.


def scenario_scope(actor: Actor) -> Scope:
    """Where the actor reads saved scenarios and runs them again: where they run simulations and read households."""
    return intersect(actor.scope(ACTION, OBJECT), actor.scope("read", "household"))


def check_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise SimulationError("name", "a scenario name has 1 to 100 characters")
    return name


async def save_scenario(session: AsyncSession, actor: Actor, name: str, result: SimulationResult) -> SimulationScenario:
    """Keep a simulation under ``name``: its changes, who, when and its summary.

    Names are unique per region (the scenario's region, which lies in the caller's scope): a planner learns
    nothing from a name taken in a region they cannot read, and two cities may each keep a "+8%".
    """
    name = check_name(name)
    existing = await session.scalar(select(SimulationScenario.id).where(
        SimulationScenario.province_code == result.province_code, SimulationScenario.region_code == result.region_code,
        SimulationScenario.name == name))
    if existing is not None:
        raise SimulationError("name", f"region {result.region_code} already has a scenario named {name!r}",
                              code="CONFLICT")
    scenario = SimulationScenario(name=name, province_code=result.province_code, region_code=result.region_code,
                                  as_of=result.on, changes=[c.as_dict() for c in result.changes],
                                  created_by=actor.username, summary=result.summary())
    session.add(scenario)
    await session.flush()
    audit.record(session, actor, "save_scenario", OBJECT, scenario.id, result.region_code,
                 {"name": name, "changes": scenario.changes, "asOf": result.on.isoformat()})
    return scenario


async def load_scenario(session: AsyncSession, province_code: str, name: str,
                        region_code: str | None = None) -> SimulationScenario:
    """A scenario by name (and region, where several regions keep that name), for system jobs (the CLI): no
    scope applies."""
    query = select(SimulationScenario).where(SimulationScenario.province_code == province_code,
                                             SimulationScenario.name == name)
    if region_code is not None:
        query = query.where(SimulationScenario.region_code == region_code)
    found = list((await session.scalars(query.order_by(SimulationScenario.region_code))).all())
    if not found:
        where = f"region {region_code}" if region_code is not None else f"province {province_code}"
        raise SimulationError("name", f"{where} has no scenario named {name!r}", code="NOT_FOUND")
    if len(found) > 1:
        raise SimulationError("--region", f"province {province_code} keeps a scenario named {name!r} for regions "
                                          f"{', '.join(s.region_code for s in found)}: give --region")
    return found[0]


def _scenarios(scope: Scope, province_code: str | None):
    statement = select(SimulationScenario).where(scope.predicate(SimulationScenario.region_code))
    if province_code:
        statement = statement.where(SimulationScenario.province_code == province_code)
    return statement


async def list_scenarios(session: AsyncSession, scope: Scope, province_code: str | None = None,
                         offset: int = 0, limit: int | None = None) -> list[SimulationScenario]:
    """The scenarios whose region lies in ``scope``, by province and name."""
    statement = _scenarios(scope, province_code).order_by(
        SimulationScenario.province_code, SimulationScenario.name, SimulationScenario.id).offset(offset)
    if limit is not None:
        statement = statement.limit(limit)
    return list((await session.scalars(statement)).all())


async def count_scenarios(session: AsyncSession, scope: Scope, province_code: str | None = None) -> int:
    return int(await session.scalar(select(func.count()).select_from(_scenarios(scope, province_code).subquery())) or 0)


async def get_scenario(session: AsyncSession, scope: Scope, scenario_id: int | None) -> SimulationScenario | None:
    """The scenario if it exists and lies in ``scope``; None otherwise (the same answer for both)."""
    if scenario_id is None:
        return None
    return await session.scalar(_scenarios(scope, None).where(SimulationScenario.id == scenario_id))


def scenario_changes(scenario: SimulationScenario) -> list[ParameterChange]:
    return [ParameterChange(c["key"], c["value"], c.get("region")) for c in scenario.changes]


SUMMARY_FIGURES = ("households", "persons", "monthlyCost", "oneOffCost", "yearCost")


def compare_summaries(first: dict, second: dict) -> list[tuple[str, Any, Any, Any]]:
    """(figure, first, second, second - first) for the headline figures of two summaries. A figure a summary
    does not hold (one saved before one-off grants were costed) is None, and so is its difference."""

    def row(name: str, a: Any, b: Any) -> tuple[str, Any, Any, Any]:
        return name, a, b, None if a is None or b is None else round(b - a, 2)

    rows = []
    for side in ("baseline", "reform"):
        for figure in SUMMARY_FIGURES:
            rows.append(row(f"{side} {figure}", first[side].get(figure), second[side].get(figure)))
    for figure in ("monthlyCostChange", "oneOffCostChange", "annualCostChange", "yearCostChange"):
        rows.append(row(figure, first.get(figure), second.get(figure)))
    for figure in ("newlyEligible", "noLongerEligible"):
        a, b = first[figure]["households"], second[figure]["households"]
        rows.append((f"{figure} households", a, b, b - a))
    for band in BANDS:
        a, b = first["winnersLosers"].get(band, 0), second["winnersLosers"].get(band, 0)
        rows.append((f"band {band}", a, b, b - a))
    return rows


async def region_names(session: AsyncSession, codes: list[str]) -> dict[str, tuple[str, str]]:
    """{code: (name, level)} of regions (public reference data)."""
    if not codes:
        return {}
    rows = await session.execute(select(Region.code, Region.name, Region.level).where(Region.code.in_(codes)))
    return {code: (name, level) for code, name, level in rows}
