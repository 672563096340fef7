"""Core operations on the shared graph: who am I, regions, household lists and details, node lookups,
persons by ID number, and the household mutations (register, add member, record an economic item).
"""

from __future__ import annotations

import datetime as dt

import strawberry
from graphql import GraphQLError
from aidgraph.schema.context import Info

from aidgraph.core.graph import households as household_service
from aidgraph.core.graph import idnumber
from aidgraph.core.graph import reads
from aidgraph.schema.errors import UserError, run_mutation
from aidgraph.schema.relay import Connection, Edge, Node, PageInfo, db_id, decode_cursor, encode_cursor, from_global_id, page_size
from aidgraph.schema.types import (
    Alert,
    EconomicItemKind,
    EmploymentStatus,
    Enrollment,
    Household,
    LabourCapacity,
    LowIncomeCategory,
    Person,
    Region,
    RelationToHead,
    WarningLevel,
    load_region,
)


@strawberry.type(description="The caller.")
class Me:
    username: str
    display_name: str
    roles: list[str]
    _scope_codes: strawberry.Private[list[str]]

    @strawberry.field(description="Regions where the caller holds a role.")
    async def scopes(self, info: Info) -> list[Region]:
        regions = await info.context.regions.load_many(self._scope_codes)
        return [Region.from_row(r) for r in regions if r is not None]


@strawberry.input
class HouseholdFilter:
    category: LowIncomeCategory | None = None
    warning_level: WarningLevel | None = None
    program_key: str | None = None
    name_contains: str | None = None


@strawberry.input
class MemberInput:
    name: str
    id_number: str
    relation_to_head: RelationToHead
    disability_level: int | None = None
    chronic_disease: bool | None = None
    employment_status: EmploymentStatus | None = None
    labour_capacity: LabourCapacity | None = None
    phone: str | None = None

    def to_data(self) -> household_service.MemberData:
        return household_service.MemberData(
            name=self.name, id_number=self.id_number, relation_to_head=self.relation_to_head.value,
            disability_level=self.disability_level, chronic_disease=self.chronic_disease,
            employment_status=self.employment_status.value if self.employment_status else None,
            labour_capacity=self.labour_capacity.value if self.labour_capacity else None, phone=self.phone)


@strawberry.input
class RegisterHouseholdInput:
    region_code: str
    members: list[MemberInput]
    address: str | None = None
    idempotency_key: str | None = None


@strawberry.input
class AddHouseholdMemberInput:
    household_id: strawberry.ID
    member: MemberInput
    idempotency_key: str | None = None


@strawberry.input
class EconomicItemInput:
    household_id: strawberry.ID
    kind: EconomicItemKind
    source: str
    amount: float
    period_start: dt.date
    period_end: dt.date
    person_id: strawberry.ID | None = None


@strawberry.type
class HouseholdPayload:
    household: Household | None
    errors: list[UserError]


async def _household_payload(info: Info, household_id: int | None, errors: list[UserError]) -> HouseholdPayload:
    if household_id is None:
        return HouseholdPayload(household=None, errors=errors)
    row = await info.context.households.load(household_id)
    return HouseholdPayload(household=Household.from_row(row) if row else None, errors=errors)


NODE_TYPES: dict[str, tuple[str, type[Household] | type[Person] | type[Enrollment] | type[Alert]]] = {
    "Household": ("households", Household),
    "Person": ("persons", Person),
    "Enrollment": ("enrollments_by_id", Enrollment),
    "Alert": ("alerts_by_id", Alert),
}


