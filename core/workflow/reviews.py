"""The rules of a review (复核, GD-2021) that the enrolment workflow applies: what changed, whether it counts,
and how an enrolment that no longer qualifies ends.

GD-2021 (广东省改革完善社会救助制度的实施方案), item 24: "复核期内救助对象家庭经济状况没有明显变化的，不再调整
救助标准" -- a review that finds no significant change does not re-price the benefit. What counts as
significant is no number the source gives: it is the dated province parameter
``workflow.review_significant_change_percent`` (the change of the computed monthly benefit relative to the
current one, in percent; illustrative where configured, and a "not configured" reason where it is not).

GD-2021, item 11: "对已就业的低保对象，在核算其家庭收入时扣减必要的就业成本，并在其家庭成员人均收入超过当地低保标准
后给予6个月渐退期" -- the gradual exit (渐退期) is for *employed* recipients whose earnings lift the household
over the standard, not for every loss of eligibility. Read here as: the household no longer qualifies, its
earned income rose since the previous decision, and with the earned income of that decision (everything else
as recorded on the review date) it would still qualify. A pension rise, a death or moving away is no such
case: the enrolment ends on the review date.

The services (:func:`aidgraph.core.workflow.enrollment.conduct_review` for one enrolment,
:func:`aidgraph.core.workflow.enrollment.review_due` for the scheduled run, set-at-a-time) use these
functions; they read and never write, a few statements for any number of enrolments.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

import polars as pl
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from aidgraph.core.policy.engine import PolicyEngine, ProvincePolicy, household_frame
from aidgraph.core.policy.parameters import ParamSpec
from aidgraph.core.storage.validity import valid_on
from aidgraph.core.storage.models import Enrollment, Household, Membership, Person

SIGNIFICANT_CHANGE = "workflow.review_significant_change_percent"

SOURCE_NO_CHANGE = "复核期内救助对象家庭经济状况没有明显变化的，不再调整救助标准 (GD-2021)"
SOURCE_GRADUAL_EXIT = "对已就业的低保对象……在其家庭成员人均收入超过当地低保标准后给予6个月渐退期 (GD-2021)"


def parameter_schemas() -> list[ParamSpec]:
    """The review's own parameter, declared by the core's workflow plugin (core/workflow/defaults.py)."""
    return [ParamSpec(SIGNIFICANT_CHANGE, "number",
                      "复核: a change of the computed monthly benefit below this percentage of the current one is "
                      "no significant change (明显变化), and the benefit is not re-priced (GD-2021)", "percent",
                      required=False, regional=True, minimum=0, maximum=100, area="review")]


def _yuan(value: Decimal | float | None) -> str:
    if value is None:
        return "none"
    return str(Decimal(str(value)).quantize(Decimal("0.01"), ROUND_HALF_UP))


def significant_change(policy: ProvincePolicy, on: dt.date, region_code: str, current: Decimal | None,
                       computed: Decimal | None) -> tuple[bool, str]:
    """Whether the benefit computed on review differs significantly from the current one, and why."""
    if computed == current:
        return False, f"复核: the computed benefit {_yuan(computed)} yuan/month equals the current one"
    threshold = policy.params.value(SIGNIFICANT_CHANGE, on, region=region_code, default=None)
    if threshold is None:
        return True, (f"复核: {policy.params.cite(SIGNIFICANT_CHANGE)}: what counts as a significant change is not "
                      f"configured for this province, so any change re-prices: {_yuan(current)} -> "
                      f"{_yuan(computed)} yuan/month")
    if not current or computed is None:
        return True, f"复核: benefit {_yuan(current)} -> {_yuan(computed)} yuan/month"
    percent = (abs(computed - current) / current * 100).quantize(Decimal("0.01"), ROUND_HALF_UP)
    limit = Decimal(str(threshold))
    if percent >= limit:
        return True, (f"复核: the computed benefit {_yuan(computed)} differs from the current {_yuan(current)} yuan/"
                      f"month by {percent}%, at least the {limit}% that counts as significant "
                      f"({policy.params.cite(SIGNIFICANT_CHANGE)}): re-priced")
    return False, (f"复核: the computed benefit {_yuan(computed)} differs from the current {_yuan(current)} yuan/month "
                   f"by {percent}%, below the {limit}% that counts as significant "
                   f"({policy.params.cite(SIGNIFICANT_CHANGE)}): the benefit stays {_yuan(current)} "
                   f"({SOURCE_NO_CHANGE})")


def previous_decision_date(enrollment: Enrollment) -> dt.date | None:
    """The date of the facts the current benefit rests on: the last review, else the start or the decision."""
    details = enrollment.details or {}
    last = details.get("last_review")
    if last:
        return dt.date.fromisoformat(last)
    if enrollment.start_date is not None:
        return enrollment.start_date
    decided = details.get("decided_on")
    return dt.date.fromisoformat(decided) if decided else None


async def end_causes(session: AsyncSession, enrollments: list[Enrollment], on: dt.date) -> dict[int, str]:
    """Why each enrolment ends regardless of income, by enrolment id (absent: no such cause): the enrolled person
    or every member died (死亡), the enrolled person left the household, or the household moved out of the
    enrolment's county (迁出). Two statements whatever the number of enrolments."""
    hids = sorted({e.household_id for e in enrollments})
    if not hids:
        return {}
    regions = dict((await session.execute(select(Household.id, Household.region_code).where(
        Household.id.in_(hids)))).all())
    members: dict[int, dict[int, dt.date | None]] = {hid: {} for hid in hids}
    for hid, pid, died in (await session.execute(
            select(Membership.household_id, Person.id, Person.death_date).join(Person, Person.id == Membership.person_id)
            .where(Membership.household_id.in_(hids), valid_on(Membership, on)))).all():
        members[hid][pid] = died
    causes: dict[int, str] = {}
    for e in enrollments:
        current = members[e.household_id]
        living = [pid for pid, died in current.items() if died is None or died > on]
        died_on = current.get(e.person_id) if e.person_id is not None else None
        if died_on is not None and died_on <= on:
            causes[e.id] = (f"死亡: the enrolled person {e.person_id} died on {died_on}: the enrolment "
                            f"ends (the 渐退期 of GD-2021 is only for employed recipients whose earnings lift the "
                            f"household over the standard)")
        elif e.person_id is not None and e.person_id not in current:
            causes[e.id] = (f"迁出: the enrolled person {e.person_id} is no longer a member of household "
                            f"{e.household_id} on {on}: the enrolment ends here (no 渐退期)")
        elif not living:
            causes[e.id] = f"死亡: household {e.household_id} has no living member on {on}: the enrolment ends (no 渐退期)"
        elif regions.get(e.household_id, e.region_code)[:6] != e.region_code[:6]:
            causes[e.id] = (f"迁出: the household moved from {e.region_code} to {regions[e.household_id]}, outside "
                            f"the county {e.region_code[:6]} that enrolled it: the enrolment ends here (no 渐退期); "
                            f"aid where it now lives is applied for there")
    return causes


