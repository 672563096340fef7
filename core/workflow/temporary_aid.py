"""Temporary aid as the sources run it (临时救助; GD-2021 §15, GD-2022): graded approval, the township reserve fund,
approve once and aid in stages, follow-up aid.

Why: before this module temporary aid was one payment decided like dibao. The sources say:

* 分级审批 (graded approval): the township approves up to an amount, the county above it
  (``workflow.temporary_township_limit``; no source gives the amount: illustrative), and a case beyond what the
  rules give is decided by the county's coordination mechanism case by case (一事一议): ``caseConference``
  with a county-level approver and a stated basis. The conflict-of-interest and township-delegation checks of
  the enrolment workflow apply as for any approval.
* 一次审批、分阶段救助 / 跟进救助: one approval fixes a total; stages and later follow-up aid are scheduled
  payments whose sum never exceeds it (checked under a lock on the approval row). The sources set no limit of one
  payment a month: each stage is a payment installment of its own (``Payment.installment``), so two stages due
  in the same month are both paid, and a stage is paid once.
* 临时救助备用金: each township holds a reserve fund; an aid-first payment (先行救助) draws on it, a payment
  above the balance is refused, and the fund is replenished. The balance is updated by one conditional
  statement (``balance >= amount``) behind a CHECK constraint, so two concurrent draws cannot overspend it.

Each step writes the enrolment step, aid chain, audit and outbox rows through the enrolment workflow's
recorder, in the caller's transaction: all or nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from typing import Any

from sqlalchemy import CursorResult, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from aidgraph.core.access.actor import Actor
from aidgraph.core.graph import aidchain, audit, idempotency, outbox
from aidgraph.core.policy.engine import PolicyEngine, default_engine
from aidgraph.core.storage.errors import DomainError, ErrorCode, not_found
from aidgraph.core.storage.models import (
    AidChainKind,
    Enrollment,
    EnrollmentStatus,
    OutboxEntity,
    Payment,
    Region,
    ReserveFund,
    ReserveFundEntry,
    TemporaryAidApproval,
    TemporaryAidStage,
    stage_installment,
)
from aidgraph.core.workflow.defaults import RESERVE_FUND_OBJECT
from aidgraph.core.workflow.enrollment import (
    OBJECT,
    _check_approver,
    _money,
    _policy_for,
    _record_step,
    evaluate_one,
)

TEMPORARY_DOMAIN = "emergency"
TOWNSHIP_DIGITS = 9
S = EnrollmentStatus


@dataclass(frozen=True)
class StageInput:
    due_date: dt.date
    amount: float


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def _positive(amount: float | Decimal | None, field: str) -> Decimal:
    value = _money(float(amount)) if amount is not None else None
    if value is None or value <= 0:
        raise DomainError.single(ErrorCode.VALIDATION, "the amount must be more than 0", field)
    return value


# --- the reserve fund (备用金) --------------------------------------------------------------------------------


async def _township(session: AsyncSession, code: str, field: str = "townshipCode") -> Region:
    region = await session.get(Region, code) if code else None
    if region is None or region.level != "TOWNSHIP":
        raise DomainError.single(ErrorCode.VALIDATION, f"{code!r} is not a township code", field)
    return region


async def reserve_balance(session: AsyncSession, township_code: str) -> Decimal:
    value = (await session.execute(select(ReserveFund.balance).where(ReserveFund.township_code == township_code))
             ).scalar_one_or_none()
    return value if value is not None else Decimal("0.00")


async def replenish_reserve(session: AsyncSession, actor: Actor, *, township_code: str, amount: float,
                            note: str | None = None, idempotency_key: str | None = None) -> ReserveFund:
    """Add ``amount`` to the township's reserve fund (created on first replenishment)."""
    claim = await idempotency.claim(session, actor, "replenishReserveFund", idempotency_key,
                                   {"township_code": township_code, "amount": amount, "note": note})
    if (replayed := await claim.replayed_row(ReserveFund, "township_code", "reserve fund")) is not None:
        return replayed
    township = await _township(session, township_code)
    if not actor.may("create", township.code, RESERVE_FUND_OBJECT):
        raise DomainError.single(ErrorCode.FORBIDDEN, f"replenishing the reserve fund of {township.code} is outside "
                                                      "your permissions", "townshipCode")
    value = _positive(amount, "amount")
    fund = (await session.execute(select(ReserveFund).where(ReserveFund.township_code == township.code)
                                  .with_for_update())).scalar_one_or_none()
    if fund is None:
        fund = ReserveFund(township_code=township.code, balance=Decimal("0.00"), version=1)
        session.add(fund)
        await session.flush()
    await session.execute(update(ReserveFund).where(ReserveFund.township_code == township.code).values(
        balance=ReserveFund.balance + value, version=ReserveFund.version + 1, updated_at=_now()))
    balance = await reserve_balance(session, township.code)
    session.add(ReserveFundEntry(township_code=township.code, kind="REPLENISH", amount=value, balance_after=balance,
                                 actor=actor.username, note=(note or "").strip() or None))
    audit.record(session, actor, "replenish_reserve", RESERVE_FUND_OBJECT, township.code, township.code,
                 {"amount": str(value), "balance": str(balance)})
    await session.flush()
    await session.refresh(fund)
    await claim.remember({"township_code": township.code})
    return fund


