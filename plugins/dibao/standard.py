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
