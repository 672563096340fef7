"""低收入人口 (the low-income population): which program puts a household in which low-income category, and
which category a household receiving several programs is counted in. The medical, education, housing and
employment rules read their categories here instead of keeping copies of the table.

The category of each program is that program's own declaration (``Program.category`` of the tekun, dibao,
near-dibao, expenditure-hardship and relapse-monitoring plugins, the source the core's program catalogue
reads too); this module only puts them in order of precedence, most supportive first: a household receiving
tekun and near-dibao support is counted as TEKUN.
"""

from __future__ import annotations

import polars as pl

from aidgraph.plugin import Program, receiving
from aidgraph.plugins import dibao, dibao_edge, expenditure_hardship, relapse_monitoring, tekun

PROGRAMS: tuple[Program, ...] = (tekun.PROGRAM, dibao.PROGRAM, dibao_edge.PROGRAM, expenditure_hardship.PROGRAM,
                                 relapse_monitoring.PROGRAM)
"""The programs that put a household in a low-income category, in order of precedence."""
LOW_INCOME_PROGRAMS: tuple[str, ...] = tuple(p.key for p in PROGRAMS)
CATEGORY_OF_PROGRAM: dict[str, str] = {p.key: p.category for p in PROGRAMS if p.category is not None}
"""Program key -> low-income category, in order of precedence."""


def category_expr(program_keys: tuple[str, ...] | list[str] = LOW_INCOME_PROGRAMS) -> pl.Expr:
    """The category of the household: that of the first of ``program_keys`` (taken in order of precedence) it
    receives; null when it receives none of them."""
    expr: pl.Expr = pl.lit(None, dtype=pl.String)
    for key, category in reversed(CATEGORY_OF_PROGRAM.items()):
        if key in program_keys:
            expr = pl.when(receiving(key)).then(pl.lit(category)).otherwise(expr)
    return expr
