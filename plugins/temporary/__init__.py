"""临时救助 / 急难社会救助 (temporary and emergency aid): given where the hardship happens, aid first in emergencies.

Rules (POLICY_FACTS §2 temporary, GD-2021, GD-2022): temporary aid has no hukou or residence limit: it is given
where the emergency happens (and covers Hong Kong and Macao residents, GD-2022), so these rules have no hukou
gate unless a province configures one (``temporary.no_hukou_limit``). Two programs:

* ``temporary`` (支出型, expenditure type): rigid expenditure leaves the household below the dibao standard;
  normal review;
* ``temporary_emergency`` (急难型, emergency type): a sudden event (here: a hospitalised member); aid first,
  paperwork after (先行救助): the state machine allows approval straight from APPLIED.

Both pay once (一次审批、分阶段救助: approve once, aid in stages): the one-off amount is a number of months of the
local dibao standard per member (``temporary.months_of_standard``, not in the sources: illustrative).
"""

from __future__ import annotations

import polars as pl
from aidgraph.plugin import (
    BenefitFormula,
    EligibilityRule,
    PROGRAM_SEARCH_FIELDS,
    ParamSpec,
    Program,
    RuleContext,
    count_members,
    fmt,
    hookimpl,
    member,
    program_search_document,
    yuan,
)
from aidgraph.plugins.dibao.standard import dibao_standard, economic_verification


__version__ = "0.1.0"

TEMPORARY = Program(key="temporary", name="临时救助（支出型） temporary aid, expenditure type", domain="emergency",
                    description="One-off aid where rigid expenditure leaves a household below the dibao standard.")
EMERGENCY = Program(key="temporary_emergency", name="临时救助（急难型） emergency aid, aid first",
                    domain="emergency", aid_first=True,
                    description="One-off aid for a sudden emergency, given first and verified after (先行救助).")


@hookimpl
def aidgraph_programs() -> list[Program]:
    return [TEMPORARY, EMERGENCY]


@hookimpl
def aidgraph_parameter_schemas() -> list[ParamSpec]:
    return [
        ParamSpec("temporary.no_hukou_limit", "boolean",
                  "不受户籍、居住地限制: aid where the emergency happens, whatever the hukou"),
        ParamSpec("temporary.months_of_standard", "number", "one-off aid: months of the local dibao standard per member",
                  "months", minimum=0),
    ]


def _where(c: RuleContext):
    open_to_all = bool(c.p("temporary.no_hukou_limit"))
    local = count_members(member("local_hukou"))
    return pl.lit(open_to_all) | (local > 0), fmt(
        "aid where the hardship happens (region {}); hukou limit: {} ({}); {} member(s) with local hukou",
        pl.col("region_code"), "none" if open_to_all else "local hukou required", c.cite("temporary.no_hukou_limit"),
        local)


def _expenditure(c: RuleContext):
    std = dibao_standard(c)
    per_member = pl.col("monthly_rigid_expenditure") / pl.max_horizontal(pl.col("member_count"), 1)
    left = pl.col("per_capita_income") - per_member
    return (pl.col("monthly_rigid_expenditure") > 0) & (left < std), fmt(
        "rigid expenditure {} yuan/month per member leaves {} of per-capita income {}, below the standard {}",
        yuan(per_member), yuan(left), yuan(pl.col("per_capita_income")), yuan(std))


def _emergency(c: RuleContext):
    n = count_members(member("hospitalised"))
    return n > 0, fmt("急难: {} member(s) hospitalised: aid first, verification after", n)


@hookimpl
def aidgraph_eligibility_rules() -> list[EligibilityRule]:
    return [
        EligibilityRule("temporary", "where_it_happens", _where, kind="gate"),
        EligibilityRule("temporary", "economic_verification", economic_verification, kind="gate"),
        EligibilityRule("temporary", "expenditure", _expenditure),
        EligibilityRule("temporary_emergency", "where_it_happens", _where, kind="gate"),
        EligibilityRule("temporary_emergency", "emergency", _emergency),
    ]


def _one_off(c: RuleContext):
    std = dibao_standard(c)
    months = float(c.p("temporary.months_of_standard"))
    amount = std * months * pl.col("member_count")
    return amount, fmt("one-off {} months x standard {} x {} member(s) = {} yuan ({})", months, yuan(std),
                       pl.col("member_count"), yuan(amount), c.cite("temporary.months_of_standard"))


@hookimpl(trylast=True)
def aidgraph_benefit_formula(program: Program, params) -> BenefitFormula | None:
    if program.key in ("temporary", "temporary_emergency"):
        return BenefitFormula(program.key, "one_off", _one_off, period="once")
    return None



@hookimpl
def aidgraph_search_fields() -> dict:
    return PROGRAM_SEARCH_FIELDS


@hookimpl
def aidgraph_search_document(entity: str, record: dict) -> dict | None:
    return program_search_document([TEMPORARY, EMERGENCY], entity, record)
