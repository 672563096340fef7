"""Who appears eligible for 防止返贫监测 (relapse-into-poverty monitoring), as polars rules over the household
frame of :mod:`aidgraph.core.policy.engine`.

GD-2024 and GS-2024 name the categories (边缘易致贫户 households at the edge of poverty, 脱贫不稳定户 unstable
lifted-out-of-poverty households, 突发严重困难户 households in sudden severe hardship) but no source gives the
lines, so both numbers are province parameters (illustrative in the shipped configurations):
``monitoring.relapse.income_line`` (per-capita monthly income below which a household is at the edge) and
``monitoring.relapse.expenditure_share`` (rigid medical and education expenditure above this share of income
is a sudden severe hardship). Households already receiving dibao or tekun are covered by basic aid instead.
"""

from __future__ import annotations

import polars as pl
from aidgraph.plugin import (
    EligibilityRule,
    RuleContext,
    fmt,
    receiving_any,
    yuan,
)


PROGRAM = "relapse_monitoring"


def _not_in_basic_aid(ctx: RuleContext):
    covered = receiving_any(["dibao", "tekun"])
    return ~covered, pl.when(covered).then(pl.lit("already receives dibao or tekun (basic living aid)")) \
        .otherwise(pl.lit("receives no basic living aid (dibao, tekun)"))


def _hardship(ctx: RuleContext):
    line = float(ctx.p("monitoring.relapse.income_line"))
    share = float(ctx.p("monitoring.relapse.expenditure_share"))
    edge = pl.col("per_capita_income") < line
    sudden = pl.col("monthly_rigid_expenditure") > pl.col("monthly_income") * share
    reason = fmt("per-capita income {} yuan/month against the monitoring line {} ({}); rigid expenditure {} "
                 "yuan/month against {} x income ({})",
                 yuan(pl.col("per_capita_income")), yuan(line), ctx.cite("monitoring.relapse.income_line"),
                 yuan(pl.col("monthly_rigid_expenditure")), share, ctx.cite("monitoring.relapse.expenditure_share"))
    return edge | sudden, reason


RULES = [
    EligibilityRule(PROGRAM, "not_in_basic_aid", _not_in_basic_aid, kind="gate",
                    description="households receiving dibao or tekun are covered by basic aid"),
    EligibilityRule(PROGRAM, "edge_or_sudden_hardship", _hardship,
                    description="边缘易致贫 income below the line, or 突发严重困难 rigid expenditure above the share"),
]
