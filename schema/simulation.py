"""GraphQL for policy simulation (政策模拟): the contract's ``SimulatePolicy``.

``simulatePolicy(input:)`` runs :class:`aidgraph.core.policy.simulation.Simulator` (one per server, so the
household frames it keeps in memory serve every request) for the caller: totals are over the region asked
narrowed to where the caller may run simulations (Casbin ``simulation``/``run``) and read households. Bad input
(an unknown key, a wrong value, a date before the parameter's history, a region outside the province or the
caller's scope, too many changes) is a GraphQL error whose ``extensions`` carry ``code``, ``field`` and ``key``;
nothing runs. Each run writes one audit entry; it never writes enrolments or parameters.

Saved scenarios (政策模拟方案): ``saveSimulationScenario`` runs the simulation and keeps it (name, changes, who,
when, the summary) under the Casbin action ``simulation``/``save_scenario`` (province and city planners),
audited, all or nothing, with the same errors as ``simulatePolicy`` in its payload. ``simulationScenarios`` and
``simulationScenario`` read the scenarios whose region lies where the caller runs simulations and reads
households (the predicate is in :mod:`aidgraph.core.policy.simulation`'s queries); one outside behaves as one that
does not exist. ``rerunSimulationScenario`` runs one again on today's data and gives each headline figure saved,
now and the difference; ``compareSimulationScenarios`` sets two saved summaries side by side.
"""

from __future__ import annotations

import datetime as dt
from enum import Enum

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.scalars import JSON

from aidgraph.core.graph import privacy
from aidgraph.core.policy.simulation import (
    ParameterChange,
    SimulationError,
    SimulationResult,
    Simulator,
    Totals,
    compare_summaries,
    count_scenarios,
    get_scenario,
    list_scenarios,
    scenario_scope,
)
from aidgraph.core.storage import models
from aidgraph.core.storage.errors import DomainError, ErrorCode
from aidgraph.schema.context import Info
from aidgraph.schema.errors import UserError, run_mutation
from aidgraph.schema.programs import policy_engine
from aidgraph.schema.relay import (
    Connection,
    Edge,
    PageInfo,
    db_id,
    decode_cursor,
    encode_cursor,
    page_size,
    to_global_id,
)
from aidgraph.schema.types import Household, Program, Region, load_region, program_of


def simulator(info: Info) -> Simulator:
    services = info.context.services
    if "simulation" not in services:
        services["simulation"] = Simulator(policy_engine(info))
    return services["simulation"]


@strawberry.enum(description="Winners and losers: change of per-capita income plus aid, in percent.")
class SimulationBand(Enum):
    GAIN_MORE_THAN_5 = "GAIN_MORE_THAN_5"
    GAIN_UP_TO_5 = "GAIN_UP_TO_5"
    NO_CHANGE = "NO_CHANGE"
    LOSS_UP_TO_5 = "LOSS_UP_TO_5"
    LOSS_MORE_THAN_5 = "LOSS_MORE_THAN_5"


@strawberry.input(description="A parameter key as in province_configs/ (dibao.rural_standard), a value of the type "
                              "it declares, optionally limited to one region's override.")
class ParameterChangeInput:
    key: str
    value: JSON
    region_code: str | None = None


@strawberry.input(description="What if these parameters took these values from asOf (default: the first day of "
                              "next month)? Totals over regionCode (default: the province) and the caller's scope.")
class PolicySimulationInput:
    province_code: str
    changes: list[ParameterChangeInput]
    region_code: str | None = None
    as_of: dt.date | None = None


@strawberry.type(description="Households and persons eligible and what they cost (yuan): the monthly amounts, the "
                              "one-off grants (temporary aid, one-off subsidies) and a year, 12 x monthly + one-off.")
