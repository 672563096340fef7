"""福建 Fujian province variant: earned-income deduction of 20-30% and the financial-asset limit of FJ-2021.

Only Fujian (35) enables this plugin (``PROVINCES``).

* Income: 20%-30% of earned income is deducted (FJ-2021): ``fujian.earned_income_deduction_rate`` is bounded
  to that range by its schema, so a rate outside it fails to load naming the file and key.
* Assets: the per-capita financial assets of tekun and near-dibao households must be within N x the local
  dibao standard (FJ-2021). N is lost in the source's encoding: ``fujian.financial_assets_multiplier`` has
  no default; the shipped value is illustrative. These rules *replace* the tekun and dibao_edge asset rules
  for Fujian only.
"""

from __future__ import annotations

import polars as pl
from aidgraph.plugin import (
    EligibilityRule,
    IncomeDeduction,
    ParamSpec,
    RuleContext,
    fmt,
    hookimpl,
    yuan,
)
from aidgraph.plugins.dibao.standard import dibao_standard


__version__ = "0.1.0"
PROVINCES = ("35",)


@hookimpl
def aidgraph_parameter_schemas() -> list[ParamSpec]:
    return [
        ParamSpec("fujian.earned_income_deduction_rate", "number", "就业收入扣减: share of earned income deducted",
                  "ratio", minimum=0.2, maximum=0.3),
        ParamSpec("fujian.financial_assets_multiplier", "number",
                  "特困、低保边缘家庭人均金融资产: at most N x the local dibao standard (N lost in FJ-2021)",
                  "x dibao standard", minimum=0),
    ]


def _earned_income(c: RuleContext):
    rate = float(c.p("fujian.earned_income_deduction_rate"))
    amount = pl.col("monthly_earned_income") * rate
    return amount, fmt("FJ-2021 {}% of earned income {} ({})", round(rate * 100, 1),
                       yuan(pl.col("monthly_earned_income")), c.cite("fujian.earned_income_deduction_rate"))


@hookimpl
def aidgraph_income_deductions(params) -> list[IncomeDeduction]:
    return [IncomeDeduction("fujian.earned_income", _earned_income, "20%-30% of earned income deducted (FJ-2021)")]


def _assets(c: RuleContext):
    n = float(c.p("fujian.financial_assets_multiplier"))
    limit = dibao_standard(c) * n
    return pl.col("per_capita_financial_assets") <= limit, fmt(
        "per-capita financial assets {} yuan within {} x dibao standard = {} yuan (FJ-2021; {})",
        yuan(pl.col("per_capita_financial_assets")), n, yuan(limit), c.cite("fujian.financial_assets_multiplier"))


@hookimpl
def aidgraph_eligibility_rules() -> list[EligibilityRule]:
    return [
        EligibilityRule("tekun", "fujian_assets", _assets, kind="gate", replaces="assets"),
        EligibilityRule("dibao_edge", "fujian_assets", _assets, kind="gate", replaces="assets"),
    ]
