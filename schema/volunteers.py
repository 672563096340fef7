"""GraphQL for volunteer service (志愿服务; GD-2022 §13): community volunteer stations, volunteers registered at them,
and their assignments to the tasks the source lists (对象排查, 受理评估, 满意度调查, 家庭经济状况调查评估, 建档访视,
政策宣传, 照料护理, 康复训练).

Reads go through the caller's ``volunteer`` scope in SQL (a township sees its own stations, volunteers and
assignments); a volunteer's phone is masked unless the caller holds the identity right in the station's region
(and a full read is audited as a disclosure); free text (notes, results) is masked like every note. Mutations
run :mod:`aidgraph.core.workflow.volunteers` in the request's write transaction, all or nothing.
"""

from __future__ import annotations

import datetime as dt

import strawberry
from sqlalchemy import func, select
from strawberry.types import Info

from aidgraph.core.graph import privacy
from aidgraph.core.storage import models
from aidgraph.core.storage.models import AssignmentStatus as VolunteerAssignmentStatus
from aidgraph.core.storage.models import Satisfaction, VolunteerTask
from aidgraph.core.workflow import volunteers
from aidgraph.core.workflow.defaults import VOLUNTEER_OBJECT
from aidgraph.schema.casework import Lead, Visit, _after, _page, _required_id
from aidgraph.schema.errors import UserError, run_mutation
from aidgraph.schema.relay import Connection, Node, db_id, page_size, to_global_id
from aidgraph.schema.types import Household, Region, load_region


# The storage layer's closed sets, marked in place as GraphQL enums (as schema/errors.py marks ErrorCode): one
# definition of each, whatever the API adds to it.
strawberry.enum(VolunteerTask, name="VolunteerTask", description=(
    "What a volunteer assists with (GD-2022 §13, the source's list): 对象排查 LEAD_SCREENING (a lead), 受理评估 "
    "INTAKE_ASSESSMENT, 满意度调查 SATISFACTION_SURVEY, 家庭经济状况调查评估 ECONOMIC_ASSESSMENT, 照料护理 CARE, 康复训练 "
    "REHABILITATION (a household), 建档访视 CASE_FILE_VISIT (a visit, 巡访), 政策宣传 POLICY_OUTREACH (a township or "
    "village)."))
strawberry.enum(Satisfaction, name="Satisfaction",
                description="满意度调查: 满意 SATISFIED, 基本满意 PARTLY_SATISFIED, 不满意 DISSATISFIED.")
strawberry.enum(VolunteerAssignmentStatus, name="VolunteerAssignmentStatus")


@strawberry.type(description="A volunteer registered at a station.")
class Volunteer(Node):
    _row: strawberry.Private[models.Volunteer]

    @classmethod
    def from_row(cls, row: models.Volunteer) -> "Volunteer":
        return cls(id=to_global_id("Volunteer", row.id), _row=row)

    @strawberry.field
    def name(self) -> str:
        return self._row.name

    @strawberry.field(description="Masked (138****1234) unless the caller may see phones in the station's region; a "
                                  "full read is audited.")
    def phone(self, info: Info) -> str:
        return privacy.phone(info.context, self._row, "volunteer") or ""

    @strawberry.field(description="The tasks the volunteer offers.")
    def tasks(self) -> list[VolunteerTask]:
        return [VolunteerTask(t) for t in self._row.tasks]

    @strawberry.field
    def active(self) -> bool:
        return self._row.active

    @strawberry.field
    def registered_at(self) -> dt.datetime:
        return self._row.created_at

    @strawberry.field
    def station_id(self) -> strawberry.ID:
        return strawberry.ID(to_global_id("VolunteerStation", self._row.station_id))


