"""教育救助 (education aid): grants for students of low-income households, by stage, tier and province.

Rules (POLICY_FACTS §2 education): stages covered from pre-school to higher education (GD-2021). Guangdong
(GD-2024): national grant up to 5,000 yuan per student per year for especially poor college students; student
loans up to 20,000 (undergraduate) / 25,000 (postgraduate) per year; Guangdong-hukou poor undergraduate
freshmen up to 6,000 once. Gansu (GS-2024): undergraduate grant tiers 2,000 / 3,300 / 4,500; secondary
vocational and high school 1,000 / 2,000 / 3,000. Which tier a category receives is not in the sources:
``education.tier_by_category`` is illustrative. Grants are yearly, so the program has no monthly amount; the
reasons name the yearly grants.
"""

from __future__ import annotations

import polars as pl
from aidgraph.plugin import (
    EligibilityRule,
    PROGRAM_SEARCH_FIELDS,
    ParamSpec,
    Program,
    RuleContext,
    count_members,
    fmt,
    hookimpl,
    member,
    program_search_document,
    receiving_any,
    yuan,
)

from aidgraph.plugins.education.graphql import StudentStatus, contribution
from aidgraph.plugins.education.stages import STAGES, stage_reads, table_key, undergraduate
from aidgraph.plugins.low_income import CATEGORY_OF_PROGRAM, LOW_INCOME_PROGRAMS, category_expr


__version__ = "0.1.0"

PROGRAM = Program(key="education", name="教育救助 education aid", domain="education", unit="person",
                  description="Grants, fee waivers and loans for students of low-income households.")


@hookimpl
def aidgraph_programs() -> list[Program]:
    return [PROGRAM]


@hookimpl
def aidgraph_parameter_schemas() -> list[ParamSpec]:
    return [
        ParamSpec("education.grants", "table", "助学金: yearly grant tiers by stage, lowest tier first "
                  "({ UNDERGRADUATE = [2000, 3300, 4500] }); a city or county may set its own (GS-2024 市县具体标准)",
                  "yuan per student per year", regional=True),
        ParamSpec("education.tier_by_category", "table", "which tier (1 = lowest) each low-income category receives"),
        ParamSpec("education.freshman_grant", "number", "新生入学资助: one-off grant for poor undergraduate freshmen",
                  "yuan once", minimum=0, required=False),
        ParamSpec("education.freshman_grant_local_hukou_only", "boolean", "the freshman grant needs local hukou",
                  required=False),
        ParamSpec("education.student_loan_max", "table", "助学贷款: yearly loan ceiling by stage", "yuan per year",
                  required=False),
        ParamSpec("education.compulsory_age_min", "integer", "义务教育适龄: compulsory-school age from", "years",
                  minimum=0),
        ParamSpec("education.compulsory_age_max", "integer", "义务教育适龄: compulsory-school age below", "years",
                  minimum=1),
        ParamSpec("education.veteran_grant", "number", "退役士兵学生: yearly grant of enrolled veteran undergraduates",
                  "yuan per student per year", minimum=0, required=False),
    ]


@hookimpl
def aidgraph_province_validate(params) -> list[str] | None:
    problems = []
    grants = params.parameters.get("education.grants")
    for dated in grants.values if grants else []:
        for stage, tiers in dated.value.items():
            if stage not in STAGES:
                problems.append(f"education.grants: unknown stage {stage!r} (known: {', '.join(STAGES)})")
            elif not isinstance(tiers, list) or not tiers or not all(
                    isinstance(t, (int, float)) and not isinstance(t, bool) and t >= 0 for t in tiers):
                problems.append(f"education.grants: {stage} must be a non-empty list of amounts")
    return problems or None


def grant_for(grants: dict, tier_by_category: dict, stage: str, category: str) -> float | None:
    """The yearly grant of one student: the category's tier of the stage's tiers (capped at the highest)."""
    key = table_key(grants, stage)
    tiers = grants.get(key) if key is not None else None
    tier = tier_by_category.get(category)
    if not tiers or tier is None:
        return None
    return float(tiers[min(int(tier), len(tiers)) - 1])