class SimulationTotals:
    households: int
    persons: int
    monthly_cost: float
    one_off_cost: float | None = strawberry.field(description="The one-off grants of the households eligible on "
                                                              "asOf (null only in a scenario saved before one-off "
                                                              "grants were costed).")
    year_cost: float | None = strawberry.field(description="A year's cost: 12 x monthlyCost + oneOffCost (null only "
                                                           "in a scenario saved before one-off grants were costed).")

    @classmethod
    def of(cls, totals: Totals) -> SimulationTotals:
        return cls(households=totals.households, persons=totals.persons, monthly_cost=totals.monthly_cost,
                   one_off_cost=totals.one_off_cost, year_cost=totals.year_cost)

    @classmethod
    def of_summary(cls, totals: dict) -> SimulationTotals:
        return cls(households=totals["households"], persons=totals["persons"], monthly_cost=totals["monthlyCost"],
                   one_off_cost=totals.get("oneOffCost"), year_cost=totals.get("yearCost"))


@strawberry.type
class SimulationCount:
    households: int
    persons: int


@strawberry.type
class ProgramSimulation:
    program: Program
    baseline: SimulationTotals
    reform: SimulationTotals


@strawberry.type
class RegionSimulation:
    _code: strawberry.Private[str]
    baseline: SimulationTotals
    reform: SimulationTotals

    @strawberry.field
    async def region(self, info: Info) -> Region:
        return await load_region(info, self._code)  # type: ignore[return-value]


@strawberry.type
class WinnersLosers:
    band: SimulationBand
    households: int


@strawberry.type(description="A household whose eligibility or monthly amount for a program changes.")
class AffectedHousehold:
    _household_id: strawberry.Private[int]
    program: Program
    baseline_eligible: bool
    reform_eligible: bool
    baseline_amount: float | None = strawberry.field(description="The monthly amount (null for a one-off grant).")
    reform_amount: float | None
    baseline_one_off_amount: float | None = strawberry.field(description="The one-off grant, where the program pays "
                                                                         "once.")
    reform_one_off_amount: float | None
    reasons: list[str] = strawberry.field(description="The reasons that changed: 'now: ...' and 'was: ...'.")

    @strawberry.field
    async def household(self, info: Info) -> Household | None:
        row = await info.context.households.load(self._household_id)
        return Household.from_row(row) if row else None


@strawberry.type(description="The result of a policy simulation: baseline against reform.")
class PolicySimulation:
    _result: strawberry.Private[SimulationResult]
    as_of: dt.date
    households_in_scope: int
    baseline: SimulationTotals
    reform: SimulationTotals
    monthly_cost_change: float
    one_off_cost_change: float = strawberry.field(description="The difference of the one-off grants, yuan.")
    annual_cost_change: float = strawberry.field(description="12 x the monthly difference, yuan (one-off grants "
                                                             "apart: oneOffCostChange; both: yearCostChange).")
    year_cost_change: float = strawberry.field(description="The difference of a year's cost: 12 x the monthly "
                                                           "difference + the one-off difference, yuan.")
    newly_eligible: SimulationCount
    no_longer_eligible: SimulationCount
    by_program: list[ProgramSimulation]
    by_region: list[RegionSimulation] = strawberry.field(description="Totals by child division of the region.")
    winners_losers: list[WinnersLosers]

    @strawberry.field(description="Households whose amount or eligibility changes, largest change first.")
    def affected(self, info: Info, first: int | None = None, after: str | None = None
                 ) -> Connection[AffectedHousehold]:
        n = page_size(first)
        position = decode_cursor(after, 1)
        if position is not None and not position[0].isdigit():
            raise GraphQLError("invalid cursor", extensions={"code": "VALIDATION", "field": "after"})
        start = int(position[0]) + 1 if position is not None else 0
        result = self._result
        page = result.affected.slice(start, n)
        shown = result.scope is not None and privacy.income_covers(info.context, result.scope)
        reasons = result.reasons(page) if shown else {}
        province = result.province_code
        edges = []
        for i, r in enumerate(page.iter_rows(named=True)):
            key = (r["household_id"], r["program"])
            if shown:
                privacy.note_disclosure(info.context, "household", r["household_id"], r["region_code"],
                                        "simulationAmounts")
            edges.append(Edge(cursor=encode_cursor(start + i), node=AffectedHousehold(
                _household_id=r["household_id"], program=program_of(info, r["program"], province),
                baseline_eligible=r["baseline_eligible"], reform_eligible=r["reform_eligible"],
                baseline_amount=r["baseline_amount"] if shown else None,
                reform_amount=r["reform_amount"] if shown else None,
                baseline_one_off_amount=r["baseline_one_off"] if shown else None,
                reform_one_off_amount=r["reform_one_off"] if shown else None, reasons=reasons.get(key, []))))
        return Connection(total_count=result.affected.height, edges=edges, page_info=PageInfo(
            has_next_page=start + n < result.affected.height, end_cursor=edges[-1].cursor if edges else None))

    @classmethod
    def of(cls, info: Info, result: SimulationResult) -> PolicySimulation:
        return cls(
            _result=result, as_of=result.on, households_in_scope=result.households_in_scope,
            baseline=SimulationTotals.of(result.baseline), reform=SimulationTotals.of(result.reform),
            monthly_cost_change=result.monthly_cost_change, one_off_cost_change=result.one_off_cost_change,
            annual_cost_change=result.annual_cost_change, year_cost_change=result.year_cost_change,
            newly_eligible=SimulationCount(households=result.newly_eligible.households,
                                           persons=result.newly_eligible.persons),
            no_longer_eligible=SimulationCount(households=result.no_longer_eligible.households,
                                               persons=result.no_longer_eligible.persons),
            by_program=[ProgramSimulation(program=program_of(info, key, result.province_code),
                                          baseline=SimulationTotals.of(b), reform=SimulationTotals.of(r))
                        for key, b, r in result.by_program],
            by_region=[RegionSimulation(_code=code, baseline=SimulationTotals.of(b), reform=SimulationTotals.of(r))
                       for code, b, r in result.by_region],
            winners_losers=[WinnersLosers(band=SimulationBand(band), households=n) for band, n in result.bands.items()],
        )


