"""GraphQL for programs, eligibility and the enrolment workflow: the contract's Programs, Eligibility,
EligibilityGaps (政策找人), ApplyForAid and DecideEnrollment, plus transferEnrollment.

Reads go through the policy engine (``services["policy"]``), which evaluates rules set-at-a-time over polars
frames built with a handful of SQL statements; the caller's read scope limits every household considered.
EligibilityGaps reads the decisions kept current by :mod:`aidgraph.core.policy.decisions` (equal to a full
recomputation after any write) instead of recomputing the region per request.
Mutations run the services of :mod:`aidgraph.core.workflow.enrollment` in the request's write transaction: all or nothing, with
DomainErrors returned as the payload's ``errors``.
"""

from __future__ import annotations

import datetime as dt
from enum import Enum

import strawberry
from graphql import GraphQLError
from aidgraph.schema.context import Info

from aidgraph.core.graph import privacy
from aidgraph.core.policy import decisions
from aidgraph.core.policy.engine import PolicyEngine
from aidgraph.core.storage.errors import not_found
from aidgraph.schema.errors import UserError, run_mutation
from aidgraph.schema.relay import Connection, Edge, PageInfo, db_id, decode_cursor, encode_cursor, page_size
from aidgraph.schema.types import Enrollment, Household, Program
from aidgraph.core.workflow.enrollment import apply_for_aid
from aidgraph.core.workflow.enrollment import decide_enrollment
from aidgraph.core.workflow.enrollment import transfer_enrollment


def policy_engine(info: Info) -> PolicyEngine:
    """The request's policy engine (``info.context.policy``), for resolvers that pass it on to a service."""
    return info.context.policy


@strawberry.enum(description="A step of the enrolment state machine.")
class EnrollmentAction(Enum):
    START_VERIFICATION = "START_VERIFICATION"
    REVIEW = "REVIEW"
    APPROVE = "APPROVE"
    REJECT = "REJECT"
    ACTIVATE = "ACTIVATE"
    END = "END"
    WITHDRAW = "WITHDRAW"
    DISPUTE = "DISPUTE"
    DEMOCRATIC_REVIEW = "DEMOCRATIC_REVIEW"


@strawberry.type(description="One program's eligibility for a household, with reasons naming the numbers used.")
class EligibilityResult:
    eligible: bool | None = strawberry.field(
        description="Null without the income right: eligibility is decided on the household's income.")
    reasons: list[str]
    monthly_amount: float | None
    one_off_amount: float | None = strawberry.field(description="A one-off grant (temporary aid), yuan.")
    enrolled: bool = strawberry.field(description="The household has an open enrolment in the program.")
    program: Program


@strawberry.type(description="A household eligible for a program but not enrolled in it (政策找人).")
class EligibilityGap:
    _household_id: strawberry.Private[int]
    program: Program
    reasons: list[str]
    monthly_amount: float | None

    @strawberry.field
    async def household(self, info: Info) -> Household | None:
        row = await info.context.households.load(self._household_id)
        return Household.from_row(row) if row else None


@strawberry.input
class ApplyForAidInput:
    household_id: strawberry.ID
    program_key: str
    person_id: strawberry.ID | None = None
    idempotency_key: str | None = None


@strawberry.input
class DecideEnrollmentInput:
    enrollment_id: strawberry.ID
    action: EnrollmentAction
    note: str | None = None


@strawberry.input(description="Move a near-dibao or expenditure-hardship enrolment to dibao or tekun (GD-2022).")
class TransferEnrollmentInput:
    enrollment_id: strawberry.ID
    to_program: str
    note: str | None = None


@strawberry.type
class EnrollmentPayload:
    enrollment: Enrollment | None
    errors: list[UserError]


def _program(info: Info, key: str, province_code: str) -> Program:
    p = info.context.programs.get(key, province_code)
    return Program(key=p.key, name=p.name, domain=p.domain, province_code=province_code)


async def _payload(info: Info, enrollment_id: int | None, errors: list[UserError]) -> EnrollmentPayload:
    if enrollment_id is None:
        return EnrollmentPayload(enrollment=None, errors=errors)
    row = await info.context.enrollments_by_id.load(enrollment_id)
    return EnrollmentPayload(enrollment=Enrollment.from_row(row) if row else None, errors=errors)


def _id(value: str | None, type_name: str, field: str) -> int:
    key = db_id(value, type_name)
    if key is None:
        raise not_found(type_name.lower(), field)
    return key


