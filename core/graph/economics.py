"""Household economic status (家庭经济状况) derived from recorded income, expenditure and asset items.

Per-capita monthly income is the income of the assessment window (the 12 months up to the assessment date),
each item prorated to the part of its period inside the window, divided by 12 and by the number of current
members. Financial assets are the latest recorded value of each (person, kind, source) deposit or securities
holding. Province rules adjust income (employment-cost deductions, for example) through plugins; the core
computes the raw figures for many households in a few set-at-a-time statements.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import Date, and_, case, cast, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from aidgraph.core.storage.validity import alive_on, valid_on
from aidgraph.core.storage.models import (
    EARNED_INCOME_KINDS,
    EXPENDITURE_KINDS,
    FINANCIAL_ASSET_KINDS,
    INCOME_KINDS,
    EconomicItem,
    Membership,
    Person,
)

WINDOW_MONTHS = 12


@dataclass(frozen=True)
class HouseholdEconomics:
    household_id: int
    members: int
    annual_income: Decimal
    annual_earned_income: Decimal
    annual_expenditure: Decimal
    total_financial_assets: Decimal
    assessed_at: dt.datetime | None
    monthly_deduction: Decimal = Decimal("0.00")
    """Household income deductions per month allowed by the province's rules (set by the policy engine)."""

    @property
    def monthly_income(self) -> Decimal:
        return (self.annual_income / WINDOW_MONTHS).quantize(Decimal("0.01"), ROUND_HALF_UP)

    @property
    def per_capita_monthly_income(self) -> Decimal:
        """Per-capita monthly income after the province's deductions (never below zero)."""
        if self.members == 0:
            return Decimal("0.00")
        assessed = max(self.annual_income / WINDOW_MONTHS - self.monthly_deduction, Decimal("0"))
        return (assessed / self.members).quantize(Decimal("0.01"), ROUND_HALF_UP)

    @property
    def per_capita_financial_assets(self) -> Decimal:
        if self.members == 0:
            return self.total_financial_assets
        return (self.total_financial_assets / self.members).quantize(Decimal("0.01"), ROUND_HALF_UP)


def window_start(as_of: dt.date) -> dt.date:
    year, month = (as_of.year - 1, as_of.month)
    day = min(as_of.day, 28)
    return dt.date(year, month, day) + dt.timedelta(days=1)


def _day_number(column, dialect: str):
    """Days since an epoch, on either engine (for prorating periods)."""
    if dialect == "sqlite":
        return func.julianday(column)
    return cast(column, Date) - cast(literal("2000-01-01"), Date)


async def economics_for(session: AsyncSession, household_ids: list[int], as_of: dt.date | None = None
                        ) -> dict[int, HouseholdEconomics]:
    """Economics of many households at once: three statements whatever the number of households."""
    if not household_ids:
        return {}
    as_of = as_of or dt.date.today()
    start = window_start(as_of)
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    item = EconomicItem
    overlap_start = case((item.period_start > start, item.period_start), else_=literal(start, Date))
    overlap_end = case((item.period_end < as_of, item.period_end), else_=literal(as_of, Date))
    period_days = _day_number(item.period_end, dialect) - _day_number(item.period_start, dialect) + 1
    overlap_days = _day_number(overlap_end, dialect) - _day_number(overlap_start, dialect) + 1
    prorated = item.amount * overlap_days / period_days
    in_window = and_(item.period_end >= start, item.period_start <= as_of)

    flows = (
        select(
            item.household_id,
            func.sum(case((item.kind.in_([k.value for k in INCOME_KINDS]), prorated), else_=0)),
            func.sum(case((item.kind.in_([k.value for k in EARNED_INCOME_KINDS]), prorated), else_=0)),
            func.sum(case((item.kind.in_([k.value for k in EXPENDITURE_KINDS]), prorated), else_=0)),
            func.max(item.recorded_at),
        )
        .where(item.household_id.in_(household_ids), in_window)
        .group_by(item.household_id)
    )
    latest = (
        select(
            item.household_id,
            item.amount,
            func.row_number()
            .over(partition_by=(item.household_id, item.person_id, item.kind, item.source),
                  order_by=(item.period_end.desc(), item.id.desc()))
            .label("rn"),
        )
        .where(item.household_id.in_(household_ids), item.kind.in_([k.value for k in FINANCIAL_ASSET_KINDS]),
               item.period_end <= as_of)
        .subquery()
    )
    assets = select(latest.c.household_id, func.sum(latest.c.amount)).where(latest.c.rn == 1).group_by(
        latest.c.household_id)
    members = (
        select(Membership.household_id, func.count()).join(Person, Person.id == Membership.person_id)
        .where(Membership.household_id.in_(household_ids), valid_on(Membership, as_of), alive_on(Person, as_of))
        .group_by(Membership.household_id)
    )
    flow_rows = {r[0]: r[1:] for r in (await session.execute(flows)).all()}
    asset_rows = dict((await session.execute(assets)).all())
    member_rows = dict((await session.execute(members)).all())

    def money(v) -> Decimal:
        return Decimal(str(v or 0)).quantize(Decimal("0.01"), ROUND_HALF_UP)

    result = {}
    for hid in household_ids:
        income, earned, expenditure, assessed = flow_rows.get(hid, (0, 0, 0, None))
        result[hid] = HouseholdEconomics(
            household_id=hid,
            members=int(member_rows.get(hid, 0)),
            annual_income=money(income),
            annual_earned_income=money(earned),
            annual_expenditure=money(expenditure),
            total_financial_assets=money(asset_rows.get(hid)),
            assessed_at=assessed,
        )
    return result
