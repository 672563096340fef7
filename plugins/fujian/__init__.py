"""福建 Fujian province variant: earned-income deduction of 20-30% and the financial-asset limit of FJ-2021.

Only Fujian (35) enables this plugin (``PROVINCES``).

* Income: 20%-30% of earned income is deducted (FJ-2021): ``fujian.earned_income_deduction_rate`` is bounded
  to that range by its schema, so a rate outside it fails to load naming the file and key.
* Assets: the per-capita financial assets of tekun and near-dibao households must be within N x the local
  dibao standard (FJ-2021: "人均金融资产标准确定为当地低保标准?倍以内", the digit is lost in the source's
  encoding). ``fujian.financial_assets_multiplier`` is not required and ships with no value: until the
  province configures it, a household with financial assets is not decided; its reasons say the parameter is
  not configured (a household with no financial assets is within N x the standard for every N). These rules
  *replace* the tekun and dibao_edge asset rules for Fujian only.
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
                  "x dibao standard", minimum=0, required=False),
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
    if not c.has("fujian.financial_assets_multiplier"):
        assets = pl.col("per_capita_financial_assets")
        return assets <= 0, pl.when(assets <= 0).then(pl.lit(
            "no financial assets: within N x the dibao standard whatever N (FJ-2021)")).otherwise(fmt(
            "not configured: fujian.financial_assets_multiplier (FJ-2021 gives N x the dibao standard, the digit is "
            "lost in the source's encoding); per-capita financial assets {} yuan cannot be judged until the province "
            "configures it", yuan(assets)))
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
