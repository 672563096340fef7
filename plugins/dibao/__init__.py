"""最低生活保障 (dibao, minimum living guarantee): eligibility, benefit by gap or tiers, single-person inclusion.

Rules (POLICY_FACTS §2, GD-2021, GD-2022, FJ-2021):

* income test: assessed per-capita household income below the local dibao standard (urban or rural by
  residence; standards differ by city, so the standard is a regional parameter);
* residence: at least one member with local hukou, unless the province covers permanent residents without
  it (GD-2022, GD-2024);
* property: per-capita financial assets within a configured number of months of the standard (no source gives
  the number: illustrative everywhere);
* single-person inclusion (单人保): severely disabled or seriously ill members of low-income households
  (below ``dibao.low_income_multiplier`` x the urban standard, 1.5 in GD-2021) are enrolled alone; GD-2022 adds
  level-3/4 mental and intellectual disability; FJ-2021 adds disabled elderly and members of
  expenditure-hardship households (a list parameter per province). The person included alone is assessed
  and paid as a one-person household (their own income against the standard of their residence, urban or
  rural, in every province: :func:`with_single_inclusion` ends every province's dibao formula);
* economic verification: a household whose income or financial assets were never recorded by the
  verification is "needs economic verification", not a household of zero income (gate);
* benefit (GD-2021): by the gap between the standard and assessed per-capita income (差额) or by tiers (分档);
* review cycle (GD-2021): yearly for stable households, every six months with unstable income and
  working-age members; gradual exit (渐退期) of six months when income rises above the standard after work.
"""

from __future__ import annotations

import polars as pl
from aidgraph.plugin import (
    ABLE_TO_WORK,
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
    receiving,
    yuan,
)
from aidgraph.plugins.dibao.standard import (
    by_standard,
    dibao_standard,
    economic_verification,
    residence_test,
    standard_label,
)


__version__ = "0.1.0"

PROGRAM = Program(
    key="dibao", name="最低生活保障 minimum living guarantee (dibao)", domain="basic_living", category="DIBAO",
    pays_monthly=True, reviewed=True, transfer_from=("dibao_edge", "expenditure_hardship"),
    description="Monthly cash for households whose assessed per-capita income is below the local standard.",
    gradual_exit_param="dibao.gradual_exit_months")

PERSON_GROUPS = ("severe_disability", "serious_illness", "mental_intellectual_3_4", "disabled_elderly")
HOUSEHOLD_SCOPES = ("low_income", "expenditure_hardship")
MENTAL_OR_INTELLECTUAL = ["MENTAL", "INTELLECTUAL", "精神", "智力"]


@hookimpl
def aidgraph_programs() -> list[Program]:
    return [PROGRAM]


@hookimpl
def aidgraph_parameter_schemas() -> list[ParamSpec]:
    return [
        ParamSpec("dibao.urban_standard", "number", "城市低保标准 urban dibao standard", "yuan per person per month",
                  regional=True, minimum=0),
        ParamSpec("dibao.rural_standard", "number", "农村低保标准 rural dibao standard", "yuan per person per month",
                  regional=True, minimum=0),
        ParamSpec("dibao.covers_non_hukou_residents", "boolean",
                  "常住人口: households without local hukou may apply where they live"),
        ParamSpec("dibao.financial_assets_limit_months", "number",
                  "家庭财产: per-capita financial assets may not exceed this many months of the standard", "months",
                  minimum=0),
        ParamSpec("dibao.low_income_multiplier", "number",
                  "低收入家庭: per-capita income below this multiple of the urban dibao standard", "x standard",
                  minimum=1),
        ParamSpec("dibao.benefit_method_urban", "string", "urban benefit: gap (差额) or tiers (分档)",
                  choices=("gap", "tiers")),
        ParamSpec("dibao.benefit_method_rural", "string", "rural benefit: gap (差额) or tiers (分档)",
                  choices=("gap", "tiers")),
        ParamSpec("dibao.tiers", "list",
                  "分档: [{ below_ratio, share }] in order: income/standard below below_ratio pays share x standard "
                  "per member", required=False),
        ParamSpec("dibao.severe_disability_max_level", "integer", "重度残疾: disability levels up to this one", minimum=1,
                  maximum=4),
        ParamSpec("dibao.elderly_age", "integer", "老年人: age from which a member counts as elderly", "years"),
        ParamSpec("dibao.single_inclusion_groups", "list", "单人保: members who may be enrolled alone",
                  choices=PERSON_GROUPS),
        ParamSpec("dibao.single_inclusion_households", "list",
                  "单人保: households whose members qualify (low-income; expenditure hardship)", choices=HOUSEHOLD_SCOPES),
        ParamSpec("dibao.gradual_exit_months", "integer", "渐退期: months the benefit continues after income rises",
                  "months", minimum=0),
        ParamSpec("dibao.review_months_stable", "integer", "复核: months between reviews of stable households", "months",
                  minimum=1),
        ParamSpec("dibao.review_months_unstable", "integer",
                  "复核: months between reviews of households with unstable income and working-age members", "months",
                  minimum=1),
        ParamSpec("dibao.working_age_min", "integer", "劳动年龄: from this age", "years"),
        ParamSpec("dibao.working_age_max", "integer", "劳动年龄: below this age", "years"),
    ]


