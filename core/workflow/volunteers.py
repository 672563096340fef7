"""Volunteer service in social assistance (志愿服务; GD-2022 §13).

Why: GD-2022 §13 says "加强社会救助领域志愿服务队伍建设,广泛建设社区志愿服务站点,协助开展对象排查、受理评估、
满意度调查、家庭经济状况调查评估、建档访视、政策宣传等事务,为社会救助对象提供照料护理、康复训练等服务" (and GD-2021
§20 asks to support volunteer service in general). Before this module there were no volunteers at all.

* Stations (社区志愿服务站点): one per name in a township or village (:func:`add_station`).
* Volunteers registered at a station (:func:`register_volunteer`): name, phone (personal data: stored encrypted,
  masked in the API without the identity right), and the tasks they offer from the closed set the source lists
  (:class:`~aidgraph.core.storage.models.VolunteerTask`).
* Assignments (:func:`assign_volunteer`): a volunteer assists with one task, on the target the task is about:
  对象排查 a reported lead, 建档访视 a recorded visit (巡访), 受理评估 / 家庭经济状况调查评估 / 满意度调查 / 照料护理
  / 康复训练 a household, 政策宣传 a township or village. The target must lie in the caller's scope and in the
  township of the volunteer's station (a community station serves its own community); the volunteer must be
  active and offer the task. :func:`complete_assignment` records what was done; a satisfaction survey records
  its answer (满意 / 基本满意 / 不满意), which only a survey may carry.

Time banks (时间银行) are in none of the five sources: not built.

Every write is audited, on the household's aid chain where a household is concerned, all or nothing in the
caller's transaction; registrations and assignments take idempotency keys. Permissions: Casbin object
``volunteer`` (read; create = add a station, register; update = assign, complete), declared by the core workflow
plugin; reads go through the object's scope predicate in SQL.
"""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from aidgraph.core.access.actor import Actor
from aidgraph.core.graph import aidchain, audit, idempotency
from aidgraph.core.storage.errors import DomainError, ErrorCode, not_found
from aidgraph.core.storage.models import (
    AidChainKind,
    AssignmentStatus,
    Lead,
    Region,
    Satisfaction,
    Visit,
    Volunteer,
    VolunteerAssignment,
    VolunteerStation,
    VolunteerTask,
)
from aidgraph.core.workflow.casework import household_in_scope
from aidgraph.core.workflow.defaults import LEAD_OBJECT, VOLUNTEER_OBJECT

TOWNSHIP_DIGITS = 9
PHONE = re.compile(r"^\+?[0-9][0-9-]{5,18}$")
T = VolunteerTask

TASK_NAMES: dict[VolunteerTask, str] = {
    T.LEAD_SCREENING: "对象排查", T.INTAKE_ASSESSMENT: "受理评估", T.SATISFACTION_SURVEY: "满意度调查",
    T.ECONOMIC_ASSESSMENT: "家庭经济状况调查评估", T.CASE_FILE_VISIT: "建档访视", T.POLICY_OUTREACH: "政策宣传",
    T.CARE: "照料护理", T.REHABILITATION: "康复训练",
}
"""The source's own words for each task (GD-2022 §13)."""

TARGET: dict[VolunteerTask, str] = {
    T.LEAD_SCREENING: "leadId", T.CASE_FILE_VISIT: "visitId", T.POLICY_OUTREACH: "regionCode",
    T.INTAKE_ASSESSMENT: "householdId", T.ECONOMIC_ASSESSMENT: "householdId", T.SATISFACTION_SURVEY: "householdId",
    T.CARE: "householdId", T.REHABILITATION: "householdId",
}
"""What each task is about: the one input field that names its target."""


def _require(actor: Actor, action: str, region: str, field: str) -> None:
    if not actor.may(action, region, VOLUNTEER_OBJECT):
        raise DomainError.single(ErrorCode.FORBIDDEN, f"needs the {action!r} permission on volunteers in {region}",
                                 field)


def _text(value: str | None) -> str | None:
    return (value or "").strip() or None


def _task(value: str, field: str = "task") -> VolunteerTask:
    try:
        return VolunteerTask(value)
    except ValueError:
        raise DomainError.single(ErrorCode.VALIDATION, f"unknown task {value!r} (known: "
                                                       f"{', '.join(t.value for t in VolunteerTask)})", field) from None


