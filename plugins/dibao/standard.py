"""The dibao standard (低保标准) as rules read it: owned by the dibao plugin, used by the plugins that build on it.

Tekun (1.6 x or more of the standard), near-dibao (1.5 x), expenditure hardship and temporary aid all measure a
household against the local dibao standard; they import it from here rather than each writing it again.
"""

from __future__ import annotations

import polars as pl

from aidgraph.plugin import RuleContext, count_members, fmt, member


def dibao_standard(ctx: RuleContext) -> pl.Expr:
    """The local dibao standard of each household (urban or rural by residence, regional overrides applied)."""
    return pl.when(pl.col("rural")).then(ctx.col("dibao.rural_standard")).otherwise(ctx.col("dibao.urban_standard")
                                                                                      ).cast(pl.Float64)


def residence_test(ctx: RuleContext) -> tuple[pl.Expr, pl.Expr]:
    """Basic-living residence gate: a member with local hukou, or the province covers permanent residents
    without it (常住人口, GD-2022/GD-2024), per ``dibao.covers_non_hukou_residents``."""
    covers = bool(ctx.p("dibao.covers_non_hukou_residents"))
    local = count_members(member("local_hukou"))
    return (local > 0) | pl.lit(covers), fmt(
        "{} of {} member(s) hold local hukou; non-hukou residents covered: {} ({})", local, pl.col("member_count"),
        "yes" if covers else "no", ctx.cite("dibao.covers_non_hukou_residents"))


def standard_label() -> pl.Expr:
    return pl.when(pl.col("rural")).then(pl.lit("rural")).otherwise(pl.lit("urban"))


def standard_values(ctx: RuleContext) -> list[float]:
    """Every dibao standard value in force on the evaluation date (urban, rural, each regional override): a
    handful per province. Member-level arithmetic against the household's standard (单人保) is written once per
    value, because a member expression cannot read a household column."""
    values: set[float] = set()
    for key in ("dibao.urban_standard", "dibao.rural_standard"):
        parameter = ctx.params.parameters.get(key)
        latest: dict[str | None, tuple] = {}
        for v in parameter.values if parameter else []:
            if v.start <= ctx.on and (v.region not in latest or v.start > latest[v.region][0]):
                latest[v.region] = (v.start, float(v.value))
        values.update(value for _, value in latest.values())
    return sorted(values)


def by_standard(ctx: RuleContext, build) -> pl.Expr:
    """``build(standard)`` (an expression written for one literal standard) chosen by each household's own
    dibao standard."""
    std = dibao_standard(ctx)
    expr: pl.Expr = pl.lit(None)
    for value in standard_values(ctx):
        expr = pl.when(std == value).then(build(value)).otherwise(expr)
    return expr


def economic_verification(ctx: RuleContext) -> tuple[pl.Expr, pl.Expr]:
    """Gate of the income-tested programs: missing data is not zero income. A household whose income and
    financial assets the economic verification (家庭经济状况核对, GD-2021 §5) has not recorded is *needs economic
    verification*, naming what is missing, never eligible (at the full amount) on an income of nothing."""
    income = pl.col("income_verified").fill_null(False)
    assets = pl.col("assets_verified").fill_null(False)
    missing = pl.concat_str([pl.when(~income).then(pl.lit("income")), pl.when(~assets).then(pl.lit("financial assets"))],
                            separator=", ", ignore_nulls=True)
    return income & assets, pl.when(income & assets).then(
        pl.lit("economic verification (家庭经济状况核对): income and financial assets recorded")).otherwise(
        fmt("needs economic verification (家庭经济状况核对): missing {}", missing))