def _error(e: SimulationError) -> GraphQLError:
    return GraphQLError(e.message, extensions={"code": e.code, "field": e.field, "key": e.key})


# --- saved scenarios -----------------------------------------------------------------------------------------


@strawberry.input(description="Keep a simulation under a name (unique in the province): the simulation is run "
                              "over regionCode (default: the province) narrowed to the caller's scope, which must "
                              "be one region, and its summary is kept with the changes, who and when.")
class SaveSimulationScenarioInput:
    name: str
    province_code: str
    changes: list[ParameterChangeInput]
    region_code: str | None = None
    as_of: dt.date | None = None
    idempotency_key: str | None = None


@strawberry.type(description="A parameter change of a saved scenario.")
class ScenarioChange:
    key: str
    value: JSON
    region_code: str | None


@strawberry.type(description="The headline figures a simulation gave when its scenario was saved.")
class SimulationSummary:
    _province: strawberry.Private[str]
    _data: strawberry.Private[dict]

    @strawberry.field
    def households_in_scope(self) -> int:
        return int(self._data["householdsInScope"])

    @strawberry.field
    def baseline(self) -> SimulationTotals:
        return SimulationTotals.of_summary(self._data["baseline"])

    @strawberry.field
    def reform(self) -> SimulationTotals:
        return SimulationTotals.of_summary(self._data["reform"])

    @strawberry.field
    def monthly_cost_change(self) -> float:
        d = self._data
        return d.get("monthlyCostChange", round(d["reform"]["monthlyCost"] - d["baseline"]["monthlyCost"], 2))

    @strawberry.field(description="Null in a scenario saved before one-off grants were costed.")
    def one_off_cost_change(self) -> float | None:
        return self._data.get("oneOffCostChange")

    @strawberry.field(description="12 x the monthly difference, yuan.")
    def annual_cost_change(self) -> float:
        d = self._data
        return round(12 * d.get("monthlyCostChange", d["reform"]["monthlyCost"] - d["baseline"]["monthlyCost"]), 2)

    @strawberry.field(description="12 x the monthly difference + the one-off difference (null in a scenario saved "
                                  "before one-off grants were costed).")
    def year_cost_change(self) -> float | None:
        return self._data.get("yearCostChange")

    @strawberry.field
    def newly_eligible(self) -> SimulationCount:
        return SimulationCount(**self._data["newlyEligible"])

    @strawberry.field
    def no_longer_eligible(self) -> SimulationCount:
        return SimulationCount(**self._data["noLongerEligible"])

    @strawberry.field
    def winners_losers(self) -> list[WinnersLosers]:
        return [WinnersLosers(band=SimulationBand(b), households=n) for b, n in self._data["winnersLosers"].items()]

    @strawberry.field(description="How many household-program rows changed.")
    def affected_count(self) -> int:
        return int(self._data["affected"])

    @strawberry.field
    def by_program(self, info: Info) -> list[ProgramSimulation]:
        return [ProgramSimulation(program=program_of(info, key, self._province),
                                  baseline=SimulationTotals.of_summary(v["baseline"]),
                                  reform=SimulationTotals.of_summary(v["reform"]))
                for key, v in self._data["byProgram"].items()]

    @strawberry.field
    def by_region(self) -> list[RegionSimulation]:
        return [RegionSimulation(_code=code, baseline=SimulationTotals.of_summary(v["baseline"]),
                                 reform=SimulationTotals.of_summary(v["reform"]))
                for code, v in self._data["byRegion"].items()]