async def _region(session: AsyncSession, code: str | None, field: str = "regionCode") -> Region:
    region = await session.get(Region, code) if code else None
    if region is None or region.level not in ("TOWNSHIP", "VILLAGE"):
        raise DomainError.single(ErrorCode.VALIDATION, f"{code!r} is not a township or village code", field)
    return region


# --- stations and volunteers ------------------------------------------------------------------------------------


async def add_station(session: AsyncSession, actor: Actor, *, region_code: str, name: str,
                      address: str | None = None, idempotency_key: str | None = None) -> VolunteerStation:
    """社区志愿服务站点: a station of a township or village (a second station of the same name there is an error)."""
    claim = await idempotency.claim(session, actor, "addVolunteerStation", idempotency_key,
                                    {"region_code": region_code, "name": name, "address": address})
    if (replayed := await claim.replayed_row(VolunteerStation, "station_id", "volunteer station")) is not None:
        return replayed
    region = await _region(session, region_code)
    _require(actor, "create", region.code, "regionCode")
    if _text(name) is None:
        raise DomainError.single(ErrorCode.VALIDATION, "the station needs a name", "name")
    station = VolunteerStation(region_code=region.code, township_code=region.code[:TOWNSHIP_DIGITS],
                               name=_text(name), address=_text(address), created_by=actor.username, version=1)
    try:
        async with session.begin_nested():
            session.add(station)
            await session.flush()
    except IntegrityError:
        raise DomainError.single(ErrorCode.VALIDATION, f"{region.code} already has a station named {_text(name)!r}",
                                 "name") from None
    audit.record(session, actor, "add_volunteer_station", VOLUNTEER_OBJECT, station.id, region.code,
                 {"name": station.name})
    await claim.remember({"station_id": station.id})
    return station


async def _station(session: AsyncSession, actor: Actor, station_id: int | None) -> VolunteerStation:
    station = (await session.execute(select(VolunteerStation).where(
        VolunteerStation.id == station_id, actor.scope("read", VOLUNTEER_OBJECT).predicate(
            VolunteerStation.region_code)))).scalar_one_or_none() if station_id is not None else None
    if station is None:
        raise not_found("volunteer station", "stationId")
    return station


async def register_volunteer(session: AsyncSession, actor: Actor, *, station_id: int | None, name: str, phone: str,
                             tasks: list[str], idempotency_key: str | None = None) -> Volunteer:
    """Register a volunteer at a station, with the tasks they offer (at least one, from the source's list)."""
    # the phone stays out of the stored fingerprint of the request (a phone number is guessable from a hash)
    claim = await idempotency.claim(session, actor, "registerVolunteer", idempotency_key,
                                    {"station_id": station_id, "name": name, "tasks": sorted(tasks or [])})
    if (replayed := await claim.replayed_row(Volunteer, "volunteer_id", "volunteer")) is not None:
        return replayed
    station = await _station(session, actor, station_id)
    _require(actor, "create", station.region_code, "stationId")
    if _text(name) is None:
        raise DomainError.single(ErrorCode.VALIDATION, "the volunteer needs a name", "name")
    number = (phone or "").strip().replace(" ", "")
    if not PHONE.match(number):
        raise DomainError.single(ErrorCode.VALIDATION, "phone must be 6 to 19 digits", "phone")
    if not tasks:
        raise DomainError.single(ErrorCode.VALIDATION, "name at least one task the volunteer offers", "tasks")
    offered = sorted({_task(t, f"tasks.{i}").value for i, t in enumerate(tasks)})
    volunteer = Volunteer(station_id=station.id, region_code=station.region_code, name=_text(name), phone=number,
                          tasks=offered, active=True, registered_by=actor.username, version=1)
    session.add(volunteer)
    await session.flush()
    audit.record(session, actor, "register_volunteer", VOLUNTEER_OBJECT, volunteer.id, station.region_code,
                 {"station": station.id, "tasks": offered})
    await claim.remember({"volunteer_id": volunteer.id})
    return volunteer


