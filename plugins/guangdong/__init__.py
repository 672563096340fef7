"""广东 Guangdong province variant: employment-cost deduction and the checks GD-2021 imposes on parameters.

Only Guangdong (44) enables this plugin (``PROVINCES``), and the province-scoped hook caller keeps it away
from every other province.

* Income: necessary employment costs are deducted from assessed income (GD-2021); the source gives no
  amount, so ``guangdong.employment_cost_deduction`` (per employed member per month, never more than that
  member's share of earned income) is illustrative.
* Checks: the tekun basic living standard is at least 1.6 x the dibao standard and tekun minors are covered
  to 18 (GD-2021); the low-income line is 1.5 x the urban dibao standard (GD-2021). A configuration that
  contradicts these fails to load.
"""

from __future__ import annotations

import polars as pl
from aidgraph.plugin import (
    IncomeDeduction,
    ParamSpec,
    RuleContext,
    count_members,
    fmt,
    hookimpl,
    member,
    yuan,
)


__version__ = "0.1.0"
PROVINCES = ("44",)


@hookimpl
def aidgraph_parameter_schemas() -> list[ParamSpec]:
    return [ParamSpec("guangdong.employment_cost_deduction", "number", "必要就业成本: deducted per employed member",
                      "yuan per employed member per month", minimum=0)]


def _employment_costs(c: RuleContext):
    per_member = float(c.p("guangdong.employment_cost_deduction"))
    employed = count_members(member("employment_status") == "EMPLOYED")
    amount = pl.min_horizontal(employed * per_member, pl.col("monthly_earned_income"))
    return amount, fmt("GD-2021 necessary employment costs: {} yuan x {} employed member(s), at most earned income "
                       "{} ({})", yuan(per_member), employed, yuan(pl.col("monthly_earned_income")),
                       c.cite("guangdong.employment_cost_deduction"))


@hookimpl
def aidgraph_income_deductions(params) -> list[IncomeDeduction]:
    return [IncomeDeduction("guangdong.employment_costs", _employment_costs,
                            "necessary employment costs deducted from income (GD-2021)")]


@hookimpl
def aidgraph_province_validate(params) -> list[str] | None:
    problems = []
    for key, check, message in (
        ("tekun.standard_multiplier", lambda v: v >= 1.6, "must be at least 1.6 (GD-2021)"),
        ("tekun.minor_age_limit", lambda v: v >= 18, "must be at least 18 (GD-2021 raised it from 16 to 18)"),
        ("dibao.low_income_multiplier", lambda v: v == 1.5, "must be 1.5 (GD-2021 low-income line)"),
    ):
        parameter = params.parameters.get(key)
        for dated in parameter.values if parameter else []:
            if not check(dated.value):
                problems.append(f"{key}: {dated.value!r} from {dated.start} {message}")
    return problems or None
