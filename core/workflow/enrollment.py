"""The enrolment workflow (申请 → 核查 → 审核 → 审批 → 发放 → 复核 → 渐退 → 终止), enforced on the server.

Every service here runs inside the caller's transaction (the GraphQL mutation or CLI boundary commits) and
either does everything or raises :class:`aidgraph.core.storage.errors.DomainError` with nothing written:

* :func:`apply_for_aid`: an application (ApplyForAid), with idempotency keys;
* :func:`decide_enrollment`: one step of the state machine (DecideEnrollment). Who may take it is a Casbin
  action checked with :func:`aidgraph.core.access.authz.check` (``apply``, ``review``, ``approve``, ``disburse`` on
  ``enrollment``). Approval is delegated to townships only where the province says so
  (``workflow.township_approval``; GD-2021 Pearl River Delta, FJ-2021 everywhere); elsewhere the approver must
  act at county level or above. An approver connected to a household member within two relationship steps
  (关系保/人情保, GD-2022) cannot approve: the case needs the next level up. Amounts are computed by the rules in
  force on the decision date; activation records the first payment;
* 民主评议 (democratic review, GD-2021 §7: 对没有争议的救助申请家庭不再进行民主评议): ``DISPUTE`` records a dispute
  (争议) about an application being applied for or verified, ``DEMOCRATIC_REVIEW`` records the review held on it;
  neither moves the status. Where the province configures ``workflow.democratic_review`` = ``DISPUTED_ONLY``
  (Guangdong), a review is refused for an undisputed application and required before REVIEW for a disputed
  one; ``ALL`` requires one for every application; a province that configures nothing is told so when it
  records a review, and its REVIEW step is not gated (see :func:`_democratic_review_rule`);
* :func:`transfer_enrollment`: a near-dibao or expenditure-hardship household that meets the dibao or tekun
  criteria moves over without a new application (GD-2022);
* :func:`due_reviews` / :func:`conduct_review`: periodic reviews (复核, GD-2021) by the rules of
  :mod:`aidgraph.core.workflow.reviews`: no re-pricing without a significant change, the gradual exit (渐退期,
  six months in GD-2021) only when employment earnings lift the household over the standard;
  :func:`end_gradual_exits` ends those whose period is over, set-at-a-time;
* :func:`disburse_month`: the monthly payments of every receiving enrolment in scope, set-at-a-time and safe
  to re-run.

Each step writes an :class:`~aidgraph.core.storage.models.EnrollmentStep`, an aid-chain entry, an audit row and an outbox row
(entity ENROLLMENT, version + 1), then notifies plugins (``aidgraph_enrollment_changed``).
"""

from __future__ import annotations

import datetime as dt
import inspect
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import String, and_, case, exists, func, insert, literal, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from aidgraph.core.access import authz
from aidgraph.core.access.actor import Actor
from aidgraph.core.access.scope import Scope
from aidgraph.core.graph import aidchain, audit, idempotency, outbox
from aidgraph.core.graph.relations import _neighbours
from aidgraph.core.policy.contract import EnrollmentEvent, Program
from aidgraph.core.policy.engine import (
    PolicyEngine,
    ProvincePolicy,
    default_engine,
    household_frame,
)
from aidgraph.core.storage.validity import valid_on
from aidgraph.core.storage.bulk import lock_for_writing
from aidgraph.core.storage.errors import DomainError, ErrorCode, not_found
from aidgraph.core.storage.models import (
    OPEN_ENROLLMENT_STATUSES,
    REGULAR_INSTALLMENT,
    AidChainEvent,
    AidChainKind,
    AppUser,
    EmergencyEvent,
    Enrollment,
    EnrollmentStatus,
    EnrollmentStep,
    Household,
    Membership,
    OutboxEntity,
    Payment,
)
from aidgraph.core.workflow import reviews

OBJECT = "enrollment"
S = EnrollmentStatus
ACTIONS = ("START_VERIFICATION", "REVIEW", "APPROVE", "REJECT", "ACTIVATE", "END", "WITHDRAW", "DISPUTE",
           "DEMOCRATIC_REVIEW")
FORWARD_ACTIONS = ("START_VERIFICATION", "REVIEW", "APPROVE", "ACTIVATE")
"""The steps that move an application on towards payment: what the approval queue waits for."""
TOWNSHIP_APPROVAL = "workflow.township_approval"
DEMOCRATIC_REVIEW = "workflow.democratic_review"
"""民主评议: DISPUTED_ONLY (only for disputed applications, GD-2021) or ALL; unset: not configured."""
"""审批权限下放: the programs whose approval the province delegates to townships, by region and date."""

TRANSITIONS: dict[tuple[str, str], tuple[str, str]] = {
    # (from status, action): (to status, Casbin action needed)
    (S.APPLIED.value, "START_VERIFICATION"): (S.VERIFYING.value, "review"),
    (S.VERIFYING.value, "REVIEW"): (S.REVIEWED.value, "review"),
    (S.REVIEWED.value, "APPROVE"): (S.APPROVED.value, "approve"),
    (S.APPROVED.value, "ACTIVATE"): (S.ACTIVE.value, "disburse"),
    (S.ACTIVE.value, "END"): (S.ENDED.value, "approve"),
    (S.GRADUAL_EXIT.value, "END"): (S.ENDED.value, "approve"),
    (S.APPLIED.value, "REJECT"): (S.REJECTED.value, "review"),
    (S.VERIFYING.value, "REJECT"): (S.REJECTED.value, "review"),
    (S.REVIEWED.value, "REJECT"): (S.REJECTED.value, "approve"),
    (S.APPLIED.value, "WITHDRAW"): (S.WITHDRAWN.value, "apply"),
    (S.VERIFYING.value, "WITHDRAW"): (S.WITHDRAWN.value, "apply"),
    (S.REVIEWED.value, "WITHDRAW"): (S.WITHDRAWN.value, "apply"),
    (S.APPROVED.value, "WITHDRAW"): (S.WITHDRAWN.value, "apply"),
    # 争议 and 民主评议 are recorded on the application and leave its status as it is
    (S.APPLIED.value, "DISPUTE"): (S.APPLIED.value, "review"),
    (S.VERIFYING.value, "DISPUTE"): (S.VERIFYING.value, "review"),
    (S.VERIFYING.value, "DEMOCRATIC_REVIEW"): (S.VERIFYING.value, "review"),
}
AID_FIRST_TRANSITIONS = {(S.APPLIED.value, "APPROVE"): (S.APPROVED.value, "approve")}
"""Emergency aid (急难型, 先行救助): approval straight from APPLIED; verification follows the aid."""

