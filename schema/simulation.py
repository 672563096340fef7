"""GraphQL for policy simulation (政策模拟): the contract's ``SimulatePolicy``.

``simulatePolicy(input:)`` runs :class:`aidgraph.core.policy.simulation.Simulator` (one per server, so the
household frames it keeps in memory serve every request) for the caller: totals are over the region asked
narrowed to where the caller may run simulations (Casbin ``simulation``/``run``) and read households. Bad input
(an unknown key, a wrong value, a date before the parameter's history, a region outside the province or the
caller's scope, too many changes) is a GraphQL error whose ``extensions`` carry ``code``, ``field`` and ``key``;
nothing runs. Each run writes one audit entry; it never writes enrolments or parameters.
"""

from __future__ import annotations

import datetime as dt
from enum import Enum

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
)
from aidgraph.schema.context import Info
from aidgraph.schema.programs import policy_engine
from aidgraph.schema.relay import (
    Connection,
    Edge,
    PageInfo,
    decode_cursor,
    encode_cursor,
    page_size,
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
    one_off_cost: float = strawberry.field(description="The one-off grants of the households eligible on asOf.")
    annual_cost: float = strawberry.field(description="12 x monthlyCost + oneOffCost.")

    @classmethod
    def of(cls, totals: Totals) -> SimulationTotals:
        return cls(households=totals.households, persons=totals.persons, monthly_cost=totals.monthly_cost,
                   one_off_cost=totals.one_off_cost, annual_cost=totals.annual_cost)


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
    annual_cost_change: float = strawberry.field(description="The difference of the annual costs, 12 x the monthly "
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
            annual_cost_change=result.annual_cost_change,
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


@strawberry.type
class Query:
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
                raise GraphQLError(e.message, extensions={"code": e.code, "field": e.field, "key": e.key}) from None
        return PolicySimulation.of(info, result)