async def deceased_members(session: AsyncSession, household_ids: list[int], on: dt.date) -> dict[int, list[str]]:
    """Reasons naming members who died on or before ``on`` but are still recorded as members, by household: the
    household's facts (member count, per-capita income) still count them until the change is recorded
    (家庭人口重大变化报告机制, GD-2021), so the review says so rather than letting it pass unseen. One statement."""
    result: dict[int, list[str]] = {hid: [] for hid in household_ids}
    if not household_ids:
        return result
    rows = (await session.execute(
        select(Membership.household_id, Person.id, Person.death_date).join(Person, Person.id == Membership.person_id)
        .where(Membership.household_id.in_(household_ids), valid_on(Membership, on), Person.death_date <= on)
        .order_by(Person.id))).all()
    for hid, pid, died in rows:
        result[hid].append(f"死亡: member {pid} died on {died} and is still recorded as a member of household {hid}: "
                           f"the figures above still count them; record the change of household (家庭人口重大变化) "
                           f"and review again")
    return result


def evaluate(engine: PolicyEngine, frame: pl.DataFrame, on: dt.date, programs: list[str]) -> dict[tuple[int, str], dict]:
    """The programs' decisions for every household of ``frame``, by (household id, program): each province's
    rules once over its part of the frame (what :meth:`PolicyEngine.evaluate` does after building the frame)."""
    result: dict[tuple[int, str], dict] = {}
    configured = set(engine.province_codes())
    for code in sorted(frame["province_code"].unique().to_list()) if frame.height else []:
        if code not in configured:
            continue
        part = frame.filter(pl.col("province_code") == code)
        for row in engine.province(code).evaluate_frame(part, on, programs).iter_rows(named=True):
            result[(row["household_id"], row["program"])] = row
    return result