CONFLICT_STEPS = 2


def transitions_for(program: Program) -> dict[tuple[str, str], tuple[str, str]]:
    """The state machine of ``program``: the standard one, plus aid-first approval for emergency programs."""
    return {**TRANSITIONS, **(AID_FIRST_TRANSITIONS if program.aid_first else {})}


def _default() -> PolicyEngine:
    return default_engine()


# --- helpers ------------------------------------------------------------------------------------------------


def _money(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(Decimal("0.01"), ROUND_HALF_UP)


def _add_months(day: dt.date, months: int) -> dt.date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    last = [31, 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28, 31, 30, 31, 30, 31, 31, 30, 31,
            30, 31][month - 1]
    return dt.date(year, month, min(day.day, last))


async def _household_in_scope(session: AsyncSession, actor: Actor, household_id: int, field: str) -> Household:
    household = await session.get(Household, household_id)
    if household is None or not actor.may("read", household.region_code, "household"):
        raise not_found("household", field)
    return household


def _policy_for(engine: PolicyEngine, region_code: str, program_key: str, field: str = "programKey"
                ) -> tuple[ProvincePolicy, Program]:
    province = region_code[:2]
    known = {key for code in engine.province_codes() for key in engine.province(code).programs}
    if program_key not in known:
        raise DomainError.single(ErrorCode.VALIDATION, f"unknown program key {program_key!r} (known: "
                                                       f"{', '.join(sorted(known))})", field)
    if province not in engine.province_codes() or program_key not in engine.province(province).programs:
        raise DomainError.single(ErrorCode.VALIDATION, f"program {program_key!r} is not enabled in province "
                                                       f"{province}", field)
    policy = engine.province(province)
    return policy, policy.programs[program_key]


def _require(actor: Actor, permission: str, region_code: str, what: str, field: str | None = None) -> None:
    if not authz.check(actor, permission, region_code, OBJECT):
        raise DomainError.single(ErrorCode.FORBIDDEN, f"{what} needs the {permission!r} permission on enrolments "
                                                      f"in region {region_code}", field)


async def _record_step(session: AsyncSession, actor: Actor, policy: ProvincePolicy, program: Program,
                       enrollment: Enrollment, action: str, from_status: str | None, note: str | None, on: dt.date,
                       chain_kind: AidChainKind, summary: str) -> None:
    """The step, aid-chain, audit and outbox rows of one transition, then the lifecycle notification."""
    session.add(EnrollmentStep(enrollment_id=enrollment.id, action=action, from_status=from_status,
                               to_status=enrollment.status, actor=actor.username,
                               actor_region_code=actor.grants[0].region_code if actor.grants else None, note=note))
    aidchain.append(session, enrollment.household_id, chain_kind, summary, program_key=program.key,
                    ref_type="enrollment", ref_id=enrollment.id, actor=actor.username)
    audit.record(session, actor, action.lower(), OBJECT, enrollment.id, enrollment.region_code,
                 {"program": program.key, "from": from_status, "to": enrollment.status, "note": note})
    outbox.emit(session, OutboxEntity.ENROLLMENT, enrollment.id, enrollment.version)
    event = EnrollmentEvent(session, actor, enrollment.id, enrollment.household_id, program, policy.params, action,
                            from_status, enrollment.status, on)
    for result in policy.plugins.hook.aidgraph_enrollment_changed(event=event):
        if inspect.isawaitable(result):
            await result


async def _replayed(claim: idempotency.Claim) -> Enrollment | None:
    """The enrolment a replayed request wrote, ``None`` when the request executes (NOT_FOUND when it has been
    deleted since)."""
    return await claim.replayed_row(Enrollment, "enrollment_id", "enrollment", "enrollmentId")


# --- ApplyForAid ------------------------------------------------------------------------------------------


async def apply_for_aid(session: AsyncSession, actor: Actor, engine: PolicyEngine | None = None, *, household_id: int,
                        program_key: str, person_id: int | None = None, idempotency_key: str | None = None,
                        note: str | None = None, on: dt.date | None = None) -> Enrollment:
    """An application for ``program_key`` by a household (or one member): status APPLIED."""
    on = on or dt.date.today()
    engine = engine or _default()
    claim = await idempotency.claim(session, actor, "applyForAid", idempotency_key, {
        "household_id": household_id, "program_key": program_key, "person_id": person_id, "note": note, "on": on})
    if (replayed := await _replayed(claim)) is not None:
        return replayed
    household, region = await _applicant(session, actor, engine, household_id, program_key, on)
    policy, program = _policy_for(engine, household.region_code, program_key)
    _require(actor, "apply", region, "applying for aid", "programKey")
    if person_id is not None:
        member = (await session.execute(select(Membership.id).where(
            Membership.household_id == household_id, Membership.person_id == person_id, Membership.valid_to.is_(None)
        ))).first()
        if member is None:
            raise DomainError.single(ErrorCode.VALIDATION, "the person is not a current member of the household",
                                     "personId")
    open_one = (await session.execute(select(Enrollment.id, Enrollment.status).where(
        Enrollment.household_id == household_id, Enrollment.program_key == program_key,
        (Enrollment.person_id == person_id) if person_id is not None else Enrollment.person_id.is_(None),
        Enrollment.status.in_([s.value for s in OPEN_ENROLLMENT_STATUSES])))).first()
    if open_one is not None:
        raise DomainError.single(ErrorCode.VALIDATION, f"already has an open {program_key} enrolment "
                                                       f"({open_one.status})", "programKey")
    details: dict[str, Any] = {"applied_on": on.isoformat()}
    if region != household.region_code:
        details["emergency_place"] = region
    enrollment = Enrollment(household_id=household_id, person_id=person_id, program_key=program_key,
                            province_code=policy.code, region_code=region, status=S.APPLIED.value,
                            version=1, details=details)
    session.add(enrollment)
    await session.flush()
    await _record_step(session, actor, policy, program, enrollment, "APPLY", None, note, on, AidChainKind.APPLICATION,
                       f"申请 application for {program.name}")
    await claim.remember({"enrollment_id": enrollment.id})
    return enrollment


async def _applicant(session: AsyncSession, actor: Actor, engine: PolicyEngine, household_id: int, program_key: str,
                     on: dt.date) -> tuple[Household, str]:
    """The household applying and the region the application belongs to: the household's residence, or, for an
    aid-first (急难型) program, the place of the household's latest emergency (last 12 months) in the caller's
    ``apply`` scope when the household itself is outside it: GD-2021 §15 取消户籍地、居住地申请限制，由急难发生地实施临时
    救助 (the officer where it happened applies; that region's officers take the steps after). The place must lie
    in the household's province (the rules in force are that province's). NOT_FOUND otherwise, as if the
    household did not exist."""
    household = await session.get(Household, household_id)
    if household is not None and actor.may("read", household.region_code, "household"):
        return household, household.region_code
    code = household.region_code[:2] if household is not None else ""
    program = engine.province(code).programs.get(program_key) if code in engine.province_codes() else None
    if household is None or program is None or not program.aid_first:
        raise not_found("household", "householdId")
    e = EmergencyEvent
    place = (await session.execute(select(e.region_code).where(
        e.household_id == household_id, e.occurred_on <= on, e.occurred_on >= _add_months(on, -12),
        e.region_code.startswith(code), actor.scope("apply", OBJECT).predicate(e.region_code))
        .order_by(e.occurred_on.desc(), e.id.desc()).limit(1))).scalar_one_or_none()
    if place is None:
        raise not_found("household", "householdId")
    return household, place


# --- DecideEnrollment ----------------------------------------------------------------------------------------


async def _approver_person(session: AsyncSession, actor: Actor) -> int | None:
    return (await session.execute(select(AppUser.person_id).where(AppUser.username == actor.username))
            ).scalar_one_or_none()


async def conflict_of_interest(session: AsyncSession, approver_person_id: int, household_id: int, on: dt.date
                               ) -> int | None:
    """A current member within two relationship steps (relationships or shared households) of the approver,
    or None. Two statements per step: the whole frontier at once (aidgraph.core.graph.relations's neighbour search)."""

    members = set((await session.execute(select(Membership.person_id).where(
        Membership.household_id == household_id, valid_on(Membership, on)))).scalars())
    seen = {approver_person_id}
    frontier = {approver_person_id}
    if members & seen:
        return next(iter(members & seen))
    for _ in range(CONFLICT_STEPS):
        reached = {dst for _src, dst, _via in await _neighbours(session, frontier, on)} - seen
        hit = members & reached
        if hit:
            return min(hit)
        seen |= reached
        frontier = reached
        if not frontier:
            break
    return None


async def evaluate_one(session: AsyncSession, engine: PolicyEngine, enrollment: Enrollment, on: dt.date
                       ) -> dict[str, Any]:
    """The program's eligibility and amounts for the enrolment's household under the rules in force on ``on``."""
    result = await engine.evaluate(session, on=on, household_ids=[enrollment.household_id],
                                   programs=[enrollment.program_key])
    if result.height == 0:
        return {"eligible": False, "reasons": ["the household has no current members"], "monthly_amount": None,
                "one_off_amount": None, "benefit_label": None}
    return result.row(0, named=True)


async def decide_enrollment(session: AsyncSession, actor: Actor, engine: PolicyEngine | None = None, *, enrollment_id: int,
                            action: str, note: str | None = None, on: dt.date | None = None) -> Enrollment:
    """Take ``action`` on an enrolment if the state machine and the caller's role allow it."""
    on = on or dt.date.today()
    engine = engine or _default()
    enrollment = await session.get(Enrollment, enrollment_id)
    if enrollment is None or not actor.may("read", enrollment.region_code, "household"):
        raise not_found("enrollment", "enrollmentId")
    if action not in ACTIONS:
        raise DomainError.single(ErrorCode.VALIDATION, f"unknown action {action!r}", "action")
    policy, program = _policy_for(engine, enrollment.region_code, enrollment.program_key, "enrollmentId")
    machine = transitions_for(program)
    step = machine.get((enrollment.status, action))
    if step is None:
        allowed = sorted(a for (status, a) in machine if status == enrollment.status)
        raise DomainError.single(ErrorCode.INVALID_TRANSITION,
                                 f"{action} is not allowed on a {enrollment.status} {program.key} enrolment "
                                 f"(allowed: {', '.join(allowed) or 'none'})", "action")
    to_status, permission = step
    region = enrollment.region_code
    _require(actor, permission, region, f"{action} on a {program.key} enrolment", "action")
    from_status = enrollment.status
    kind, summary = AidChainKind.DECISION, f"{action} {program.name}: {from_status} -> {to_status}"
    if action in ("START_VERIFICATION", "REVIEW", "DISPUTE", "DEMOCRATIC_REVIEW"):
        kind = AidChainKind.VERIFICATION
    if action in ("DISPUTE", "DEMOCRATIC_REVIEW", "REVIEW"):
        summary = _democratic_review_rule(policy, enrollment, action, on) or summary
    if action == "APPROVE":
        await _check_approver(session, actor, policy, program, enrollment, on)
        evaluation = await evaluate_one(session, engine, enrollment, on)
        if not evaluation["eligible"]:
            raise DomainError.single(ErrorCode.VALIDATION, f"not eligible for {program.key} on {on}: "
                                                           + "; ".join(evaluation["reasons"]), "enrollmentId")
        enrollment.monthly_amount = _money(evaluation["monthly_amount"])
        enrollment.category = evaluation.get("benefit_label") or program.category or enrollment.category
        enrollment.decided_at = dt.datetime.combine(on, dt.time())
        enrollment.details = {**(enrollment.details or {}), "decided_on": on.isoformat(),
                              "reasons": evaluation["reasons"], "one_off_amount": evaluation.get("one_off_amount")}
        amount = enrollment.monthly_amount if enrollment.monthly_amount is not None else evaluation.get("one_off_amount")
        summary += f", amount {amount if amount is not None else 'none'} by the rules in force on {on}"
    enrollment.status = to_status
    enrollment.version += 1
    if action == "ACTIVATE":
        enrollment.start_date = on
        await _schedule_review(session, policy, program, enrollment, on)
        await _first_payment(session, actor, program, enrollment, on)
    if to_status in (S.ENDED.value, S.REJECTED.value, S.WITHDRAWN.value):
        enrollment.end_date = on
    await session.flush()
    await _record_step(session, actor, policy, program, enrollment, action, from_status, note, on, kind, summary)
    return enrollment


def _democratic_review_rule(policy: ProvincePolicy, enrollment: Enrollment, action: str, on: dt.date) -> str | None:
    """民主评议 (GD-2021 §7 优化审核确认程序，对没有争议的救助申请家庭不再进行民主评议): check ``action`` against the
    province's ``workflow.democratic_review`` for the enrolment's region and record it in ``details`` (a dispute:
    ``dispute_raised_on``; a review: ``democratic_review_on``). Returns the aid-chain summary of a recorded
    dispute or review; raises INVALID_TRANSITION (nothing written) when the rule forbids the step."""
    details = dict(enrollment.details or {})
    disputed = "dispute_raised_on" in details
    reviewed = "democratic_review_on" in details
    mode = policy.params.value(DEMOCRATIC_REVIEW, on, region=enrollment.region_code, default=None)

    def refuse(message: str) -> DomainError:
        return DomainError.single(ErrorCode.INVALID_TRANSITION, message, "action")

    if action == "DISPUTE":
        if disputed:
            raise refuse(f"a dispute (争议) was already recorded on {details['dispute_raised_on']}")
        enrollment.details = {**details, "dispute_raised_on": on.isoformat()}
        return "争议 dispute recorded on the application"
    if action == "DEMOCRATIC_REVIEW":
        if mode is None:
            raise refuse(f"not configured: {DEMOCRATIC_REVIEW} (when province {policy.code} holds a democratic "
                         "review, 民主评议)")
        if reviewed:
            raise refuse(f"a democratic review (民主评议) was already held on {details['democratic_review_on']}")
        if mode == "DISPUTED_ONLY" and not disputed:
            raise refuse("no democratic review (民主评议) for an undisputed application: 对没有争议的救助申请家庭不再进行"
                         f"民主评议 ({DEMOCRATIC_REVIEW} = DISPUTED_ONLY); record a dispute first")
        enrollment.details = {**details, "democratic_review_on": on.isoformat()}
        return "民主评议 democratic review held" + (" on the disputed application" if disputed else "")
    # REVIEW: a disputed application (or every one, under ALL) is reviewed democratically first
    needed = (mode == "DISPUTED_ONLY" and disputed) or mode == "ALL"
    if needed and not reviewed:
        raise refuse(f"a {'disputed ' if disputed else ''}application needs its democratic review (民主评议, "
                     f"DEMOCRATIC_REVIEW) before REVIEW ({DEMOCRATIC_REVIEW} = {mode})")
    return None


async def _check_approver(session: AsyncSession, actor: Actor, policy: ProvincePolicy, program: Program,
                          enrollment: Enrollment, on: dt.date) -> None:
    region = enrollment.region_code
    delegated = program.key in (policy.params.value(TOWNSHIP_APPROVAL, on, region=region, default=[]) or [])
    if not delegated and not actor.scope("approve", OBJECT).contains(region[:6]):
        raise DomainError.single(ErrorCode.FORBIDDEN, f"approval of {program.key} in {region} is not delegated to "
                                                      f"townships here ({policy.params.cite(TOWNSHIP_APPROVAL)}"
                                                      f"): a county-level approver must approve", "action")
    person_id = await _approver_person(session, actor)
    if person_id is not None:
        member = await conflict_of_interest(session, person_id, enrollment.household_id, on)
        if member is not None:
            raise DomainError.single(ErrorCode.FORBIDDEN, f"conflict of interest (关系保/人情保, GD-2022): the approver is "
                                                          f"connected to household member {member} within "
                                                          f"{CONFLICT_STEPS} relationship steps; the case needs "
                                                          f"approval at the next level up", "action")


def _approval_level(actor: Actor, engine: PolicyEngine, on: dt.date) -> Any:
    """SQL twin of :func:`_check_approver`'s level rule, for a whole queue: the caller holds ``approve`` in the
    enrolment's region, and either holds it for the whole county (a county-level approver or above) or the
    province delegates the program's approval to townships there on ``on`` (``workflow.township_approval``,
    the most specific region prefix winning, as for one enrolment)."""
    scope = actor.scope("approve", OBJECT)
    county = scope if scope.unrestricted else Scope.of(p for p in scope.prefixes if len(p) <= 6)
    delegated = []
    for code in engine.province_codes():
        by_region = engine.province(code).params.by_region(TOWNSHIP_APPROVAL, on)
        base = by_region.pop(None, None) or []
        overrides = sorted((r for r in by_region if r is not None), key=len, reverse=True)
        programs = case(*((Enrollment.region_code.startswith(r), Enrollment.program_key.in_(by_region[r] or []))
                          for r in overrides), else_=Enrollment.program_key.in_(base)) if overrides \
            else Enrollment.program_key.in_(base)
        delegated.append(and_(Enrollment.region_code.startswith(code), programs))
    return and_(scope.predicate(Enrollment.region_code),
                or_(county.predicate(Enrollment.region_code), *delegated))


def awaiting(actor: Actor, engine: PolicyEngine, on: dt.date | None = None) -> Any:
    """A SQL predicate on ``enrollment``: the enrolments whose next step towards payment (:data:`FORWARD_ACTIONS`
    of the state machine) ``actor`` may take, by the same Casbin actions and approval-level rule that
    :func:`decide_enrollment` enforces: the approval queue at the caller's level (a township sees what waits for
    verification and review, and for approval only where approval is delegated to it; a county approver what
    waits for approval and activation). Not applied here: the conflict-of-interest rule (one approver and one
    household at a time, refused with its reason when the step is taken) and the eligibility on the day."""
    on = on or dt.date.today()
    aid_first = sorted({key for code in engine.province_codes()
                        for key, program in engine.province(code).programs.items() if program.aid_first})
    approve = _approval_level(actor, engine, on)
    clauses = []
    for (status, action), (_, permission) in {**TRANSITIONS, **AID_FIRST_TRANSITIONS}.items():
        if action not in FORWARD_ACTIONS:
            continue
        allowed = approve if permission == "approve" else actor.scope(permission, OBJECT).predicate(
            Enrollment.region_code)
        clause = and_(Enrollment.status == status, allowed)
        if (status, action) in AID_FIRST_TRANSITIONS and (status, action) not in TRANSITIONS:
            clause = and_(clause, Enrollment.program_key.in_(aid_first))
        clauses.append(clause)
    return or_(*clauses)


async def _schedule_review(session: AsyncSession, policy: ProvincePolicy, program: Program, enrollment: Enrollment,
                           on: dt.date) -> None:
    if not program.reviewed:
        return
    frame = await _facts(session, enrollment.household_id, on)
    months = policy.plugins.hook.aidgraph_review_interval_months(program=program, params=policy.params,
                                                                 facts={"on": on, **frame})
    enrollment.next_review_date = _add_months(on, months) if months else None


async def _facts(session: AsyncSession, household_id: int, on: dt.date) -> dict[str, Any]:

    frame = await household_frame(session, on=on, household_ids=[household_id])
    return _facts_of(frame.row(0, named=True) if frame.height else None)


def _facts_of(row: dict[str, Any] | None) -> dict[str, Any]:
    """What the review interval hook reads, from a household frame row."""
    if row is None:
        return {}
    # The members themselves: what counts as a member able to work (劳动能力, an age band) is the program's
    # rule, with its province's parameters, not the workflow's.
    members = [{"age": m["age"], "labour_capacity": m["labour_capacity"]} for m in row["members"]]
    return {"monthly_earned_income": row["monthly_earned_income"], "members": members,
            "member_count": row["member_count"]}


async def _first_payment(session: AsyncSession, actor: Actor, program: Program, enrollment: Enrollment,
                         on: dt.date) -> None:
    one_off = (enrollment.details or {}).get("one_off_amount")
    amount = enrollment.monthly_amount if enrollment.monthly_amount is not None else _money(one_off)
    if amount is None:
        return
    payment = Payment(enrollment_id=enrollment.id, household_id=enrollment.household_id, amount=amount,
                      period=on.strftime("%Y-%m"), details={"kind": "monthly" if enrollment.monthly_amount is not None
                                                            else "one-off", "on": on.isoformat()})
    session.add(payment)
    await session.flush()
    aidchain.append(session, enrollment.household_id, AidChainKind.PAYMENT,
                    f"发放 payment {amount} yuan for {payment.period} ({program.name})", program_key=program.key,
                    ref_type="payment", ref_id=payment.id, actor=actor.username)


# --- transfer without re-applying (GD-2022) -----------------------------------------------------------------


async def transfer_enrollment(session: AsyncSession, actor: Actor, engine: PolicyEngine | None = None, *,
                              enrollment_id: int, to_program: str, note: str | None = None, on: dt.date | None = None) -> Enrollment:
    """Move an active near-dibao or expenditure-hardship enrolment to dibao or tekun, with the household's
    consent and without a new application, when the household meets the target's criteria on ``on``."""
    on = on or dt.date.today()
    engine = engine or _default()
    source = await session.get(Enrollment, enrollment_id)
    if source is None or not actor.may("read", source.region_code, "household"):
        raise not_found("enrollment", "enrollmentId")
    policy, target = _policy_for(engine, source.region_code, to_program)
    if source.program_key not in target.transfer_from or source.status != S.ACTIVE.value:
        raise DomainError.single(ErrorCode.INVALID_TRANSITION,
                                 f"a {source.status} {source.program_key} enrolment cannot be transferred to "
                                 f"{to_program} (from: {', '.join(target.transfer_from) or 'none'}, ACTIVE only)",
                                 "enrollmentId")
    _require(actor, "approve", source.region_code, "a transfer", "enrollmentId")
    await _check_approver(session, actor, policy, target, source, on)
    _, source_program = _policy_for(engine, source.region_code, source.program_key)
    new = Enrollment(household_id=source.household_id, person_id=source.person_id, program_key=to_program,
                     province_code=source.province_code, region_code=source.region_code, status=S.APPROVED.value,
                     transferred_from_id=source.id, version=1)
    evaluation = await evaluate_one(session, engine, new, on)
    if not evaluation["eligible"]:
        raise DomainError.single(ErrorCode.VALIDATION, f"the household does not meet the {to_program} criteria on "
                                                       f"{on}: " + "; ".join(evaluation["reasons"]), "enrollmentId")
    new.monthly_amount = _money(evaluation["monthly_amount"])
    new.category = evaluation.get("benefit_label") or target.category
    new.decided_at = dt.datetime.combine(on, dt.time())
    new.details = {"decided_on": on.isoformat(), "reasons": evaluation["reasons"], "transferred_from": source.id,
                   "one_off_amount": evaluation.get("one_off_amount")}
    session.add(new)
    previous = source.status
    source.status, source.end_date, source.version = S.ENDED.value, on, source.version + 1
    await session.flush()
    await _record_step(session, actor, policy, source_program, source, "TRANSFER_OUT", previous, note, on,
                       AidChainKind.REFERRAL, f"转办 transferred to {target.name} without re-applying (GD-2022)")
    await _record_step(session, actor, policy, target, new, "TRANSFER_IN", None, note, on, AidChainKind.DECISION,
                       f"APPROVE {target.name} on transfer from {source_program.name}, amount {new.monthly_amount}")
    return new


# --- reviews and gradual exit ----------------------------------------------------------------------------------


async def due_reviews(session: AsyncSession, scope: Scope, on: dt.date) -> list[Enrollment]:
    """Active enrolments in ``scope`` whose periodic review is due on or before ``on`` (one statement)."""
    rows = await session.execute(select(Enrollment).where(
        Enrollment.status == S.ACTIVE.value, Enrollment.next_review_date.is_not(None),
        Enrollment.next_review_date <= on, scope.predicate(Enrollment.region_code)).order_by(Enrollment.next_review_date,
                                                                                               Enrollment.id))
    return list(rows.scalars())


async def conduct_review(session: AsyncSession, actor: Actor, engine: PolicyEngine | None = None, *, enrollment_id: int,
                         on: dt.date | None = None, note: str | None = None, idempotency_key: str | None = None,
                         today: dt.date | None = None) -> Enrollment:
    """复核 (GD-2021) of an ACTIVE enrolment on the facts recorded at ``on`` (default today; never later than
    today, never before the enrolment started), by the rules of :mod:`aidgraph.core.workflow.reviews`:

    * death, the enrolled person leaving or the household moving out of the county: ENDED;
    * still eligible: the benefit is re-priced only when the change is significant (dated province parameter),
      and the next review is scheduled;
    * no longer eligible: 渐退期 (GRADUAL_EXIT until ``on`` + the province's months) only when the rise in
      earned income is what lifts the household over the standard; otherwise ENDED.

    The outcome (``changed``, ``reasons`` naming the numbers, amounts) is kept in ``details["review"]``."""
    today = today or dt.date.today()
    on = on or today
    engine = engine or _default()
    claim = await idempotency.claim(session, actor, "conductReview", idempotency_key,
                                    {"enrollmentId": enrollment_id, "reviewDate": on, "note": note})
    if (replayed := await _replayed(claim)) is not None:
        return replayed
    # one review at a time per enrolment: the row lock (PostgreSQL) or the write lock (SQLite) comes before
    # the status is read, so a concurrent second review finds the enrolment no longer ACTIVE
    await session.run_sync(lambda s: lock_for_writing(s, [Enrollment.__tablename__])
                           if s.get_bind().dialect.name == "sqlite" else None)
    enrollment = (await session.execute(select(Enrollment).where(Enrollment.id == enrollment_id)
                                        .with_for_update().execution_options(populate_existing=True))
                  ).scalar_one_or_none()
    if enrollment is None or not actor.may("read", enrollment.region_code, "household"):
        raise not_found("enrollment", "enrollmentId")
    _policy_for(engine, enrollment.region_code, enrollment.program_key, "enrollmentId")  # a program it knows
    if enrollment.status != S.ACTIVE.value:
        raise DomainError.single(ErrorCode.INVALID_TRANSITION, f"only ACTIVE enrolments are reviewed, this one is "
                                                               f"{enrollment.status}", "enrollmentId")
    _require(actor, "review", enrollment.region_code, "a periodic review", "enrollmentId")
    if on > today:
        raise DomainError.single(ErrorCode.VALIDATION, f"reviewDate {on} is in the future: a review reads the "
                                                       f"facts recorded by then", "reviewDate")
    if enrollment.start_date is not None and on < enrollment.start_date:
        raise DomainError.single(ErrorCode.VALIDATION, f"reviewDate {on} is before the enrolment started "
                                                       f"({enrollment.start_date})", "reviewDate")
    failures = await _review_batch(session, actor, engine, [enrollment], on, note)
    if failures:
        raise DomainError.single(ErrorCode.VALIDATION, failures[enrollment.id], "enrollmentId")
    await claim.remember({"enrollment_id": enrollment.id})
    return enrollment


async def review_due(session: AsyncSession, actor: Actor, engine: PolicyEngine, scope: Scope, on: dt.date,
                     limit: int = 500, skip: frozenset[int] | set[int] = frozenset()) -> tuple[list[Enrollment], dict[int, str]]:
    """The scheduled review run (``aidgraph reviews run``): up to ``limit`` ACTIVE enrolments in ``scope`` due on
    ``on`` (except ``skip``), locked and reviewed set-at-a-time in the caller's transaction. Returns the
    enrolments reviewed and the ones that could not be (id -> why). Re-running finds nothing due: a review moves
    the next review date past ``on``, or ends the enrolment, or starts its gradual exit."""
    allowed = actor.scope("review", OBJECT)
    if allowed.empty:
        raise DomainError.single(ErrorCode.FORBIDDEN, "the review run needs the 'review' permission on enrolments")
    await session.run_sync(lambda s: lock_for_writing(s, [Enrollment.__tablename__])
                           if s.get_bind().dialect.name == "sqlite" else None)
    due = list((await session.execute(select(Enrollment).where(
        Enrollment.status == S.ACTIVE.value, Enrollment.next_review_date.is_not(None), Enrollment.next_review_date <= on,
        scope.predicate(Enrollment.region_code), allowed.predicate(Enrollment.region_code),
        Enrollment.id.not_in(sorted(skip)) if skip else true())
        .order_by(Enrollment.next_review_date, Enrollment.id).limit(limit)
        .with_for_update(skip_locked=True).execution_options(populate_existing=True))).scalars())
    failures = await _review_batch(session, actor, engine, due, on, None)
    return [e for e in due if e.id not in failures], failures


async def _review_batch(session: AsyncSession, actor: Actor, engine: PolicyEngine, enrollments: list[Enrollment],
                        on: dt.date, note: str | None) -> dict[int, str]:
    """复核 of ACTIVE, locked ``enrollments`` on the facts of ``on``, by the rules of
    :mod:`aidgraph.core.workflow.reviews`, set-at-a-time: one household frame and one evaluation per province for
    all of them (plus, for those that no longer qualify, one frame per previous decision date). Returns the
    enrolments that could not be reviewed (id -> why), which are left untouched."""
    failures: dict[int, str] = {}
    programs: dict[int, tuple[ProvincePolicy, Program]] = {}
    for e in enrollments:
        try:
            programs[e.id] = _policy_for(engine, e.region_code, e.program_key, "enrollmentId")
        except DomainError as exc:
            failures[e.id] = exc.errors[0].message
    todo = [e for e in enrollments if e.id not in failures]
    causes = await reviews.end_causes(session, todo, on)
    hids = sorted({e.household_id for e in todo if e.id not in causes})
    frame = await household_frame(session, on=on, household_ids=hids) if hids else None
    decisions = reviews.evaluate(engine, frame, on, sorted({e.program_key for e in todo})) if frame is not None else {}
    rows = {r["household_id"]: r for r in frame.iter_rows(named=True)} if frame is not None else {}
    dead = await reviews.deceased_members(session, hids, on)
    leaving = [e for e in todo if e.id not in causes and not decisions.get((e.household_id, e.program_key),
                                                                             {}).get("eligible")]
    lifts = await reviews.earnings_lifts(session, engine, frame, leaving, on) if leaving and frame is not None else {}
    for enrollment in todo:
        policy, program = programs[enrollment.id]
        previous_amount, from_status = enrollment.monthly_amount, enrollment.status
        if enrollment.id in causes:
            reasons = [causes[enrollment.id]]
            enrollment.status, enrollment.end_date, enrollment.next_review_date = S.ENDED.value, on, None
            summary = f"复核 review on {on}: ended ({causes[enrollment.id]})"
        else:
            evaluation = decisions.get((enrollment.household_id, enrollment.program_key)) or {
                "eligible": False, "reasons": ["the household has no current members"], "monthly_amount": None}
            reasons = list(evaluation["reasons"]) + dead.get(enrollment.household_id, [])
            if evaluation["eligible"]:
                computed = _money(evaluation["monthly_amount"])
                significant, why = reviews.significant_change(policy, on, enrollment.region_code, previous_amount,
                                                              computed)
                reasons.append(why)
                if significant:
                    enrollment.monthly_amount = computed
                _next_review(policy, program, enrollment, on, rows.get(enrollment.household_id))
                summary = (f"复核 review on {on}: still eligible, amount {previous_amount} -> "
                           f"{enrollment.monthly_amount}, next review {enrollment.next_review_date}")
            else:
                exit_key = program.gradual_exit_param  # the plugin's own parameter (Program.gradual_exit_param)
                exit_months = int(policy.params.value(exit_key, on, default=0) or 0) if exit_key else 0
                lifted, why = lifts.get(enrollment.id, (False, "the household has no current members"))
                if exit_key and exit_months and lifted:
                    enrollment.status = S.GRADUAL_EXIT.value
                    enrollment.gradual_exit_until = _add_months(on, exit_months)
                    reasons.append(f"{why}: the benefit {previous_amount} continues for {exit_months} months, until "
                                   f"{enrollment.gradual_exit_until} "
                                   f"({policy.params.cite(exit_key)})")
                    summary = (f"复核 review on {on}: no longer eligible; 渐退期 gradual exit, benefit {previous_amount} "
                               f"continues until {enrollment.gradual_exit_until}")
                else:
                    if lifted:  # earnings lift it, but the province gives no gradual exit for this program
                        why += (f"; no 渐退期 for {program.key}: "
                                + (policy.params.cite(exit_key) if exit_key else "the program declares none"))
                    reasons.append(why)
                    enrollment.status, enrollment.end_date = S.ENDED.value, on
                    summary = f"复核 review on {on}: no longer eligible; ended"
                enrollment.next_review_date = None
        changed = enrollment.status != from_status or enrollment.monthly_amount != previous_amount
        enrollment.details = {**(enrollment.details or {}), "last_review": on.isoformat(), "review_reasons": reasons,
                              "review": {"on": on.isoformat(), "changed": changed, "reasons": reasons,
                                         "previous_amount": None if previous_amount is None else str(previous_amount),
                                         "amount": None if enrollment.monthly_amount is None
                                         else str(enrollment.monthly_amount)}}
        enrollment.version += 1
        await session.flush()  # the lifecycle hooks of _record_step read the enrolment as reviewed
        await _record_step(session, actor, policy, program, enrollment, "PERIODIC_REVIEW", from_status, note, on,
                           AidChainKind.VERIFICATION, summary)
    await session.flush()
    return failures


def _next_review(policy: ProvincePolicy, program: Program, enrollment: Enrollment, on: dt.date,
                 row: dict[str, Any] | None) -> None:
    """The next review date from the household's frame row (the facts the review interval hook reads); none for
    a program without periodic reviews, so a review never leaves its enrolment due again."""
    if not program.reviewed:
        enrollment.next_review_date = None
        return
    months = policy.plugins.hook.aidgraph_review_interval_months(program=program, params=policy.params,
                                                                 facts={"on": on, **_facts_of(row)})
    enrollment.next_review_date = _add_months(on, months) if months else None


async def end_gradual_exits(session: AsyncSession, actor: Actor, engine: PolicyEngine, scope: Scope,
                            on: dt.date) -> int:
    """End every enrolment in ``scope`` whose gradual exit is over on ``on``; returns how many (re-runnable)."""
    due = list((await session.execute(select(Enrollment).where(
        Enrollment.status == S.GRADUAL_EXIT.value, Enrollment.gradual_exit_until <= on,
        scope.predicate(Enrollment.region_code)))).scalars())
    for enrollment in due:  # rows already loaded by one statement; each transition adds rows flushed together
        policy, program = _policy_for(engine, enrollment.region_code, enrollment.program_key, "enrollmentId")
        enrollment.status, enrollment.end_date, enrollment.version = S.ENDED.value, on, enrollment.version + 1
        await _record_step(session, actor, policy, program, enrollment, "GRADUAL_EXIT_END", S.GRADUAL_EXIT.value, None,
                           on, AidChainKind.DECISION, f"渐退期 gradual exit over on {enrollment.gradual_exit_until}: ended")
    await session.flush()
    return len(due)


# --- monthly payments, set-at-a-time -----------------------------------------------------------------------------


async def disburse_month(session: AsyncSession, actor: Actor, period: str, scope: Scope) -> int:
    """Record the payments of ``period`` (YYYY-MM) for every receiving enrolment in scope that has a monthly
    amount and no payment for that period yet (a gradual exit only for months beginning before its end): two
    INSERT ... SELECT statements, safe to re-run."""
    if (len(period) != 7 or period[4] != "-" or not (period[:4] + period[5:]).isdigit()
            or not 1 <= int(period[5:]) <= 12):
        raise DomainError.single(ErrorCode.VALIDATION, f"period must be YYYY-MM, got {period!r}", "period")
    first_day = dt.date(int(period[:4]), int(period[5:]), 1)
    allowed = actor.scope("disburse", OBJECT)
    if allowed.empty:
        raise DomainError.single(ErrorCode.FORBIDDEN, "disbursing needs the 'disburse' permission", "period")
    e = Enrollment
    # the period's regular payment only: a temporary-aid stage paid this month is another installment
    paid = exists().where(Payment.enrollment_id == e.id, Payment.period == period,
                          Payment.installment == REGULAR_INSTALLMENT)
    # 渐退期: a gradual exit is paid for the months that begin before it is over (six from the month after the
    # review in GD-2021), whether or not ``reviews run`` has ended it yet
    receiving = or_(e.status == S.ACTIVE.value,
                    and_(e.status == S.GRADUAL_EXIT.value, e.gradual_exit_until > first_day))
    due = and_(receiving, e.monthly_amount.is_not(None),
               scope.predicate(e.region_code), allowed.predicate(e.region_code), ~paid)
    count = (await session.execute(select(func.count()).select_from(e).where(due))).scalar_one()
    if not count:
        return 0
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    await session.execute(insert(AidChainEvent).from_select(
        ["household_id", "at", "kind", "summary", "program_key", "ref_type", "ref_id", "actor"],
        select(e.household_id, literal(now), literal(AidChainKind.PAYMENT.value),
               literal(f"发放 monthly payment for {period}: ") + func.cast(e.monthly_amount, _text()) + literal(" yuan"),
               e.program_key, literal("enrollment"), e.id, literal(actor.username)).where(due)))
    await session.execute(insert(Payment).from_select(
        ["enrollment_id", "household_id", "amount", "period", "paid_at"],
        select(e.id, e.household_id, e.monthly_amount, literal(period), literal(now)).where(due)))
    audit.record(session, actor, "disburse", OBJECT, None, None, {"period": period, "payments": count})
    return count


def _text() -> String:
    return String()