def _member_grant(grants: dict, fallback_tier: int | None, veteran_grant: float | None) -> pl.Expr:
    """One student's yearly grant (an expression over a member): the tier the school's hardship recognition
    assigned (``school_hardship_tier``), else the category's tier (illustrative fallback); a veteran
    本专科生 (any undergraduate stage, :mod:`.stages`) gets the flat veteran grant where the province has one
    (GS-2024 全日制在校退役士兵学生…3,300). A stage reads its own tiers, else (a 本专科生) the ``UNDERGRADUATE``
    ones. A tier outside the stage's tiers gives no grant (null)."""
    tier = member("school_hardship_tier").fill_null(pl.lit(fallback_tier, dtype=pl.Int32))
    amount: pl.Expr = pl.lit(None, dtype=pl.Float64)
    for stage, tiers in grants.items():
        pick: pl.Expr = pl.lit(None, dtype=pl.Float64)
        for i, value in reversed(list(enumerate(tiers, start=1))):
            pick = pl.when(tier == i).then(pl.lit(float(value))).otherwise(pick)
        amount = pl.when(stage_reads(grants, stage)).then(pick).otherwise(amount)
    if veteran_grant is not None:
        amount = pl.when(member("veteran_student").fill_null(False) & undergraduate()
                         ).then(pl.lit(float(veteran_grant))).otherwise(amount)
    return amount


def per_region_grants(c: RuleContext, build) -> pl.Expr:
    """``build(grants)`` with the grant tiers of each household's region: a city's or county's own value of
    ``education.grants`` replaces the stages it names and keeps the province's for the others (a city sets its
    high-school tiers; universities' tiers stay the province's)."""
    province_wide = c.p("education.grants")
    return c.per_region("education.grants", lambda regional: build({**province_wide, **regional}))


def yearly_grants(c: RuleContext) -> pl.Expr:
    """The household's yearly grants: the sum of its students' grants (see :func:`_member_grant`), with the
    tiers of the household's city or county where it sets its own (GS-2024 市县具体标准由各地结合实际…确定)."""
    tiers = c.p("education.tier_by_category")
    veteran = c.p("education.veteran_grant", default=None)
    category = category_expr()

    def household_total(grants: dict) -> pl.Expr:
        total: pl.Expr = pl.lit(0.0)
        for cat in reversed(CATEGORY_OF_PROGRAM.values()):
            fallback = tiers.get(cat)
            per_member = pl.col("members").list.eval(_member_grant(grants, fallback, veteran)).list.sum().fill_null(0.0)
            total = pl.when(category == cat).then(per_member).otherwise(total)
        return total

    return per_region_grants(c, household_total)


def tiers_out_of_range(c: RuleContext) -> pl.Expr:
    """Students whose recorded hardship tier is outside their stage's configured tiers (those of the household's
    region)."""
    def count(grants: dict) -> pl.Expr:
        bad = pl.lit(False)
        for stage, tiers in grants.items():
            bad = bad | (stage_reads(grants, stage) & (member("school_hardship_tier") > len(tiers)))
        return count_members(bad)

    return per_region_grants(c, count)


def _students(c: RuleContext):
    """GD-2021 §9: education aid at every stage, pre-school to higher education (GD-2024: to postgraduate), by fee
    waivers, grants, work-study or teaching at home; a grant amount only where the province configures one."""
    n = count_members(member("student_stage").is_in(list(STAGES)))
    without = per_region_grants(c, lambda grants: count_members(
        member("student_stage").is_in([s for s in STAGES if table_key(grants, s) is None])))
    return n > 0, fmt("{} student(s) from pre-school to postgraduate; {} in a stage without a configured grant amount "
                      "(aid by fee waivers and services there; grants: {})", n, without, c.cite("education.grants"))


