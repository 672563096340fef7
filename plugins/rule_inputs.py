"""Recording the inputs the rules of issue 11 decide on: a student's stage, year and hardship tier, a household's
housing difficulty, a certified employment difficulty or a business, an emergency event.

Why: the sources decide on facts the platform did not store (migration 0009). Each plugin that reads one
contributes the mutation that records it (``aidgraph_graphql_fields``); this module holds what they share:
scope checks (the data-scope predicate of the actor, on the record's region), idempotency keys, the audit
row, the aid-chain entry where a household is concerned and the outbox row the search index follows, all in
the request's one transaction (``run_mutation``: all or nothing). Bad input is a DomainError with a code and
the field, and nothing is written.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from aidgraph.plugin import (
    AidChainKind,
    DomainError,
    ErrorCode,
    FieldError,
    Household,
    Membership,
    Person,
    aidchain,
    audit,
    db_id,
    models,
    not_found,
    policy_engine,
)


def invalid(field: str, message: str) -> DomainError:
    return DomainError([FieldError(field, message, ErrorCode.VALIDATION)])


async def person_for_update(session, actor, global_id: str) -> Person:
    """The person, if the actor may update persons in its region (else NOT_FOUND, as if it did not exist)."""
    pid = db_id(global_id, "Person")
    person = await session.get(Person, pid) if pid is not None else None
    if person is None or person.region_code is None or not actor.may("update", person.region_code, "person"):
        raise not_found("person", "personId")
    return person


async def household_of(session, person_id: int) -> int | None:
    return (await session.execute(select(Membership.household_id).where(
        Membership.person_id == person_id, Membership.valid_to.is_(None)))).scalar_one_or_none()


async def household_by_id(session, global_id: str) -> Household:
    hid = db_id(global_id, "Household")
    household = await session.get(Household, hid) if hid is not None else None
    if household is None:
        raise not_found("household", "householdId")
    return household


def province_policy(info, region_code: str | None, program: str, field: str):
    """The province's policy where ``program`` is enabled, or a VALIDATION error on ``field``."""
    engine = policy_engine(info)
    code = (region_code or "")[:2]
    if code not in engine.province_codes() or program not in engine.province(code).programs:
        raise invalid(field, f"{program} is not enabled in province {code}")
    return engine.province(code)


def changed_person(session, actor, person: Person, action: str, details: dict[str, Any],
                   household_id: int | None, chain_text: str, program_key: str) -> None:
    """Version, audit, aid chain and outbox rows of a change to a person's rule inputs."""
    person.version = (person.version or 0) + 1
    audit.record(session, actor, action, "person", person.id, person.region_code, details)
    session.add(models.Outbox(entity=models.OutboxEntity.PERSON.value, entity_id=person.id, version=person.version))
    if household_id is not None:
        aidchain.append(session, household_id, AidChainKind.VERIFICATION, chain_text, program_key=program_key,
                        ref_type="person", ref_id=person.id, actor=actor.username)


def today() -> dt.date:
    return dt.date.today()
