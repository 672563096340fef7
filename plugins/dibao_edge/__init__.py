"""低保边缘家庭 (near-dibao / low-income households): income between the dibao standard and 1.5 x the urban one.

Rule (GD-2021 §1 "对家庭人均收入在当地城镇低保标准1.5倍以下且家庭财产状况符合相关规定的，认定为低收入家庭"): a
low-income household has per-capita income below 1.5 x the local *urban* dibao standard
(``dibao.low_income_multiplier``) and property within the rules. There is no lower bound: a household below
the dibao line that does not get dibao (it fails dibao's stricter asset test, or has not applied) is a
low-income household too, and the special aid open to low-income households follows. Households already
receiving dibao or tekun are counted in those categories instead. Near-dibao status pays no monthly cash: it opens special aid (medical,
education, housing) and, when the household later meets the dibao or tekun criteria, a transfer without a new
application (GD-2022). Fujian limits financial assets to N x the dibao standard (FJ-2021, through its plugin).
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
from aidgraph.plugins.dibao.standard import dibao_standard, economic_verification, residence_test, standard_label


__version__ = "0.1.0"

PROGRAM = Program(key="dibao_edge", name="低保边缘家庭 near-dibao (low-income) household", domain="basic_living",
                  category="DIBAO_EDGE", reviewed=True,
                  description="Low-income households just above the dibao line: special aid without cash.")


@hookimpl
def aidgraph_programs() -> list[Program]:
    return [PROGRAM]


@hookimpl
def aidgraph_parameter_schemas() -> list[ParamSpec]:
    return [
        ParamSpec("dibao_edge.financial_assets_limit_months", "number",
                  "per-capita financial assets may not exceed this many months of the dibao standard", "months",
                  minimum=0),
        ParamSpec("dibao_edge.review_months", "integer", "复核: months between reviews", "months", minimum=1),
    ]


def _not_receiving(c: RuleContext):
    on_basic = receiving_any(["dibao", "tekun"])
    return ~on_basic, pl.lit("not receiving dibao or tekun")


def _income(c: RuleContext):
    std = dibao_standard(c)
    line = c.col("dibao.urban_standard").cast(pl.Float64) * float(c.p("dibao.low_income_multiplier"))
    pci = pl.col("per_capita_income")
    below_dibao = pl.when(pci < std).then(fmt(" (also below the {} dibao standard {}: a low-income household "
                                              "that does not receive dibao)", standard_label(), yuan(std)))
    return pci < line, fmt(
        "per-capita income {} yuan/month below {} x urban standard = {} yuan/month ({}){}", yuan(pci),
        c.p("dibao.low_income_multiplier"), yuan(line), c.cite("dibao.low_income_multiplier"),
        below_dibao.fill_null(""))


def _assets(c: RuleContext):
    limit = dibao_standard(c) * float(c.p("dibao_edge.financial_assets_limit_months"))
    return pl.col("per_capita_financial_assets") <= limit, fmt(
        "per-capita financial assets {} yuan within {} months of the dibao standard = {} yuan ({})",
        yuan(pl.col("per_capita_financial_assets")), c.p("dibao_edge.financial_assets_limit_months"), yuan(limit),
        c.cite("dibao_edge.financial_assets_limit_months"))


@hookimpl
def aidgraph_eligibility_rules() -> list[EligibilityRule]:
    return [
        EligibilityRule("dibao_edge", "residence", residence_test, kind="gate"),
        EligibilityRule("dibao_edge", "not_receiving", _not_receiving, kind="gate"),
        EligibilityRule("dibao_edge", "economic_verification", economic_verification, kind="gate"),
        EligibilityRule("dibao_edge", "assets", _assets, kind="gate"),
        EligibilityRule("dibao_edge", "income", _income),
    ]


@hookimpl(trylast=True)
def aidgraph_review_interval_months(program: Program, params, facts: dict) -> int | None:
    return int(params.value("dibao_edge.review_months", facts["on"])) if program.key == "dibao_edge" else None



@hookimpl
def aidgraph_search_fields() -> dict:
    return PROGRAM_SEARCH_FIELDS


@hookimpl
def aidgraph_search_document(entity: str, record: dict) -> dict | None:
    return program_search_document([PROGRAM], entity, record)
