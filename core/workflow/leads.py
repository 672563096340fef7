"""Leads reported by people and visits to households (主动发现+报告; GD-2021 §3 and §22, FJ-2021, GD-2022 §8).

Why: the sources want persons in difficulty found by people as well as by data: village assistants, visits,
the 12345 / 12349 hotlines, neighbours. Before this module nobody could report anyone; only the monthly data
comparison raised alerts.

:func:`report_lead` (the contract's ReportLead) records a lead naming a person (by id or ID number) or an
address, what was seen, the channel and the reporter, routed to the township (the household's when the person
is known and in the caller's scope, otherwise the township of ``regionCode``). A lead about a known household
is deduplicated against its open alert (status OPEN or VERIFYING): it joins that alert; otherwise it raises one
(level ``workflow.lead_alert_level``, illustrative; indicator ``lead:<channel>``) routed to the township like
the monitoring cycle's. A lead with only an address stays OPEN for the township to visit, and is closed with a
reason (:func:`close_lead`). :func:`record_visit` records a regular visit (巡访) with its findings; a visit that
finds the household needs help reports a VISIT lead in the same transaction. :func:`report_household_change`
records a recipient household's own report of a major change (重大变化报告, GD-2021) and brings its receiving
enrolments forward to review (复核).

Every write goes to the audit log, the aid chain where a household is concerned, and the outbox for alerts
(search indexes alerts). Permissions: ``lead`` create (report, visit), update (close), read (lists).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from aidgraph.core.access.actor import Actor
from aidgraph.core.graph import aidchain, audit, idempotency, outbox
from aidgraph.core.graph.idnumber import InvalidIdNumber, parse
from aidgraph.core.policy.engine import PolicyEngine, default_engine
from aidgraph.core.storage.errors import DomainError, ErrorCode, not_found
from aidgraph.core.storage.models import (
    OPEN_ALERT_STATUSES,
    AidChainKind,
    Alert,
    AlertStatus,
    Enrollment,
    EnrollmentStatus,
    Household,
    Lead,
    LeadChannel,
    LeadStatus,
    Membership,
    OutboxEntity,
    Person,
    Region,
    Visit,
)
from aidgraph.core.storage.encrypted import id_number_index
from aidgraph.core.workflow.casework import household_in_scope, province_params
from aidgraph.core.workflow.defaults import LEAD_OBJECT
from aidgraph.core.workflow.enrollment import OBJECT as ENROLLMENT_OBJECT


TOWNSHIP_DIGITS = 9


async def _person_in_scope(session: AsyncSession, actor: Actor, *, person_id: int | None, id_number: str | None
                           ) -> tuple[Person | None, str | None]:
    """(the person if known and readable by the caller, the normalised ID number given)."""
    number = None
    if id_number:
        try:
            number = parse(id_number).number
        except InvalidIdNumber as e:
            raise DomainError.single(ErrorCode.INVALID_ID_NUMBER, f"invalid ID number: {e}", "idNumber") from e
    scope = actor.scope("read", "person")
    if person_id is not None:
        person = (await session.execute(select(Person).where(Person.id == person_id,
                                                             scope.predicate(Person.region_code)))).scalar_one_or_none()
        if person is None:
            raise not_found("person", "personId")
        if number is not None and number != person.id_number:
            raise DomainError.single(ErrorCode.VALIDATION, "personId and idNumber name different persons", "idNumber")
        return person, person.id_number
    if number is not None:
        # A person outside the caller's scope is treated as unknown: the lead keeps the number, routes by region.
        person = (await session.execute(select(Person).where(Person.id_number_index == id_number_index(number),
                                                             scope.predicate(Person.region_code)))).scalar_one_or_none()
        return person, number
    return None, None


async def _current_household(session: AsyncSession, person_id: int) -> Household | None:
    return (await session.execute(select(Household).join(Membership, Membership.household_id == Household.id).where(
        Membership.person_id == person_id, Membership.valid_to.is_(None)))).scalar_one_or_none()


async def _region(session: AsyncSession, code: str | None, field: str = "regionCode") -> Region:
    region = await session.get(Region, code) if code else None
    if region is None:
        raise DomainError.single(ErrorCode.VALIDATION, f"unknown region {code!r}", field)
    return region


async def _join_or_raise(session: AsyncSession, actor: Actor, engine: PolicyEngine, household: Household,
                         person_id: int | None, lead: Lead, on: dt.date) -> Alert:
    """The household's open alert (joined), or a new one raised by the lead."""
    open_alert = (await session.execute(select(Alert).where(
        Alert.household_id == household.id, Alert.status.in_(OPEN_ALERT_STATUSES)).with_for_update())).scalar_one_or_none()
    if open_alert is not None:
        aidchain.append(session, household.id, AidChainKind.ALERT,
                        f"线索 lead ({lead.channel}) joined the open {open_alert.level} alert: {lead.description}",
                        ref_type="lead", ref_id=lead.id, actor=actor.username)
        return open_alert
    params = province_params(engine, household.region_code, "regionCode")
    level = params.value("workflow.lead_alert_level", on, default="YELLOW")
    alert = Alert(household_id=household.id, person_id=person_id, region_code=household.region_code,
                  township_code=household.region_code[:TOWNSHIP_DIGITS], level=level, score=0,
                  status=AlertStatus.OPEN.value, indicators=[f"lead:{lead.channel}"], month=on.strftime("%Y-%m"),
                  version=1)
    try:
        async with session.begin_nested():  # a concurrent alert for the household: join it instead
            session.add(alert)
            await session.flush()
    except IntegrityError:
        return await _join_or_raise(session, actor, engine, household, person_id, lead, on)
    outbox.emit(session, OutboxEntity.ALERT, alert.id, alert.version)
    aidchain.append(session, household.id, AidChainKind.ALERT,
                    f"线索 lead ({lead.channel}) raised a {level} alert ({params.cite('workflow.lead_alert_level')}): "
                    f"{lead.description}", ref_type="alert", ref_id=alert.id, actor=actor.username)
    audit.record(session, actor, "raise_alert", "alert", alert.id, alert.region_code,
                 {"lead": lead.id, "level": level, "channel": lead.channel})
    return alert


