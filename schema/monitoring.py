"""Monitoring operations of the contract: the ``alerts`` list and the ``disposeAlert`` mutation.

Alerts are read within the caller's scope for alerts (the one scope predicate, in SQL); disposing of one
needs the ``dispose_alert`` action in the alert's region (a township caseworker's, typically). The service
is :func:`aidgraph.core.monitoring.cycle.dispose_alert`; verification lists programs from the policy engine (the same
evaluation as ``eligibilityGaps``), and ENROL opens an application through the enrolment workflow.
"""

from __future__ import annotations

import datetime as dt
import enum

import strawberry
from sqlalchemy import func, select

from aidgraph.core.monitoring import cycle as monitoring
from aidgraph.core.storage.models import Alert as AlertRow, Household as HouseholdRow
from aidgraph.core.workflow import casework
from aidgraph.core.workflow.enrollment import apply_for_aid
from aidgraph.schema.context import Info
from aidgraph.schema.errors import UserError, run_mutation
from aidgraph.schema.relay import Connection, Edge, PageInfo, db_id, decode_cursor, encode_cursor, page_size, to_global_id
from aidgraph.schema.types import Alert, AlertStatus, WarningLevel


@strawberry.enum(description="预警处置 steps: verify first, then enrol, no action needed, or refer.")
class AlertAction(enum.Enum):
    START_VERIFICATION = "START_VERIFICATION"
    ENROL = "ENROL"
    NO_ACTION_NEEDED = "NO_ACTION_NEEDED"
    REFER = "REFER"


@strawberry.input
class DisposeAlertInput:
    alert_id: strawberry.ID
    action: AlertAction
    note: str
    program_key: str | None = strawberry.field(
        default=None, description="ENROL only: the program to apply for (default: relapse_monitoring, 防止返贫监测).")
    department: str | None = strawberry.field(
        default=None, description="REFER only: the receiving department's key (default: the province's "
                                  "workflow.alert_referral_department); a referral record is written (限时办理).")


@strawberry.type(description="A program the verification lists for the household.")
class VerificationCandidate:
    program_key: str
    program_name: str
    reasons: list[str]
    monthly_amount: float | None


@strawberry.type
class DisposeAlertPayload:
    alert: Alert | None
    errors: list[UserError]
    candidates: list[VerificationCandidate] = strawberry.field(
        default_factory=list,
        description="START_VERIFICATION: due programs not yet received (aided households) or programs the "
                    "household appears eligible for (others).")
    enrollment_id: strawberry.ID | None = strawberry.field(
        default=None, description="ENROL: the application opened.")
    referral_id: strawberry.ID | None = strawberry.field(
        default=None, description="REFER: the referral written to the receiving department.")



@strawberry.type
class Query:
    @strawberry.field(description="Monitoring alerts under a region in the caller's scope, newest first.")
    async def alerts(self, info: Info, region_code: str, level: WarningLevel | None = None,
                     status: AlertStatus | None = None, first: int | None = None,
                     after: str | None = None) -> Connection[Alert]:
        n = page_size(first)
        position = decode_cursor(after, 1)
        after_id = int(position[0]) if position and position[0].isdigit() else None
        scope = info.context.scope("alert").narrow(region_code)
        where = [scope.predicate(AlertRow.region_code)]
        if level is not None:
            where.append(AlertRow.level == level.value)
        if status is not None:
            where.append(AlertRow.status == status.value)
        stmt = select(AlertRow).where(*where)
        if after_id is not None:
            stmt = stmt.where(AlertRow.id < after_id)
        async with info.context.db() as session:
            total = (await session.execute(select(func.count()).select_from(AlertRow).where(*where))).scalar_one()
            rows = list((await session.execute(stmt.order_by(AlertRow.id.desc()).limit(n + 1))).scalars())
        has_next = len(rows) > n
        rows = rows[:n]
        for row in rows:
            info.context.alerts_by_id.prime(row.id, row)
        edges = [Edge(cursor=encode_cursor(r.id), node=Alert.from_row(r)) for r in rows]
        return Connection(total_count=total, edges=edges,
                          page_info=PageInfo(has_next_page=has_next, end_cursor=edges[-1].cursor if edges else None))


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Dispose of a monitoring alert: START_VERIFICATION, then ENROL, "
                                     "NO_ACTION_NEEDED or REFER.")
    async def dispose_alert(self, info: Info, input: DisposeAlertInput) -> DisposeAlertPayload:
        policy = info.context.policy

        async def verify(session, household_id: int):
            return await monitoring.policy_verification(session, policy, household_id)

        async def enrol(session, actor, household_id: int, program_key: str) -> int:
            enrollment = await apply_for_aid(session, actor, policy, household_id=household_id,
                                             program_key=program_key, note=f"预警处置 (alert): {input.note}")
            return enrollment.id

        async def refer(session, actor, household_id: int, note: str) -> int:
            household = await session.get(HouseholdRow, household_id)
            params = casework.province_params(policy, household.region_code, "alertId")
            department = input.department or params.value("workflow.alert_referral_department", dt.date.today())
            referral = await casework.create_referral(session, actor, params, household, department=department,
                                                      reason=note, source="ALERT",
                                                      source_id=db_id(input.alert_id, "Alert"))
            return referral.id

        async def work(session):
            return await monitoring.dispose_alert(
                session, info.context.actor, db_id(input.alert_id, "Alert"), input.action.value, input.note,
                verify=verify, enrol=enrol, program_key=input.program_key, refer=refer)

        result, errors = await run_mutation(info, work)
        if result is None:
            return DisposeAlertPayload(alert=None, errors=errors)
        row = await info.context.alerts_by_id.load(result.alert_id)
        candidates = [VerificationCandidate(program_key=c.program_key, program_name=c.program_name,
                                            reasons=list(c.reasons), monthly_amount=c.monthly_amount)
                      for c in (result.verification.candidates if result.verification else ())]
        return DisposeAlertPayload(
            alert=Alert.from_row(row) if row else None, errors=errors, candidates=candidates,
            enrollment_id=to_global_id("Enrollment", result.enrollment_id) if result.enrollment_id else None,
            referral_id=to_global_id("Referral", result.referral_id) if result.referral_id else None)
