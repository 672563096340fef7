"""Referrals (分办转办): one window, handled together (一门受理、协同办理; GD-2021 §23, GS-2024 "进一个门、办所有事").

Why: the sources want the township office that accepts an application to tell the applicant once what to bring
(一次性告知), to pass the parts other departments handle to them (分办转办) and to see them done in time (限时办理);
before this module a referral was a line of free text in the aid chain with no department and no deadline.

A :class:`~aidgraph.core.storage.models.Referral` goes from the accepting office or a caseworker to a receiving
department named by key from the province's list (``workflow.departments``, declared by
:mod:`aidgraph.core.workflow.defaults`), with a reason, the documents told once and a due date that defaults to
the province's time limit for that department (``workflow.referral_days``; illustrative: no source gives days).
Its status moves SENT -> ACCEPTED -> DONE, or SENT/ACCEPTED -> RETURNED, enforced here; each step needs the
``referral`` Casbin action (``create`` to refer, ``update`` to answer) in the household's region, and writes the
aid chain (REFERRAL) and the audit log in the caller's transaction. A referral is overdue while it is SENT or
ACCEPTED after its due date (:func:`overdue_clause`, the same rule in SQL and in Python).

Three callers create referrals: a caseworker (:func:`refer_case`, the contract's ReferCase), an alert's REFER
disposition and the employment plugin's automatic referral (both through :func:`create_referral`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from aidgraph.core.access.actor import Actor
from aidgraph.core.access.authz import may_partitioned, partitioned_predicate
from aidgraph.core.access.scope import Scope
from aidgraph.core.graph import aidchain, audit, idempotency
from aidgraph.core.graph.idnumber import InvalidIdNumber, parse
from aidgraph.core.policy.engine import PolicyEngine, default_engine
from aidgraph.core.policy.parameters import ProvinceParams
from aidgraph.core.storage.errors import DomainError, ErrorCode, not_found
from aidgraph.core.storage.models import (
    OPEN_ENROLLMENT_STATUSES,
    OPEN_REFERRAL_STATUSES,
    AidChainKind,
    Enrollment,
    EnrollmentStatus,
    Household,
    Membership,
    Person,
    Referral,
    ReferralStatus,
)
from aidgraph.core.storage.encrypted import id_number_index
from aidgraph.core.workflow.defaults import REFERRAL_OBJECT
from aidgraph.core.workflow.enrollment import OBJECT as ENROLLMENT_OBJECT, _policy_for, _record_step

R = ReferralStatus
ANSWERS: dict[tuple[str, str], str] = {
    # (from status, action): to status
    (R.SENT.value, "ACCEPT"): R.ACCEPTED.value,
    (R.ACCEPTED.value, "COMPLETE"): R.DONE.value,
    (R.SENT.value, "RETURN"): R.RETURNED.value,
    (R.ACCEPTED.value, "RETURN"): R.RETURNED.value,
}
SOURCES = ("CASEWORKER", "ALERT", "ENROLLMENT", "APPLICATION")
MAX_DOCUMENTS = 50


def today() -> dt.date:
    return dt.date.today()


def overdue_clause(on: dt.date):
    """SQL: open (SENT or ACCEPTED) and past its due date on ``on``."""
    return and_(Referral.status.in_([s.value for s in OPEN_REFERRAL_STATUSES]), Referral.due_date < on)


def is_overdue(referral: Referral, on: dt.date | None = None) -> bool:
    """The same rule as :func:`overdue_clause`, for one loaded row."""
    return referral.status in {s.value for s in OPEN_REFERRAL_STATUSES} and referral.due_date < (on or today())


def province_params(engine: PolicyEngine, region_code: str, field: str = "householdId") -> ProvinceParams:
    province = region_code[:2]
    if province not in engine.province_codes():
        raise DomainError.single(ErrorCode.VALIDATION, f"province {province} is not configured", field)
    return engine.province(province).params


def departments(params: ProvinceParams, on: dt.date) -> dict[str, str]:
    """The province's receiving departments in force on ``on``: key -> name."""
    return dict(params.value("workflow.departments", on, default={}) or {})