@strawberry.type(description="政策模拟方案: a saved simulation, to run again and compare.")
class SimulationScenario:
    _row: strawberry.Private[models.SimulationScenario]
    id: strawberry.ID
    name: str
    province_code: str
    as_of: dt.date
    created_by: str
    created_at: dt.datetime

    @classmethod
    def from_row(cls, row: models.SimulationScenario) -> SimulationScenario:
        return cls(_row=row, id=to_global_id("SimulationScenario", row.id), name=row.name,
                   province_code=row.province_code, as_of=row.as_of, created_by=row.created_by,
                   created_at=row.created_at)

    @strawberry.field(description="The region the scenario covers.")
    async def region(self, info: Info) -> Region:
        return await load_region(info, self._row.region_code)  # type: ignore[return-value]

    @strawberry.field
    def changes(self) -> list[ScenarioChange]:
        return [ScenarioChange(key=c["key"], value=c["value"], region_code=c.get("region")) for c in self._row.changes]

    @strawberry.field
    def summary(self) -> SimulationSummary:
        return SimulationSummary(_province=self._row.province_code, _data=self._row.summary)


@strawberry.type
class SaveSimulationScenarioPayload:
    scenario: SimulationScenario | None
    errors: list[UserError]


@strawberry.type(description="One headline figure of two summaries: the first (saved), the second (now or the "
                              "other scenario), and second - first (null where a summary does not hold it).")
class ScenarioDelta:
    figure: str
    first: float | None
    second: float | None
    difference: float | None


def _deltas(rows: list[tuple[str, Any, Any, Any]]) -> list[ScenarioDelta]:
    return [ScenarioDelta(figure=f, first=a, second=b, difference=d) for f, a, b, d in rows]


@strawberry.type(description="A saved scenario run again on today's data, against the summary it gave when saved.")
class ScenarioRerun:
    scenario: SimulationScenario
    simulation: PolicySimulation
    deltas: list[ScenarioDelta] = strawberry.field(description="first: saved; second: now.")


@strawberry.type(description="Two saved scenarios side by side.")
class ScenarioComparison:
    scenario: SimulationScenario
    other: SimulationScenario
    deltas: list[ScenarioDelta] = strawberry.field(description="first: scenario; second: other.")


def _scenario_id(value: str) -> int | None:
    """The database id in a SimulationScenario global id; None for anything else (then: not found)."""
    return db_id(value, "SimulationScenario")


async def _visible(info: Info, session, value: str) -> models.SimulationScenario | None:
    return await get_scenario(session, scenario_scope(info.context.actor), _scenario_id(value))