def _assets(c: RuleContext):
    limit = c.col("dibao.financial_assets_limit_months").cast(pl.Float64) * dibao_standard(c)
    return pl.col("per_capita_financial_assets") <= limit, fmt(
        "per-capita financial assets {} yuan within {} months x standard = {} yuan ({})",
        yuan(pl.col("per_capita_financial_assets")), c.col("dibao.financial_assets_limit_months"), yuan(limit),
        c.cite("dibao.financial_assets_limit_months"))


def _income(c: RuleContext):
    std = dibao_standard(c)
    return pl.col("per_capita_income") < std, fmt(
        "assessed per-capita income {} yuan/month below the {} dibao standard {} yuan/month ({})",
        yuan(pl.col("per_capita_income")), standard_label(), yuan(std),
        c.cite("dibao.rural_standard") + " / " + c.cite("dibao.urban_standard"))


def single_inclusion_condition(c: RuleContext) -> pl.Expr | None:
    """The member condition of the province's single-person inclusion groups (单人保), or None (no group)."""
    groups = set(c.p("dibao.single_inclusion_groups"))
    severe = c.p("dibao.severe_disability_max_level")
    conditions = []
    if "severe_disability" in groups:
        conditions.append(member("disability_level") <= severe)
    if "serious_illness" in groups:
        conditions.append(member("major_disease"))
    if "mental_intellectual_3_4" in groups:
        conditions.append(member("disability_category").is_in(MENTAL_OR_INTELLECTUAL)
                          & member("disability_level").is_in([3, 4]))
    if "disabled_elderly" in groups:
        conditions.append((member("age") >= c.p("dibao.elderly_age")) & member("disability_level").is_not_null())
    if not conditions:
        return None
    cond = conditions[0]
    for extra in conditions[1:]:
        cond = cond | extra
    return cond.fill_null(False)


def single_inclusion_members(c: RuleContext) -> pl.Expr:
    """Members in the province's single-inclusion groups who, assessed as a one-person household on their own
    income (单独纳入: the person alone is the unit), are below their household's dibao standard (urban or rural
    by residence, every province alike)."""
    cond = single_inclusion_condition(c)
    if cond is None:
        return pl.lit(0)
    return by_standard(c, lambda std: count_members(cond & (member("own_monthly_income").fill_null(0.0) < std)))


def single_inclusion_amount(c: RuleContext) -> pl.Expr:
    """Paid as one-person households: the sum over the members included alone of (standard - own income)."""
    cond = single_inclusion_condition(c)
    if cond is None:
        return pl.lit(0.0)
    return by_standard(c, lambda std: pl.col("members").list.eval(
        pl.when(cond).then((pl.lit(std) - member("own_monthly_income").fill_null(0.0)).clip(lower_bound=0.0))
        .otherwise(0.0)).list.sum().fill_null(0.0))


def single_household_scope(c: RuleContext) -> tuple[pl.Expr, pl.Expr]:
    scopes = set(c.p("dibao.single_inclusion_households"))
    threshold = c.col("dibao.urban_standard").cast(pl.Float64) * c.p("dibao.low_income_multiplier")
    low_income = pl.col("per_capita_income") < threshold
    after_expenditure = pl.col("per_capita_income") - pl.col("monthly_rigid_expenditure") / pl.max_horizontal(
        pl.col("member_count"), 1)
    hardship = receiving("expenditure_hardship") | (after_expenditure < dibao_standard(c))
    ok = pl.lit(False)
    if "low_income" in scopes:
        ok = ok | low_income
    if "expenditure_hardship" in scopes:
        ok = ok | hardship
    return ok, fmt("low-income line {} x urban standard = {} yuan ({}){}", c.p("dibao.low_income_multiplier"),
                   yuan(threshold), c.cite("dibao.low_income_multiplier"),
                   "; expenditure-hardship households included" if "expenditure_hardship" in scopes else "")


def _single(c: RuleContext):
    n = single_inclusion_members(c)
    scope_ok, scope_reason = single_household_scope(c)
    return (n > 0) & scope_ok, fmt("单人保 single-person inclusion: {} member(s) in groups {} ({}); {}", n,
                                   ", ".join(c.p("dibao.single_inclusion_groups")),
                                   c.cite("dibao.single_inclusion_groups"), scope_reason)