def default_due_date(params: ProvinceParams, department: str, on: dt.date, region_code: str) -> tuple[dt.date, int]:
    """限时办理: ``on`` plus the province's days for ``department`` (or its ``default``); (date, days)."""
    days_by_department = params.value("workflow.referral_days", on, region=region_code, default={}) or {}
    days = days_by_department.get(department, days_by_department.get("default"))
    if days is None:
        raise DomainError.single(ErrorCode.VALIDATION, f"no time limit is configured for department {department!r} "
                                                       "(workflow.referral_days): give a dueDate", "dueDate")
    return on + dt.timedelta(days=int(days)), int(days)


def _clean_documents(documents: list[str] | None) -> list[str]:
    cleaned = [d.strip() for d in (documents or []) if d and d.strip()]
    if len(cleaned) > MAX_DOCUMENTS:
        raise DomainError.single(ErrorCode.VALIDATION, f"at most {MAX_DOCUMENTS} documents", "documents")
    return list(dict.fromkeys(cleaned))


async def create_referral(session: AsyncSession, actor: Actor, params: ProvinceParams, household: Household, *,
                          department: str, reason: str, documents: list[str] | None = None,
                          due_date: dt.date | None = None, person_id: int | None = None, source: str = "CASEWORKER",
                          source_id: int | None = None, from_region_code: str | None = None,
                          on: dt.date | None = None) -> Referral:
    """Write one referral (status SENT) with its aid-chain and audit rows; validation only, no permission check
    (callers check theirs: :func:`refer_case` the ``referral`` create action, the alert disposition its own)."""
    on = on or today()
    known = departments(params, on)
    if department not in known:
        raise DomainError.single(ErrorCode.VALIDATION, f"unknown department {department!r} (configured: "
                                                       f"{', '.join(sorted(known)) or 'none'})", "department")
    if not reason or not reason.strip():
        raise DomainError.single(ErrorCode.VALIDATION, "a reason is required: say what the department should do",
                                 "reason")
    if source not in SOURCES:
        raise ValueError(f"unknown referral source {source!r}")
    if due_date is None:
        due_date, days = default_due_date(params, department, on, household.region_code)
        limit = f"due {due_date} ({days} days, {params.cite('workflow.referral_days')})"
    else:
        if due_date < on:
            raise DomainError.single(ErrorCode.VALIDATION, f"the due date {due_date} is in the past", "dueDate")
        limit = f"due {due_date}"
    docs = _clean_documents(documents)
    referral = Referral(household_id=household.id, person_id=person_id, region_code=household.region_code,
                        from_region_code=from_region_code or _office(actor), department=department,
                        reason=reason.strip(), documents=docs, due_date=due_date, status=R.SENT.value,
                        source=source, source_id=source_id, sent_by=actor.username, version=1)
    session.add(referral)
    await session.flush()
    told = f"; 一次性告知 documents: {', '.join(docs)}" if docs else ""
    aidchain.append(session, household.id, AidChainKind.REFERRAL,
                    f"转办 referred to {known[department]} ({department}), {limit}: {referral.reason}{told}",
                    ref_type="referral", ref_id=referral.id, actor=actor.username)
    audit.record(session, actor, "refer", REFERRAL_OBJECT, referral.id, household.region_code,
                 {"department": department, "due_date": due_date.isoformat(), "source": source,
                  "source_id": source_id, "documents": len(docs)})
    return referral


def _office(actor: Actor) -> str | None:
    return actor.grants[0].region_code if actor.grants else None


async def household_in_scope(session: AsyncSession, actor: Actor, household_id: int | None, field: str = "householdId"
                             ) -> Household:
    household = await session.get(Household, household_id) if household_id is not None else None
    if household is None or not actor.may("read", household.region_code, "household"):
        raise not_found("household", field)
    return household