async def report_lead(session: AsyncSession, actor: Actor, engine: PolicyEngine | None = None, *, region_code: str,
                      channel: str, description: str, person_id: int | None = None, id_number: str | None = None,
                      name: str | None = None, address: str | None = None, reported_by: str | None = None,
                      idempotency_key: str | None = None, on: dt.date | None = None) -> Lead:
    """The contract's ReportLead. Raises DomainError (nothing written) for a lead with neither a person nor an
    address, an unknown channel or region, a region outside the caller's scope, an invalid ID number."""
    on = on or dt.date.today()
    engine = engine or default_engine()
    claim = await idempotency.claim(session, actor, "reportLead", idempotency_key, {
        "region_code": region_code, "channel": channel, "description": description, "person_id": person_id,
        "id_number": id_number, "name": name, "address": address, "reported_by": reported_by, "on": on})
    if (replayed := await claim.replayed_row(Lead, "lead_id", "lead")) is not None:
        return replayed
    address = (address or "").strip() or None
    if person_id is None and not (id_number or "").strip() and address is None:
        raise DomainError.single(ErrorCode.VALIDATION, "a lead needs a person (personId or idNumber) or an address",
                                 "personId")
    if channel not in LeadChannel.__members__:
        raise DomainError.single(ErrorCode.VALIDATION, f"unknown channel {channel!r}", "channel")
    if not description or not description.strip():
        raise DomainError.single(ErrorCode.VALIDATION, "say what was seen", "description")
    region = await _region(session, region_code)
    if not actor.may("create", region.code, LEAD_OBJECT):
        raise DomainError.single(ErrorCode.FORBIDDEN, f"reporting leads in region {region.code} is outside your "
                                                      "scope", "regionCode")
    person, number = await _person_in_scope(session, actor, person_id=person_id, id_number=id_number)
    household = await _current_household(session, person.id) if person is not None else None
    routed = household.region_code if household is not None else region.code
    if len(routed) < TOWNSHIP_DIGITS:
        raise DomainError.single(ErrorCode.VALIDATION, "the lead cannot be routed: name a township or village "
                                                       "(regionCode) or a person living in one", "regionCode")
    township = await _region(session, routed[:TOWNSHIP_DIGITS])
    lead = Lead(region_code=routed, township_code=township.code, person_id=person.id if person else None,
                household_id=household.id if household else None, id_number=number,
                name=(name or "").strip() or (person.name if person else None), address=address, channel=channel,
                description=description.strip(), reported_by=(reported_by or "").strip() or None,
                status=LeadStatus.OPEN.value, created_by=actor.username, version=1)
    session.add(lead)
    await session.flush()
    if household is not None:
        alert = await _join_or_raise(session, actor, engine, household, person.id if person else None, lead, on)
        lead.status, lead.alert_id = LeadStatus.ALERTED.value, alert.id
    audit.record(session, actor, "report_lead", LEAD_OBJECT, lead.id, lead.region_code,
                 {"channel": channel, "status": lead.status, "alert": lead.alert_id, "township": township.code,
                  "person_known": person is not None})
    await session.flush()
    await claim.remember({"lead_id": lead.id})
    return lead


