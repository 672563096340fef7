"""The medical plugin's GraphQL contribution: the contract's ``settleMedicalAid`` mutation and its types.

Contributed through ``aidgraph_graphql_fields`` / ``aidgraph_graphql_types``; the schema builder merges it
into the root Mutation and fails at start-up if another contributor defines the same field.
"""

from __future__ import annotations

import datetime as dt

import strawberry

from aidgraph.plugins.medical.claims import ClaimInput, settle_claim
from aidgraph.plugin import (
    Info,
    GraphQLContribution,
    UserError,
    db_id,
    not_found,
    policy_engine,
    run_mutation,
)


@strawberry.input(description="A hospital or outpatient claim: compliant cost (合规费用) and what insurance paid.")
class MedicalClaimInput:
    person_id: strawberry.ID
    admission_date: dt.date
    compliant_cost: float
    insurance_paid: float
    major_disease: bool | None = None
    idempotency_key: str | None = None


@strawberry.type(name="MedicalClaim", description="A settled medical-aid claim with the rules that applied.")
class MedicalClaimType:
    category: str
    compliant_cost: float
    insurance_paid: float
    aid_amount: float
    secondary_aid_amount: float
    out_of_pocket: float
    reasons: list[str]


@strawberry.type
class MedicalClaimPayload:
    claim: MedicalClaimType | None
    errors: list[UserError]


@strawberry.type
class MedicalMutation:
    @strawberry.mutation(description="Settle a claim under the person's province rules and the categories that "
                                     "apply on the admission date.")
    async def settle_medical_aid(self, info: Info, input: MedicalClaimInput) -> MedicalClaimPayload:
        async def work(session):
            person_id = db_id(input.person_id, "Person")
            if person_id is None:
                raise not_found("person", "personId")
            row = await settle_claim(session, info.context.actor, policy_engine(info), ClaimInput(
                person_id=person_id, admission_date=input.admission_date, compliant_cost=input.compliant_cost,
                insurance_paid=input.insurance_paid, major_disease=bool(input.major_disease),
                idempotency_key=input.idempotency_key))
            return MedicalClaimType(category=row.category, compliant_cost=float(row.compliant_cost),
                                    insurance_paid=float(row.insurance_paid), aid_amount=float(row.aid_amount),
                                    secondary_aid_amount=float(row.secondary_aid_amount),
                                    out_of_pocket=float(row.out_of_pocket), reasons=list(row.reasons))

        claim, errors = await run_mutation(info, work)
        return MedicalClaimPayload(claim=claim, errors=errors)


def contribution() -> GraphQLContribution:
    return GraphQLContribution(mutation=MedicalMutation)