async def refer_case(session: AsyncSession, actor: Actor, engine: PolicyEngine | None = None, *,
                     household_id: int | None, department: str, reason: str, person_id: int | None = None,
                     documents: list[str] | None = None, due_date: dt.date | None = None,
                     idempotency_key: str | None = None, on: dt.date | None = None) -> Referral:
    """The contract's ReferCase: a caseworker refers a household (or one member) to a department."""
    engine = engine or default_engine()
    claim = await idempotency.claim(session, actor, "referCase", idempotency_key, {
        "household_id": household_id, "department": department, "reason": reason, "person_id": person_id,
        "documents": documents, "due_date": due_date, "on": on})
    if (replayed := await claim.replayed_row(Referral, "referral_id", "referral")) is not None:
        return replayed
    household = await household_in_scope(session, actor, household_id)
    if not actor.may("create", household.region_code, REFERRAL_OBJECT):
        raise DomainError.single(ErrorCode.FORBIDDEN, f"referring needs the 'create' permission on referrals in "
                                                      f"region {household.region_code}", "householdId")
    if person_id is not None:
        member = (await session.execute(select(Membership.id).where(
            Membership.household_id == household.id, Membership.person_id == person_id,
            Membership.valid_to.is_(None)))).first()
        if member is None:
            raise DomainError.single(ErrorCode.VALIDATION, "the person is not a current member of the household",
                                     "personId")
    params = province_params(engine, household.region_code)
    referral = await create_referral(session, actor, params, household, department=department, reason=reason,
                                     documents=documents, due_date=due_date, person_id=person_id, on=on)
    await claim.remember({"referral_id": referral.id})
    return referral


async def answer_referral(session: AsyncSession, actor: Actor, *, referral_id: int | None, action: str, answer: str,
                          on: dt.date | None = None) -> Referral:
    """The contract's AnswerReferral: ACCEPT, COMPLETE or RETURN, with the department's answer."""
    if referral_id is None:
        raise not_found("referral", "referralId")
    referral = (await session.execute(select(Referral).where(Referral.id == referral_id).with_for_update())
                ).scalar_one_or_none()
    if referral is None or not may_referral(actor, "read", referral):
        raise not_found("referral", "referralId")
    if not may_referral(actor, "update", referral):
        raise DomainError.single(ErrorCode.FORBIDDEN, "answering a referral needs the 'update' permission on "
                                                      "referrals in its region", "referralId")
    if action not in {a for _, a in ANSWERS}:
        raise DomainError.single(ErrorCode.VALIDATION, f"unknown action {action!r}", "action")
    if not answer or not answer.strip():
        raise DomainError.single(ErrorCode.VALIDATION, "an answer is required", "answer")
    to_status = ANSWERS.get((referral.status, action))
    if to_status is None:
        raise DomainError.single(ErrorCode.INVALID_TRANSITION, f"cannot {action} a referral that is {referral.status}",
                                 "action")
    from_status = referral.status
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    was_overdue = is_overdue(referral, on)
    referral.status, referral.answer, referral.answered_by, referral.answered_at = (to_status, answer.strip(),
                                                                                    actor.username, now)
    referral.version += 1
    await session.flush()
    late = " (after its due date)" if was_overdue else ""
    aidchain.append(session, referral.household_id, AidChainKind.REFERRAL,
                    f"转办 {referral.department}: {from_status} -> {to_status}{late}: {referral.answer}",
                    ref_type="referral", ref_id=referral.id, actor=actor.username)
    audit.record(session, actor, "answer_referral", REFERRAL_OBJECT, referral.id, referral.region_code,
                 {"action": action, "from": from_status, "to": to_status, "overdue": was_overdue})
    return referral


def may_referral(actor: Actor, action: str, referral: Referral) -> bool:
    """``action`` on one referral: a grant on referrals in its region, or on its receiving department's
    (``referral:<department key>``, a department analyst)."""
    return may_partitioned(actor, action, referral.region_code, REFERRAL_OBJECT, referral.department)


def referral_visibility(actor: Actor, department_keys: Iterable[str], action: str = "read") -> Any:
    """The referrals the actor may take ``action`` on, as one SQL predicate: those in its ``referral`` scope, and
    those sent to a department it holds ``referral:<department>`` for (a department sees its own referrals,
    with their reasons, and no other department's)."""
    return partitioned_predicate(actor, REFERRAL_OBJECT, Referral.region_code, Referral.department,
                                 {key: [key] for key in department_keys}, action)


def all_departments(engine: PolicyEngine, on: dt.date | None = None) -> list[str]:
    """The receiving departments of every configured province (``workflow.departments`` keys)."""
    day = on or today()
    return sorted({key for code in engine.province_codes() for key in departments(engine.province(code).params, day)})


