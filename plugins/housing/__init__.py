"""住房救助 (housing aid): public rental housing for urban recipients, dangerous-house renovation for rural ones.

Rules (GD-2021 §10 "对符合规定标准的住房困难的低保家庭、分散供养特困人员、低收入家庭等实施住房救助"): households of the
covered categories (``housing.covered_programs``: dibao, tekun, low-income) *in housing difficulty* (the
household's ``housing_need``, an input) get housing aid: urban ones public rental housing with a rent
discount, rural ones dangerous-house renovation first (GD-2021). Dispersed and centralised tekun support are
not distinguished. Fujian's old-community renovation covers the
personal contribution of tekun 100% and dibao 70% (FJ-2021): ``housing.renovation_contribution_share``;
:func:`renovation_aid` computes the amount from the household's contribution. FJ-2021's 住房保障覆盖中低收入家庭
also covers middle-income households in housing difficulty: a line no source gives
(``housing.middle_income_multiple``, a multiple of the urban standard); a province without it covers none of
them and its reasons say "not configured".
No monthly amount.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import polars as pl
from aidgraph.plugin import (
    DomainError,
    ErrorCode,
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

from aidgraph.plugins.housing.graphql import contribution
from aidgraph.plugins.low_income import category_expr


__version__ = "0.1.0"

PROGRAM = Program(key="housing", name="住房救助 housing aid", domain="housing",
                  description="Public rental housing, rent discounts and dangerous-house renovation for recipients.")
COVERABLE = ("dibao", "tekun", "dibao_edge", "expenditure_hardship")
MIDDLE_INCOME = "housing.middle_income_multiple"
"""中低收入: FJ-2021's middle-income households, by a line no source gives (configured, or "not configured")."""
"""The programs ``housing.covered_programs`` may name (GD-2021 §10: 低保家庭、分散供养特困人员、低收入家庭); the
household's category in the reasons is the first of these it receives, in the order of precedence of
:mod:`aidgraph.plugins.low_income`."""


@hookimpl
def aidgraph_programs() -> list[Program]:
    return [PROGRAM]


@hookimpl
def aidgraph_parameter_schemas() -> list[ParamSpec]:
    return [
        ParamSpec("housing.measures", "table", "measure by residence: { urban = \"...\", rural = \"...\" }"),
        ParamSpec("housing.renovation_contribution_share", "table",
                  "老旧小区改造: share of the personal contribution covered, by category", required=False),
        ParamSpec("housing.covered_programs", "list",
                  "住房困难的…: programs whose households in housing difficulty get housing aid",
                  choices=COVERABLE),
        ParamSpec(MIDDLE_INCOME, "number",
                  "住房保障覆盖中低收入家庭: a household in no covered program is middle-income (中低收入) for housing "
                  "security when its verified per-capita income is below this multiple of the urban dibao standard",
                  "x urban standard", required=False, minimum=0),
    ]


def renovation_share(shares: dict, category: str) -> float:
    """Share of the personal contribution to an old-community renovation that the province covers."""
    return float(shares.get(category, 0.0))


def renovation_aid(shares: dict | None, categories: list[str], contribution) -> tuple[Decimal, str]:
    """老旧小区改造 (FJ-2021 对老旧小区改造中特困和低保对象分别按个人出资的全额和70%给予救助): the aid on a household's
    personal contribution, in exact decimals rounded once to the fen, under the best of its categories.

    A negative contribution is a VALIDATION error on ``contribution``; a province without shares answers
    "not configured" (amount 0)."""
    amount = Decimal(str(contribution))
    if amount < 0:
        raise DomainError.single(ErrorCode.VALIDATION, f"a contribution cannot be negative ({amount})", "contribution")
    if not shares:
        return Decimal("0.00"), "not configured: housing.renovation_contribution_share"
    best = max(categories, key=lambda c: Decimal(str(shares.get(c, 0))), default=None)
    share = Decimal(str(shares.get(best, 0))) if best else Decimal("0")
    if share == 0:
        return Decimal("0.00"), f"no renovation share for {', '.join(categories) or 'no category'}"
    aid = (amount * share).quantize(Decimal("0.01"), ROUND_HALF_UP)
    return aid, f"{best}: {share:.0%} of the personal contribution {amount} = {aid}"


def _middle_income(c: RuleContext) -> tuple[pl.Expr, pl.Expr]:
    """FJ-2021 住房保障覆盖中低收入家庭: middle-income households by the province's line; no source gives one, so
    a province without ``housing.middle_income_multiple`` covers none and says so."""
    multiple = c.p(MIDDLE_INCOME, default=None)
    if multiple is None:
        return pl.lit(False), pl.lit(f"middle-income (中低收入) households: not configured: {MIDDLE_INCOME}")
    line = c.col("dibao.urban_standard").cast(pl.Float64) * float(multiple)
    verified = pl.col("income_verified").fill_null(False)
    below = verified & (pl.col("per_capita_income") < line)
    return below, fmt("middle-income (中低收入): verified per-capita income {} below {} x urban standard = {} ({}): {}",
                      pl.when(verified).then(yuan(pl.col("per_capita_income"))).otherwise(pl.lit("not verified")),
                      multiple, yuan(line), c.cite(MIDDLE_INCOME), below)


def _recipient(c: RuleContext):
    measures = c.p("housing.measures")
    shares = c.p("housing.renovation_contribution_share", default=None) or {}
    share_text = (", ".join(f"{k} {float(v):.0%}" for k, v in shares.items()) + " of renovation contributions "
                  f"({c.cite('housing.renovation_contribution_share')})") if shares else "no renovation share configured"
    measure = pl.when(pl.col("rural")).then(pl.lit("rural: " + measures.get("rural", ""))).otherwise(
        pl.lit("urban: " + measures.get("urban", "")))
    covered = list(c.p("housing.covered_programs"))
    category = category_expr(COVERABLE)
    middle, middle_text = _middle_income(c)
    return receiving_any(covered) | middle, fmt("category {} (covered: {}, {}); {}; {} ({}); {}",
                                                category.fill_null("none"), ", ".join(covered),
                                                c.cite("housing.covered_programs"), middle_text, measure,
                                                c.cite("housing.measures"), share_text)


def _housing_need(c: RuleContext):
    need = pl.col("housing_need").fill_null(False)
    return need, pl.when(need).then(pl.lit("住房困难: housing difficulty recorded for the household")).otherwise(
        pl.lit("住房困难: no housing difficulty recorded for the household"))


@hookimpl
def aidgraph_eligibility_rules() -> list[EligibilityRule]:
    return [EligibilityRule("housing", "covered_category", _recipient),
            EligibilityRule("housing", "housing_need", _housing_need)]



@hookimpl
def aidgraph_search_fields() -> dict:
    return PROGRAM_SEARCH_FIELDS


@hookimpl
def aidgraph_search_document(entity: str, record: dict) -> dict | None:
    return program_search_document([PROGRAM], entity, record)


@hookimpl
def aidgraph_graphql_fields():
    return contribution()
