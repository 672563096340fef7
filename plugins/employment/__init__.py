"""就业救助 (employment aid): zero-employment households first, and referral of new dibao/tekun households.

Rules (POLICY_FACTS §2 employment, GD-2021, GD-2024): priority public employment services; zero-employment
households (零就业家庭: working-age members able to work, none employed) are cleared dynamically; certified
employment-difficulty persons (就业困难人员, ``employment_difficulty_level``) get tiered help, public-benefit jobs
first from ``employment.priority_job_level`` (illustrative: the sources say 特别困难人员 without a level).
Gansu (GS-2024) supports entrepreneurship of low-income persons: a 5,000-yuan
one-time subsidy after a business runs one year, guaranteed personal loans up to 300,000 for 3 years and
small-enterprise loans up to 4,000,000 for 2 years (optional parameters): where configured, members of
low-income households whose business (``business_registered_on``) has operated a year get the subsidy as the
program's one-off amount, and the loan ceilings are stated as offers. The working-age band is not in the
sources: illustrative.

Lifecycle: when a dibao or tekun enrolment becomes active for a zero-employment household, this plugin adds a
referral (分类转办, GD-2022) to the household's aid chain, in the same transaction.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
from sqlalchemy import select
from aidgraph.plugin import (
    ABLE_TO_WORK,
    AidChainKind,
    BenefitFormula,
    EligibilityRule,
    Household,
    casework,
    Membership,
    PROGRAM_SEARCH_FIELDS,
    ParamSpec,
    Person,
    Program,
    RuleContext,
    age_on,
    aidchain,
    count_members,
    fmt,
    hookimpl,
    member,
    program_search_document,
    receiving_any,
    yuan,
)

from aidgraph.plugins.employment.graphql import EmploymentSupport, contribution
from aidgraph.plugins.low_income import LOW_INCOME_PROGRAMS


__version__ = "0.1.0"

PROGRAM = Program(key="employment", name="就业救助 employment aid", domain="employment",
                  description="Priority employment services for zero-employment and low-income households.")
REFERRAL_DEPARTMENT = "human_resources"
"""人力资源社会保障: the department zero-employment households are referred to (GD-2021 落实部门责任)."""


@hookimpl
def aidgraph_programs() -> list[Program]:
    return [PROGRAM]


@hookimpl
def aidgraph_parameter_schemas() -> list[ParamSpec]:
    return [
        ParamSpec("employment.working_age_min", "integer", "劳动年龄: from this age", "years"),
        ParamSpec("employment.working_age_max", "integer", "劳动年龄: below this age", "years"),
        ParamSpec("employment.entrepreneurship_subsidy", "number", "一次性创业补贴 after one year in business",
                  "yuan once", minimum=0, required=False),
        ParamSpec("employment.guaranteed_loan_max", "number", "个人创业担保贷款 ceiling", "yuan", minimum=0,
                  required=False),
        ParamSpec("employment.guaranteed_loan_years", "integer", "个人创业担保贷款 term", "years", required=False),
        ParamSpec("employment.small_enterprise_loan_max", "number", "小微企业创业担保贷款 ceiling", "yuan", minimum=0,
                  required=False),
        ParamSpec("employment.small_enterprise_loan_years", "integer", "小微企业创业担保贷款 term", "years",
                  required=False),
        ParamSpec("employment.priority_job_level", "integer",
                  "特别困难人员: certified employment-difficulty level from which public-benefit jobs come first",
                  minimum=1),
    ]


def _working_age(c: RuleContext):
    return (member("age") >= c.p("employment.working_age_min")) & (member("age") < c.p("employment.working_age_max"))


def _zero_employment(c: RuleContext):
    able = count_members(_working_age(c) & member("labour_capacity").is_in(list(ABLE_TO_WORK)))
    employed = count_members(member("employment_status") == "EMPLOYED")
    extras = []
    if c.has("employment.entrepreneurship_subsidy"):
        extras.append(f"entrepreneurship subsidy {c.p('employment.entrepreneurship_subsidy'):,.0f} yuan after one "
                      f"year ({c.cite('employment.entrepreneurship_subsidy')})")
    if c.has("employment.guaranteed_loan_max"):
        extras.append(f"guaranteed loan up to {c.p('employment.guaranteed_loan_max'):,.0f} yuan for "
                      f"{c.p('employment.guaranteed_loan_years', default='?')} years")
    if c.has("employment.small_enterprise_loan_max"):
        extras.append(f"small-enterprise loan up to {c.p('employment.small_enterprise_loan_max'):,.0f} yuan for "
                      f"{c.p('employment.small_enterprise_loan_years', default='?')} years")
    return (able > 0) & (employed == 0), fmt(
        "零就业家庭: {} working-age member(s) ({}-{}) able to work, {} employed{}", able,
        c.p("employment.working_age_min"), c.p("employment.working_age_max") - 1, employed,
        ("; " + "; ".join(extras)) if extras else "")


def _difficulty(c: RuleContext):
    """GD-2021 对经认定的就业困难人员实施分级帮扶，特别困难人员优先提供公益性岗位: certified persons get help by
    their level; from ``employment.priority_job_level`` on, public-benefit jobs first."""
    level = member("employment_difficulty_level")
    certified = count_members(level.is_not_null())
    priority = count_members(level >= c.p("employment.priority_job_level"))
    return certified > 0, fmt(
        "就业困难人员: {} certified member(s), tiered help by level (分级帮扶); {} at level {} or above: public-benefit "
        "jobs first (公益性岗位, {})", certified, priority, c.p("employment.priority_job_level"),
        c.cite("employment.priority_job_level"))


def _years_before(on, years: int):
    try:
        return on.replace(year=on.year - years)
    except ValueError:  # 29 February
        return on.replace(year=on.year - years, day=28)


def business_owners(c: RuleContext) -> tuple[pl.Expr, pl.Expr]:
    """(members with a registered business, of whom operating one year or more on the evaluation date)."""
    registered = member("business_registered_on")
    owners = count_members(registered.is_not_null())
    one_year = count_members(registered <= _years_before(c.on, 1))
    return owners, one_year


def _entrepreneurship(c: RuleContext):
    """GS-2024: the one-off entrepreneurship subsidy after a year of operation, and the guaranteed-loan
    ceilings as computed offers, for members of low-income households who registered a business."""
    owners, one_year = business_owners(c)
    subsidy = float(c.p("employment.entrepreneurship_subsidy"))
    amount = one_year * subsidy
    offers = []
    if c.has("employment.guaranteed_loan_max"):
        offers.append(fmt("personal guaranteed loan up to {} yuan for up to {} years each (个体经营)",
                          yuan(c.p("employment.guaranteed_loan_max")), c.p("employment.guaranteed_loan_years")))
    if c.has("employment.small_enterprise_loan_max"):
        offers.append(fmt("or, for a small enterprise, up to {} yuan for up to {} years (小微企业)",
                          yuan(c.p("employment.small_enterprise_loan_max")),
                          c.p("employment.small_enterprise_loan_years")))
    offer_text = pl.concat_str(offers, separator=", ") if offers else pl.lit("no loans configured")
    return amount, fmt("创业: {} member(s) with a registered business, {} operating one year or more: subsidy {} x {} = "
                       "{} yuan once ({}); {}", owners, one_year, yuan(subsidy), one_year, yuan(amount),
                       c.cite("employment.entrepreneurship_subsidy"), offer_text)


def _entrepreneur(c: RuleContext):
    owners, one_year = business_owners(c)
    low_income = receiving_any(LOW_INCOME_PROGRAMS)
    return low_income & (one_year > 0), fmt(
        "创业补贴: low-income household {}; {} member business(es) operating one year or more",
        pl.when(low_income).then(pl.lit("yes")).otherwise(pl.lit("no")), one_year)


@hookimpl
def aidgraph_eligibility_rules() -> list[EligibilityRule]:
    return [EligibilityRule("employment", "zero_employment", _zero_employment),
            EligibilityRule("employment", "employment_difficulty", _difficulty, kind="alternative"),
            EligibilityRule("employment", "entrepreneur", _entrepreneur, kind="alternative")]


@hookimpl(trylast=True)
def aidgraph_benefit_formula(program: Program, params) -> BenefitFormula | None:
    """The one-off entrepreneurship subsidy where the province has one (GS-2024); none elsewhere."""
    if program.key != "employment" or not params.has("employment.entrepreneurship_subsidy"):
        return None
    return BenefitFormula("employment", "entrepreneurship_subsidy", _entrepreneurship, period="once")


@hookimpl
async def aidgraph_enrollment_changed(event) -> None:
    """Refer a zero-employment household to employment services when its dibao or tekun becomes active."""
    if event.program.key not in ("dibao", "tekun") or event.to_status != "ACTIVE":
        return None
    params = event.params
    on: dt.date = event.on
    if not params.has("employment.working_age_min"):
        return None
    low, high = params.value("employment.working_age_min", on), params.value("employment.working_age_max", on)
    rows = (await event.session.execute(
        select(Person.birth_date, Person.labour_capacity, Person.employment_status)
        .join(Membership, Membership.person_id == Person.id)
        .where(Membership.household_id == event.household_id, Membership.valid_to.is_(None))
    )).all()
    able = [r for r in rows if low <= age_on(r[0], on) < high and r[1] in ABLE_TO_WORK]
    if able and not any(r[2] == "EMPLOYED" for r in rows):
        aidchain.append(event.session, event.household_id, AidChainKind.REFERRAL,
                        f"零就业家庭 referred to employment services: {len(able)} working-age member(s) able to work, "
                        f"none employed", program_key="employment", ref_type="enrollment",
                        ref_id=event.enrollment_id, actor=event.actor.username)
        # The referral as a record with a due date (分类转办, 限时办理), where the province lists the department.
        if REFERRAL_DEPARTMENT in casework.departments(params, on):
            household = await event.session.get(Household, event.household_id)
            await casework.create_referral(
                event.session, event.actor, params, household, department=REFERRAL_DEPARTMENT, source="ENROLLMENT",
                source_id=event.enrollment_id, on=on,
                reason=f"零就业家庭: {len(able)} working-age member(s) able to work, none employed; priority public "
                       f"employment services (就业援助) on {event.program.key} activation")
    return None



@hookimpl
def aidgraph_search_fields() -> dict:
    return PROGRAM_SEARCH_FIELDS


@hookimpl
def aidgraph_search_document(entity: str, record: dict) -> dict | None:
    return program_search_document([PROGRAM], entity, record)


@hookimpl
def aidgraph_graphql_fields():
    return contribution()


@hookimpl
def aidgraph_graphql_types() -> list[type]:
    return [EmploymentSupport]
