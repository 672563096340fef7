"""GraphQL for casework (issue 13): the contract's ReferCase, Referrals, AnswerReferral and ReportLead, plus leads,
visits (巡访), township reserve funds (备用金) and temporary-aid approval in stages.

Lists read through the caller's scope for the object (``referral``, ``lead``: one predicate per request, in
SQL); mutations run the services of :mod:`aidgraph.core.workflow.casework`, :mod:`~aidgraph.core.workflow.leads`
and :mod:`~aidgraph.core.workflow.temporary_aid` in the request's write transaction, all or nothing, with
DomainErrors answered as the payload's ``errors``.
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
from decimal import Decimal

import strawberry
from graphql import GraphQLError
from sqlalchemy import func, select
from strawberry.types import Info

from aidgraph.core.graph import audit, privacy
from aidgraph.core.storage import models, rls
from aidgraph.core.storage.errors import DomainError, not_found
from aidgraph.core.workflow import (
    casework,
    charity,
    leads,
    services,
    statistics,
    temporary_aid,
    transparency,
    verification,
)
from aidgraph.core.workflow.defaults import LEAD_OBJECT, RESERVE_FUND_OBJECT
from aidgraph.schema.errors import UserError, run_mutation
from aidgraph.schema.programs import policy_engine
from aidgraph.schema.relay import (
    Connection,
    Edge,
    Node,
    PageInfo,
    db_id,
    decode_cursor,
    encode_cursor,
    page_size,
    to_global_id,
)
from aidgraph.schema.types import Alert, Enrollment, Household, Region, load_region


@strawberry.enum(description="转办 status: SENT, ACCEPTED by the department, DONE, or RETURNED.")
class ReferralStatus(enum.Enum):
    SENT = "SENT"
    ACCEPTED = "ACCEPTED"
    DONE = "DONE"
    RETURNED = "RETURNED"


@strawberry.enum(description="A department's answer to a referral.")
class ReferralAction(enum.Enum):
    ACCEPT = "ACCEPT"
    COMPLETE = "COMPLETE"
    RETURN = "RETURN"


@strawberry.enum(description="How a person in difficulty came to notice (主动发现).")
class LeadChannel(enum.Enum):
    VILLAGE_ASSISTANT = "VILLAGE_ASSISTANT"
    VISIT = "VISIT"
    HOTLINE_12345 = "HOTLINE_12345"
    HOTLINE_12349 = "HOTLINE_12349"
    NEIGHBOUR = "NEIGHBOUR"
    SELF = "SELF"
    OTHER = "OTHER"


@strawberry.enum
class LeadStatus(enum.Enum):
    OPEN = "OPEN"
    ALERTED = "ALERTED"
    CLOSED = "CLOSED"


async def _household(info: Info, household_id: int | None) -> Household | None:
    if household_id is None:
        return None
    row = await info.context.households.load(household_id)
    return Household.from_row(row) if row else None


@strawberry.type(description="A referral (分办转办) to a receiving department, with its due date (限时办理).")
class Referral(Node):
    _row: strawberry.Private[models.Referral]

    @classmethod
    def from_row(cls, row: models.Referral) -> "Referral":
        return cls(id=to_global_id("Referral", row.id), _row=row)

    @strawberry.field
    def status(self) -> ReferralStatus:
        return ReferralStatus(self._row.status)

    @strawberry.field(description="Key from the province's configured departments.")
    def department(self) -> str:
        return self._row.department

    @strawberry.field(description="Free text: ID and phone numbers masked unless the caller may see them.")
    def reason(self, info: Info) -> str:
        return privacy.free_text(info.context, self._row.region_code, self._row.reason) or ""

    @strawberry.field(description="What the applicant was told to bring, once (一次性告知).")
    def documents(self) -> list[str]:
        return list(self._row.documents or [])

    @strawberry.field
    def due_date(self) -> dt.date:
        return self._row.due_date

    @strawberry.field(description="Not DONE or RETURNED after its due date.")
    def overdue(self) -> bool:
        return casework.is_overdue(self._row)

    @strawberry.field
    def sent_at(self) -> dt.datetime:
        return self._row.sent_at

    @strawberry.field
    def sent_by(self) -> str:
        return self._row.sent_by

    @strawberry.field(description="CASEWORKER, ALERT (a REFER disposition), ENROLLMENT (automatic) or APPLICATION.")
    def source(self) -> str:
        return self._row.source

    @strawberry.field
    def answered_at(self) -> dt.datetime | None:
        return self._row.answered_at

    @strawberry.field
    def answer(self, info: Info) -> str | None:
        return privacy.free_text(info.context, self._row.region_code, self._row.answer)

    @strawberry.field(description="认定结果共享: the economic verification shared with the department (null without "
                                  "the income right).")
    async def shared_verification(self, info: Info) -> "EconomicVerificationResult | None":
        if self._row.shared_verification_id is None or not privacy.may_read_field_group(
                info.context, self._row.region_code, "income"):
            return None
        row = await _load(info, models.EconomicVerification, self._row.shared_verification_id)
        return EconomicVerificationResult.from_row(row) if row else None

    @strawberry.field(description="The accepting office's region (异地受理: may lie outside the household's).")
    async def from_region(self, info: Info) -> Region | None:
        return await load_region(info, self._row.from_region_code) if self._row.from_region_code else None

    @strawberry.field
    async def household(self, info: Info) -> Household | None:
        return await _household(info, self._row.household_id)


@strawberry.type(description="A reported lead (主动发现+报告), routed to a township.")
class Lead(Node):
    _row: strawberry.Private[models.Lead]

    @classmethod
    def from_row(cls, row: models.Lead) -> "Lead":
        return cls(id=to_global_id("Lead", row.id), _row=row)

    @strawberry.field
    def status(self) -> LeadStatus:
        return LeadStatus(self._row.status)

    @strawberry.field
    def channel(self) -> LeadChannel:
        return LeadChannel(self._row.channel)

    @strawberry.field(description="What was seen (free text, ID and phone numbers masked as for every note).")
    def description(self, info: Info) -> str:
        return privacy.free_text(info.context, self._row.region_code, self._row.description) or ""

    @strawberry.field
    def reported_by(self) -> str | None:
        return self._row.reported_by

    @strawberry.field
    def address(self) -> str | None:
        return self._row.address

    @strawberry.field
    def name(self) -> str | None:
        return self._row.name

    @strawberry.field(description="The ID number given, masked unless the caller may see it in full.")
    def id_number(self, info: Info) -> str | None:
        if self._row.id_number is None:
            return None

        class _P:  # privacy.id_number reads a person-like row
            id_number = self._row.id_number
            region_code = self._row.region_code
            id = self._row.person_id
        return privacy.id_number(info.context, _P)

    @strawberry.field
    def created_at(self) -> dt.datetime:
        return self._row.created_at

    @strawberry.field
    def close_reason(self, info: Info) -> str | None:
        return privacy.free_text(info.context, self._row.region_code, self._row.close_reason)

    @strawberry.field
    async def township(self, info: Info) -> Region | None:
        return await load_region(info, self._row.township_code)

    @strawberry.field(description="The alert the lead raised or joined.")
    async def alert(self, info: Info) -> Alert | None:
        if self._row.alert_id is None:
            return None
        row = await info.context.alerts_by_id.load(self._row.alert_id)
        return Alert.from_row(row) if row else None

    @strawberry.field
    async def household(self, info: Info) -> Household | None:
        return await _household(info, self._row.household_id)


@strawberry.type(description="A visit (巡访) to a household, with its findings.")
class Visit(Node):
    visited_on: dt.date
    visitor: str
    needs_help: bool
    _lead_id: strawberry.Private[int | None]
    _findings: strawberry.Private[str]
    _region_code: strawberry.Private[str]

    @classmethod
    def from_row(cls, row: models.Visit) -> "Visit":
        return cls(id=to_global_id("Visit", row.id), visited_on=row.visited_on, visitor=row.visitor,
                   needs_help=row.needs_help, _lead_id=row.lead_id, _findings=row.findings,
                   _region_code=row.region_code)

    @strawberry.field(description="What the visit found (free text, ID and phone numbers masked).")
    def findings(self, info: Info) -> str:
        return privacy.free_text(info.context, self._region_code, self._findings) or ""

    @strawberry.field(description="The lead the visit reported, when it found the household needs help.")
    def lead_id(self) -> strawberry.ID | None:
        return to_global_id("Lead", self._lead_id) if self._lead_id else None


@strawberry.type(description="One line of a reserve fund's ledger.")
class ReserveFundEntry:
    kind: str
    amount: float
    balance_after: float
    at: dt.datetime
    actor: str
    note: str | None


@strawberry.type(description="A township's temporary-aid reserve fund (临时救助备用金).")
class ReserveFund:
    township_code: str
    balance: float
    entries: list[ReserveFundEntry]


@strawberry.type(description="A scheduled payment of a temporary-aid case: a stage or follow-up aid.")
class TemporaryAidStage(Node):
    kind: str
    due_date: dt.date
    amount: float
    status: str
    from_reserve: bool
    paid_at: dt.datetime | None


@strawberry.type(description="A temporary-aid case approved once (一次审批), with its stages (分阶段救助).")
class TemporaryAidCase:
    approved_total: float
    level: str = strawberry.field(description="TOWNSHIP, COUNTY or CASE_CONFERENCE (一事一议).")
    approved_by: str
    approved_on: dt.date
    basis: str | None
    stages: list[TemporaryAidStage]
    _enrollment_id: strawberry.Private[int]

    @strawberry.field
    def scheduled_total(self) -> float:
        return float(sum(Decimal(str(s.amount)) for s in self.stages))

    @strawberry.field
    def paid_total(self) -> float:
        return float(sum(Decimal(str(s.amount)) for s in self.stages if s.status == "PAID"))

    @strawberry.field
    async def enrollment(self, info: Info) -> Enrollment | None:
        row = await info.context.enrollments_by_id.load(self._enrollment_id)
        return Enrollment.from_row(row) if row else None


# --- inputs and payloads -------------------------------------------------------------------------------------


@strawberry.input
class ReferCaseInput:
    household_id: strawberry.ID
    department: str
    reason: str
    person_id: strawberry.ID | None = None
    documents: list[str] | None = None
    due_date: dt.date | None = None
    idempotency_key: str | None = None


@strawberry.input
class AnswerReferralInput:
    referral_id: strawberry.ID
    action: ReferralAction
    answer: str


@strawberry.input
class ReportLeadInput:
    region_code: str
    channel: LeadChannel
    description: str
    person_id: strawberry.ID | None = None
    id_number: str | None = None
    name: str | None = None
    address: str | None = None
    reported_by: str | None = None
    idempotency_key: str | None = None


@strawberry.input
class CloseLeadInput:
    lead_id: strawberry.ID
    reason: str


@strawberry.input
class RecordVisitInput:
    household_id: strawberry.ID
    findings: str
    visited_on: dt.date | None = None
    needs_help: bool = False
    idempotency_key: str | None = None


@strawberry.input
class ReplenishReserveFundInput:
    township_code: str
    amount: float
    note: str | None = None
    idempotency_key: str | None = None


@strawberry.input
class StageInput:
    due_date: dt.date
    amount: float


@strawberry.input
class ApproveTemporaryAidInput:
    enrollment_id: strawberry.ID
    total: float
    stages: list[StageInput] | None = None
    case_conference: bool = False
    basis: str | None = None
    pay_first_from_reserve: bool = False


@strawberry.input
class ScheduleFollowUpAidInput:
    enrollment_id: strawberry.ID
    stages: list[StageInput]
    note: str | None = None


@strawberry.input
class PayTemporaryAidStageInput:
    stage_id: strawberry.ID
    from_reserve: bool = False


@strawberry.type
class ReferralPayload:
    referral: Referral | None
    errors: list[UserError]


@strawberry.type
class LeadPayload:
    lead: Lead | None
    errors: list[UserError]


@strawberry.type
class VisitPayload:
    visit: Visit | None
    errors: list[UserError]


@strawberry.enum(description="重大变化报告: what changed (GD-2021 家庭人口、经济状况重大变化).")
class HouseholdChangeKind(enum.Enum):
    POPULATION = "POPULATION"
    ECONOMIC = "ECONOMIC"


@strawberry.input(description="A recipient household's report of a major change, recorded by the township.")
class ReportHouseholdChangeInput:
    household_id: strawberry.ID
    kind: HouseholdChangeKind
    description: str
    changed_on: dt.date | None = None
    idempotency_key: str | None = None


@strawberry.type
class HouseholdChangePayload:
    household: Household | None
    review_brought_forward: list[Enrollment] = strawberry.field(
        description="The ACTIVE enrolments now due for review (复核) on the day of the change.")
    errors: list[UserError]


@strawberry.type
class ReserveFundPayload:
    reserve_fund: ReserveFund | None
    errors: list[UserError]


@strawberry.type
class TemporaryAidPayload:
    case: TemporaryAidCase | None
    errors: list[UserError]


def _id(value: str | None, type_name: str, field: str) -> int | None:
    return db_id(value, type_name) if value else None


def _required_id(value: str | None, type_name: str, field: str) -> int:
    key = db_id(value, type_name)
    if key is None:
        raise not_found(type_name.lower(), field)
    return key


def _stages(stages: list[StageInput] | None) -> list[temporary_aid.StageInput]:
    return [temporary_aid.StageInput(s.due_date, s.amount) for s in (stages or [])]


async def _load(info: Info, model, key):
    async with info.context.db() as session:
        return await session.get(model, key)


async def _reserve_fund(session, township_code: str) -> ReserveFund | None:
    fund = await session.get(models.ReserveFund, township_code)
    if fund is None:
        return None
    entries = (await session.execute(select(models.ReserveFundEntry).where(
        models.ReserveFundEntry.township_code == township_code).order_by(models.ReserveFundEntry.id.desc())
        .limit(100))).scalars()
    return ReserveFund(township_code=fund.township_code, balance=float(fund.balance),
                       entries=[ReserveFundEntry(kind=e.kind, amount=float(e.amount), balance_after=float(e.balance_after),
                                                 at=e.at, actor=e.actor, note=e.note) for e in entries])


async def _case(session, enrollment_id: int) -> TemporaryAidCase | None:
    approval = await session.get(models.TemporaryAidApproval, enrollment_id)
    if approval is None:
        return None
    stages = (await session.execute(select(models.TemporaryAidStage).where(
        models.TemporaryAidStage.enrollment_id == enrollment_id).order_by(models.TemporaryAidStage.due_date,
                                                                          models.TemporaryAidStage.id))).scalars()
    return TemporaryAidCase(
        approved_total=float(approval.approved_total), level=approval.level, approved_by=approval.approved_by,
        approved_on=approval.approved_on, basis=approval.basis, _enrollment_id=enrollment_id,
        stages=[TemporaryAidStage(id=to_global_id("TemporaryAidStage", s.id), kind=s.kind, due_date=s.due_date,
                                  amount=float(s.amount), status=s.status, from_reserve=s.from_reserve,
                                  paid_at=s.paid_at) for s in stages])


def query_error(e: DomainError) -> GraphQLError:
    """A query's domain error as the GraphQL error every query answers with (code and field in extensions);
    mutations answer theirs in the payload instead."""
    first = e.errors[0]
    return GraphQLError(first.message, extensions={"code": first.code.value, "field": first.field})


def _page(rows: list, n: int, total: int, node) -> Connection:
    has_next = len(rows) > n
    rows = rows[:n]
    edges = [Edge(cursor=encode_cursor(r.id), node=node(r)) for r in rows]
    return Connection(total_count=total, edges=edges,
                      page_info=PageInfo(has_next_page=has_next, end_cursor=edges[-1].cursor if edges else None))


def _after(after: str | None) -> int | None:
    position = decode_cursor(after, 1)
    return int(position[0]) if position and position[0].isdigit() else None


@strawberry.type
class _CaseworkQuery:
    @strawberry.field(description="慈善帮扶 candidates under a county (or smaller region): households whose rigid "
                                  "expenditure exceeds their income plus the aid they receive, largest shortfall "
                                  "first. Needs the charity and income read rights over the whole region.")
    async def charity_candidates(self, info: Info, region_code: str, first: int | None = None,
                                 after: str | None = None) -> Connection[CharityCandidate]:
        n = page_size(first)
        position = decode_cursor(after, 1)
        if after is not None and (position is None or not position[0].isdigit()):
            raise GraphQLError("invalid cursor", extensions={"code": "VALIDATION", "field": "after"})
        start = int(position[0]) + 1 if position is not None else 0
        try:
            async with info.context.db() as session:
                found = await charity.charity_candidates(session, info.context.actor, region_code=region_code)
        except DomainError as e:
            raise query_error(e) from None
        page = found[start:start + n]
        for c in page:  # the shortfall names the household's income and expenditure
            privacy.note_disclosure(info.context, "household", c.household_id, c.region_code, "charityCandidate")
        edges = [Edge(cursor=encode_cursor(start + i), node=CharityCandidate.of(c)) for i, c in enumerate(page)]
        return Connection(total_count=len(found), edges=edges, page_info=PageInfo(
            has_next_page=start + n < len(found), end_cursor=edges[-1].cursor if edges else None))

    @strawberry.field(description="Referrals of households under a region in the caller's scope, newest first; "
                                  "overdueOnly: those still open after their due date (a county's watch list).")
    async def referrals(self, info: Info, region_code: str, department: str | None = None,
                        status: ReferralStatus | None = None, overdue_only: bool | None = None,
                        first: int | None = None, after: str | None = None) -> Connection[Referral]:
        n = page_size(first)
        after_id = _after(after)
        visible = casework.referral_visibility(info.context.actor, casework.all_departments(policy_engine(info)))
        where = casework.referral_filters(visible, region_code, department=department,
                                          status=status.value if status else None, overdue_only=bool(overdue_only))
        stmt = select(models.Referral).where(*where)
        if after_id is not None:
            stmt = stmt.where(models.Referral.id < after_id)
        async with info.context.db() as session:
            total = (await session.execute(select(func.count()).select_from(models.Referral).where(*where))).scalar_one()
            rows = list((await session.execute(stmt.order_by(models.Referral.id.desc()).limit(n + 1))).scalars())
        return _page(rows, n, total, Referral.from_row)

    @strawberry.field(description="Leads routed to townships under a region in the caller's scope, newest first.")
    async def leads(self, info: Info, region_code: str, status: LeadStatus | None = None, first: int | None = None,
                    after: str | None = None) -> Connection[Lead]:
        n = page_size(first)
        after_id = _after(after)
        scope = info.context.actor.scope("read", LEAD_OBJECT).narrow(region_code)
        where = [scope.predicate(models.Lead.region_code)]
        if status is not None:
            where.append(models.Lead.status == status.value)
        stmt = select(models.Lead).where(*where)
        if after_id is not None:
            stmt = stmt.where(models.Lead.id < after_id)
        async with info.context.db() as session:
            total = (await session.execute(select(func.count()).select_from(models.Lead).where(*where))).scalar_one()
            rows = list((await session.execute(stmt.order_by(models.Lead.id.desc()).limit(n + 1))).scalars())
        return _page(rows, n, total, Lead.from_row)

    @strawberry.field(description="Visits (巡访) to a household, newest first (empty when not found).")
    async def visits(self, info: Info, household_id: strawberry.ID) -> list[Visit]:
        key = db_id(household_id, "Household")
        if key is None or await info.context.households.load(key) is None:
            return []
        async with info.context.db() as session:
            rows = (await session.execute(select(models.Visit).where(
                models.Visit.household_id == key, info.context.scope("household").predicate(models.Visit.region_code))
                .order_by(models.Visit.visited_on.desc(), models.Visit.id.desc()).limit(100))).scalars()
            return [Visit.from_row(r) for r in rows]

    @strawberry.field(description="A township's reserve fund (备用金) and its latest ledger lines; null outside the "
                                  "caller's scope or when the township has none.")
    async def reserve_fund(self, info: Info, township_code: str) -> ReserveFund | None:
        if not info.context.actor.may("read", township_code, RESERVE_FUND_OBJECT):
            return None
        async with info.context.db() as session:
            return await _reserve_fund(session, township_code)

    @strawberry.field(description="The approval and stages of a temporary-aid case (null when none or not found).")
    async def temporary_aid(self, info: Info, enrollment_id: strawberry.ID) -> TemporaryAidCase | None:
        key = db_id(enrollment_id, "Enrollment")
        row = await info.context.enrollments_by_id.load(key) if key is not None else None
        if row is None or key is None:
            return None
        async with info.context.db() as session:
            return await _case(session, key)


@strawberry.type
class _CaseworkMutation:
    @strawberry.mutation(description="Refer a household (or member) to a department with a reason, the documents "
                                     "told once and a due date (default: the province's time limit).")
    async def refer_case(self, info: Info, input: ReferCaseInput) -> ReferralPayload:
        async def work(session):
            referral = await casework.refer_case(
                session, info.context.actor, policy_engine(info),
                household_id=_required_id(input.household_id, "Household", "householdId"),
                person_id=_required_id(input.person_id, "Person", "personId") if input.person_id else None,
                department=input.department, reason=input.reason, documents=input.documents,
                due_date=input.due_date, idempotency_key=input.idempotency_key)
            return referral.id

        referral_id, errors = await run_mutation(info, work)
        row = await _load(info, models.Referral, referral_id) if referral_id else None
        return ReferralPayload(referral=Referral.from_row(row) if row else None, errors=errors)

    @strawberry.mutation(description="A department's answer: ACCEPT, COMPLETE or RETURN.")
    async def answer_referral(self, info: Info, input: AnswerReferralInput) -> ReferralPayload:
        async def work(session):
            referral = await casework.answer_referral(
                session, info.context.actor, referral_id=db_id(input.referral_id, "Referral"),
                action=input.action.value, answer=input.answer)
            return referral.id

        referral_id, errors = await run_mutation(info, work)
        row = await _load(info, models.Referral, referral_id) if referral_id else None
        return ReferralPayload(referral=Referral.from_row(row) if row else None, errors=errors)

    @strawberry.mutation(description="Report a person in difficulty (a person or an address is required).")
    async def report_lead(self, info: Info, input: ReportLeadInput) -> LeadPayload:
        async def work(session):
            lead = await leads.report_lead(
                session, info.context.actor, policy_engine(info), region_code=input.region_code,
                channel=input.channel.value, description=input.description,
                person_id=_required_id(input.person_id, "Person", "personId") if input.person_id else None,
                id_number=input.id_number, name=input.name, address=input.address, reported_by=input.reported_by,
                idempotency_key=input.idempotency_key)
            return lead.id

        lead_id, errors = await run_mutation(info, work)
        row = await _load(info, models.Lead, lead_id) if lead_id else None
        return LeadPayload(lead=Lead.from_row(row) if row else None, errors=errors)

    @strawberry.mutation(description="Close an open lead with a reason.")
    async def close_lead(self, info: Info, input: CloseLeadInput) -> LeadPayload:
        async def work(session):
            lead = await leads.close_lead(session, info.context.actor, lead_id=db_id(input.lead_id, "Lead"),
                                          reason=input.reason)
            return lead.id

        lead_id, errors = await run_mutation(info, work)
        row = await _load(info, models.Lead, lead_id) if lead_id else None
        return LeadPayload(lead=Lead.from_row(row) if row else None, errors=errors)

    @strawberry.mutation(description="Record a visit (巡访) with its findings; needsHelp also reports a lead.")
    async def record_visit(self, info: Info, input: RecordVisitInput) -> VisitPayload:
        async def work(session):
            visit = await leads.record_visit(
                session, info.context.actor, policy_engine(info),
                household_id=_required_id(input.household_id, "Household", "householdId"), findings=input.findings,
                visited_on=input.visited_on, needs_help=input.needs_help, idempotency_key=input.idempotency_key)
            return visit.id

        visit_id, errors = await run_mutation(info, work)
        row = await _load(info, models.Visit, visit_id) if visit_id else None
        return VisitPayload(visit=Visit.from_row(row) if row else None, errors=errors)

    @strawberry.mutation(description="重大变化报告 (GD-2021): a recipient household reports a major change of its "
                                     "population or economic situation; its ACTIVE enrolments become due for review "
                                     "(复核) on the day of the change. Audited, on the aid chain.")
    async def report_household_change(self, info: Info, input: ReportHouseholdChangeInput) -> HouseholdChangePayload:
        async def work(session):
            household, due = await leads.report_household_change(
                session, info.context.actor, household_id=_required_id(input.household_id, "Household", "householdId"),
                kind=input.kind.value, description=input.description, changed_on=input.changed_on,
                idempotency_key=input.idempotency_key)
            return household.id, [e.id for e in due]

        result, errors = await run_mutation(info, work)
        if result is None:
            return HouseholdChangePayload(household=None, review_brought_forward=[], errors=errors)
        household_id, ids = result
        rows = [await info.context.enrollments_by_id.load(i) for i in ids]
        return HouseholdChangePayload(household=await _household(info, household_id), errors=errors,
                                      review_brought_forward=[Enrollment.from_row(r) for r in rows if r is not None])

    @strawberry.mutation(description="Replenish a township's temporary-aid reserve fund (备用金).")
    async def replenish_reserve_fund(self, info: Info, input: ReplenishReserveFundInput) -> ReserveFundPayload:
        async def work(session):
            fund = await temporary_aid.replenish_reserve(
                session, info.context.actor, township_code=input.township_code, amount=input.amount, note=input.note,
                idempotency_key=input.idempotency_key)
            return fund.township_code

        code, errors = await run_mutation(info, work)
        if code is None:
            return ReserveFundPayload(reserve_fund=None, errors=errors)
        async with info.context.db() as session:
            return ReserveFundPayload(reserve_fund=await _reserve_fund(session, code), errors=errors)

    @strawberry.mutation(description="一次审批、分阶段救助: approve a temporary-aid case once, with its stages; "
                                     "township up to the configured amount, county above, caseConference (一事一议) "
                                     "beyond the rules.")
    async def approve_temporary_aid(self, info: Info, input: ApproveTemporaryAidInput) -> TemporaryAidPayload:
        async def work(session):
            approval = await temporary_aid.approve_temporary_aid(
                session, info.context.actor, policy_engine(info),
                enrollment_id=db_id(input.enrollment_id, "Enrollment"), total=input.total,
                stages=_stages(input.stages), case_conference=input.case_conference, basis=input.basis,
                pay_first_from_reserve=input.pay_first_from_reserve)
            return approval.enrollment_id

        return await _case_payload(info, *(await run_mutation(info, work)))

    @strawberry.mutation(description="跟进救助: schedule follow-up payments, never above the approved total.")
    async def schedule_follow_up_aid(self, info: Info, input: ScheduleFollowUpAidInput) -> TemporaryAidPayload:
        async def work(session):
            approval = await temporary_aid.schedule_follow_up(
                session, info.context.actor, policy_engine(info),
                enrollment_id=db_id(input.enrollment_id, "Enrollment"), stages=_stages(input.stages), note=input.note)
            return approval.enrollment_id

        return await _case_payload(info, *(await run_mutation(info, work)))

    @strawberry.mutation(description="Pay a due stage; fromReserve draws it from the township's reserve fund.")
    async def pay_temporary_aid_stage(self, info: Info, input: PayTemporaryAidStageInput) -> TemporaryAidPayload:
        async def work(session):
            stage = await temporary_aid.pay_stage(
                session, info.context.actor, policy_engine(info),
                stage_id=db_id(input.stage_id, "TemporaryAidStage"), from_reserve=input.from_reserve)
            return stage.enrollment_id

        return await _case_payload(info, *(await run_mutation(info, work)))


async def _case_payload(info: Info, enrollment_id: int | None, errors: list[UserError]) -> TemporaryAidPayload:
    if enrollment_id is None:
        return TemporaryAidPayload(case=None, errors=errors)
    async with info.context.db() as session:
        return TemporaryAidPayload(case=await _case(session, enrollment_id), errors=errors)


@strawberry.input(description="一门受理 / 异地受理: an application accepted at any office of the province.")
class AcceptApplicationInput:
    id_number: str
    program_key: str
    documents: list[str] | None = None
    note: str | None = None
    idempotency_key: str | None = None


@strawberry.type(description="Where an accepted application went: the deciding office and its due date.")
class AcceptedApplication:
    routed_to: Region | None
    due_date: dt.date
    documents: list[str]
    referral: Referral | None = strawberry.field(description="Null when the household lies outside your scope.")


@strawberry.type
class AcceptApplicationPayload:
    accepted: AcceptedApplication | None
    errors: list[UserError]


@strawberry.type
class _OneWindow:
    @strawberry.mutation(description="一门受理、协同办理: accept an application for any program at your office, also "
                                     "for a household registered elsewhere (异地受理); it is routed to the deciding "
                                     "township with the documents told once.")
    async def accept_application(self, info: Info, input: AcceptApplicationInput) -> AcceptApplicationPayload:
        async def work(session):
            # 异地受理 reaches a household of any region of the province by design (the service checks the
            # office and the province), and the answer names where it was routed: under PostgreSQL's row-level
            # security (core/storage/rls.py) the caller's regions would hide both, so this mutation alone runs
            # with the named system scope; what it shows of the referral is decided by may_referral below.
            async with rls.widened(session, "one-window acceptance (一门受理)"):
                referral = await casework.accept_application(
                    session, info.context.actor, policy_engine(info), id_number=input.id_number,
                    program_key=input.program_key, documents=input.documents, note=input.note,
                    idempotency_key=input.idempotency_key)
                await session.run_sync(audit.seal)  # its audit rows lie in the household's region
            return referral

        row, errors = await run_mutation(info, work)
        if row is None:
            return AcceptApplicationPayload(accepted=None, errors=errors)
        visible = casework.may_referral(info.context.actor, "read", row)
        return AcceptApplicationPayload(errors=errors, accepted=AcceptedApplication(
            routed_to=await load_region(info, row.region_code[:9]), due_date=row.due_date,
            documents=list(row.documents or []), referral=Referral.from_row(row) if visible else None))


# --- monthly statistics ----------------------------------------------------------------------------------------


@strawberry.type(description="One program's month in one child division.")
class ProgramMonthStats:
    region_code: str
    program_key: str
    recipient_households: int
    recipient_persons: int
    amount: float
    new_cases: int
    ended_cases: int


@strawberry.type(description="Alerts and referrals of one child division in the month.")
class RegionMonthStats:
    region_code: str
    alerts_raised: int
    alerts_disposed: int
    referrals_overdue: int


@strawberry.type(description="Monthly statistics of a region by child division and program, within the caller's "
                             "scope.")
class MonthlyStatistics:
    region_code: str
    month: str
    programs: list[ProgramMonthStats]
    regions: list[RegionMonthStats]


@strawberry.type
class StatisticsExportPayload:
    csv: str | None
    errors: list[UserError]
    xlsx_base64: str | None = strawberry.field(default=None, description="format XLSX: the workbook, base64-encoded.")


def _stats(s: statistics.MonthlyStatistics) -> MonthlyStatistics:
    return MonthlyStatistics(
        region_code=s.region_code, month=s.month,
        programs=[ProgramMonthStats(**vars(r)) for r in s.programs],
        regions=[RegionMonthStats(**vars(r)) for r in s.regions])


@strawberry.type
class _StatisticsQuery:
    @strawberry.field(description="Monthly statistics (YYYY-MM) under a region: recipients, persons, amounts, new "
                                  "and ended cases per program; alerts raised and disposed, referrals overdue.")
    async def monthly_statistics(self, info: Info, region_code: str, month: str,
                                 program_key: str | None = None) -> MonthlyStatistics:
        try:
            async with info.context.db() as session:
                return _stats(await statistics.monthly_statistics(session, info.context.actor.scope("read", "enrollment"),
                                                                  region_code, month, program_key))
        except DomainError as e:
            raise query_error(e) from None


@strawberry.type
class _StatisticsMutation:
    @strawberry.mutation(description="The monthly statistics as CSV (default) or XLSX; every export is audited.")
    async def export_monthly_statistics(self, info: Info, region_code: str, month: str,
                                        format: str = "CSV") -> StatisticsExportPayload:
        async def work(session):
            return await statistics.export_statistics(session, info.context.actor, region_code, month,
                                                      format.lower())

        content, errors = await run_mutation(info, work)
        if isinstance(content, bytes):
            return StatisticsExportPayload(csv=None, xlsx_base64=base64.b64encode(content).decode(), errors=errors)
        return StatisticsExportPayload(csv=content, xlsx_base64=None, errors=errors)



# --- transparency: 公示, 双随机, 追回 ------------------------------------------------------------------------------


@strawberry.type(description="One line of a village's public disclosure: masked name, no ID number, no income.")
class DisclosureLine:
    masked_name: str
    household_size: int
    program_key: str
    monthly_amount: float | None
    since: dt.date | None


@strawberry.type(description="公示: a village's receiving dibao and tekun households for the configured period.")
class PublicDisclosure:
    village_code: str
    village_name: str
    published_on: dt.date
    until: dt.date
    lines: list[DisclosureLine]


@strawberry.type
class DisclosureNoticePayload:
    notice: str | None
    errors: list[UserError]


@strawberry.type(description="双随机: a reproducible sample of a county's receiving cases.")
class InspectionSample:
    seed: str
    enrollments: list[Enrollment]
    assignments: list[InspectionAssignment] = strawberry.field(description="The cases in draw order with the "
                                                                         "inspectors drawn for each (双随机).")


@strawberry.type(description="One sampled case and the usernames of the inspectors drawn for it.")
class InspectionAssignment:
    enrollment: Enrollment
    inspectors: list[str]


@strawberry.type
class InspectionSamplePayload:
    sample: InspectionSample | None
    errors: list[UserError]


@strawberry.type(description="An order to recover aid obtained by fraud (追回).")
class RecoveryOrder(Node):
    amount: float
    recovered: float
    status: str = strawberry.field(description="ISSUED, PARTIAL, RECOVERED or CANCELLED.")
    reason: str
    issued_by: str
    issued_at: dt.datetime
    _enrollment_id: strawberry.Private[int]
    _household_id: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: models.RecoveryOrder) -> "RecoveryOrder":
        return cls(id=to_global_id("RecoveryOrder", row.id), amount=float(row.amount), recovered=float(row.recovered),
                   status=row.status, reason=row.reason, issued_by=row.issued_by, issued_at=row.issued_at,
                   _enrollment_id=row.enrollment_id, _household_id=row.household_id)

    @strawberry.field(description="The enrolment whose payments the order claims back.")
    async def enrollment(self, info: Info) -> Enrollment | None:
        row = await info.context.enrollments_by_id.load(self._enrollment_id)
        return Enrollment.from_row(row) if row else None

    @strawberry.field
    async def household(self, info: Info) -> Household | None:
        return await _household(info, self._household_id)


@strawberry.type(description="A payment (发放) of an enrolment: the period's regular payment or a temporary-aid "
                             "stage's (installment STAGE-<id>).")
class Payment(Node):
    period: str
    installment: str
    amount: float
    paid_at: dt.datetime

    @classmethod
    def from_row(cls, row: models.Payment) -> "Payment":
        return cls(id=to_global_id("Payment", row.id), period=row.period, installment=row.installment,
                   amount=float(row.amount), paid_at=row.paid_at)


@strawberry.enum(description="追回 status.")
class RecoveryStatus(enum.Enum):
    ISSUED = "ISSUED"
    PARTIAL = "PARTIAL"
    RECOVERED = "RECOVERED"
    CANCELLED = "CANCELLED"


@strawberry.input
class CancelRecoveryOrderInput:
    order_id: strawberry.ID
    reason: str


@strawberry.type
class RecoveryOrderPayload:
    order: RecoveryOrder | None
    errors: list[UserError]


@strawberry.input
class IssueRecoveryOrderInput:
    enrollment_id: strawberry.ID
    amount: float
    reason: str


@strawberry.input
class RecordRecoveryInput:
    order_id: strawberry.ID
    amount: float


def _disclosure(d: transparency.Disclosure) -> PublicDisclosure:
    return PublicDisclosure(village_code=d.village_code, village_name=d.village_name, published_on=d.published_on,
                            until=d.until, lines=[DisclosureLine(
                                masked_name=x.masked_name, household_size=x.household_size, program_key=x.program_key,
                                monthly_amount=float(x.monthly_amount) if x.monthly_amount is not None else None,
                                since=x.since) for x in d.lines])


@strawberry.type
class _TransparencyQuery:
    @strawberry.field(description="追回: recovery orders of enrolments under a region in the caller's scope, newest "
                                  "first.")
    async def recovery_orders(self, info: Info, region_code: str, status: RecoveryStatus | None = None,
                              first: int | None = None, after: str | None = None) -> Connection[RecoveryOrder]:
        n = page_size(first)
        after_id = _after(after)
        r = models.RecoveryOrder
        where = [info.context.actor.scope("read", "household").narrow(region_code).predicate(r.region_code)]
        if status is not None:
            where.append(r.status == status.value)
        stmt = select(r).where(*where)
        if after_id is not None:
            stmt = stmt.where(r.id < after_id)
        async with info.context.db() as session:
            total = (await session.execute(select(func.count()).select_from(r).where(*where))).scalar_one()
            rows = list((await session.execute(stmt.order_by(r.id.desc()).limit(n + 1))).scalars())
        return _page(rows, n, total, RecoveryOrder.from_row)

    @strawberry.field(description="The payments of an enrolment, newest first (what a recovery order claims "
                                  "against); empty when not found or outside the caller's payment scope.")
    async def payments(self, info: Info, enrollment_id: strawberry.ID) -> list[Payment]:
        key = db_id(enrollment_id, "Enrollment")
        if key is None:
            return []
        p, e = models.Payment, models.Enrollment
        async with info.context.db() as session:
            rows = (await session.execute(select(p).join(e, e.id == p.enrollment_id).where(
                p.enrollment_id == key, info.context.actor.scope("read", "payment").predicate(e.region_code))
                .order_by(p.period.desc(), p.id.desc()).limit(240))).scalars()
            return [Payment.from_row(row) for row in rows]

    @strawberry.field(description="公示 of a village (masked names, household size, program, monthly amount); a "
                                  "village outside the caller's scope is an error.")
    async def public_disclosure(self, info: Info, village_code: str) -> PublicDisclosure:
        try:
            async with info.context.db() as session:
                return _disclosure(await transparency.disclosure(session, info.context.actor, policy_engine(info),
                                                                 village_code=village_code))
        except DomainError as e:
            raise query_error(e) from None


@strawberry.type
class _TransparencyMutation:
    @strawberry.mutation(description="The village's 公示 as a notice text; every export is audited.")
    async def export_disclosure_notice(self, info: Info, village_code: str) -> DisclosureNoticePayload:
        async def work(session):
            return await transparency.export_notice(session, info.context.actor, policy_engine(info),
                                                    village_code=village_code)

        notice, errors = await run_mutation(info, work)
        return DisclosureNoticePayload(notice=notice, errors=errors)

    @strawberry.mutation(description="双随机: draw a reproducible sample of a county's receiving cases (seed default "
                                     "<county>:<month>) and, with inspectorsPerCase, the inspectors of each case from "
                                     "the users who may review the county's cases; audited with the seed, the "
                                     "cases and the inspectors.")
    async def draw_inspection_sample(self, info: Info, county_code: str, size: int | None = None,
                                     seed: str | None = None, inspectors_per_case: int | None = None
                                     ) -> InspectionSamplePayload:
        async def work(session):
            drawn_seed, drawn = await transparency.inspection_sample(
                session, info.context.actor, policy_engine(info), county_code=county_code, size=size, seed=seed,
                inspectors_per_case=inspectors_per_case or 0)
            return drawn_seed, [(d.enrollment.id, list(d.inspectors)) for d in drawn]

        result, errors = await run_mutation(info, work)
        if result is None:
            return InspectionSamplePayload(sample=None, errors=errors)
        drawn_seed, drawn = result
        rows = [(await info.context.enrollments_by_id.load(i), inspectors) for i, inspectors in drawn]
        assignments = [InspectionAssignment(enrollment=Enrollment.from_row(r), inspectors=inspectors)
                       for r, inspectors in rows if r is not None]
        return InspectionSamplePayload(errors=errors, sample=InspectionSample(
            seed=drawn_seed, enrollments=[a.enrollment for a in assignments], assignments=assignments))

    @strawberry.mutation(description="追回: a recovery order against an enrolment's payments (county level).")
    async def issue_recovery_order(self, info: Info, input: IssueRecoveryOrderInput) -> RecoveryOrderPayload:
        async def work(session):
            order = await transparency.issue_recovery_order(
                session, info.context.actor, enrollment_id=db_id(input.enrollment_id, "Enrollment"),
                amount=input.amount, reason=input.reason)
            return order.id

        order_id, errors = await run_mutation(info, work)
        row = await _load(info, models.RecoveryOrder, order_id) if order_id else None
        return RecoveryOrderPayload(order=RecoveryOrder.from_row(row) if row else None, errors=errors)

    @strawberry.mutation(description="Record an amount recovered under a recovery order.")
    async def record_recovery(self, info: Info, input: RecordRecoveryInput) -> RecoveryOrderPayload:
        async def work(session):
            order = await transparency.record_recovery(session, info.context.actor,
                                                       order_id=db_id(input.order_id, "RecoveryOrder"),
                                                       amount=input.amount)
            return order.id

        order_id, errors = await run_mutation(info, work)
        row = await _load(info, models.RecoveryOrder, order_id) if order_id else None
        return RecoveryOrderPayload(order=RecoveryOrder.from_row(row) if row else None, errors=errors)

    @strawberry.mutation(description="Withdraw a recovery order nothing was recovered under yet (ISSUED -> "
                                     "CANCELLED), with the reason (county level).")
    async def cancel_recovery_order(self, info: Info, input: CancelRecoveryOrderInput) -> RecoveryOrderPayload:
        async def work(session):
            order = await transparency.cancel_recovery_order(session, info.context.actor,
                                                             order_id=db_id(input.order_id, "RecoveryOrder"),
                                                             reason=input.reason)
            return order.id

        order_id, errors = await run_mutation(info, work)
        row = await _load(info, models.RecoveryOrder, order_id) if order_id else None
        return RecoveryOrderPayload(order=RecoveryOrder.from_row(row) if row else None, errors=errors)



# --- 一证一书: verification under the applicant's authorisation ----------------------------------------------------


@strawberry.type(description="A signed verification authorisation (一证一书).")
class VerificationAuthorisation(Node):
    signed_on: dt.date
    valid_until: dt.date
    document_ref: str
    members_covered: int


@strawberry.type(description="The result of an economic verification (家庭经济状况核对), yuan.")
class EconomicVerificationResult(Node):
    as_of: dt.date
    members: int
    monthly_income: float
    per_capita_monthly_income: float
    total_financial_assets: float

    @classmethod
    def from_row(cls, row: models.EconomicVerification) -> "EconomicVerificationResult":
        r = row.result
        return cls(id=to_global_id("EconomicVerification", row.id), as_of=row.as_of, members=r["members"],
                   monthly_income=float(r["monthly_income"]),
                   per_capita_monthly_income=float(r["per_capita_monthly_income"]),
                   total_financial_assets=float(r["total_financial_assets"]))


@strawberry.input
class VerificationAuthorisationInput:
    household_id: strawberry.ID
    signed_by_person_id: strawberry.ID
    document_ref: str
    signed_on: dt.date | None = None
    person_ids: list[strawberry.ID] | None = None
    idempotency_key: str | None = None


@strawberry.type
class AuthorisationPayload:
    authorisation: VerificationAuthorisation | None
    errors: list[UserError]


@strawberry.type
class VerificationPayload:
    verification: EconomicVerificationResult | None
    errors: list[UserError]


@strawberry.type
class _VerificationMutation:
    @strawberry.mutation(description="Record the signed verification authorisation (一证一书) of a household.")
    async def record_verification_authorisation(self, info: Info, input: VerificationAuthorisationInput
                                                ) -> AuthorisationPayload:
        async def work(session):
            a = await verification.record_authorisation(
                session, info.context.actor, policy_engine(info),
                household_id=_required_id(input.household_id, "Household", "householdId"),
                signed_by_person_id=_required_id(input.signed_by_person_id, "Person", "signedByPersonId"),
                document_ref=input.document_ref, signed_on=input.signed_on,
                person_ids=[_required_id(p, "Person", "personIds") for p in input.person_ids] if input.person_ids
                else None, idempotency_key=input.idempotency_key)
            return a.id

        key, errors = await run_mutation(info, work)
        row = await _load(info, models.VerificationAuthorisation, key) if key else None
        return AuthorisationPayload(errors=errors, authorisation=VerificationAuthorisation(
            id=to_global_id("VerificationAuthorisation", row.id), signed_on=row.signed_on, valid_until=row.valid_until,
            document_ref=row.document_ref, members_covered=len(row.person_ids)) if row else None)

    @strawberry.mutation(description="家庭经济状况核对: verify a household's economics, only under an authorisation "
                                     "in force covering every current member.")
    async def run_economic_verification(self, info: Info, household_id: strawberry.ID) -> VerificationPayload:
        async def work(session):
            v = await verification.run_verification(session, info.context.actor,
                                                    household_id=_required_id(household_id, "Household", "householdId"))
            return v.id

        key, errors = await run_mutation(info, work)
        row = await _load(info, models.EconomicVerification, key) if key else None
        return VerificationPayload(verification=EconomicVerificationResult.from_row(row) if row else None,
                                   errors=errors)

    @strawberry.mutation(description="认定结果共享: share a verification result with a referral of the same household.")
    async def share_verification_result(self, info: Info, referral_id: strawberry.ID,
                                        verification_id: strawberry.ID) -> ReferralPayload:
        async def work(session):
            r = await verification.share_verification(
                session, info.context.actor, referral_id=db_id(referral_id, "Referral"),
                verification_id=db_id(verification_id, "EconomicVerification"))
            return r.id

        key, errors = await run_mutation(info, work)
        row = await _load(info, models.Referral, key) if key else None
        return ReferralPayload(referral=Referral.from_row(row) if row else None, errors=errors)



# --- service-type assistance and charity ---------------------------------------------------------------------


@strawberry.type(description="A service provider: social-work organisation or purchased service project.")
class ServiceProvider(Node):
    name: str
    kind: str
    region_code: str
    budget: float | None
    period_start: dt.date | None
    period_end: dt.date | None

    @classmethod
    def from_row(cls, row: models.ServiceProvider) -> "ServiceProvider":
        return cls(id=to_global_id("ServiceProvider", row.id), name=row.name, kind=row.kind,
                   region_code=row.region_code, budget=float(row.budget) if row.budget is not None else None,
                   period_start=row.period_start, period_end=row.period_end)


@strawberry.type(description="A service order (服务类救助) with its status and visits.")
class ServiceOrder(Node):
    service: str
    status: str
    visits: int
    last_visit_on: dt.date | None
    _household_id: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: models.ServiceOrder) -> "ServiceOrder":
        return cls(id=to_global_id("ServiceOrder", row.id), service=row.service, status=row.status, visits=row.visits,
                   last_visit_on=row.last_visit_on, _household_id=row.household_id)

    @strawberry.field
    async def household(self, info: Info) -> Household | None:
        return await _household(info, self._household_id)


@strawberry.type(description="A household government aid leaves short (慈善帮扶 candidate), yuan a month: rigid "
                              "expenditure above income plus aid by monthlyShortfall.")
class CharityCandidate:
    monthly_income: float
    monthly_aid: float
    monthly_rigid_expenditure: float
    monthly_shortfall: float
    receiving: list[str] = strawberry.field(description="Programs the household receives (ACTIVE or GRADUAL_EXIT).")
    charity_matches: int = strawberry.field(description="Charity matches the household already has.")
    _household_id: strawberry.Private[int]

    @classmethod
    def of(cls, c: charity.CharityCandidate) -> "CharityCandidate":
        return cls(monthly_income=c.monthly_income, monthly_aid=c.monthly_aid,
                   monthly_rigid_expenditure=c.monthly_rigid_expenditure, monthly_shortfall=c.shortfall,
                   receiving=list(c.receiving), charity_matches=c.charity_matches, _household_id=c.household_id)

    @strawberry.field
    async def household(self, info: Info) -> Household | None:
        return await _household(info, self._household_id)


@strawberry.type(description="A charity resource (慈善救助): money or a service of a foundation's project.")
class CharityResource(Node):
    organisation: str
    project: str
    kind: str
    amount: float | None
    remaining: float | None

    @classmethod
    def from_row(cls, row: models.CharityResource) -> "CharityResource":
        return cls(id=to_global_id("CharityResource", row.id), organisation=row.organisation, project=row.project,
                   kind=row.kind, amount=float(row.amount) if row.amount is not None else None,
                   remaining=float(row.remaining) if row.remaining is not None else None)


@strawberry.input
class ServiceProviderInput:
    region_code: str
    name: str
    kind: str
    budget: float | None = None
    period_start: dt.date | None = None
    period_end: dt.date | None = None


@strawberry.input
class OrderServiceInput:
    household_id: strawberry.ID
    service: str
    provider_id: strawberry.ID
    person_id: strawberry.ID | None = None
    note: str | None = None
    idempotency_key: str | None = None


@strawberry.input
class CharityResourceInput:
    region_code: str
    organisation: str
    project: str
    kind: str
    amount: float | None = None


@strawberry.input
class MatchCharityInput:
    resource_id: strawberry.ID
    household_id: strawberry.ID
    amount: float | None = None
    note: str | None = None


@strawberry.type
class ServiceProviderPayload:
    provider: ServiceProvider | None
    errors: list[UserError]


@strawberry.type
class ServiceOrderPayload:
    order: ServiceOrder | None
    errors: list[UserError]


@strawberry.type
class CharityPayload:
    resource: CharityResource | None
    errors: list[UserError]


async def _provider_payload(info, key, errors):
    row = await _load(info, models.ServiceProvider, key) if key else None
    return ServiceProviderPayload(provider=ServiceProvider.from_row(row) if row else None, errors=errors)


async def _order_payload(info, key, errors):
    row = await _load(info, models.ServiceOrder, key) if key else None
    return ServiceOrderPayload(order=ServiceOrder.from_row(row) if row else None, errors=errors)


async def _charity_payload(info, key, errors):
    row = await _load(info, models.CharityResource, key) if key else None
    if row is not None:
        async with info.context.db() as session:
            await session.refresh(row)
    return CharityPayload(resource=CharityResource.from_row(row) if row else None, errors=errors)


@strawberry.type
class _ServicesQuery:
    @strawberry.field(description="Service orders under a region in the caller's scope, newest first.")
    async def service_orders(self, info: Info, region_code: str, status: str | None = None,
                             first: int | None = None, after: str | None = None) -> Connection[ServiceOrder]:
        n = page_size(first)
        after_id = _after(after)
        scope = info.context.actor.scope("read", "service").narrow(region_code)
        where = [scope.predicate(models.ServiceOrder.region_code)]
        if status:
            where.append(models.ServiceOrder.status == status)
        stmt = select(models.ServiceOrder).where(*where)
        if after_id is not None:
            stmt = stmt.where(models.ServiceOrder.id < after_id)
        async with info.context.db() as session:
            total = (await session.execute(select(func.count()).select_from(models.ServiceOrder).where(*where))
                     ).scalar_one()
            rows = list((await session.execute(stmt.order_by(models.ServiceOrder.id.desc()).limit(n + 1))).scalars())
        return _page(rows, n, total, ServiceOrder.from_row)


@strawberry.type
class _ServicesMutation:
    @strawberry.mutation(description="Register a service provider or purchased service project.")
    async def add_service_provider(self, info: Info, input: ServiceProviderInput) -> ServiceProviderPayload:
        async def work(session):
            return (await services.add_provider(session, info.context.actor, region_code=input.region_code,
                                                name=input.name, kind=input.kind, budget=input.budget,
                                                period_start=input.period_start, period_end=input.period_end)).id

        return await _provider_payload(info, *(await run_mutation(info, work)))

    @strawberry.mutation(description="Order a service the province enables for a household or member.")
    async def order_service(self, info: Info, input: OrderServiceInput) -> ServiceOrderPayload:
        async def work(session):
            return (await services.order_service(
                session, info.context.actor, policy_engine(info),
                household_id=_required_id(input.household_id, "Household", "householdId"), service=input.service,
                provider_id=db_id(input.provider_id, "ServiceProvider"),
                person_id=_required_id(input.person_id, "Person", "personId") if input.person_id else None,
                note=input.note, idempotency_key=input.idempotency_key)).id

        return await _order_payload(info, *(await run_mutation(info, work)))

    @strawberry.mutation(description="Record a service visit (the first moves the order to IN_PROGRESS).")
    async def record_service_visit(self, info: Info, order_id: strawberry.ID, note: str,
                                   visited_on: dt.date | None = None) -> ServiceOrderPayload:
        async def work(session):
            return (await services.record_service_visit(session, info.context.actor,
                                                        order_id=db_id(order_id, "ServiceOrder"), note=note,
                                                        visited_on=visited_on)).id

        return await _order_payload(info, *(await run_mutation(info, work)))

    @strawberry.mutation(description="Close a service order: DONE (after a visit) or CANCELLED.")
    async def close_service_order(self, info: Info, order_id: strawberry.ID, status: str,
                                  note: str | None = None) -> ServiceOrderPayload:
        async def work(session):
            return (await services.close_service_order(session, info.context.actor,
                                                       order_id=db_id(order_id, "ServiceOrder"), status=status,
                                                       note=note)).id

        return await _order_payload(info, *(await run_mutation(info, work)))

    @strawberry.mutation(description="Register a charity resource (money or a service).")
    async def add_charity_resource(self, info: Info, input: CharityResourceInput) -> CharityPayload:
        async def work(session):
            return (await services.add_charity_resource(session, info.context.actor, region_code=input.region_code,
                                                        organisation=input.organisation, project=input.project,
                                                        kind=input.kind, amount=input.amount)).id

        return await _charity_payload(info, *(await run_mutation(info, work)))

    @strawberry.mutation(description="Match a charity resource to a household (money drawn down, never below zero).")
    async def match_charity(self, info: Info, input: MatchCharityInput) -> CharityPayload:
        async def work(session):
            match = await services.match_charity(
                session, info.context.actor, resource_id=db_id(input.resource_id, "CharityResource"),
                household_id=_required_id(input.household_id, "Household", "householdId"), amount=input.amount,
                note=input.note)
            return match.resource_id

        return await _charity_payload(info, *(await run_mutation(info, work)))


@strawberry.type
class Query(_CaseworkQuery, _StatisticsQuery, _TransparencyQuery, _ServicesQuery):
    """The casework queries, one root piece."""


@strawberry.type
class Mutation(_CaseworkMutation, _OneWindow, _StatisticsMutation, _TransparencyMutation,
               _VerificationMutation, _ServicesMutation):
    """The casework mutations, one root piece."""