@strawberry.type(description="A community volunteer service station (社区志愿服务站点) of a township or village.")
class VolunteerStation(Node):
    _row: strawberry.Private[models.VolunteerStation]

    @classmethod
    def from_row(cls, row: models.VolunteerStation) -> "VolunteerStation":
        return cls(id=to_global_id("VolunteerStation", row.id), _row=row)

    @strawberry.field
    def name(self) -> str:
        return self._row.name

    @strawberry.field
    def address(self) -> str | None:
        return self._row.address

    @strawberry.field
    def region_code(self) -> str:
        return self._row.region_code

    @strawberry.field
    async def region(self, info: Info) -> Region | None:
        return await load_region(info, self._row.region_code)

    @strawberry.field(description="The volunteers registered here (active first, then by name).")
    async def volunteers(self, info: Info) -> list[Volunteer]:
        async with info.context.db() as session:
            rows = (await session.execute(select(models.Volunteer).where(
                models.Volunteer.station_id == self._row.id,
                info.context.actor.scope("read", VOLUNTEER_OBJECT).predicate(models.Volunteer.region_code))
                .order_by(models.Volunteer.active.desc(), models.Volunteer.name, models.Volunteer.id)
                .limit(500))).scalars()
            return [Volunteer.from_row(r) for r in rows]


@strawberry.type(description="A volunteer assigned to one task on its target (a lead, a visit, a household or a "
                             "region), with its result once done.")
class VolunteerAssignment(Node):
    _row: strawberry.Private[models.VolunteerAssignment]

    @classmethod
    def from_row(cls, row: models.VolunteerAssignment) -> "VolunteerAssignment":
        return cls(id=to_global_id("VolunteerAssignment", row.id), _row=row)

    @strawberry.field
    def task(self) -> VolunteerTask:
        return VolunteerTask(self._row.task)

    @strawberry.field(description="The source's own term for the task (GD-2022 §13).")
    def task_name(self) -> str:
        return volunteers.TASK_NAMES[models.VolunteerTask(self._row.task)]

    @strawberry.field
    def status(self) -> VolunteerAssignmentStatus:
        return VolunteerAssignmentStatus(self._row.status)

    @strawberry.field
    def region_code(self) -> str:
        return self._row.region_code

    @strawberry.field
    async def volunteer(self, info: Info) -> Volunteer | None:
        async with info.context.db() as session:
            row = await session.get(models.Volunteer, self._row.volunteer_id)
        return Volunteer.from_row(row) if row else None

    @strawberry.field
    async def household(self, info: Info) -> Household | None:
        if self._row.household_id is None:
            return None
        row = await info.context.households.load(self._row.household_id)
        return Household.from_row(row) if row else None

    @strawberry.field(description="The visit (巡访) assisted.")
    async def visit(self, info: Info) -> Visit | None:
        if self._row.visit_id is None:
            return None
        async with info.context.db() as session:
            row = await session.get(models.Visit, self._row.visit_id)
        return Visit.from_row(row) if row else None

    @strawberry.field(description="The lead screened (对象排查).")
    async def lead(self, info: Info) -> Lead | None:
        if self._row.lead_id is None:
            return None
        async with info.context.db() as session:
            row = (await session.execute(select(models.Lead).where(
                models.Lead.id == self._row.lead_id,
                info.context.actor.scope("read", "lead").predicate(models.Lead.region_code)))).scalar_one_or_none()
        return Lead.from_row(row) if row else None

    @strawberry.field(description="Free text, ID and phone numbers masked.")
    def note(self, info: Info) -> str | None:
        return privacy.free_text(info.context, self._row.region_code, self._row.note)

    @strawberry.field(description="What was done (free text, ID and phone numbers masked).")
    def result(self, info: Info) -> str | None:
        return privacy.free_text(info.context, self._row.region_code, self._row.result)

    @strawberry.field(description="A satisfaction survey's answer (满意度调查).")
    def satisfaction(self) -> Satisfaction | None:
        return Satisfaction(self._row.satisfaction) if self._row.satisfaction else None

    @strawberry.field
    def assigned_by(self) -> str:
        return self._row.assigned_by

    @strawberry.field
    def assigned_at(self) -> dt.datetime:
        return self._row.assigned_at

    @strawberry.field
    def completed_at(self) -> dt.datetime | None:
        return self._row.completed_at