async def set_volunteer_active(session: AsyncSession, actor: Actor, *, volunteer_id: int | None,
                               active: bool) -> Volunteer:
    """A volunteer leaves the station (inactive: no new assignments) or returns; past assignments stay."""
    volunteer = await _volunteer(session, actor, volunteer_id)
    _require(actor, "update", volunteer.region_code, "volunteerId")
    if volunteer.active != active:
        volunteer.active = active
        volunteer.version += 1
        audit.record(session, actor, "set_volunteer_active", VOLUNTEER_OBJECT, volunteer.id, volunteer.region_code,
                     {"active": active})
        await session.flush()
    return volunteer


async def _volunteer(session: AsyncSession, actor: Actor, volunteer_id: int | None) -> Volunteer:
    volunteer = (await session.execute(select(Volunteer).where(
        Volunteer.id == volunteer_id, actor.scope("read", VOLUNTEER_OBJECT).predicate(Volunteer.region_code))
        .with_for_update())).scalar_one_or_none() if volunteer_id is not None else None
    if volunteer is None:
        raise not_found("volunteer", "volunteerId")
    return volunteer


# --- assignments ----------------------------------------------------------------------------------------------


async def _target(session: AsyncSession, actor: Actor, task: VolunteerTask, *, household_id: int | None,
                  visit_id: int | None, lead_id: int | None, region_code: str | None
                  ) -> tuple[str, int | None, int | None, int | None]:
    """(the target's region, household id, visit id, lead id) for ``task``; exactly its one target is given."""
    given = {"householdId": household_id, "visitId": visit_id, "leadId": lead_id, "regionCode": region_code}
    needed = TARGET[task]
    for field, value in given.items():
        if field != needed and value is not None:
            raise DomainError.single(ErrorCode.VALIDATION, f"{task.value} ({TASK_NAMES[task]}) is about a "
                                                           f"{needed[:-2] if needed.endswith('Id') else 'region'}, "
                                                           f"not a {field}", field)
    if given[needed] is None:
        raise DomainError.single(ErrorCode.VALIDATION, f"{task.value} ({TASK_NAMES[task]}) needs {needed}", needed)
    if needed == "leadId":
        lead = (await session.execute(select(Lead).where(
            Lead.id == lead_id, actor.scope("read", LEAD_OBJECT).predicate(Lead.region_code)))).scalar_one_or_none()
        if lead is None:
            raise not_found("lead", "leadId")
        return lead.region_code, lead.household_id, None, lead.id
    if needed == "visitId":
        visit = await session.get(Visit, visit_id)
        if visit is None:
            raise not_found("visit", "visitId")
        household = await household_in_scope(session, actor, visit.household_id, "visitId")
        return household.region_code, household.id, visit.id, None
    if needed == "householdId":
        household = await household_in_scope(session, actor, household_id)
        return household.region_code, household.id, None, None
    region = await _region(session, region_code)
    if not actor.may("read", region.code, VOLUNTEER_OBJECT):
        raise not_found("region", "regionCode")
    return region.code, None, None, None


async def assign_volunteer(session: AsyncSession, actor: Actor, *, volunteer_id: int | None, task: str,
                           household_id: int | None = None, visit_id: int | None = None, lead_id: int | None = None,
                           region_code: str | None = None, note: str | None = None,
                           idempotency_key: str | None = None) -> VolunteerAssignment:
    """Assign a volunteer to one task on its target (see the module docstring)."""
    claim = await idempotency.claim(session, actor, "assignVolunteer", idempotency_key,
                                    {"volunteer": volunteer_id, "task": task, "household": household_id,
                                     "visit": visit_id, "lead": lead_id, "region": region_code, "note": note})
    if (replayed := await claim.replayed_row(VolunteerAssignment, "assignment_id", "assignment")) is not None:
        return replayed
    kind = _task(task)
    volunteer = await _volunteer(session, actor, volunteer_id)
    if not volunteer.active:
        raise DomainError.single(ErrorCode.INVALID_TRANSITION, "the volunteer is no longer active", "volunteerId")
    if kind.value not in volunteer.tasks:
        raise DomainError.single(ErrorCode.VALIDATION, f"the volunteer does not offer {kind.value} "
                                                       f"({TASK_NAMES[kind]}); offers: {', '.join(volunteer.tasks)}",
                                 "task")
    region, household, visit, lead = await _target(session, actor, kind, household_id=household_id,
                                                   visit_id=visit_id, lead_id=lead_id, region_code=region_code)
    township = volunteer.region_code[:TOWNSHIP_DIGITS]
    if not region.startswith(township):
        raise DomainError.single(ErrorCode.VALIDATION, f"the volunteer's station serves township {township}; the "
                                                       f"{TARGET[kind]} lies elsewhere", TARGET[kind])
    _require(actor, "update", region, "volunteerId")
    assignment = VolunteerAssignment(volunteer_id=volunteer.id, region_code=region, task=kind.value,
                                     household_id=household, visit_id=visit, lead_id=lead,
                                     status=AssignmentStatus.ASSIGNED.value, note=_text(note),
                                     assigned_by=actor.username, version=1)
    session.add(assignment)
    await session.flush()
    if household is not None:
        aidchain.append(session, household, AidChainKind.VERIFICATION,
                        f"志愿服务 volunteer {volunteer.name} assigned: {TASK_NAMES[kind]} ({kind.value})",
                        ref_type="volunteer_assignment", ref_id=assignment.id, actor=actor.username)
    audit.record(session, actor, "assign_volunteer", VOLUNTEER_OBJECT, assignment.id, region,
                 {"volunteer": volunteer.id, "task": kind.value, "household": household, "visit": visit,
                  "lead": lead})
    await claim.remember({"assignment_id": assignment.id})
    return assignment