@strawberry.type
class Mutation:
    @strawberry.mutation(description="政策模拟方案: run a simulation and keep it under a name (province and city "
                                     "planners; audited).")
    async def save_simulation_scenario(self, info: Info, input: SaveSimulationScenarioInput
                                       ) -> SaveSimulationScenarioPayload:
        changes = [ParameterChange(c.key, c.value, c.region_code) for c in input.changes]

        async def work(session):
            try:
                scenario = await simulator(info).save(session, info.context.actor, input.name, input.province_code,
                                                      changes, region_code=input.region_code, on=input.as_of,
                                                      idempotency_key=input.idempotency_key)
            except SimulationError as e:
                raise DomainError.single(ErrorCode(e.code), e.message, e.field) from None
            return scenario

        scenario, errors = await run_mutation(info, work)
        return SaveSimulationScenarioPayload(scenario=SimulationScenario.from_row(scenario) if scenario else None,
                                             errors=errors)


@strawberry.type
class Query:
    @strawberry.field(description="Saved simulation scenarios of the regions where the caller runs simulations, by "
                                  "province and name.")
    async def simulation_scenarios(self, info: Info, province_code: str | None = None, first: int | None = None,
                                   after: str | None = None) -> Connection[SimulationScenario]:
        n = page_size(first)
        position = decode_cursor(after, 1)
        if position is not None and not position[0].isdigit():
            raise GraphQLError("invalid cursor", extensions={"code": "VALIDATION", "field": "after"})
        start = int(position[0]) + 1 if position is not None else 0
        scope = scenario_scope(info.context.actor)
        async with info.context.db() as session:
            total = await count_scenarios(session, scope, province_code)
            rows = await list_scenarios(session, scope, province_code, offset=start, limit=n)
        edges = [Edge(cursor=encode_cursor(start + i), node=SimulationScenario.from_row(r)) for i, r in enumerate(rows)]
        return Connection(total_count=total, edges=edges, page_info=PageInfo(
            has_next_page=start + len(rows) < total, end_cursor=edges[-1].cursor if edges else None))

    @strawberry.field(description="A saved scenario; null when none has this id in the caller's scope.")
    async def simulation_scenario(self, info: Info, id: strawberry.ID) -> SimulationScenario | None:
        async with info.context.db() as session:
            row = await _visible(info, session, id)
        return SimulationScenario.from_row(row) if row else None

    @strawberry.field(description="Run a saved scenario again on today's data (its changes, region and date) and "
                                  "compare with the summary it gave when saved. Audited like simulatePolicy.")
    async def rerun_simulation_scenario(self, info: Info, id: strawberry.ID) -> ScenarioRerun:
        async with info.context.db() as session:
            try:
                scenario, result, rows = await simulator(info).rerun(session, info.context.actor, _scenario_id(id))
                await session.commit()  # the audit entry of the run
            except SimulationError as e:
                await session.rollback()
                raise _error(e) from None
        return ScenarioRerun(scenario=SimulationScenario.from_row(scenario), simulation=PolicySimulation.of(info, result),
                             deltas=_deltas(rows))

    @strawberry.field(description="Two saved scenarios' headline figures side by side (nothing is run).")
    async def compare_simulation_scenarios(self, info: Info, id: strawberry.ID, other_id: strawberry.ID
                                           ) -> ScenarioComparison:
        async with info.context.db() as session:
            first = await _visible(info, session, id)
            second = await _visible(info, session, other_id)
        for row, field in ((first, "id"), (second, "otherId")):
            if row is None:
                raise GraphQLError("simulation scenario not found", extensions={"code": "NOT_FOUND", "field": field})
        assert first is not None and second is not None
        return ScenarioComparison(scenario=SimulationScenario.from_row(first), other=SimulationScenario.from_row(second),
                                  deltas=_deltas(compare_summaries(first.summary, second.summary)))

    @strawberry.field(description="政策模拟: what a change of parameters would cost and whom it reaches (baseline "
                                  "against reform over every household in the region and the caller's scope).")
    async def simulate_policy(self, info: Info, input: PolicySimulationInput) -> PolicySimulation:
        changes = [ParameterChange(c.key, c.value, c.region_code) for c in input.changes]
        async with info.context.db() as session:
            try:
                result = await simulator(info).run(session, info.context.actor, input.province_code, changes,
                                                   region_code=input.region_code, on=input.as_of)
                await session.commit()  # the audit entry of the run
            except SimulationError as e:
                await session.rollback()
                raise _error(e) from None
        return PolicySimulation.of(info, result)
