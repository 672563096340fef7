"""临时救助 / 急难社会救助 (temporary and emergency aid): given where the hardship happens, aid first in emergencies.

Rules (POLICY_FACTS §2 temporary, GD-2021, GD-2022): temporary aid has no hukou or residence limit: it is given
where the emergency happens (and covers Hong Kong and Macao residents, GD-2022), so these rules have no hukou
gate unless a province configures one (``temporary.no_hukou_limit``). Two programs:

* ``temporary`` (支出型, expenditure type): rigid expenditure leaves the household below the dibao standard;
  normal review;
* ``temporary_emergency`` (急难型, emergency type): eligibility follows from an emergency *event* recorded for
  the household (``emergency_event``: kind, place, date; GD-2021 §15 "对遭遇突发事件、意外伤害、重大疾病，受传染病
  疫情等突发公共卫生事件影响…给予急难社会救助"), of a kind the province knows (``temporary.emergency_kinds``)
  and recent enough (``temporary.emergency_months``, illustrative): not from a person flag that nobody clears.
  The event's place is where the aid is given (由急难发生地实施). Aid first, paperwork after (先行救助): the state
  machine allows approval straight from APPLIED; the explanation due afterwards (事后补充说明情况) is recorded
  with the event, its deadline ``temporary.explanation_days`` after the event (illustrative).

Both pay once (一次审批、分阶段救助: approve once, aid in stages): the one-off amount is a number of months of the
local dibao standard per member (``temporary.months_of_standard``, not in the sources: illustrative). "Local" is
where the hardship is: the household's residence for expenditure-type aid, the place of the latest counted
emergency for emergency aid (GD-2021 §15 取消户籍地、居住地申请限制，由急难发生地实施临时救助: that place's urban or
rural standard, its city's or county's override included), whatever the household's registration.

A third program, ``epidemic_one_off`` (疫情一次性生活补贴, FJ-2021 向莆田等受新冠疫情影响地区的困难群众发放一次性生活
补贴): every household of the low-income population (困难群众: receiving one of
:data:`aidgraph.plugins.low_income.LOW_INCOME_PROGRAMS`) living in an area the province declares affected on the
date (``temporary.epidemic_areas``, region prefixes, dated: Fujian's 3503 莆田 for 2021); the amount per member is
``temporary.epidemic_one_off_amount``, which no source gives: unset, the reasons say "amount not configured".
"""

from __future__ import annotations

import calendar

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
    receiving_any,
    yuan,
)
from aidgraph.plugins.dibao.standard import dibao_standard, economic_verification
from aidgraph.plugins.low_income import LOW_INCOME_PROGRAMS
from aidgraph.plugins.temporary.graphql import EmergencyEventType, contribution


__version__ = "0.1.0"

TEMPORARY = Program(key="temporary", name="临时救助（支出型） temporary aid, expenditure type", domain="emergency",
                    description="One-off aid where rigid expenditure leaves a household below the dibao standard.")
EMERGENCY = Program(key="temporary_emergency", name="临时救助（急难型） emergency aid, aid first",
                    domain="emergency", aid_first=True,
                    description="One-off aid for a sudden emergency, given first and verified after (先行救助).")


EPIDEMIC = Program(key="epidemic_one_off", name="疫情一次性生活补贴 one-off living subsidy in epidemic-affected areas",
                   domain="emergency",
                   description="A one-off living subsidy for low-income households in areas the province declares "
                               "affected by an epidemic (FJ-2021).")
EPIDEMIC_AREAS = "temporary.epidemic_areas"
EPIDEMIC_AMOUNT = "temporary.epidemic_one_off_amount"

EMERGENCY_KINDS = ("SUDDEN_EVENT", "ACCIDENT", "MAJOR_ILLNESS", "EPIDEMIC", "DISASTER", "OTHER")
"""突发事件, 意外伤害, 重大疾病, 传染病疫情等突发公共卫生事件, 自然灾害 (因灾, GD-2022), 其他特殊原因 (GD-2021)."""


@hookimpl
def aidgraph_programs() -> list[Program]:
    return [TEMPORARY, EMERGENCY, EPIDEMIC]


