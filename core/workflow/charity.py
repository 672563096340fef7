"""慈善帮扶 candidates: the households that government aid leaves short, for a caseworker to link with charity.

Why: GD-2021 §18 asks for 政府救助与慈善救助衔接机制 and GD-2022 for 救助服务供给信息与困难群众需求有效对接; the
platform records charity resources and matches (:mod:`aidgraph.core.workflow.services`) but a caseworker had no
list of whom to match. "Left short" is computed from what the platform already decides, with no threshold of
its own: a household whose rigid expenditure (medical and education, 刚性支出) exceeds its monthly income plus
the aid it receives (the monthly amounts of its receiving enrolments). The income and expenditure are the policy
engine's household frame (the same window averages the rules read), so there is no second definition of either.

Reading it discloses incomes, so the caller needs the ``charity`` read right and the ``income`` read right over
the whole region (a FORBIDDEN error otherwise, not a list with holes), and each shown household is noted for the
disclosure audit by the API. A region above the county level is refused (VALIDATION): the frame of a city or a
province is minutes of work, and a caseworker links charity within a county.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from aidgraph.core.access.actor import Actor
from aidgraph.core.policy.engine import household_frame
from aidgraph.core.storage.errors import DomainError, ErrorCode
from aidgraph.core.storage.models import RECEIVING_ENROLLMENT_STATUSES, CharityMatch, Enrollment, Region
from aidgraph.core.workflow.defaults import CHARITY_OBJECT

COUNTY_LEVEL = 6
"""The broadest region a candidate list is computed for (a county's division code has six digits)."""


@dataclass(frozen=True)
class CharityCandidate:
    """One household left short: yuan a month, and the charity matches it already has."""

    household_id: int
    region_code: str
    monthly_income: float
    monthly_aid: float
    monthly_rigid_expenditure: float
    shortfall: float
    receiving: tuple[str, ...]
    charity_matches: int


async def charity_candidates(session: AsyncSession, actor: Actor, *, region_code: str,
                             on: dt.date | None = None) -> list[CharityCandidate]:
    """The households under ``region_code`` whose rigid expenditure exceeds their income plus aid, largest
    shortfall first (then household id)."""
    on = on or dt.date.today()
    if not region_code or len(region_code) < COUNTY_LEVEL or await session.get(Region, region_code) is None:
        raise DomainError.single(ErrorCode.VALIDATION, f"{region_code!r} is not a county or a smaller region",
                                 "regionCode")
    scope = actor.scope("read", CHARITY_OBJECT).narrow(region_code)
    if scope.empty:
        raise DomainError.single(ErrorCode.FORBIDDEN, f"region {region_code} is outside your charity scope",
                                 "regionCode")
    income = actor.scope("read", "income")
    if not all(income.contains(prefix) for prefix in scope.prefixes):
        raise DomainError.single(ErrorCode.FORBIDDEN, "the list is computed from incomes: it needs the income "
                                                      f"read right over all of {region_code}", "regionCode")
    frame = await household_frame(session, on=on, scope=scope)
    if frame.is_empty():
        return []
    e = Enrollment
    aid = pl.DataFrame((await session.execute(
        select(e.household_id, func.sum(e.monthly_amount)).where(
            scope.predicate(e.region_code), e.status.in_([s.value for s in RECEIVING_ENROLLMENT_STATUSES]))
        .group_by(e.household_id))).all(), orient="row", schema={"household_id": pl.Int64, "monthly_aid": pl.Float64})
    short = (frame.join(aid, on="household_id", how="left")
             .with_columns(pl.col("monthly_aid").fill_null(0.0))
             .with_columns(shortfall=pl.col("monthly_rigid_expenditure") - pl.col("monthly_income")
                           - pl.col("monthly_aid"))
             .filter(pl.col("shortfall") > 0.005)
             .sort(["shortfall", "household_id"], descending=[True, False]))
    if short.is_empty():
        return []
    ids = short["household_id"].to_list()
    matches = dict((await session.execute(select(CharityMatch.household_id, func.count()).where(
        CharityMatch.household_id.in_(ids)).group_by(CharityMatch.household_id))).all())
    return [CharityCandidate(household_id=r["household_id"], region_code=r["region_code"],
                             monthly_income=round(r["monthly_income"], 2), monthly_aid=round(r["monthly_aid"], 2),
                             monthly_rigid_expenditure=round(r["monthly_rigid_expenditure"], 2),
                             shortfall=round(r["shortfall"], 2), receiving=tuple(r["receiving"] or ()),
                             charity_matches=int(matches.get(r["household_id"], 0)))
            for r in short.iter_rows(named=True)]