def loan_ceilings(c: RuleContext) -> pl.Expr:
    """助学贷款 (GD-2024 生源地信用助学贷款): the yearly loan ceilings of the household's students, summed
    (本专科生每生每年最高…不超过20000元、研究生不超过25000元); 0 where the province configures no loans."""
    ceilings = c.p("education.student_loan_max", default=None) or {}
    total = pl.lit(0.0)
    for stage, ceiling in ceilings.items():
        total = total + count_members(stage_reads(ceilings, stage)) * float(ceiling)
    return total


def freshman_candidates(c: RuleContext) -> pl.Expr:
    """本专科 freshmen (year of study 1 of any undergraduate stage, :mod:`.stages`) who may claim the one-off
    freshman grant (GD-2024 广东户籍全日制家庭经济困难本专科新生), with local hukou where the province limits it
    to its hukou."""
    local_only = bool(c.p("education.freshman_grant_local_hukou_only", default=False))
    cond = undergraduate() & (member("school_year") == 1)
    if local_only:
        cond = cond & member("local_hukou")
    return count_members(cond)


def _offers(c: RuleContext) -> pl.Expr:
    parts = []
    if c.has("education.student_loan_max"):
        parts.append(fmt("student loans up to {} yuan this year ({})", yuan(loan_ceilings(c)),
                         c.cite("education.student_loan_max")))
    if c.has("education.freshman_grant"):
        n = freshman_candidates(c)
        grant = float(c.p("education.freshman_grant"))
        parts.append(fmt("freshman grant up to {} yuan once x {} undergraduate freshman(men){} = up to {} yuan ({})",
                         yuan(grant), n, " with local hukou" if c.p("education.freshman_grant_local_hukou_only",
                                                                     default=False) else "", yuan(n * grant),
                         c.cite("education.freshman_grant")))
    return pl.concat_str(parts, separator="; ") if parts else pl.lit("no loans or freshman grant configured")


def _category(c: RuleContext):
    grants = yearly_grants(c)
    recognised = count_members(member("school_hardship_tier").is_not_null())
    out_of_range = tiers_out_of_range(c)
    warning = pl.when(out_of_range > 0).then(fmt("; {} student(s) with a hardship tier outside the configured tiers: "
                                                  "no grant for them", out_of_range)).otherwise(pl.lit(""))
    return receiving_any(LOW_INCOME_PROGRAMS), fmt(
        "low-income category {}; yearly grants up to {} yuan (tiers {}; {} student(s) with the school's hardship "
        "recognition, the others by category {}){}; {}",
        category_expr().fill_null("none"), grants.round(2), c.cite("education.grants"), recognised,
        c.cite("education.tier_by_category"), warning, _offers(c))


def _home_teaching(c: RuleContext):
    """GD-2021 §9 因身心障碍等原因不方便入学接受义务教育的适龄残疾未成年人…送教上门: disabled children of
    compulsory-school age recorded in no school stage, whatever the household's category."""
    age = member("age")
    n = count_members(member("disability_level").is_not_null() & member("student_stage").is_null()
                      & (age >= c.p("education.compulsory_age_min")) & (age < c.p("education.compulsory_age_max")))
    return n > 0, fmt("送教上门: {} disabled child(ren) aged {}-{} in no school stage ({})", n,
                      c.p("education.compulsory_age_min"), c.p("education.compulsory_age_max") - 1,
                      c.cite("education.compulsory_age_min"))


@hookimpl
def aidgraph_eligibility_rules() -> list[EligibilityRule]:
    return [EligibilityRule("education", "students", _students),
            EligibilityRule("education", "low_income_category", _category),
            EligibilityRule("education", "home_teaching", _home_teaching, kind="alternative")]



@hookimpl
def aidgraph_search_fields() -> dict:
    return PROGRAM_SEARCH_FIELDS


@hookimpl
def aidgraph_search_document(entity: str, record: dict) -> dict | None:
    return program_search_document([PROGRAM], entity, record)


@hookimpl
def aidgraph_graphql_fields():
    return contribution()


@hookimpl
def aidgraph_graphql_types() -> list[type]:
    return [StudentStatus]
