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

The service itself (:func:`aidgraph.core.workflow.enrollment.conduct_review`) and the scheduled runs
(``aidgraph reviews run``, ``aidgraph payments run``) use these functions; they read and never write.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

import polars as pl
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from aidgraph.core.policy.engine import ProvincePolicy, household_frame
from aidgraph.core.policy.parameters import ParamSpec
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


async def end_cause(session: AsyncSession, enrollment: Enrollment, on: dt.date) -> str | None:
    """Why the enrolment ends regardless of income, or None: the enrolled person or every member died (死亡),
    the enrolled person left the household, or the household moved out of the enrolment's county (迁出)."""
    household = await session.get(Household, enrollment.household_id)
    members = (await session.execute(
        select(Person.id, Person.death_date).join(Membership, Membership.person_id == Person.id).where(
            Membership.household_id == enrollment.household_id, Membership.valid_from <= on,
            or_(Membership.valid_to.is_(None), Membership.valid_to > on)))).all()
    living = {pid for pid, died in members if died is None or died > on}
    if enrollment.person_id is not None:
        died = (await session.execute(select(Person.death_date).where(Person.id == enrollment.person_id))
                ).scalar_one_or_none()
        if died is not None and died <= on:
            return (f"死亡: the enrolled person {enrollment.person_id} died on {died}: the enrolment ends (the 渐退期 of "
                    f"GD-2021 is only for employed recipients whose earnings lift the household over the standard)")
        if enrollment.person_id not in {pid for pid, _ in members}:
            return (f"迁出: the enrolled person {enrollment.person_id} is no longer a member of household "
                    f"{enrollment.household_id} on {on}: the enrolment ends here (no 渐退期)")
    if not living:
        return (f"死亡: household {enrollment.household_id} has no living member on {on}: the enrolment ends "
                f"(no 渐退期)")
    if household is not None and household.region_code[:6] != enrollment.region_code[:6]:
        return (f"迁出: the household moved from {enrollment.region_code} to {household.region_code}, outside the "
                f"county {enrollment.region_code[:6]} that enrolled it: the enrolment ends here (no 渐退期); aid "
                f"where it now lives is applied for there")
    return None


async def earnings_lift(session: AsyncSession, policy: ProvincePolicy, enrollment: Enrollment, on: dt.date
                        ) -> tuple[bool, str]:
    """Whether the household's rise in earned income since the previous decision is what lifts it out of the
    program on ``on`` (the 渐退期 case of GD-2021), with the reason naming the figures."""
    before = previous_decision_date(enrollment)
    now = await household_frame(session, on=on, household_ids=[enrollment.household_id])
    if now.height == 0:
        return False, "the household has no current members"
    earned_now = float(now["monthly_earned_income"][0] or 0.0)
    earned_before = 0.0
    if before is not None and before < on:
        then = await household_frame(session, on=before, household_ids=[enrollment.household_id])
        if then.height:
            earned_before = float(then["monthly_earned_income"][0] or 0.0)
    if earned_now <= earned_before:
        return False, (f"no 渐退期: earned income {_yuan(earned_now)} yuan/month did not rise since {before} "
                       f"({_yuan(earned_before)}); only employed recipients whose earnings lift the household over "
                       f"the standard get it ({SOURCE_GRADUAL_EXIT}): the enrolment ends")
    counterfactual = now.with_columns(
        monthly_income=pl.col("monthly_income") - earned_now + earned_before,
        monthly_earned_income=pl.lit(earned_before, dtype=pl.Float64))
    result = policy.evaluate_frame(counterfactual, on, [enrollment.program_key])
    still = result.height > 0 and bool(result["eligible"][0])
    if still:
        return True, (f"渐退期: earned income rose from {_yuan(earned_before)} (on {before}) to {_yuan(earned_now)} "
                      f"yuan/month; with the earlier earnings the household would still qualify, so employment lifts "
                      f"it over the standard ({SOURCE_GRADUAL_EXIT})")
    return False, (f"no 渐退期: even with the earned income of {before} ({_yuan(earned_before)} yuan/month instead of "
                   f"{_yuan(earned_now)}) the household would not qualify: something other than earnings (a "
                   f"pension, other income, assets) takes it out ({SOURCE_GRADUAL_EXIT}): the enrolment ends")


async def deceased_members(session: AsyncSession, household_id: int, on: dt.date) -> list[str]:
    """Reasons naming members who died on or before ``on`` but are still recorded as members: the household's
    facts (member count, per-capita income) still count them until the change is recorded (家庭人口重大变化
    报告机制, GD-2021), so the review says so rather than letting it pass unseen."""
    rows = (await session.execute(
        select(Person.id, Person.death_date).join(Membership, Membership.person_id == Person.id).where(
            Membership.household_id == household_id, Membership.valid_from <= on,
            or_(Membership.valid_to.is_(None), Membership.valid_to > on), Person.death_date <= on)
        .order_by(Person.id))).all()
    return [f"死亡: member {pid} died on {died} and is still recorded as a member of household {household_id}: "
            f"the figures above still count them; record the change of household (家庭人口重大变化) and review "
            f"again" for pid, died in rows]
