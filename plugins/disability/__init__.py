"""残疾人两项补贴 (the two disability subsidies): living subsidy for poor disabled persons, nursing subsidy for the
severely disabled (GD-2022, GD-2024). The sources give no amounts: both are illustrative parameters.
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
    receiving_any,
    yuan,
)


__version__ = "0.1.0"

PROGRAM = Program(key="disability", name="残疾人两项补贴 disability living and nursing subsidies", domain="disability",
                  unit="person", pays_monthly=True,
                  description="Living subsidy for poor disabled persons; nursing subsidy for severely disabled persons.")
POOR = ("tekun", "dibao", "dibao_edge")


@hookimpl
def aidgraph_programs() -> list[Program]:
    return [PROGRAM]


@hookimpl
def aidgraph_parameter_schemas() -> list[ParamSpec]:
    return [
        ParamSpec("disability.living_subsidy", "number", "困难残疾人生活补贴", "yuan per person per month", minimum=0),
        ParamSpec("disability.nursing_subsidy", "number", "重度残疾人护理补贴", "yuan per person per month", minimum=0),
        ParamSpec("disability.severe_max_level", "integer", "重度残疾: disability levels up to this one", minimum=1,
                  maximum=4),
    ]


def _counts(c: RuleContext) -> tuple[pl.Expr, pl.Expr]:
    poor_disabled = pl.when(receiving_any(POOR)).then(count_members(member("disability_level").is_not_null())
                                                      ).otherwise(0)
    severe = count_members(member("disability_level") <= c.p("disability.severe_max_level"))
    return poor_disabled, severe


def _rule(c: RuleContext):
    poor, severe = _counts(c)
    return (poor + severe) > 0, fmt(
        "{} disabled member(s) in a dibao/tekun/near-dibao household (living subsidy); {} member(s) with "
        "disability level <= {} (nursing subsidy, {})", poor, severe, c.p("disability.severe_max_level"),
        c.cite("disability.severe_max_level"))


def _benefit(c: RuleContext):
    poor, severe = _counts(c)
    living, nursing = float(c.p("disability.living_subsidy")), float(c.p("disability.nursing_subsidy"))
    amount = poor * living + severe * nursing
    return amount, fmt("living {} x {} + nursing {} x {} = {} yuan/month ({}, {})", yuan(living), poor, yuan(nursing),
                       severe, yuan(amount), c.cite("disability.living_subsidy"), c.cite("disability.nursing_subsidy"))


@hookimpl
def aidgraph_eligibility_rules() -> list[EligibilityRule]:
    return [EligibilityRule("disability", "disabled_members", _rule)]


@hookimpl(trylast=True)
def aidgraph_benefit_formula(program: Program, params) -> BenefitFormula | None:
    return BenefitFormula("disability", "two_subsidies", _benefit) if program.key == "disability" else None



@hookimpl
def aidgraph_search_fields() -> dict:
    return PROGRAM_SEARCH_FIELDS


@hookimpl
def aidgraph_search_document(entity: str, record: dict) -> dict | None:
    return program_search_document([PROGRAM], entity, record)
