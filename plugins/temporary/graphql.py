"""The temporary-aid plugin's GraphQL contribution: ``recordEmergency`` and ``explainEmergency``.

Why: emergency-type temporary aid (急难型临时救助) follows from the emergency itself (GD-2021 §15): its kind,
the place and the date. It is recorded by the officer of the place where it happened (由急难发生地实施: the
actor needs the right to update households *there*, whatever region the household is registered in), and an
aid-first decision leaves an explanation due afterwards (先行救助，事后补充说明情况) with a deadline
(``temporary.explanation_days`` after the event). A kind the province does not aid, an unknown place or a date
in the future is a VALIDATION error on its field, and nothing is written.
"""

from __future__ import annotations

import datetime as dt

import strawberry
from sqlalchemy import select

from aidgraph.plugin import (
    widened,
    AidChainKind,
    GraphQLContribution,
    Info,
    UserError,
    aidchain,
    audit,
    db_id,
    idempotency,
    models,
    not_found,
    run_mutation,
)
from aidgraph.plugins.rule_inputs import household_by_id, invalid, province_policy, today


@strawberry.input(description="An emergency (急难): kind, where (region code) and when it happened.")
class EmergencyInput:
    household_id: strawberry.ID
    kind: str
    region_code: str
    occurred_on: dt.date
    person_id: strawberry.ID | None = None
    idempotency_key: str | None = None


@strawberry.input(description="The explanation due after aid first (事后补充说明情况).")
class EmergencyExplanationInput:
    event_id: int
    explanation: str


@strawberry.type(name="EmergencyEvent", description="An emergency recorded for a household.")
class EmergencyEventType:
    id: int
    kind: str
    region_code: str
    occurred_on: dt.date
    explanation_due: dt.date | None
    explained_on: dt.date | None


@strawberry.type
class EmergencyPayload:
    event: EmergencyEventType | None
    errors: list[UserError]


def _view(row) -> EmergencyEventType:
    return EmergencyEventType(id=row.id, kind=row.kind, region_code=row.region_code, occurred_on=row.occurred_on,
                              explanation_due=row.explanation_due, explained_on=row.explained_on)


async def record_emergency(session, info, actor, input: EmergencyInput) -> EmergencyEventType:
    claim = await idempotency.claim(session, actor, "recordEmergency", input.idempotency_key, input)
    if (replayed := await claim.replayed_row(models.EmergencyEvent, "event_id", "emergency event")) is not None:
        return _view(replayed)
    region = await session.get(models.Region, input.region_code)
    if region is None:
        raise invalid("regionCode", f"unknown region {input.region_code!r}")
    if not actor.may("update", input.region_code, "household"):
        raise not_found("region", "regionCode")
    # 由急难发生地实施临时救助: the officer of the emergency's place records it for a household registered anywhere,
    # so the household is looked up beyond the caller's regions (under PostgreSQL's row-level security, named).
    async with widened(session, "emergency at its place (急难发生地)"):
        household = await household_by_id(session, input.household_id)
    policy = province_policy(info, input.region_code, "temporary_emergency", "regionCode")
    kinds = policy.params.value("temporary.emergency_kinds", today(), default=None) or []
    if input.kind not in kinds:
        raise invalid("kind", f"province {policy.code} does not aid emergencies of kind {input.kind!r} "
                              f"(known: {', '.join(kinds)})")
    if input.occurred_on > today():
        raise invalid("occurredOn", f"{input.occurred_on} is in the future")
    person_id = None
    if input.person_id is not None:
        person_id = db_id(input.person_id, "Person")
        member = (await session.execute(select(models.Membership.id).where(
            models.Membership.person_id == person_id, models.Membership.household_id == household.id,
            models.Membership.valid_to.is_(None)))).first() if person_id is not None else None
        if member is None:
            raise invalid("personId", "not a current member of the household")
    days = int(policy.params.value("temporary.explanation_days", today()))
    row = models.EmergencyEvent(household_id=household.id, person_id=person_id, kind=input.kind,
                                region_code=input.region_code, occurred_on=input.occurred_on,
                                explanation_due=input.occurred_on + dt.timedelta(days=days),
                                recorded_by=actor.username)
    session.add(row)
    await session.flush()
    household.version = (household.version or 0) + 1
    audit.record(session, actor, "record_emergency", "emergency_event", row.id, input.region_code,
                 {"kind": input.kind, "occurred_on": input.occurred_on.isoformat(), "household_id": household.id})
    aidchain.append(session, household.id, AidChainKind.VERIFICATION,
                    f"急难 {input.kind} at {input.region_code} on {input.occurred_on}: explanation due "
                    f"{row.explanation_due} ({policy.params.cite('temporary.explanation_days')})",
                    program_key="temporary_emergency", ref_type="emergency_event", ref_id=row.id,
                    actor=actor.username)
    session.add(models.Outbox(entity=models.OutboxEntity.HOUSEHOLD.value, entity_id=household.id,
                              version=household.version))
    await claim.remember({"event_id": row.id})
    return _view(row)


async def explain_emergency(session, actor, input: EmergencyExplanationInput) -> EmergencyEventType:
    row = await session.get(models.EmergencyEvent, input.event_id)
    if row is None or not actor.may("update", row.region_code, "household"):
        raise not_found("emergency event", "eventId")
    if not input.explanation.strip():
        raise invalid("explanation", "must not be empty")
    row.explained_on, row.explanation = today(), input.explanation.strip()
    audit.record(session, actor, "explain_emergency", "emergency_event", row.id, row.region_code,
                 {"late": row.explanation_due is not None and row.explained_on > row.explanation_due})
    aidchain.append(session, row.household_id, AidChainKind.VERIFICATION,
                    f"急难 explanation given on {row.explained_on} (due {row.explanation_due})",
                    program_key="temporary_emergency", ref_type="emergency_event", ref_id=row.id,
                    actor=actor.username)
    return _view(row)


@strawberry.type
class TemporaryMutation:
    @strawberry.mutation(description="Record an emergency (kind, place, date) where it happened; emergency-type "
                                     "temporary aid follows from it.")
    async def record_emergency(self, info: Info, input: EmergencyInput) -> EmergencyPayload:
        event, errors = await run_mutation(info, lambda s: record_emergency(s, info, info.context.actor, input))
        return EmergencyPayload(event=event, errors=errors)

    @strawberry.mutation(description="Give the explanation due after aid first (事后补充说明情况).")
    async def explain_emergency(self, info: Info, input: EmergencyExplanationInput) -> EmergencyPayload:
        event, errors = await run_mutation(info, lambda s: explain_emergency(s, info.context.actor, input))
        return EmergencyPayload(event=event, errors=errors)


def contribution() -> GraphQLContribution:
    return GraphQLContribution(mutation=TemporaryMutation)
