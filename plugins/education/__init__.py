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
    receiving,
    receiving_any,
    yuan,
)


__version__ = "0.1.0"

PROGRAM = Program(key="education", name="教育救助 education aid", domain="education", unit="person",
                  description="Grants, fee waivers and loans for students of low-income households.")
LOW_INCOME = ("tekun", "dibao", "dibao_edge", "expenditure_hardship", "relapse_monitoring")
CATEGORY_ORDER = (("tekun", "TEKUN"), ("dibao", "DIBAO"), ("dibao_edge", "DIBAO_EDGE"),
                  ("expenditure_hardship", "EXPENDITURE_HARDSHIP"), ("relapse_monitoring", "RELAPSE_MONITORING"))
STAGES = ("PRESCHOOL", "COMPULSORY", "HIGH_SCHOOL", "VOCATIONAL", "UNDERGRADUATE", "POSTGRADUATE")


@hookimpl
def aidgraph_programs() -> list[Program]:
    return [PROGRAM]


@hookimpl
def aidgraph_parameter_schemas() -> list[ParamSpec]:
    return [
        ParamSpec("education.grants", "table", "助学金: yearly grant tiers by stage, lowest tier first "
                  "({ UNDERGRADUATE = [2000, 3300, 4500] })", "yuan per student per year"),
        ParamSpec("education.tier_by_category", "table", "which tier (1 = lowest) each low-income category receives"),
        ParamSpec("education.freshman_grant", "number", "新生入学资助: one-off grant for poor undergraduate freshmen",
                  "yuan once", minimum=0, required=False),
        ParamSpec("education.freshman_grant_local_hukou_only", "boolean", "the freshman grant needs local hukou",
                  required=False),
        ParamSpec("education.student_loan_max", "table", "助学贷款: yearly loan ceiling by stage", "yuan per year",
                  required=False),
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
    tiers = grants.get(stage)
    tier = tier_by_category.get(category)
    if not tiers or tier is None:
        return None
    return float(tiers[min(int(tier), len(tiers)) - 1])


def _category_expr() -> pl.Expr:
    expr: pl.Expr = pl.lit(None, dtype=pl.String)
    for key, category in reversed(CATEGORY_ORDER):
        expr = pl.when(receiving(key)).then(pl.lit(category)).otherwise(expr)
    return expr


def yearly_grants(c: RuleContext) -> pl.Expr:
    grants = c.p("education.grants")
    tiers = c.p("education.tier_by_category")
    category = _category_expr()
    total = pl.lit(0.0)
    for stage in grants:
        amount: pl.Expr = pl.lit(None, dtype=pl.Float64)
        for _, cat in CATEGORY_ORDER:
            value = grant_for(grants, tiers, stage, cat)
            if value is not None:
                amount = pl.when(category == cat).then(pl.lit(value)).otherwise(amount)
        total = total + count_members(member("student_stage") == stage) * amount.fill_null(0.0)
    return total


def _students(c: RuleContext):
    stages = list(c.p("education.grants"))
    n = count_members(member("student_stage").is_in(stages))
    return n > 0, fmt("{} student(s) in stages with grants ({})", n, c.cite("education.grants"))


def loan_ceilings(c: RuleContext) -> pl.Expr:
    """助学贷款 (GD-2024 生源地信用助学贷款): the yearly loan ceilings of the household's students, summed
    (本专科生每生每年最高…不超过20000元、研究生不超过25000元); 0 where the province configures no loans."""
    ceilings = c.p("education.student_loan_max", default=None) or {}
    total = pl.lit(0.0)
    for stage, ceiling in ceilings.items():
        total = total + count_members(member("student_stage") == stage) * float(ceiling)
    return total


def freshman_candidates(c: RuleContext) -> pl.Expr:
    """Undergraduates who may claim the one-off freshman grant (GD-2024 广东户籍全日制家庭经济困难本专科新生):
    with local hukou where the province limits it to its hukou. The year of study is not recorded, so the
    count is of candidates; the school confirms the freshman year."""
    local_only = bool(c.p("education.freshman_grant_local_hukou_only", default=False))
    cond = member("student_stage") == "UNDERGRADUATE"
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
        parts.append(fmt("freshman grant up to {} yuan once for each of {} undergraduate freshman candidate(s){} ({})",
                         yuan(grant), n, " with local hukou" if c.p("education.freshman_grant_local_hukou_only",
                                                                     default=False) else "",
                         c.cite("education.freshman_grant")))
    return pl.concat_str(parts, separator="; ") if parts else pl.lit("no loans or freshman grant configured")


def _category(c: RuleContext):
    grants = yearly_grants(c)
    return receiving_any(LOW_INCOME), fmt(
        "low-income category {}; yearly grants {} yuan (tiers {}, {}); {}",
        _category_expr().fill_null("none"), grants.round(2), c.cite("education.grants"),
        c.cite("education.tier_by_category"), _offers(c))


@hookimpl
def aidgraph_eligibility_rules() -> list[EligibilityRule]:
    return [EligibilityRule("education", "students", _students),
            EligibilityRule("education", "low_income_category", _category)]



@hookimpl
def aidgraph_search_fields() -> dict:
    return PROGRAM_SEARCH_FIELDS


@hookimpl
def aidgraph_search_document(entity: str, record: dict) -> dict | None:
    return program_search_document([PROGRAM], entity, record)