@strawberry.type
class Query:
    @strawberry.field(description="The caller and the regions of their roles.")
    def me(self, info: Info) -> Me:
        actor = info.context.actor
        codes = sorted({g.region_code for g in actor.grants})
        return Me(username=actor.username, display_name=actor.display_name, roles=actor.roles, _scope_codes=codes)

    @strawberry.field(description="A region by NBS code, when it overlaps the caller's scope.")
    async def region(self, info: Info, code: str) -> Region | None:
        if not reads.region_visible(info.context.scope(), code):
            return None
        return await load_region(info, code)

    @strawberry.field(description="Households living under a region, in the caller's scope, by id.")
    async def households(self, info: Info, region_code: str, filter: HouseholdFilter | None = None,
                         first: int | None = None, after: str | None = None) -> Connection[Household]:
        n = page_size(first)
        position = decode_cursor(after, 1)
        if position and not (position[0].isascii() and position[0].isdigit() and len(position[0]) <= 19):
            raise GraphQLError("invalid cursor", extensions={"code": "VALIDATION", "field": "after"})
        after_id = int(position[0]) if position else None
        f = filter or HouseholdFilter()
        clauses = reads.household_filter_clauses(
            f.category.value if f.category else None, f.warning_level.value if f.warning_level else None,
            f.program_key, f.name_contains, info.context.programs.category_programs())
        async with info.context.db() as session:
            rows, has_next, total = await reads.household_page(session, info.context.scope(), region_code, clauses,
                                                               n, after_id)
        for row in rows:  # prime the loader: the page's households are already in hand
            info.context.households.prime(row.id, row)
        edges = [Edge(cursor=encode_cursor(r.id), node=Household.from_row(r)) for r in rows]
        return Connection(total_count=total, edges=edges,
                          page_info=PageInfo(has_next_page=has_next, end_cursor=edges[-1].cursor if edges else None))

    @strawberry.field
    async def household(self, info: Info, id: strawberry.ID) -> Household | None:
        key = db_id(id, "Household")
        row = await info.context.households.load(key) if key is not None else None
        return Household.from_row(row) if row else None

    @strawberry.field(description="Any object by global id; null when unknown or outside the caller's scope.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        parsed = from_global_id(id)
        if parsed is None or parsed[0] not in NODE_TYPES:
            return None
        loader_name, cls = NODE_TYPES[parsed[0]]
        row = await getattr(info.context, loader_name).load(parsed[1])
        return cls.from_row(row) if row else None

    @strawberry.field(description="A person by full resident ID number (lower-case x accepted).")
    async def person_by_id_number(self, info: Info, id_number: str) -> Person | None:
        try:
            number = idnumber.parse(id_number).number
        except idnumber.InvalidIdNumber:
            return None
        async with info.context.db() as session:
            row = await reads.person_by_id_number(session, info.context.scope("person"), number)
        return Person.from_row(row) if row else None


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Register a household with its members; exactly one member is SELF.")
    async def register_household(self, info: Info, input: RegisterHouseholdInput) -> HouseholdPayload:
        async def work(session):
            return await household_service.register_household(
                session, info.context.actor, region_code=input.region_code, address=input.address,
                members=[m.to_data() for m in input.members], idempotency_key=input.idempotency_key)

        household_id, errors = await run_mutation(info, work)
        return await _household_payload(info, household_id, errors)

    @strawberry.mutation
    async def add_household_member(self, info: Info, input: AddHouseholdMemberInput) -> HouseholdPayload:
        async def work(session):
            return await household_service.add_household_member(
                session, info.context.actor, household_id=db_id(input.household_id, "Household"),
                member=input.member.to_data(), idempotency_key=input.idempotency_key)

        household_id, errors = await run_mutation(info, work)
        return await _household_payload(info, household_id, errors)

    @strawberry.mutation(description="Record an income, expenditure or asset item (家庭经济状况核对).")
    async def record_economic_item(self, info: Info, input: EconomicItemInput) -> HouseholdPayload:
        async def work(session):
            person_id = None
            if input.person_id is not None:
                person_id = db_id(input.person_id, "Person")
                if person_id is None:
                    person_id = -1  # a malformed id is reported like an unknown person
            return await household_service.record_economic_item(session, info.context.actor, household_service.EconomicItemData(
                household_id=db_id(input.household_id, "Household"), person_id=person_id, kind=input.kind.value,
                source=input.source, amount=input.amount, period_start=input.period_start,
                period_end=input.period_end))

        household_id, errors = await run_mutation(info, work)
        return await _household_payload(info, household_id, errors)
