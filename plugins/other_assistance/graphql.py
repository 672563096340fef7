"""``recordDiagnosis``: the diagnosis GD-2021 §13's 两癌 aid decides on, recorded by people.

Why: 开展农村贫困妇女“两癌”救助 (aid for poor rural women with cervical or breast cancer) needs the diagnosis, which
no other input carries (the disease feed's flags say chronic or major, not which). The diagnosis kinds a province
knows are its parameter ``other_assistance.two_cancers_diagnoses``: a kind it does not list (or any kind, where
it lists none) is a VALIDATION error on ``diagnosis``, a date after today one on ``diagnosedOn``, and nothing is
written; a recorded diagnosis is written with its audit row, aid-chain entry and outbox row in one transaction.
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

DIAGNOSES_KEY = "other_assistance.two_cancers_diagnoses"


@strawberry.input(description="A diagnosis recognised by the health department (宫颈癌 CERVICAL_CANCER, 乳腺癌 "
                              "BREAST_CANCER: the kinds the province lists), with its date; null clears it.")
class DiagnosisInput:
    person_id: strawberry.ID
    diagnosis: str | None = None
    diagnosed_on: dt.date | None = None
    idempotency_key: str | None = None


@strawberry.type(description="The diagnosis recorded for a person.")
class Diagnosis:
    person_id: strawberry.ID
    diagnosis: str | None
    diagnosed_on: dt.date | None


@strawberry.type
class DiagnosisPayload:
    diagnosis: Diagnosis | None
    errors: list[UserError]


def _diagnosis(values: dict) -> Diagnosis:
    on = values["diagnosed_on"]
    return Diagnosis(person_id=strawberry.ID(str(values["person_id"])), diagnosis=values["diagnosis"],
                     diagnosed_on=dt.date.fromisoformat(on) if on else None)


async def record_diagnosis(session, info, actor, input: DiagnosisInput) -> Diagnosis:
    claim = await idempotency.claim(session, actor, "recordDiagnosis", input.idempotency_key, None)
    if claim.replay is not None:
        return _diagnosis(claim.replay)
    person = await person_for_update(session, actor, input.person_id)
    policy = province_policy(info, person.region_code, "two_cancers_aid", "personId")
    if input.diagnosis is not None:
        known = list(policy.params.value(DIAGNOSES_KEY, today(), default=None) or [])
        if input.diagnosis not in known:
            raise invalid("diagnosis", f"province {policy.code} does not know the diagnosis {input.diagnosis!r} "
                                       f"(known here: {', '.join(known) or 'none configured'})")
        if input.diagnosed_on is None:
            raise invalid("diagnosedOn", "a diagnosis needs the date it was made")
        if input.diagnosed_on > today():
            raise invalid("diagnosedOn", f"the diagnosis date {input.diagnosed_on} is in the future")
        if input.diagnosed_on < person.birth_date:
            raise invalid("diagnosedOn", "the diagnosis date is before the person's birth")
    elif input.diagnosed_on is not None:
        raise invalid("diagnosedOn", "a date without a diagnosis")
    person.diagnosis = input.diagnosis
    person.diagnosed_on = input.diagnosed_on
    values = {"person_id": input.person_id, "diagnosis": input.diagnosis,
              "diagnosed_on": input.diagnosed_on.isoformat() if input.diagnosed_on else None}
    changed_person(session, actor, person, "record_diagnosis",
                   {"diagnosis": input.diagnosis, "diagnosedOn": values["diagnosed_on"]},
                   await household_of(session, person.id), f"两癌救助 diagnosis recorded: {input.diagnosis}",
                   "two_cancers_aid")
    await claim.remember(values)
    return _diagnosis(values)


@strawberry.type
class OtherAssistanceMutation:
    @strawberry.mutation(description="Record a person's diagnosis (两癌: cervical or breast cancer, as the province "
                                     "lists them) that GD-2021's aid for poor rural women decides on.")
    async def record_diagnosis(self, info: Info, input: DiagnosisInput) -> DiagnosisPayload:
        diagnosis, errors = await run_mutation(info, lambda s: record_diagnosis(s, info, info.context.actor, input))
        return DiagnosisPayload(diagnosis=diagnosis, errors=errors)


def contribution() -> GraphQLContribution:
    return GraphQLContribution(mutation=OtherAssistanceMutation)