async def close_lead(session: AsyncSession, actor: Actor, *, lead_id: int | None, reason: str) -> Lead:
    """Close an OPEN lead with a reason (not found at the address, already aided, not in difficulty...)."""
    lead = None
    if lead_id is not None:
        lead = (await session.execute(select(Lead).where(
            Lead.id == lead_id, actor.scope("read", LEAD_OBJECT).predicate(Lead.region_code)).with_for_update())
        ).scalar_one_or_none()
    if lead is None:
        raise not_found("lead", "leadId")
    if not actor.may("update", lead.region_code, LEAD_OBJECT):
        raise DomainError.single(ErrorCode.FORBIDDEN, "closing leads needs the 'update' permission on leads here",
                                 "leadId")
    if not reason or not reason.strip():
        raise DomainError.single(ErrorCode.VALIDATION, "a reason is required", "reason")
    if lead.status != LeadStatus.OPEN.value:
        raise DomainError.single(ErrorCode.INVALID_TRANSITION, f"only OPEN leads are closed here, this one is "
                                                               f"{lead.status}", "leadId")
    lead.status, lead.close_reason = LeadStatus.CLOSED.value, reason.strip()
    lead.closed_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    lead.version += 1
    if lead.household_id is not None:
        aidchain.append(session, lead.household_id, AidChainKind.VERIFICATION, f"线索 lead closed: {lead.close_reason}",
                        ref_type="lead", ref_id=lead.id, actor=actor.username)
    audit.record(session, actor, "close_lead", LEAD_OBJECT, lead.id, lead.region_code, {"reason": lead.close_reason})
    await session.flush()
    return lead


async def record_visit(session: AsyncSession, actor: Actor, engine: PolicyEngine | None = None, *,
                       household_id: int | None, findings: str, visited_on: dt.date | None = None,
                       needs_help: bool = False, idempotency_key: str | None = None) -> Visit:
    """巡访: a visit to a household with its findings; ``needs_help`` also reports a VISIT lead (joins or raises
    the household's alert)."""
    engine = engine or default_engine()
    today = dt.date.today()
    visited_on = visited_on or today
    claim = await idempotency.claim(session, actor, "recordVisit", idempotency_key, {
        "household_id": household_id, "findings": findings, "visited_on": visited_on, "needs_help": needs_help})
    if (replayed := await claim.replayed_row(Visit, "visit_id", "visit")) is not None:
        return replayed
    household = await household_in_scope(session, actor, household_id)
    if not actor.may("create", household.region_code, LEAD_OBJECT):
        raise DomainError.single(ErrorCode.FORBIDDEN, "recording visits needs the 'create' permission on leads here",
                                 "householdId")
    if not findings or not findings.strip():
        raise DomainError.single(ErrorCode.VALIDATION, "write down what the visit found", "findings")
    if visited_on > today:
        raise DomainError.single(ErrorCode.VALIDATION, f"the visit date {visited_on} is in the future", "visitedOn")
    visit = Visit(household_id=household.id, region_code=household.region_code, visited_on=visited_on,
                  visitor=actor.username, findings=findings.strip(), needs_help=needs_help)
    session.add(visit)
    await session.flush()
    aidchain.append(session, household.id, AidChainKind.VERIFICATION,
                    f"巡访 visit on {visited_on}: {visit.findings}" + ("; needs help" if needs_help else ""),
                    ref_type="visit", ref_id=visit.id, actor=actor.username)
    audit.record(session, actor, "record_visit", LEAD_OBJECT, visit.id, household.region_code,
                 {"household": household.id, "needs_help": needs_help})
    if needs_help:
        head = (await session.execute(select(Membership.person_id).where(
            Membership.household_id == household.id, Membership.valid_to.is_(None),
            Membership.relation_to_head == "SELF"))).scalar_one_or_none()
        lead = await report_lead(session, actor, engine, region_code=household.region_code, channel="VISIT",
                                 description=visit.findings, person_id=head, address=household.address,
                                 reported_by=actor.username, on=visited_on)
        visit.lead_id = lead.id
        await session.flush()
    await claim.remember({"visit_id": visit.id})
    return visit


