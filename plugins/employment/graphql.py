"""The employment plugin's GraphQL contribution: ``recordEmploymentSupport``.

Why: tiered help for certified employment-difficulty persons (就业困难人员认定, GD-2021 / GD-2024) and Gansu's
entrepreneurship subsidy after a year of operation (GS-2024) decide on a certification level and a business
registration date that people record. A level below 1 or a registration date in the future is a VALIDATION
error on its field, and nothing is written.
"""

from __future__ import annotations

import datetime as dt

import strawberry

from aidgraph.plugin import GraphQLContribution, Info, UserError, idempotency, run_mutation
from aidgraph.plugins.rule_inputs import (
    changed_person,
    household_of,
    invalid,
    person_for_update,
    province_policy,
    today,
)


@strawberry.input(description="A person's certified employment-difficulty level and business registration date.")
class EmploymentSupportInput:
    person_id: strawberry.ID
    difficulty_level: int | None = None
    business_registered_on: dt.date | None = None
    idempotency_key: str | None = None


@strawberry.type(description="The employment inputs recorded for a person.")
class EmploymentSupport:
    person_id: strawberry.ID
    difficulty_level: int | None
    business_registered_on: dt.date | None


@strawberry.type
class EmploymentSupportPayload:
    employment: EmploymentSupport | None
    errors: list[UserError]


async def record_employment_support(session, info, actor, input: EmploymentSupportInput) -> EmploymentSupport:
    claim = await idempotency.claim(session, actor, "recordEmploymentSupport", input.idempotency_key, input)
    if (previous := claim.replay) is not None:
        registered = previous["business_registered_on"]
        return EmploymentSupport(person_id=previous["person_id"], difficulty_level=previous["difficulty_level"],
                                 business_registered_on=dt.date.fromisoformat(registered) if registered else None)
    person = await person_for_update(session, actor, input.person_id)
    province_policy(info, person.region_code, "employment", "personId")
    if input.difficulty_level is not None and input.difficulty_level < 1:
        raise invalid("difficultyLevel", "a certified level is 1 or more")
    if input.business_registered_on is not None and input.business_registered_on > today():
        raise invalid("businessRegisteredOn", f"{input.business_registered_on} is in the future")
    person.employment_difficulty_level = input.difficulty_level
    person.business_registered_on = input.business_registered_on
    registered = input.business_registered_on.isoformat() if input.business_registered_on else None
    changed_person(session, actor, person, "record_employment_support",
                   {"difficulty_level": input.difficulty_level, "business_registered_on": registered},
                   await household_of(session, person.id),
                   f"就业救助 inputs recorded: difficulty level {input.difficulty_level}, business registered "
                   f"{registered}", "employment")
    await claim.remember({"person_id": input.person_id, "difficulty_level": input.difficulty_level,
                          "business_registered_on": registered})
    return EmploymentSupport(person_id=input.person_id, difficulty_level=input.difficulty_level,
                             business_registered_on=input.business_registered_on)


@strawberry.type
class EmploymentMutation:
    @strawberry.mutation(description="Record a certified employment-difficulty level (就业困难人员认定) and the "
                                     "registration date of the person's business.")
    async def record_employment_support(self, info: Info, input: EmploymentSupportInput) -> EmploymentSupportPayload:
        result, errors = await run_mutation(info, lambda s: record_employment_support(s, info, info.context.actor,
                                                                                      input))
        return EmploymentSupportPayload(employment=result, errors=errors)


def contribution() -> GraphQLContribution:
    return GraphQLContribution(mutation=EmploymentMutation)