async def _draw(session: AsyncSession, actor: Actor, township_code: str, amount: Decimal, enrollment_id: int) -> Decimal:
    """Take ``amount`` from the township's fund in one conditional statement; the balance after."""
    result: CursorResult[Any] = await session.execute(update(ReserveFund).where(  # type: ignore[assignment]
        ReserveFund.township_code == township_code, ReserveFund.balance >= amount).values(
        balance=ReserveFund.balance - amount, version=ReserveFund.version + 1, updated_at=_now()))
    if result.rowcount != 1:
        balance = await reserve_balance(session, township_code)
        raise DomainError.single(ErrorCode.VALIDATION, f"the payment of {amount} yuan is above the reserve fund "
                                                       f"balance of township {township_code} ({balance} yuan): "
                                                       "replenish it first or pay through the normal channel",
                                 "fromReserve")
    balance = await reserve_balance(session, township_code)
    session.add(ReserveFundEntry(township_code=township_code, kind="DRAW", amount=amount, balance_after=balance,
                                 enrollment_id=enrollment_id, actor=actor.username, note="先行救助 aid-first payment"))
    audit.record(session, actor, "draw_reserve", RESERVE_FUND_OBJECT, township_code, township_code,
                 {"amount": str(amount), "balance": str(balance), "enrollment": enrollment_id})
    return balance


# --- approval and stages ------------------------------------------------------------------------------------


def _check_stages(stages: list[StageInput], on: dt.date, field: str = "stages") -> list[tuple[dt.date, Decimal]]:
    checked = []
    for i, stage in enumerate(stages):
        amount = _positive(stage.amount, f"{field}.{i}.amount")
        if stage.due_date < on:
            raise DomainError.single(ErrorCode.VALIDATION, f"stage due date {stage.due_date} is in the past",
                                     f"{field}.{i}.dueDate")
        checked.append((stage.due_date, amount))
    return checked


async def _load_case(session: AsyncSession, actor: Actor, enrollment_id: int | None) -> Enrollment:
    enrollment = await session.get(Enrollment, enrollment_id) if enrollment_id is not None else None
    if enrollment is None or not actor.may("read", enrollment.region_code, "household"):
        raise not_found("enrollment", "enrollmentId")
    return enrollment


