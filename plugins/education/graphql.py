"""The education plugin's GraphQL contribution: ``recordStudentStatus``, the inputs its grants decide on.

Why: the stage (学前 to 研究生), the year of study (新生: GD-2024's freshman grant), the tier the school's
hardship recognition assigned (家庭经济困难学生认定: GS-2024 / GD-2024) and whether the student is an enrolled
veteran (GS-2024 3,300) must be settable by people, not only by the education feed. A stage the platform does
not know, a tier outside the tiers the province configures for that stage, or a year outside 1-8 is a
VALIDATION error on its field, and nothing is written.
"""

from __future__ import annotations

from typing import Any

import strawberry

from aidgraph.plugin import GraphQLContribution, Info, UserError, idempotency, run_mutation
from aidgraph.plugins.education.stages import STAGES, table_key
from aidgraph.plugins.rule_inputs import (
    changed_person,
    household_of,
    invalid,
    person_for_update,
    province_policy,
    today,
)



@strawberry.input(description="A student's stage, year of study, the school's hardship tier and veteran status.")
class StudentStatusInput:
    person_id: strawberry.ID
    stage: str | None = None
    school_year: int | None = None
    hardship_tier: int | None = None
    veteran_student: bool | None = None
    idempotency_key: str | None = None


@strawberry.type(description="The education inputs recorded for a person.")
class StudentStatus:
    person_id: strawberry.ID
    stage: str | None
    school_year: int | None
    hardship_tier: int | None
    veteran_student: bool


@strawberry.type
class StudentStatusPayload:
    student: StudentStatus | None
    errors: list[UserError]


async def record_student_status(session, info, actor, input: StudentStatusInput) -> StudentStatus:
    claim = await idempotency.claim(session, actor, "recordStudentStatus", input.idempotency_key, input)
    if claim.replay is not None:
        return _status(claim.replay)
    person = await person_for_update(session, actor, input.person_id)
    policy = province_policy(info, person.region_code, "education", "personId")
    if input.stage is not None and input.stage not in STAGES:
        raise invalid("stage", f"unknown stage {input.stage!r} (known: {', '.join(STAGES)})")
    if input.school_year is not None and not 1 <= input.school_year <= 8:
        raise invalid("schoolYear", "the year of study is between 1 and 8")
    if input.hardship_tier is not None:
        # the province's tiers, with those the person's city or county sets itself (GS-2024 市县具体标准)
        grants = {**(policy.params.value("education.grants", today(), default=None) or {}),
                  **(policy.params.value("education.grants", today(), region=person.region_code, default=None) or {})}
        key = table_key(grants, input.stage)
        tiers = grants.get(key) if key is not None else None
        if not tiers:
            raise invalid("hardshipTier", f"province {policy.code} has no grant tiers for stage {input.stage}")
        if not 1 <= input.hardship_tier <= len(tiers):
            raise invalid("hardshipTier", f"tier {input.hardship_tier} is outside the {len(tiers)} tier(s) province "
                                          f"{policy.code} configures for {input.stage}")
    person.student_stage = input.stage
    person.school_year = input.school_year
    person.school_hardship_tier = input.hardship_tier
    person.veteran_student = bool(input.veteran_student)
    result: dict[str, Any] = {"person_id": input.person_id, "stage": input.stage, "school_year": input.school_year,
              "hardship_tier": input.hardship_tier, "veteran_student": bool(input.veteran_student)}
    changed_person(session, actor, person, "record_student_status", {k: v for k, v in result.items() if k != "person_id"},
                   await household_of(session, person.id),
                   f"教育救助 inputs recorded: stage {input.stage}, year {input.school_year}, hardship tier "
                   f"{input.hardship_tier}, veteran {bool(input.veteran_student)}", "education")
    await claim.remember(result)
    return _status(result)


def _status(values: dict[str, Any]) -> StudentStatus:
    return StudentStatus(person_id=strawberry.ID(str(values["person_id"])), stage=values["stage"],
                         school_year=values["school_year"], hardship_tier=values["hardship_tier"],
                         veteran_student=bool(values["veteran_student"]))


@strawberry.type
class EducationMutation:
    @strawberry.mutation(description="Record a student's stage, year of study, the school's hardship tier "
                                     "(家庭经济困难学生认定) and veteran status; the education grants follow from them.")
    async def record_student_status(self, info: Info, input: StudentStatusInput) -> StudentStatusPayload:
        student, errors = await run_mutation(info, lambda s: record_student_status(s, info, info.context.actor, input))
        return StudentStatusPayload(student=student, errors=errors)


def contribution() -> GraphQLContribution:
    return GraphQLContribution(mutation=EducationMutation)