@hookimpl
def aidgraph_eligibility_rules() -> list[EligibilityRule]:
    return [
        EligibilityRule("dibao", "residence", residence_test, kind="gate"),
        EligibilityRule("dibao", "economic_verification", economic_verification, kind="gate"),
        EligibilityRule("dibao", "assets", _assets, kind="gate"),
        EligibilityRule("dibao", "income", _income),
        EligibilityRule("dibao", "single_inclusion", _single, kind="alternative"),
    ]


def gap_or_tiers(c: RuleContext, method: str) -> tuple[pl.Expr, pl.Expr]:
    """Household benefit by one method: (amount, reason)."""
    std = dibao_standard(c)
    members = pl.col("member_count")
    if method == "gap":
        amount = (std - pl.col("per_capita_income")).clip(lower_bound=0) * members
        return amount, fmt("差额 gap: (standard {} - per-capita income {}) x {} member(s) = {} yuan/month",
                           yuan(std), yuan(pl.col("per_capita_income")), members, yuan(amount))
    tiers = c.p("dibao.tiers", default=None) or []
    ratio = pl.col("per_capita_income") / std
    share: pl.Expr = pl.lit(None, dtype=pl.Float64)
    for tier in reversed(tiers):
        share = pl.when(ratio < float(tier["below_ratio"])).then(pl.lit(float(tier["share"]))).otherwise(share)
    amount = share * std * members
    return amount, fmt("分档 tiers: income/standard {} gives share {} x standard {} x {} member(s) = {} yuan/month ({})",
                       ratio.round(2), share, yuan(std), members, yuan(amount), c.cite("dibao.tiers"))


def with_single_inclusion(c: RuleContext, household: pl.Expr, household_reason: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """The household's benefit when its per-capita income is below the standard; otherwise the members included
    alone (单人保), each paid as a one-person household: standard - the member's own income. Every province's
    dibao formula (the default one and a province's, such as Gansu's classes) ends with this."""
    std = dibao_standard(c)
    n_single = single_inclusion_members(c)
    single = single_inclusion_amount(c)
    income_ok = pl.col("per_capita_income") < std
    return (pl.when(income_ok).then(household).otherwise(single),
            pl.when(income_ok).then(household_reason).otherwise(
                fmt("单人保: {} member(s) enrolled alone, each assessed and paid as a one-person household: standard {} "
                    "- own income = {} yuan/month", n_single, yuan(std), yuan(single))))


def _benefit(c: RuleContext) -> tuple[pl.Expr, pl.Expr]:
    urban_amount, urban_reason = gap_or_tiers(c, c.p("dibao.benefit_method_urban"))
    rural_amount, rural_reason = gap_or_tiers(c, c.p("dibao.benefit_method_rural"))
    household = pl.when(pl.col("rural")).then(rural_amount).otherwise(urban_amount)
    household_reason = pl.when(pl.col("rural")).then(rural_reason).otherwise(urban_reason)
    return with_single_inclusion(c, household, household_reason)


@hookimpl(trylast=True)
def aidgraph_benefit_formula(program: Program, params) -> BenefitFormula | None:
    if program.key != "dibao":
        return None
    return BenefitFormula("dibao", "gap_or_tiers", _benefit)


def able_members(params, on, members: list[dict]) -> int:
    """Members with labour capacity (家庭成员有劳动能力, GD-2021's reason for the half-yearly review): a labour
    capacity of FULL or PARTIAL, and, where the province configures a working-age band (劳动年龄,
    ``dibao.working_age_min``/``max``), an age within it. Without a band the sentence's own test applies:
    the recorded labour capacity alone."""
    low = params.value("dibao.working_age_min", on, default=None)
    high = params.value("dibao.working_age_max", on, default=None)
    return sum(1 for m in members if m.get("labour_capacity") in ABLE_TO_WORK
               and (low is None or m.get("age") is not None and m["age"] >= low)
               and (high is None or m.get("age") is not None and m["age"] < high))


@hookimpl(trylast=True)
def aidgraph_review_interval_months(program: Program, params, facts: dict) -> int | None:
    if program.key != "dibao":
        return None
    on = facts["on"]
    unstable = facts.get("monthly_earned_income", 0) > 0 and able_members(params, on, facts.get("members", [])) > 0
    key = "dibao.review_months_unstable" if unstable else "dibao.review_months_stable"
    return int(params.value(key, on))



@hookimpl
def aidgraph_search_fields() -> dict:
    return PROGRAM_SEARCH_FIELDS


@hookimpl
def aidgraph_search_document(entity: str, record: dict) -> dict | None:
    return program_search_document([PROGRAM], entity, record)

