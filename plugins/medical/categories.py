"""``recordPersonCategory``: the person-level aid categories medical aid reads, recorded by people.

Why: GD-2024 gives orphans and de-facto-unattended children (孤儿、事实无人抚养儿童) a 100% medical-aid ratio and
full premium subsidy, and GS-2024 names rural returned-to-poverty persons, persons lifted out of poverty in
their transition period and stably lifted persons (recognised by the rural-revitalisation department) among
its categories; none of them follows from a household programme. The category is validated against the
province's own medical tables (a category the province does not know is a VALIDATION error on ``category``,
nothing written) and written with its audit row, aid-chain entry and outbox row in one transaction.
"""

from __future__ import annotations

import strawberry

from aidgraph.plugin import GraphQLContribution, Info, UserError, idempotency, run_mutation
from aidgraph.plugins.medical.claims import PERSON_CATEGORIES
from aidgraph.plugins.rule_inputs import (
    changed_person,
    household_of,
    invalid,
    person_for_update,
    province_policy,
    today,
)

RECORDABLE = tuple(c for c in PERSON_CATEGORIES if c != "ILLNESS_IMPOVERISHED")  # that one is decided on application


@strawberry.input(description="A person-level aid category (孤儿, 事实无人抚养儿童, 返贫致贫, 过渡期, 稳定脱贫) or null.")
class PersonCategoryInput:
    person_id: strawberry.ID
    category: str | None = None
    idempotency_key: str | None = None


@strawberry.type
class PersonCategoryPayload:
    category: str | None
    errors: list[UserError]


async def record_person_category(session, info, actor, input: PersonCategoryInput) -> str | None:
    claim = await idempotency.claim(session, actor, "recordPersonCategory", input.idempotency_key, input)
    if claim.replay is not None:
        return claim.replay["category"]
    person = await person_for_update(session, actor, input.person_id)
    policy = province_policy(info, person.region_code, "medical", "personId")
    if input.category is not None:
        on = today()
        known = set(policy.params.value("medical.aid_ratio", on, default=None) or {}) | set(
            policy.params.value("medical.premium_subsidy", on, default=None) or {})
        if input.category not in RECORDABLE or input.category not in known:
            raise invalid("category", f"province {policy.code} does not know the category {input.category!r} "
                                      f"(known here: {', '.join(sorted(known & set(RECORDABLE))) or 'none'})")
    person.special_category = input.category
    changed_person(session, actor, person, "record_person_category", {"category": input.category},
                   await household_of(session, person.id), f"医疗救助 category recorded: {input.category}", "medical")
    await claim.remember({"category": input.category})
    return input.category


@strawberry.type
class CategoryMutation:
    @strawberry.mutation(description="Record a person-level aid category that medical aid reads (孤儿, "
                                     "事实无人抚养儿童, 农村返贫致贫人口, 过渡期内的已脱贫人口, 稳定脱贫人口).")
    async def record_person_category(self, info: Info, input: PersonCategoryInput) -> PersonCategoryPayload:
        category, errors = await run_mutation(info, lambda s: record_person_category(s, info, info.context.actor,
                                                                                     input))
        return PersonCategoryPayload(category=category, errors=errors)


def combined(base: GraphQLContribution) -> GraphQLContribution:
    """The medical plugin's mutations: claim settlement and category recording in one root piece."""

    settle = base.mutation
    assert settle is not None

    @strawberry.type(name="MedicalMutations")
    class MedicalMutations(settle, CategoryMutation):  # type: ignore[misc, valid-type]
        pass

    return GraphQLContribution(query=base.query, mutation=MedicalMutations)