@strawberry.type
class Query:
    @strawberry.field(description="Programs enabled for a province.")
    def programs(self, info: Info, province_code: str) -> list[Program]:
        engine = info.context.policy
        if province_code not in engine.province_codes():
            return []
        return [Program(key=p.key, name=p.name, domain=p.domain, province_code=province_code)
                for p in engine.province(province_code).programs.values()]

    @strawberry.field(description="Every enabled program's eligibility for a household (null when not found).")
    async def eligibility(self, info: Info, household_id: strawberry.ID) -> list[EligibilityResult] | None:
        key = db_id(household_id, "Household")
        row = await info.context.households.load(key) if key is not None else None
        if row is None:
            return None
        async with info.context.db() as session:
            result = await info.context.policy.evaluate(session, household_ids=[row.id], scope=info.context.scope())
        province = row.region_code[:2]
        # Reasons and amounts are computed from the household's income: withheld without the income right.
        shown = privacy.eligibility_visible(info.context, row)
        return [EligibilityResult(eligible=r["eligible"] if shown else None, reasons=r["reasons"] if shown else [],
                                  monthly_amount=r["monthly_amount"] if shown else None,
                                  one_off_amount=r["one_off_amount"] if shown else None, enrolled=r["enrolled"],
                                  program=_program(info, r["program"], province))
                for r in result.iter_rows(named=True)]

    @strawberry.field(description="政策找人: households under a region eligible for a program but not enrolled, "
                                  "paged by household then program.")
    async def eligibility_gaps(self, info: Info, region_code: str, program: str | None = None,
                               first: int | None = None, after: str | None = None) -> Connection[EligibilityGap]:
        n = page_size(first)
        position = decode_cursor(after, 2)
        scope = info.context.scope().narrow(region_code)
        if scope.empty:
            return Connection(total_count=0, edges=[], page_info=PageInfo(has_next_page=False, end_cursor=None))
        if position is not None and not position[0].isdigit():
            raise GraphQLError("invalid cursor", extensions={"code": "VALIDATION", "field": "after"})
        after_position = (int(position[0]), position[1]) if position is not None else None
        total, page = await decisions.gaps(info.context.session_factory, info.context.policy, region_code=region_code,
                                           scope=scope, program=program, on=dt.date.today(), limit=n + 1,
                                           after=after_position)
        has_next = page.height > n
        province = region_code[:2]
        shown = privacy.income_covers(info.context, scope)  # reasons and amounts name incomes
        edges = [Edge(cursor=encode_cursor(r["household_id"], r["program"]),
                      node=EligibilityGap(_household_id=r["household_id"], program=_program(info, r["program"], province),
                                          reasons=r["reasons"] if shown else [],
                                          monthly_amount=r["monthly_amount"] if shown else None))
                 for r in page.head(n).iter_rows(named=True)]
        if shown:
            for r in page.head(n).iter_rows(named=True):
                privacy.note_disclosure(info.context, "household", r["household_id"], region_code, "eligibilityReasons")
        return Connection(total_count=total, edges=edges,
                          page_info=PageInfo(has_next_page=has_next, end_cursor=edges[-1].cursor if edges else None))


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Apply for a program for a household (or one member).")
    async def apply_for_aid(self, info: Info, input: ApplyForAidInput) -> EnrollmentPayload:
        async def work(session):
            person_id = _id(input.person_id, "Person", "personId") if input.person_id else None
            enrollment = await apply_for_aid(session, info.context.actor, info.context.policy,
                                             household_id=_id(input.household_id, "Household", "householdId"),
                                             program_key=input.program_key, person_id=person_id,
                                             idempotency_key=input.idempotency_key)
            return enrollment.id

        enrollment_id, errors = await run_mutation(info, work)
        return await _payload(info, enrollment_id, errors)

    @strawberry.mutation(description="Take one step of an enrolment's state machine.")
    async def decide_enrollment(self, info: Info, input: DecideEnrollmentInput) -> EnrollmentPayload:
        async def work(session):
            enrollment = await decide_enrollment(session, info.context.actor, info.context.policy,
                                                 enrollment_id=_id(input.enrollment_id, "Enrollment", "enrollmentId"),
                                                 action=input.action.value, note=input.note)
            return enrollment.id

        enrollment_id, errors = await run_mutation(info, work)
        return await _payload(info, enrollment_id, errors)

    @strawberry.mutation(description="Transfer near-dibao or expenditure-hardship to dibao or tekun without "
                                     "re-applying (GD-2022).")
    async def transfer_enrollment(self, info: Info, input: TransferEnrollmentInput) -> EnrollmentPayload:
        async def work(session):
            enrollment = await transfer_enrollment(session, info.context.actor, info.context.policy,
                                                   enrollment_id=_id(input.enrollment_id, "Enrollment", "enrollmentId"),
                                                   to_program=input.to_program, note=input.note)
            return enrollment.id

        enrollment_id, errors = await run_mutation(info, work)
        return await _payload(info, enrollment_id, errors)