# --- inputs and payloads -------------------------------------------------------------------------------------


@strawberry.input
class AddVolunteerStationInput:
    region_code: str
    name: str
    address: str | None = None
    idempotency_key: str | None = None


@strawberry.input
class RegisterVolunteerInput:
    station_id: strawberry.ID
    name: str
    phone: str
    tasks: list[VolunteerTask]
    idempotency_key: str | None = None


@strawberry.input
class SetVolunteerActiveInput:
    volunteer_id: strawberry.ID
    active: bool


@strawberry.input(description="Exactly the target the task is about: leadId (LEAD_SCREENING), visitId "
                              "(CASE_FILE_VISIT), regionCode (POLICY_OUTREACH), householdId (the others).")
class AssignVolunteerInput:
    volunteer_id: strawberry.ID
    task: VolunteerTask
    household_id: strawberry.ID | None = None
    visit_id: strawberry.ID | None = None
    lead_id: strawberry.ID | None = None
    region_code: str | None = None
    note: str | None = None
    idempotency_key: str | None = None


@strawberry.input(description="What was done; a satisfaction survey's answer (required for one, refused for other "
                              "tasks); cancel: the task was not done (result says why).")
class CompleteVolunteerAssignmentInput:
    assignment_id: strawberry.ID
    result: str
    satisfaction: Satisfaction | None = None
    cancel: bool = False


@strawberry.type
class VolunteerStationPayload:
    station: VolunteerStation | None
    errors: list[UserError]


@strawberry.type
class VolunteerPayload:
    volunteer: Volunteer | None
    errors: list[UserError]


@strawberry.type
class VolunteerAssignmentPayload:
    assignment: VolunteerAssignment | None
    errors: list[UserError]


def _optional_id(value: strawberry.ID | None, type_name: str, field: str) -> int | None:
    return _required_id(value, type_name, field) if value is not None else None


async def _get(info: Info, model, key):
    async with info.context.db() as session:
        return await session.get(model, key) if key is not None else None


