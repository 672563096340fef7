"""住房救助 (housing aid): public rental housing for urban recipients, dangerous-house renovation for rural ones.

Rules (POLICY_FACTS §2 housing): urban dibao and tekun recipients get public rental housing with a rent discount;
rural recipients get dangerous-house renovation first (GD-2021). Fujian's old-community renovation covers the
personal contribution of tekun 100% and dibao 70% (FJ-2021): ``housing.renovation_contribution_share``.
No monthly amount.
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
    receiving,
    receiving_any,
)


__version__ = "0.1.0"

PROGRAM = Program(key="housing", name="住房救助 housing aid", domain="housing",
                  description="Public rental housing, rent discounts and dangerous-house renovation for recipients.")


@hookimpl
def aidgraph_programs() -> list[Program]:
    return [PROGRAM]


@hookimpl
def aidgraph_parameter_schemas() -> list[ParamSpec]:
    return [
        ParamSpec("housing.measures", "table", "measure by residence: { urban = \"...\", rural = \"...\" }"),
        ParamSpec("housing.renovation_contribution_share", "table",
                  "老旧小区改造: share of the personal contribution covered, by category", required=False),
    ]


def renovation_share(shares: dict, category: str) -> float:
    """Share of the personal contribution to an old-community renovation that the province covers."""
    return float(shares.get(category, 0.0))


def _recipient(c: RuleContext):
    measures = c.p("housing.measures")
    shares = c.p("housing.renovation_contribution_share", default=None) or {}
    share_text = (", ".join(f"{k} {float(v):.0%}" for k, v in shares.items()) + " of renovation contributions "
                  f"({c.cite('housing.renovation_contribution_share')})") if shares else "no renovation share configured"
    measure = pl.when(pl.col("rural")).then(pl.lit("rural: " + measures.get("rural", ""))).otherwise(
        pl.lit("urban: " + measures.get("urban", "")))
    category = pl.when(receiving("tekun")).then(pl.lit("TEKUN")).when(receiving("dibao")).then(pl.lit("DIBAO"))
    return receiving_any(["dibao", "tekun"]), fmt("category {}; {} ({}); {}", category.fill_null("none"), measure,
                                                  c.cite("housing.measures"), share_text)


@hookimpl
def aidgraph_eligibility_rules() -> list[EligibilityRule]:
    return [EligibilityRule("housing", "dibao_or_tekun_recipient", _recipient)]



@hookimpl
def aidgraph_search_fields() -> dict:
    return PROGRAM_SEARCH_FIELDS


@hookimpl
def aidgraph_search_document(entity: str, record: dict) -> dict | None:
    return program_search_document([PROGRAM], entity, record)