async def earnings_lifts(session: AsyncSession, engine: PolicyEngine, frame: pl.DataFrame,
                         enrollments: list[Enrollment], on: dt.date) -> dict[int, tuple[bool, str]]:
    """For enrolments whose household no longer qualifies on ``on``: whether the rise in earned income since the
    previous decision is what lifts it out (the 渐退期 case of GD-2021), with the reason naming the figures.

    ``frame`` is the households' frame on ``on``. One household frame per distinct previous decision date, and
    one evaluation of the counterfactual (earlier earnings, everything else as on ``on``) per province."""
    result: dict[int, tuple[bool, str]] = {}
    now = {r["household_id"]: float(r["monthly_earned_income"] or 0.0)
           for r in frame.select("household_id", "monthly_earned_income").iter_rows(named=True)}
    by_date: dict[dt.date | None, list[Enrollment]] = {}
    for e in enrollments:
        by_date.setdefault(previous_decision_date(e), []).append(e)
    before: dict[int, float] = {}
    for day, group in by_date.items():
        if day is None or day >= on:
            continue
        then = await household_frame(session, on=day, household_ids=sorted({e.household_id for e in group}))
        for r in then.select("household_id", "monthly_earned_income").iter_rows(named=True):
            before[r["household_id"]] = float(r["monthly_earned_income"] or 0.0)
    rose = [e for e in enrollments if e.household_id in now and now[e.household_id] > before.get(e.household_id, 0.0)]
    earlier = pl.DataFrame({"household_id": [e.household_id for e in rose],
                            "earned_before": [before.get(e.household_id, 0.0) for e in rose]},
                           schema={"household_id": pl.Int64, "earned_before": pl.Float64}).unique("household_id")
    counterfactual = frame.join(earlier, on="household_id", how="inner").with_columns(
        monthly_income=pl.col("monthly_income") - pl.col("monthly_earned_income") + pl.col("earned_before"),
        monthly_earned_income=pl.col("earned_before")).drop("earned_before")
    still = evaluate(engine, counterfactual, on, sorted({e.program_key for e in rose}))
    for e in enrollments:
        day = previous_decision_date(e)
        earned_now, earned_before = now.get(e.household_id, 0.0), before.get(e.household_id, 0.0)
        if e.household_id not in now:
            result[e.id] = (False, "the household has no current members")
        elif earned_now <= earned_before:
            result[e.id] = (False, (f"no 渐退期: earned income {_yuan(earned_now)} yuan/month did not rise since {day} "
                                    f"({_yuan(earned_before)}); only employed recipients whose earnings lift the "
                                    f"household over the standard get it ({SOURCE_GRADUAL_EXIT}): the enrolment ends"))
        elif still.get((e.household_id, e.program_key), {}).get("eligible"):
            result[e.id] = (True, (f"渐退期: earned income rose from {_yuan(earned_before)} (on {day}) to "
                                   f"{_yuan(earned_now)} yuan/month; with the earlier earnings the household would "
                                   f"still qualify, so employment lifts it over the standard ({SOURCE_GRADUAL_EXIT})"))
        else:
            result[e.id] = (False, (f"no 渐退期: even with the earned income of {day} ({_yuan(earned_before)} yuan/"
                                    f"month instead of {_yuan(earned_now)}) the household would not qualify: something "
                                    f"other than earnings (a pension, other income, assets) takes it out "
                                    f"({SOURCE_GRADUAL_EXIT}): the enrolment ends"))
    return result