@strawberry.type
class Query:
    @strawberry.field(description="Volunteer stations (社区志愿服务站点) under a region in the caller's scope, with "
                                  "their volunteers.")
    async def volunteer_stations(self, info: Info, region_code: str) -> list[VolunteerStation]:
        scope = info.context.actor.scope("read", VOLUNTEER_OBJECT).narrow(region_code)
        async with info.context.db() as session:
            rows = (await session.execute(select(models.VolunteerStation).where(
                scope.predicate(models.VolunteerStation.region_code))
                .order_by(models.VolunteerStation.region_code, models.VolunteerStation.name).limit(500))).scalars()
            return [VolunteerStation.from_row(r) for r in rows]

    @strawberry.field(description="Volunteer assignments whose target lies under a region in the caller's scope, "
                                  "newest first.")
    async def volunteer_assignments(self, info: Info, region_code: str,
                                    status: VolunteerAssignmentStatus | None = None, task: VolunteerTask | None = None,
                                    first: int | None = None, after: str | None = None
                                    ) -> Connection[VolunteerAssignment]:
        n = page_size(first)
        after_id = _after(after)
        scope = info.context.actor.scope("read", VOLUNTEER_OBJECT).narrow(region_code)
        a = models.VolunteerAssignment
        where = [scope.predicate(a.region_code)]
        if status is not None:
            where.append(a.status == status.value)
        if task is not None:
            where.append(a.task == task.value)
        stmt = select(a).where(*where)
        if after_id is not None:
            stmt = stmt.where(a.id < after_id)
        async with info.context.db() as session:
            total = (await session.execute(select(func.count()).select_from(a).where(*where))).scalar_one()
            rows = list((await session.execute(stmt.order_by(a.id.desc()).limit(n + 1))).scalars())
        return _page(rows, n, total, VolunteerAssignment.from_row)


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Add a community volunteer service station (社区志愿服务站点) to a township or "
                                     "village.")
    async def add_volunteer_station(self, info: Info, input: AddVolunteerStationInput) -> VolunteerStationPayload:
        async def work(session):
            station = await volunteers.add_station(session, info.context.actor, region_code=input.region_code,
                                                   name=input.name, address=input.address,
                                                   idempotency_key=input.idempotency_key)
            return station.id

        key, errors = await run_mutation(info, work)
        row = await _get(info, models.VolunteerStation, key)
        return VolunteerStationPayload(station=VolunteerStation.from_row(row) if row else None, errors=errors)

    @strawberry.mutation(description="Register a volunteer at a station, with the tasks they offer.")
    async def register_volunteer(self, info: Info, input: RegisterVolunteerInput) -> VolunteerPayload:
        async def work(session):
            volunteer = await volunteers.register_volunteer(
                session, info.context.actor, station_id=db_id(input.station_id, "VolunteerStation"), name=input.name,
                phone=input.phone, tasks=[t.value for t in input.tasks], idempotency_key=input.idempotency_key)
            return volunteer.id

        key, errors = await run_mutation(info, work)
        row = await _get(info, models.Volunteer, key)
        return VolunteerPayload(volunteer=Volunteer.from_row(row) if row else None, errors=errors)

    @strawberry.mutation(description="A volunteer leaves (inactive: no new assignments) or returns.")
    async def set_volunteer_active(self, info: Info, input: SetVolunteerActiveInput) -> VolunteerPayload:
        async def work(session):
            volunteer = await volunteers.set_volunteer_active(
                session, info.context.actor, volunteer_id=db_id(input.volunteer_id, "Volunteer"), active=input.active)
            return volunteer.id

        key, errors = await run_mutation(info, work)
        row = await _get(info, models.Volunteer, key)
        return VolunteerPayload(volunteer=Volunteer.from_row(row) if row else None, errors=errors)

    @strawberry.mutation(description="Assign a volunteer of the target's township to one task on its target.")
    async def assign_volunteer(self, info: Info, input: AssignVolunteerInput) -> VolunteerAssignmentPayload:
        async def work(session):
            assignment = await volunteers.assign_volunteer(
                session, info.context.actor, volunteer_id=db_id(input.volunteer_id, "Volunteer"),
                task=input.task.value, household_id=_optional_id(input.household_id, "Household", "householdId"),
                visit_id=_optional_id(input.visit_id, "Visit", "visitId"),
                lead_id=_optional_id(input.lead_id, "Lead", "leadId"), region_code=input.region_code,
                note=input.note, idempotency_key=input.idempotency_key)
            return assignment.id

        key, errors = await run_mutation(info, work)
        row = await _get(info, models.VolunteerAssignment, key)
        return VolunteerAssignmentPayload(assignment=VolunteerAssignment.from_row(row) if row else None, errors=errors)

    @strawberry.mutation(description="Record what the volunteer did (a satisfaction survey with its answer), or "
                                     "cancel the assignment.")
    async def complete_volunteer_assignment(self, info: Info, input: CompleteVolunteerAssignmentInput
                                            ) -> VolunteerAssignmentPayload:
        async def work(session):
            assignment = await volunteers.complete_assignment(
                session, info.context.actor, assignment_id=db_id(input.assignment_id, "VolunteerAssignment"),
                result=input.result, satisfaction=input.satisfaction.value if input.satisfaction else None,
                cancel=input.cancel)
            return assignment.id

        key, errors = await run_mutation(info, work)
        row = await _get(info, models.VolunteerAssignment, key)
        return VolunteerAssignmentPayload(assignment=VolunteerAssignment.from_row(row) if row else None, errors=errors)