@hookimpl
def aidgraph_parameter_schemas() -> list[ParamSpec]:
    return [
        ParamSpec("temporary.no_hukou_limit", "boolean",
                  "不受户籍、居住地限制: aid where the emergency happens, whatever the hukou"),
        ParamSpec("temporary.months_of_standard", "number", "one-off aid: months of the local dibao standard per member",
                  "months", minimum=0),
        ParamSpec("temporary.emergency_kinds", "list", "急难: the kinds of emergency the province aids",
                  choices=EMERGENCY_KINDS),
        ParamSpec("temporary.emergency_months", "integer", "急难: an event counts for this many months after it happened",
                  "months", minimum=1, maximum=12),
        ParamSpec("temporary.explanation_days", "integer",
                  "先行救助，事后补充说明情况: days after the event by which the explanation is due", "days", minimum=1),
        ParamSpec(EPIDEMIC_AREAS, "list", "疫情一次性生活补贴: region prefixes declared affected by an epidemic (an "
                  "empty list ends the declaration)", required=False),
        ParamSpec(EPIDEMIC_AMOUNT, "number", "疫情一次性生活补贴: the one-off amount per member", "yuan",
                  required=False, minimum=0),
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


def _months_before(on, months: int):
    year, month = divmod(on.year * 12 + on.month - 1 - months, 12)
    return on.replace(year=year, month=month + 1, day=min(on.day, calendar.monthrange(year, month + 1)[1]))


def _counted(c: RuleContext) -> pl.Expr:
    """Inside ``emergencies``: an event of a kind the province aids, recent enough, not after the date."""
    kinds = list(c.p("temporary.emergency_kinds"))
    since = _months_before(c.on, int(c.p("temporary.emergency_months")))
    event = pl.element().struct
    return (event.field("kind").is_in(kinds) & (event.field("occurred_on") >= since)
            & (event.field("occurred_on") <= c.on))


def _emergency(c: RuleContext):
    kinds = list(c.p("temporary.emergency_kinds"))
    since = _months_before(c.on, int(c.p("temporary.emergency_months")))
    counts = _counted(c)
    n = pl.col("emergencies").list.eval(counts.cast(pl.Int32)).list.sum().fill_null(0)
    described = pl.col("emergencies").list.eval(
        pl.element().filter(counts).struct.field("kind")
        + pl.lit(" at ") + pl.element().filter(counts).struct.field("region_code")
        + pl.lit(" on ") + pl.element().filter(counts).struct.field("occurred_on").cast(pl.String)).list.join("; ")
    return n > 0, pl.when(n > 0).then(fmt(
        "急难: {} (kinds {}, within {} months, {}): aid where it happens, aid first, explanation after", described,
        ", ".join(kinds), c.p("temporary.emergency_months"), c.cite("temporary.emergency_kinds"))).otherwise(fmt(
        "急难: no emergency event of a kind {} since {} recorded for the household ({})", ", ".join(kinds), since,
        c.cite("temporary.emergency_kinds")))


def _epidemic(c: RuleContext):
    declared = c.p(EPIDEMIC_AREAS, default=None)
    if declared is None:
        return pl.lit(False), pl.lit(f"not configured: {EPIDEMIC_AREAS}")
    areas = [str(a) for a in declared]
    if not areas:
        return pl.lit(False), fmt("no area declared affected by an epidemic on {} ({})", c.on, c.cite(EPIDEMIC_AREAS))
    inside = pl.any_horizontal([pl.col("region_code").str.starts_with(a) for a in areas])
    poor = receiving_any(LOW_INCOME_PROGRAMS)
    return inside & poor, fmt("lives in an area declared affected by the epidemic ({}; {}): {}; in the low-income "
                              "population (困难群众): {} (FJ-2021 向莆田等受新冠疫情影响地区的困难群众发放一次性生活补贴)",
                              ", ".join(areas), c.cite(EPIDEMIC_AREAS), inside, poor)


def _epidemic_amount(c: RuleContext):
    per_member = c.p(EPIDEMIC_AMOUNT, default=None)
    if per_member is None:
        return pl.lit(None, dtype=pl.Float64), pl.lit(f"amount not configured: {EPIDEMIC_AMOUNT} (the source gives "
                                                      "no amount)")
    amount = pl.lit(float(per_member)) * pl.col("member_count")
    return amount, fmt("one-off {} x {} member(s) = {} yuan ({})", yuan(float(per_member)), pl.col("member_count"),
                       yuan(amount), c.cite(EPIDEMIC_AMOUNT))


@hookimpl
def aidgraph_eligibility_rules() -> list[EligibilityRule]:
    return [
        EligibilityRule("temporary", "where_it_happens", _where, kind="gate"),
        EligibilityRule("temporary", "economic_verification", economic_verification, kind="gate"),
        EligibilityRule("temporary", "expenditure", _expenditure),
        EligibilityRule("temporary_emergency", "where_it_happens", _where, kind="gate"),
        EligibilityRule("temporary_emergency", "emergency", _emergency),
        EligibilityRule(EPIDEMIC.key, "low_income_in_affected_area", _epidemic),
    ]


def _one_off(c: RuleContext):
    std = dibao_standard(c)
    months = float(c.p("temporary.months_of_standard"))
    amount = std * months * pl.col("member_count")
    return amount, fmt("one-off {} months x standard {} x {} member(s) = {} yuan ({})", months, yuan(std),
                       pl.col("member_count"), yuan(amount), c.cite("temporary.months_of_standard"))


def _standard_at(c: RuleContext, region: pl.Expr, rural: pl.Expr) -> pl.Expr:
    """The dibao standard in force for ``region`` (a code), urban or rural by ``rural``: the most specific region
    prefix of the province's values wins, as :meth:`RuleContext.col` does for the household's own region."""
    def value(key: str) -> pl.Expr:
        values = c.params.by_region(key, c.on)
        base = values.pop(None, None)
        expr = pl.lit(None if base is None else float(base), dtype=pl.Float64)
        for prefix in sorted((r for r in values if r is not None), key=len):
            expr = pl.when(region.str.starts_with(prefix)).then(pl.lit(float(values[prefix]))).otherwise(expr)
        return expr
    return pl.when(rural.fill_null(False)).then(value("dibao.rural_standard")).otherwise(value("dibao.urban_standard"))


def _emergency_one_off(c: RuleContext):
    """由急难发生地实施临时救助: the months of the standard of the place of the latest counted emergency; where the
    province has no standard for that place (an event outside it), the household's own, said so."""
    latest = pl.col("emergencies").list.eval(pl.element().filter(_counted(c))).list.last()
    place, rural = latest.struct.field("region_code"), latest.struct.field("rural")
    at_place = pl.when(place.is_not_null()).then(_standard_at(c, place, rural))
    std = at_place.fill_null(dibao_standard(c))
    months = float(c.p("temporary.months_of_standard"))
    amount = std * months * pl.col("member_count")
    where = pl.when(at_place.is_not_null()).then(pl.format(
        "the {} standard of the emergency's place {} (由急难发生地实施临时救助)",
        pl.when(rural.fill_null(False)).then(pl.lit("rural")).otherwise(pl.lit("urban")), place)).otherwise(
        pl.lit("the standard where the household lives (no standard of this province for the emergency's place)"))
    return amount, fmt("one-off {} months x {} {} x {} member(s) = {} yuan ({})", months, where, yuan(std),
                       pl.col("member_count"), yuan(amount), c.cite("temporary.months_of_standard"))


@hookimpl(trylast=True)
def aidgraph_benefit_formula(program: Program, params) -> BenefitFormula | None:
    if program.key == "temporary":
        return BenefitFormula(program.key, "one_off", _one_off, period="once")
    if program.key == "temporary_emergency":
        return BenefitFormula(program.key, "one_off", _emergency_one_off, period="once")
    if program.key == EPIDEMIC.key:
        return BenefitFormula(program.key, "one_off", _epidemic_amount, period="once")
    return None



@hookimpl
def aidgraph_search_fields() -> dict:
    return PROGRAM_SEARCH_FIELDS


@hookimpl
def aidgraph_search_document(entity: str, record: dict) -> dict | None:
    return program_search_document([TEMPORARY, EMERGENCY, EPIDEMIC], entity, record)


@hookimpl
def aidgraph_graphql_fields():
    return contribution()


@hookimpl
def aidgraph_graphql_types() -> list[type]:
    return [EmergencyEventType]
