"""特困人员救助供养 (tekun, support for extremely poor persons): who qualifies and the basic living standard.

Rules (POLICY_FACTS §1, GD-2021): a person with no capacity to work, no source of living and no support obligor
able to support them (无劳动能力、无生活来源、无法定赡养抚养扶养义务人或其无履行能力): elderly or severely disabled persons
without labour capacity, and minors (coverage raised from under 16 to under 18 in GD-2021: the age limit is a
parameter). The basic living standard is at least 1.6 x the local dibao standard (GD-2021): a multiplier
parameter, checked by the Guangdong plugin. Review yearly (GD-2021).
"""

from __future__ import annotations

import polars as pl
from aidgraph.plugin import (
    BenefitFormula,
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
    yuan,
)
from aidgraph.plugins.dibao.standard import dibao_standard, economic_verification, residence_test


__version__ = "0.1.0"

PROGRAM = Program(
    key="tekun", name="特困人员救助供养 support for extremely poor persons (tekun)", domain="basic_living",
    category="TEKUN", pays_monthly=True, reviewed=True, transfer_from=("dibao_edge", "expenditure_hardship"),
    description="Basic living support and care for persons without labour capacity, income or able obligors.")


@hookimpl
def aidgraph_programs() -> list[Program]:
    return [PROGRAM]


@hookimpl
def aidgraph_parameter_schemas() -> list[ParamSpec]:
    return [
        ParamSpec("tekun.standard_multiplier", "number", "基本生活标准: tekun standard as a multiple of the dibao "
                  "standard", "x dibao standard", minimum=1),
        ParamSpec("tekun.minor_age_limit", "integer", "特困未成年人: persons under this age count as minors", "years",
                  minimum=1),
        ParamSpec("tekun.elderly_age", "integer", "老年人: age from which a person without labour capacity qualifies",
                  "years"),
        ParamSpec("tekun.financial_assets_limit_months", "number",
                  "per-capita financial assets may not exceed this many months of the tekun standard", "months",
                  minimum=0),
        ParamSpec("tekun.review_months", "integer", "复核: months between reviews", "months", minimum=1),
    ]


def tekun_standard(c: RuleContext) -> pl.Expr:
    return dibao_standard(c) * float(c.p("tekun.standard_multiplier"))


def qualifying_members(c: RuleContext) -> pl.Expr:
    """Members who are minors under the limit, or elderly / severely disabled without labour capacity, and who
    have no support obligor able to support them."""
    no_obligor = member("able_obligors") == 0
    minor = member("age") < c.p("tekun.minor_age_limit")
    severe = member("disability_level") <= c.params.value("dibao.severe_disability_max_level", c.on, default=2)
    unable = ((member("age") >= c.p("tekun.elderly_age")) | severe.fill_null(False)) & (
        member("labour_capacity") == "NONE")
    return count_members(no_obligor & (minor | unable))


def _persons(c: RuleContext):
    n = qualifying_members(c)
    return n > 0, fmt("{} member(s) under {} or elderly (>= {}) / severely disabled without labour capacity, with no "
                      "able support obligor ({}, {})", n, c.p("tekun.minor_age_limit"), c.p("tekun.elderly_age"),
                      c.cite("tekun.minor_age_limit"), c.cite("tekun.elderly_age"))


def _income(c: RuleContext):
    std = tekun_standard(c)
    return pl.col("per_capita_income") < std, fmt(
        "per-capita income {} yuan/month below the tekun standard {} x dibao standard {} = {} yuan/month ({})",
        yuan(pl.col("per_capita_income")), c.p("tekun.standard_multiplier"), yuan(dibao_standard(c)), yuan(std),
        c.cite("tekun.standard_multiplier"))


def _assets(c: RuleContext):
    limit = tekun_standard(c) * float(c.p("tekun.financial_assets_limit_months"))
    return pl.col("per_capita_financial_assets") <= limit, fmt(
        "per-capita financial assets {} yuan within {} months of the tekun standard = {} yuan ({})",
        yuan(pl.col("per_capita_financial_assets")), c.p("tekun.financial_assets_limit_months"), yuan(limit),
        c.cite("tekun.financial_assets_limit_months"))


@hookimpl
def aidgraph_eligibility_rules() -> list[EligibilityRule]:
    return [
        EligibilityRule("tekun", "residence", residence_test, kind="gate"),
        EligibilityRule("tekun", "economic_verification", economic_verification, kind="gate"),
        EligibilityRule("tekun", "assets", _assets, kind="gate"),
        EligibilityRule("tekun", "persons", _persons),
        EligibilityRule("tekun", "income", _income),
    ]


def _benefit(c: RuleContext):
    std = tekun_standard(c)
    n = qualifying_members(c)
    return std * n, fmt("tekun standard {} yuan/month x {} person(s) = {} yuan/month", yuan(std), n, yuan(std * n))


@hookimpl(trylast=True)
def aidgraph_benefit_formula(program: Program, params) -> BenefitFormula | None:
    return BenefitFormula("tekun", "standard", _benefit) if program.key == "tekun" else None


@hookimpl(trylast=True)
def aidgraph_review_interval_months(program: Program, params, facts: dict) -> int | None:
    return int(params.value("tekun.review_months", facts["on"])) if program.key == "tekun" else None



@hookimpl
def aidgraph_search_fields() -> dict:
    return PROGRAM_SEARCH_FIELDS


@hookimpl
def aidgraph_search_document(entity: str, record: dict) -> dict | None:
    return program_search_document([PROGRAM], entity, record)
