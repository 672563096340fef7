"""支出型困难家庭 / 刚性支出困难家庭 (households in hardship from rigid expenditure).

Rule (POLICY_FACTS §1, GD-2022, FJ-2021, GS-2024): income is at or above the dibao standard, but after rigid
expenditure (medical and education, 刚性支出) the per-capita amount left is below it. The sources give no income
ceiling for this category: ``expenditure_hardship.income_multiplier`` (x the urban standard) is configured
per province and illustrative. No monthly cash; opens special aid and transfer to dibao/tekun (GD-2022).
"""

from __future__ import annotations

import polars as pl
from aidgraph.plugin import (
    EligibilityRule,
    PROGRAM_SEARCH_FIELDS,
    ParamSpec,
    Program,
    RuleContext,
    fmt,
    hookimpl,
    program_search_document,
    receiving_any,
    yuan,
)
from aidgraph.plugins.dibao.standard import dibao_standard, economic_verification, residence_test


__version__ = "0.1.0"

PROGRAM = Program(key="expenditure_hardship", name="支出型困难家庭 household in hardship from rigid expenditure",
                  domain="basic_living", category="EXPENDITURE_HARDSHIP", reviewed=True,
                  description="Income above the dibao line but medical or education costs push it below.")


@hookimpl
def aidgraph_programs() -> list[Program]:
    return [PROGRAM]


@hookimpl
def aidgraph_parameter_schemas() -> list[ParamSpec]:
    return [
        ParamSpec("expenditure_hardship.income_multiplier", "number",
                  "income ceiling: per-capita income below this multiple of the urban dibao standard", "x standard",
                  minimum=1),
        ParamSpec("expenditure_hardship.review_months", "integer", "复核: months between reviews", "months", minimum=1),
    ]


def remaining_per_capita() -> pl.Expr:
    return pl.col("per_capita_income") - pl.col("monthly_rigid_expenditure") / pl.max_horizontal(pl.col("member_count"), 1)


def _income(c: RuleContext):
    std = dibao_standard(c)
    ceiling = c.col("dibao.urban_standard").cast(pl.Float64) * float(c.p("expenditure_hardship.income_multiplier"))
    pci = pl.col("per_capita_income")
    left = remaining_per_capita()
    return (pci >= std) & (pci < ceiling) & (left < std), fmt(
        "per-capita income {} yuan/month (standard {}, ceiling {} = {} x urban standard, {}) minus rigid "
        "expenditure {} yuan/month per member leaves {} yuan/month, below the standard",
        yuan(pci), yuan(std), yuan(ceiling), c.p("expenditure_hardship.income_multiplier"),
        c.cite("expenditure_hardship.income_multiplier"),
        yuan(pl.col("monthly_rigid_expenditure") / pl.max_horizontal(pl.col("member_count"), 1)), yuan(left))


@hookimpl
def aidgraph_eligibility_rules() -> list[EligibilityRule]:
    return [
        EligibilityRule("expenditure_hardship", "residence", residence_test, kind="gate"),
        EligibilityRule("expenditure_hardship", "economic_verification", economic_verification, kind="gate"),
        EligibilityRule("expenditure_hardship", "not_receiving",
                        lambda c: (~receiving_any(["dibao", "tekun"]), pl.lit("not receiving dibao or tekun")),
                        kind="gate"),
        EligibilityRule("expenditure_hardship", "income_after_expenditure", _income),
    ]


@hookimpl(trylast=True)
def aidgraph_review_interval_months(program: Program, params, facts: dict) -> int | None:
    if program.key != "expenditure_hardship":
        return None
    return int(params.value("expenditure_hardship.review_months", facts["on"]))



@hookimpl
def aidgraph_search_fields() -> dict:
    return PROGRAM_SEARCH_FIELDS


@hookimpl
def aidgraph_search_document(entity: str, record: dict) -> dict | None:
    return program_search_document([PROGRAM], entity, record)