async def complete_assignment(session: AsyncSession, actor: Actor, *, assignment_id: int | None, result: str,
                              satisfaction: str | None = None, cancel: bool = False) -> VolunteerAssignment:
    """Record what the volunteer did (DONE), with the survey's answer for a satisfaction survey; or cancel."""
    assignment = (await session.execute(select(VolunteerAssignment).where(
        VolunteerAssignment.id == assignment_id,
        actor.scope("read", VOLUNTEER_OBJECT).predicate(VolunteerAssignment.region_code)).with_for_update())
    ).scalar_one_or_none() if assignment_id is not None else None
    if assignment is None:
        raise not_found("assignment", "assignmentId")
    _require(actor, "update", assignment.region_code, "assignmentId")
    if assignment.status != AssignmentStatus.ASSIGNED.value:
        raise DomainError.single(ErrorCode.INVALID_TRANSITION, f"the assignment is already {assignment.status}",
                                 "assignmentId")
    if _text(result) is None:
        raise DomainError.single(ErrorCode.VALIDATION, "say what was done (or why it was cancelled)", "result")
    survey = assignment.task == T.SATISFACTION_SURVEY.value
    if cancel and satisfaction is not None:
        raise DomainError.single(ErrorCode.VALIDATION, "a cancelled survey has no answer", "satisfaction")
    if not cancel and survey and satisfaction is None:
        raise DomainError.single(ErrorCode.VALIDATION, "a satisfaction survey (满意度调查) records its answer",
                                 "satisfaction")
    if satisfaction is not None and not survey:
        raise DomainError.single(ErrorCode.VALIDATION, "only a satisfaction survey (满意度调查) has an answer",
                                 "satisfaction")
    if satisfaction is not None and satisfaction not in Satisfaction.__members__:
        raise DomainError.single(ErrorCode.VALIDATION, f"unknown answer {satisfaction!r}", "satisfaction")
    status = AssignmentStatus.CANCELLED if cancel else AssignmentStatus.DONE
    assignment.status, assignment.result, assignment.satisfaction = status.value, _text(result), satisfaction
    assignment.completed_by = actor.username
    assignment.completed_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    assignment.version += 1
    volunteer = await session.get(Volunteer, assignment.volunteer_id)
    name = TASK_NAMES[VolunteerTask(assignment.task)]
    if assignment.household_id is not None:
        answer = f" ({satisfaction})" if satisfaction else ""
        aidchain.append(session, assignment.household_id, AidChainKind.VERIFICATION,
                        f"志愿服务 {name} by {volunteer.name if volunteer else '?'} {status.value.lower()}{answer}: "
                        f"{assignment.result}", ref_type="volunteer_assignment", ref_id=assignment.id,
                        actor=actor.username)
    audit.record(session, actor, "complete_volunteer_assignment", VOLUNTEER_OBJECT, assignment.id,
                 assignment.region_code, {"status": status.value, "task": assignment.task,
                                          "satisfaction": satisfaction})
    await session.flush()
    return assignment