async def approve_temporary_aid(session: AsyncSession, actor: Actor, engine: PolicyEngine | None = None, *,
                                enrollment_id: int | None, total: float, stages: list[StageInput] | None = None,
                                case_conference: bool = False, basis: str | None = None, pay_first_from_reserve:
                                bool = False, on: dt.date | None = None) -> TemporaryAidApproval:
    """一次审批: approve a temporary-aid case once, for ``total`` yuan, with its stages (default: all now)."""
    on = on or dt.date.today()
    engine = engine or default_engine()
    enrollment = await _load_case(session, actor, enrollment_id)
    policy, program = _policy_for(engine, enrollment.region_code, enrollment.program_key, "enrollmentId")
    if program.domain != TEMPORARY_DOMAIN:
        raise DomainError.single(ErrorCode.VALIDATION, f"{program.key} is not a temporary-aid program", "enrollmentId")
    allowed = {S.REVIEWED.value} | ({S.APPLIED.value, S.VERIFYING.value} if program.aid_first else set())
    if enrollment.status not in allowed:
        raise DomainError.single(ErrorCode.INVALID_TRANSITION, f"a {enrollment.status} {program.key} case cannot be "
                                                               f"approved (from: {', '.join(sorted(allowed))})",
                                 "enrollmentId")
    if not actor.may("approve", enrollment.region_code, OBJECT):
        raise DomainError.single(ErrorCode.FORBIDDEN, "approval needs the 'approve' permission on enrolments here",
                                 "enrollmentId")
    amount = _positive(total, "total")
    evaluation = await evaluate_one(session, engine, enrollment, on)
    rules_amount = _money(evaluation.get("one_off_amount")) if evaluation["eligible"] else None
    county = actor.scope("approve", OBJECT).contains(enrollment.region_code[:6])
    limit = _money(policy.params.value("workflow.temporary_township_limit", on, region=enrollment.region_code,
                                       default=0) or 0) or Decimal("0.00")
    if case_conference:
        if not county:
            raise DomainError.single(ErrorCode.FORBIDDEN, "一事一议: a case conference is held at county level; a "
                                                          "county approver must approve", "caseConference")
        if not basis or not basis.strip():
            raise DomainError.single(ErrorCode.VALIDATION, "一事一议: record the basis of the case-by-case decision",
                                     "basis")
        level = "CASE_CONFERENCE"
    else:
        if rules_amount is None:
            raise DomainError.single(ErrorCode.VALIDATION, f"not eligible for {program.key} on {on}: "
                                     + "; ".join(evaluation["reasons"]) + " (a county case conference, 一事一议, may "
                                     "still decide: caseConference)", "enrollmentId")
        if amount > rules_amount:
            raise DomainError.single(ErrorCode.VALIDATION, f"{amount} yuan is above what the rules give ({rules_amount} "
                                                           "yuan): beyond the standard needs a county case conference "
                                                           "(一事一议, caseConference)", "total")
        if amount > limit and not county:
            raise DomainError.single(ErrorCode.FORBIDDEN, f"分级审批: {amount} yuan is above the township's limit of "
                                                          f"{limit} yuan ({policy.params.cite('workflow.temporary_township_limit')}"
                                                          "): the county approves", "total")
        level = "COUNTY" if amount > limit else "TOWNSHIP"
    await _check_approver(session, actor, policy, program, enrollment, on)
    checked = _check_stages(stages if stages else [StageInput(on, float(amount))], on)
    scheduled = sum((a for _, a in checked), Decimal("0.00"))
    if scheduled > amount:
        raise DomainError.single(ErrorCode.VALIDATION, f"the stages add up to {scheduled} yuan, above the approved "
                                                       f"total of {amount} yuan", "stages")
    approval = TemporaryAidApproval(enrollment_id=enrollment.id, approved_total=amount, level=level,
                                    approved_by=actor.username, approved_on=on,
                                    basis=(basis or "").strip() or None, version=1)
    session.add(approval)
    rows = [TemporaryAidStage(enrollment_id=enrollment.id, kind="STAGE", due_date=d, amount=a, status="SCHEDULED")
            for d, a in checked]
    session.add_all(rows)
    from_status = enrollment.status
    enrollment.status = S.APPROVED.value
    enrollment.decided_at = dt.datetime.combine(on, dt.time())
    enrollment.details = {**(enrollment.details or {}), "decided_on": on.isoformat(),
                          "reasons": evaluation["reasons"], "one_off_amount": evaluation.get("one_off_amount"),
                          "approved_total": str(amount), "approval_level": level}
    enrollment.version += 1
    await session.flush()
    plan = ", ".join(f"{a} on {d}" for d, a in checked)
    await _record_step(session, actor, policy, program, enrollment, "APPROVE", from_status, basis, on,
                       AidChainKind.DECISION, f"一次审批 approved {amount} yuan of {program.name} at {level} level "
                                              f"(rules give {rules_amount if rules_amount is not None else 'none'}); "
                                              f"分阶段 stages: {plan}")
    if pay_first_from_reserve:
        await pay_stage(session, actor, engine, stage_id=rows[0].id, from_reserve=True, on=on)
    await session.refresh(approval)
    return approval


async def _approval_for_update(session: AsyncSession, enrollment_id: int) -> TemporaryAidApproval | None:
    return (await session.execute(select(TemporaryAidApproval).where(
        TemporaryAidApproval.enrollment_id == enrollment_id).with_for_update())).scalar_one_or_none()


async def schedule_follow_up(session: AsyncSession, actor: Actor, engine: PolicyEngine | None = None, *,
                             enrollment_id: int | None, stages: list[StageInput], note: str | None = None,
                             on: dt.date | None = None) -> TemporaryAidApproval:
    """跟进救助: more scheduled payments for an approved case, never above its approved total."""
    on = on or dt.date.today()
    engine = engine or default_engine()
    enrollment = await _load_case(session, actor, enrollment_id)
    approval = await _approval_for_update(session, enrollment.id)
    if approval is None:
        raise DomainError.single(ErrorCode.INVALID_TRANSITION, "the case has no temporary-aid approval yet",
                                 "enrollmentId")
    if not actor.may("approve", enrollment.region_code, OBJECT):
        raise DomainError.single(ErrorCode.FORBIDDEN, "follow-up aid needs the 'approve' permission on enrolments "
                                                      "here", "enrollmentId")
    if not stages:
        raise DomainError.single(ErrorCode.VALIDATION, "give at least one stage", "stages")
    checked = _check_stages(stages, on)
    existing = list((await session.execute(select(TemporaryAidStage).where(
        TemporaryAidStage.enrollment_id == enrollment.id))).scalars())
    total = sum((s.amount for s in existing), Decimal("0.00")) + sum((a for _, a in checked), Decimal("0.00"))
    if total > approval.approved_total:
        raise DomainError.single(ErrorCode.VALIDATION, f"the stages would add up to {total} yuan, above the approved "
                                                       f"total of {approval.approved_total} yuan", "stages")
    session.add_all([TemporaryAidStage(enrollment_id=enrollment.id, kind="FOLLOW_UP", due_date=d, amount=a,
                                       status="SCHEDULED") for d, a in checked])
    approval.version += 1
    enrollment.version += 1
    await session.flush()
    policy, program = _policy_for(engine, enrollment.region_code, enrollment.program_key, "enrollmentId")
    plan = ", ".join(f"{a} on {d}" for d, a in checked)
    await _record_step(session, actor, policy, program, enrollment, "FOLLOW_UP", enrollment.status, note, on,
                       AidChainKind.DECISION, f"跟进救助 follow-up aid scheduled: {plan} (total {total} of "
                                              f"{approval.approved_total} approved)")
    return approval


