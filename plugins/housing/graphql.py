"""The housing plugin's GraphQL contribution: ``recordHousingNeed`` (住房困难, GD-2021 §10).

Why: housing aid covers households of the covered categories *in housing difficulty*; the difficulty is a
finding about the household that people record. Writes the household, its audit row, an aid-chain entry and
the outbox row, in one transaction; a household outside the actor's scope is NOT_FOUND.
"""

from __future__ import annotations

import strawberry

from aidgraph.plugin import (AidChainKind, GraphQLContribution, Info, UserError, aidchain, audit, idempotency, models,
                             not_found, run_mutation)
from aidgraph.plugins.rule_inputs import household_by_id, province_policy


@strawberry.input(description="Whether a household's housing was found below the local standard (住房困难).")
class HousingNeedInput:
    household_id: strawberry.ID
    housing_need: bool
    idempotency_key: str | None = None


@strawberry.type
class HousingNeedPayload:
    housing_need: bool | None
    errors: list[UserError]


async def record_housing_need(session, info, actor, input: HousingNeedInput) -> bool:
    claim = await idempotency.claim(session, actor, "recordHousingNeed", input.idempotency_key, input)
    if claim.replay is not None:
        return claim.replay["housing_need"]
    household = await household_by_id(session, input.household_id)
    if not actor.may("update", household.region_code, "household"):
        raise not_found("household", "householdId")
    province_policy(info, household.region_code, "housing", "householdId")
    household.housing_need = input.housing_need
    household.version = (household.version or 0) + 1
    audit.record(session, actor, "record_housing_need", "household", household.id, household.region_code,
                 {"housing_need": input.housing_need})
    aidchain.append(session, household.id, AidChainKind.VERIFICATION,
                    f"住房困难 {'found' if input.housing_need else 'not found'}", program_key="housing",
                    ref_type="household", ref_id=household.id, actor=actor.username)
    session.add(models.Outbox(entity=models.OutboxEntity.HOUSEHOLD.value, entity_id=household.id,
                              version=household.version))
    await claim.remember({"housing_need": input.housing_need})
    return input.housing_need


@strawberry.type
class HousingMutation:
    @strawberry.mutation(description="Record whether a household is in housing difficulty (住房困难).")
    async def record_housing_need(self, info: Info, input: HousingNeedInput) -> HousingNeedPayload:
        need, errors = await run_mutation(info, lambda s: record_housing_need(s, info, info.context.actor, input))
        return HousingNeedPayload(housing_need=need, errors=errors)


def contribution() -> GraphQLContribution:
    return GraphQLContribution(mutation=HousingMutation)