def referral_filters(visible: Any, region_code: str, *, department: str | None = None, status: str | None = None,
                     overdue_only: bool = False, on: dt.date | None = None) -> list[Any]:
    """The WHERE clauses of a referral list: the region, what the caller may see (:func:`referral_visibility`,
    one predicate in SQL) and the filters."""
    where: list[Any] = [Scope.of([region_code]).predicate(Referral.region_code), visible]
    if department:
        where.append(Referral.department == department)
    if status:
        where.append(Referral.status == status)
    if overdue_only:
        where.append(overdue_clause(on or today()))
    return where


# --- one window: applications accepted away from home (异地受理) -------------------------------------------------


async def accept_application(session: AsyncSession, actor: Actor, engine: PolicyEngine | None = None, *,
                             id_number: str, program_key: str, documents: list[str] | None = None,
                             note: str | None = None, idempotency_key: str | None = None,
                             on: dt.date | None = None) -> Referral:
    """一门受理 / 异地受理 (GD-2021 §23): any township or county office of the province accepts an application
    for any program from the applicant's ID number, also for a household registered elsewhere, and routes it
    to the office that decides it (the household's township) as an APPLIED enrolment plus an APPLICATION
    referral to civil affairs, with the documents told once. The accepting office learns where the case went,
    never the household's records (they stay outside its scope). Returns the routing referral."""
    on = on or today()
    engine = engine or default_engine()
    claim = await idempotency.claim(session, actor, "acceptApplication", idempotency_key, {
        "id_number": id_number, "program_key": program_key, "documents": documents, "note": note, "on": on})
    if (replayed := await claim.replayed_row(Referral, "referral_id", "referral")) is not None:
        return replayed
    try:
        number = parse(id_number).number
    except InvalidIdNumber as e:
        raise DomainError.single(ErrorCode.INVALID_ID_NUMBER, f"invalid ID number: {e}", "idNumber") from e
    offices = actor.scope("apply", ENROLLMENT_OBJECT)
    office = next((g.region_code for g in actor.grants if offices.contains(g.region_code)), None)
    if offices.empty or office is None:
        raise DomainError.single(ErrorCode.FORBIDDEN, "accepting applications needs the 'apply' permission on "
                                                      "enrolments at your office", "idNumber")
    household = (await session.execute(select(Household).join(Membership, Membership.household_id == Household.id)
                                       .join(Person, Person.id == Membership.person_id).where(
        Person.id_number_index == id_number_index(number), Membership.valid_to.is_(None)))).scalar_one_or_none()
    if household is None or household.region_code[:2] != office[:2]:
        raise DomainError.single(ErrorCode.NOT_FOUND, "no household registered in this province for this ID number: "
                                                      "register the household first", "idNumber")
    policy, program = _policy_for(engine, household.region_code, program_key)
    open_one = (await session.execute(select(Enrollment.status).where(
        Enrollment.household_id == household.id, Enrollment.program_key == program_key,
        Enrollment.person_id.is_(None), Enrollment.status.in_([s.value for s in OPEN_ENROLLMENT_STATUSES])))).first()
    if open_one is not None:
        raise DomainError.single(ErrorCode.VALIDATION, f"the household already has an open {program_key} case "
                                                       f"({open_one.status})", "programKey")
    deciding = household.region_code[:9]
    enrollment = Enrollment(household_id=household.id, program_key=program_key, province_code=policy.code,
                            region_code=household.region_code, status=EnrollmentStatus.APPLIED.value, version=1,
                            details={"applied_on": on.isoformat(), "accepted_at": office, "accepted_by": actor.username})
    session.add(enrollment)
    await session.flush()
    away = "异地受理 " if not household.region_code.startswith(office) else ""
    await _record_step(session, actor, policy, program, enrollment, "APPLY", None, note, on, AidChainKind.APPLICATION,
                       f"申请 application for {program.name}, {away}accepted at office {office}, routed to {deciding}")
    referral = await create_referral(
        session, actor, policy.params, household, department="civil_affairs", documents=documents,
        reason=f"一门受理: application for {program.name} accepted at office {office}; decide it at {deciding}"
               + (f" ({note.strip()})" if note and note.strip() else ""),
        source="APPLICATION", source_id=enrollment.id, from_region_code=office, on=on)
    await claim.remember({"referral_id": referral.id})
    return referral
