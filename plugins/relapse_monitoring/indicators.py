"""The monitoring indicators of 防止返贫 and 低收入人口动态监测, each computed for a whole province at once.

Named by the sources: sudden drop in income, sudden rise in expenditure, change in household members
(GD-2024); hospitalisation, chronic or major disease, college admission, disability registration, new
unemployment (GS-2024). Every function below takes the month's :class:`aidgraph.core.monitoring.indicators.IndicatorContext`
and returns hits as a polars frame; none loops over persons. Thresholds of the "sudden" signals are
province parameters (``monitoring.thresholds.*``): no source gives them, so the shipped values are
illustrative.
"""

from __future__ import annotations

import polars as pl
from sqlalchemy import select

from aidgraph.plugin import (
    EXPENDITURE_KINDS,
    INCOME_KINDS,
    Enrollment,
    Indicator,
    IndicatorContext,
    as_hits,
)


INCOME = tuple(sorted(k.value for k in INCOME_KINDS))
EXPENDITURE = tuple(sorted(k.value for k in EXPENDITURE_KINDS))


def _feed_hits(kind: str, condition: pl.Expr | None = None):
    def compute(ctx: IndicatorContext) -> pl.DataFrame:
        frame = ctx.feed(kind)
        if condition is not None and frame.height:
            frame = frame.filter(condition)
        return as_hits(frame)
    return compute


def _baseline(ctx: IndicatorContext, kinds: tuple[str, ...]) -> pl.DataFrame:
    """Per household: this month's amount and the average of the baseline months, over the data sources that
    have reported this month.

    Departments' data arrive source by source (tax, social insurance, civil affairs ...): a source whose
    records for this month have not arrived yet is left out of both sides, so a run before a feed comes in
    does not see a drop to zero. A baseline month without records of a reporting source counts as zero.
    """
    months = int(ctx.param("monitoring.thresholds.baseline_months"))
    flows = ctx.economic_flows(kinds, months)
    reporting = flows.filter(pl.col("months_back") == 0).select("household_id", "source").unique()
    return (
        flows.join(reporting, on=["household_id", "source"], how="semi")
        .group_by("household_id").agg(
            pl.col("amount").filter(pl.col("months_back") == 0).sum().alias("current"),
            (pl.col("amount").filter(pl.col("months_back") > 0).sum() / months).alias("baseline"),
        )
    )


def income_drop(ctx: IndicatorContext) -> pl.DataFrame:
    """收入骤减: this month's household income fell below (1 - ratio) x the baseline average."""
    ratio = float(ctx.param("monitoring.thresholds.income_drop_ratio"))
    frame = _baseline(ctx, INCOME)
    return as_hits(frame.filter((pl.col("baseline") > 0) & (pl.col("current") < pl.col("baseline") * (1 - ratio))),
                   person=False)


def expenditure_surge(ctx: IndicatorContext) -> pl.DataFrame:
    """支出骤增: this month's rigid expenditure (medical, education) rose above (1 + ratio) x the baseline
    average, by at least the minimum amount (so that small absolute changes do not fire)."""
    ratio = float(ctx.param("monitoring.thresholds.expenditure_surge_ratio"))
    minimum = float(ctx.param("monitoring.thresholds.expenditure_surge_min_amount"))
    frame = _baseline(ctx, EXPENDITURE)
    return as_hits(frame.filter((pl.col("current") > pl.col("baseline") * (1 + ratio))
                                & (pl.col("current") - pl.col("baseline") >= minimum)), person=False)


def _prefetch_window(ctx: IndicatorContext) -> None:
    """Begin reading the sudden-change signals' window (:func:`_baseline`) while the feed signals compute."""
    ctx.prefetch_flows(int(ctx.param("monitoring.thresholds.baseline_months")))


SIGNALS: list[Indicator] = [
    # The feed signals first: the window of monthly sums the last two read, the run's largest read, is begun
    # before any computes (``prefetch``) and read meanwhile.
    Indicator("household_change", "家庭成员变化", "a member died, was born, moved in or out, married or divorced",
              ("household_event",), _feed_hits("household_event")),
    Indicator("hospitalisation", "住院", "a member was admitted to hospital (医保 settlement data)",
              ("hospitalisation",), _feed_hits("hospitalisation")),
    Indicator("chronic_disease", "慢性病", "a member was certified with a chronic disease",
              ("disease",), _feed_hits("disease", pl.col("disease_kind") == "CHRONIC")),
    Indicator("major_disease", "重大疾病", "a member was certified with a major disease",
              ("disease",), _feed_hits("disease", pl.col("disease_kind") == "MAJOR")),
    Indicator("college_admission", "大学入学", "a member starts college (tuition from the academic year)",
              ("college_admission",), _feed_hits("college_admission")),
    Indicator("disability_registration", "残疾登记", "a member was registered as disabled (残联)",
              ("disability",), _feed_hits("disability")),
    Indicator("new_unemployment", "新增失业", "a member registered as unemployed (人社)",
              ("unemployment",), _feed_hits("unemployment", pl.col("status") == "REGISTERED")),
    Indicator("income_drop", "收入骤减", "sudden drop in household income against the baseline months",
              ("income",), income_drop, prefetch=_prefetch_window),
    Indicator("expenditure_surge", "支出骤增", "sudden rise in rigid household expenditure (medical, education)",
              ("income",), expenditure_surge, prefetch=_prefetch_window),
]

def identity_overlay(ctx: IndicatorContext) -> pl.DataFrame:
    """身份信息重合叠加 (GS-2024 "监测系统根据监测指标数据与监测对象身份信息重合叠加情况打分"): a household whose
    identity (an active or gradually exiting enrolment in a program with a low-income category: tekun, dibao,
    near-dibao, rigid expenditure, relapse monitoring, as their ``Program.category`` says, read from the run's
    ``ctx.category_programs``) coincides with any other indicator's hit in the month scores this weight on top. The
    other indicators' hits are the run's (``IndicatorContext.hits``: each computed once a run); a province that
    does not overlay identities gives the weight 0 and the indicator is skipped."""
    signals = [ctx.hits(ind).select("household_id") for ind in SIGNALS]
    hit = pl.concat(signals).unique() if signals else pl.DataFrame(schema={"household_id": pl.Int64})
    if hit.is_empty():
        return as_hits(hit, person=False)
    identity = ctx.query(
        select(Enrollment.household_id).where(Enrollment.status.in_(["ACTIVE", "GRADUAL_EXIT"]),
                                              Enrollment.program_key.in_(sorted(ctx.category_programs)),
                                              ctx.scope.predicate(Enrollment.region_code)).distinct(),
        {"household_id": pl.Int64})
    return as_hits(hit.join(identity, on="household_id", how="semi"), person=False)


INDICATORS: list[Indicator] = [*SIGNALS, Indicator(
    "identity_overlay", "身份信息重合叠加", "a monitored household's low-income identity coincides with another "
    "indicator's hit (GS-2024)", ("enrollment",), identity_overlay)]