# --- 重大变化报告: a recipient household reports a major change ------------------------------------------------

CHANGE_KINDS = {"POPULATION": "家庭人口", "ECONOMIC": "经济状况"}
"""GD-2021 落实救助对象家庭人口、经济状况重大变化报告机制: the two kinds of change the source names."""


async def report_household_change(session: AsyncSession, actor: Actor, *, household_id: int | None, kind: str,
                                  description: str, changed_on: dt.date | None = None,
                                  idempotency_key: str | None = None) -> tuple[Household, list[Enrollment]]:
    """A recipient household's report of a major change in its population or economic situation (重大变化报告,
    GD-2021), recorded by the township for the household: the household's receiving enrolments are brought
    forward to review (复核) on the day of the change (ACTIVE ones: a gradual exit already runs out), so the scheduled review run (``aidgraph reviews run``)
    re-decides them on the facts recorded by then; aid chain and audit. Returns the household and the
    enrolments brought forward (none when nothing is received: the report is still on the aid chain)."""
    today = dt.date.today()
    changed_on = changed_on or today
    claim = await idempotency.claim(session, actor, "reportHouseholdChange", idempotency_key, {
        "household_id": household_id, "kind": kind, "description": description, "changed_on": changed_on})
    if claim.replay is not None:
        household = await claim.replayed_row(Household, "household_id", "household")
        assert household is not None
        return household, list((await session.execute(select(Enrollment).where(
            Enrollment.id.in_(claim.replay.get("enrollments", []))).order_by(Enrollment.id))).scalars())
    household = await household_in_scope(session, actor, household_id)
    if not actor.may("review", household.region_code, ENROLLMENT_OBJECT):
        raise DomainError.single(ErrorCode.FORBIDDEN, "recording a change report needs the 'review' permission on "
                                                      "enrolments here", "householdId")
    if kind not in CHANGE_KINDS:
        raise DomainError.single(ErrorCode.VALIDATION, f"unknown kind {kind!r} (known: {', '.join(CHANGE_KINDS)})",
                                 "kind")
    if not description or not description.strip():
        raise DomainError.single(ErrorCode.VALIDATION, "say what changed", "description")
    if changed_on > today:
        raise DomainError.single(ErrorCode.VALIDATION, f"the change date {changed_on} is in the future", "changedOn")
    receiving = list((await session.execute(select(Enrollment).where(
        Enrollment.household_id == household.id,
        Enrollment.status == EnrollmentStatus.ACTIVE.value)  # what the review run re-decides
        .order_by(Enrollment.id).with_for_update())).scalars())
    due = [e for e in receiving if e.next_review_date is None or e.next_review_date > changed_on]
    for e in due:
        e.next_review_date = changed_on
        e.version += 1
    await session.flush()
    programs = ", ".join(e.program_key for e in due) or "none received"
    aidchain.append(session, household.id, AidChainKind.VERIFICATION,
                    f"重大变化报告 {CHANGE_KINDS[kind]} change on {changed_on}: {description.strip()}; 复核 brought "
                    f"forward to {changed_on} for: {programs}", ref_type="household", ref_id=household.id,
                    actor=actor.username)
    audit.record(session, actor, "report_household_change", ENROLLMENT_OBJECT, household.id, household.region_code,
                 {"kind": kind, "changed_on": changed_on.isoformat(), "enrollments": [e.id for e in due]})
    await claim.remember({"household_id": household.id, "enrollments": [e.id for e in due]})
    return household, due