async def pay_stage(session: AsyncSession, actor: Actor, engine: PolicyEngine | None = None, *, stage_id: int | None,
                    from_reserve: bool = False, on: dt.date | None = None) -> TemporaryAidStage:
    """Pay one scheduled stage that is due; ``from_reserve`` draws it from the township's reserve fund."""
    on = on or dt.date.today()
    engine = engine or default_engine()
    stage = (await session.execute(select(TemporaryAidStage).where(TemporaryAidStage.id == stage_id)
                                   .with_for_update())).scalar_one_or_none() if stage_id is not None else None
    enrollment = await session.get(Enrollment, stage.enrollment_id) if stage is not None else None
    if stage is None or enrollment is None or not actor.may("read", enrollment.region_code, "household"):
        raise not_found("stage", "stageId")
    # An aid-first payment comes out of the township's own reserve fund: its 'disburse' permission suffices;
    # a payment through the normal channel needs the enrolment 'disburse' permission (county, typically).
    if from_reserve and not actor.may("disburse", enrollment.region_code, RESERVE_FUND_OBJECT):
        raise DomainError.single(ErrorCode.FORBIDDEN, "drawing on the reserve fund needs the 'disburse' permission "
                                                      "on it", "fromReserve")
    if not from_reserve and not actor.may("disburse", enrollment.region_code, OBJECT):
        raise DomainError.single(ErrorCode.FORBIDDEN, "paying needs the 'disburse' permission on enrolments here",
                                 "stageId")
    if stage.status != "SCHEDULED":
        raise DomainError.single(ErrorCode.INVALID_TRANSITION, "the stage is already paid", "stageId")
    if stage.due_date > on:
        raise DomainError.single(ErrorCode.VALIDATION, f"the stage is due on {stage.due_date}, not yet", "stageId")
    if enrollment.status not in (S.APPROVED.value, S.ACTIVE.value):
        raise DomainError.single(ErrorCode.INVALID_TRANSITION, f"the case is {enrollment.status}", "stageId")
    # Each stage is its own installment of the month (分阶段救助 / 跟进救助 set no monthly limit): two stages due in
    # one month are two payments; the stage row's lock and status make each stage paid once, and the unique
    # (enrolment, period, installment) is the second line.
    period = on.strftime("%Y-%m")
    balance = None
    if from_reserve:
        balance = await _draw(session, actor, enrollment.region_code[:TOWNSHIP_DIGITS], stage.amount, enrollment.id)
    payment = Payment(enrollment_id=enrollment.id, household_id=enrollment.household_id, amount=stage.amount,
                      period=period, installment=stage_installment(stage.id),
                      details={"kind": "temporary_stage", "stage": stage.id, "stage_kind": stage.kind,
                                              "from_reserve": from_reserve, "on": on.isoformat()})
    session.add(payment)
    await session.flush()
    stage.status, stage.payment_id, stage.paid_at, stage.from_reserve = "PAID", payment.id, _now(), from_reserve
    from_status = enrollment.status
    if enrollment.status == S.APPROVED.value:
        enrollment.status, enrollment.start_date = S.ACTIVE.value, on
    enrollment.version += 1
    await session.flush()
    source = (f" from the reserve fund of {enrollment.region_code[:TOWNSHIP_DIGITS]} (balance now {balance})"
              if from_reserve else "")
    aidchain.append(session, enrollment.household_id, AidChainKind.PAYMENT,
                    f"发放 {stage.kind.lower()} payment {stage.amount} yuan{source}", program_key=enrollment.program_key,
                    ref_type="payment", ref_id=payment.id, actor=actor.username)
    audit.record(session, actor, "pay_stage", OBJECT, enrollment.id, enrollment.region_code,
                 {"stage": stage.id, "amount": str(stage.amount), "from_reserve": from_reserve,
                  "from": from_status, "to": enrollment.status})
    outbox.emit(session, OutboxEntity.ENROLLMENT, enrollment.id, enrollment.version)
    return stage
