"""Monthly statistics per region and program (社会救助统计; GD-2021 保障措施: 完善社会救助统计制度), as a query and a
CSV export.

Why: the county and the province report each month how many households and persons received which aid and how
much, how many cases began and ended, how many alerts were raised and disposed, and how many referrals are
overdue. Every figure is one grouped SQL statement over the same rows the rest of the platform writes
(payments, enrolments, alerts, referrals), limited by the caller's scope (one predicate, in SQL) and broken
down by the child divisions of the region asked for. An export is audited (who exported which region and
month), like every export.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field

from sqlalchemy import and_, distinct, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from aidgraph.core.access.actor import Actor
from aidgraph.core.access.scope import Scope
from aidgraph.core.graph import audit
from aidgraph.core.storage.errors import DomainError, ErrorCode
from aidgraph.core.storage.models import Alert, Enrollment, Membership, Payment, Referral
from aidgraph.core.workflow.casework import overdue_clause

CHILD_DIGITS = {2: 4, 4: 6, 6: 9, 9: 12, 12: 12}
DISPOSED = ("RESOLVED", "DISMISSED")


@dataclass
class ProgramMonth:
    region_code: str
    program_key: str
    recipient_households: int = 0
    recipient_persons: int = 0
    amount: float = 0.0
    new_cases: int = 0
    ended_cases: int = 0


@dataclass
class RegionMonth:
    region_code: str
    alerts_raised: int = 0
    alerts_disposed: int = 0
    referrals_overdue: int = 0


@dataclass
class MonthlyStatistics:
    region_code: str
    month: str
    programs: list[ProgramMonth] = field(default_factory=list)
    regions: list[RegionMonth] = field(default_factory=list)


def month_bounds(month: str) -> tuple[dt.date, dt.date]:
    """[first day, first day of the next month) of ``YYYY-MM``; VALIDATION otherwise."""
    try:
        first = dt.date(int(month[:4]), int(month[5:7]), 1)
        if len(month) != 7 or month[4] != "-":
            raise ValueError
    except ValueError:
        raise DomainError.single(ErrorCode.VALIDATION, f"month must be YYYY-MM, got {month!r}", "month") from None
    nxt = dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return first, nxt


def _child(column, region_code: str):
    return func.substr(column, 1, CHILD_DIGITS.get(len(region_code), len(region_code)))


async def monthly_statistics(session: AsyncSession, scope: Scope, region_code: str, month: str,
                             program_key: str | None = None) -> MonthlyStatistics:
    """The month's figures under ``region_code`` within ``scope``, by child division (and program)."""
    first, nxt = month_bounds(month)
    start, end = dt.datetime.combine(first, dt.time()), dt.datetime.combine(nxt, dt.time())
    scope = scope.narrow(region_code)
    result = MonthlyStatistics(region_code, month)
    if scope.empty:
        return result
    e = Enrollment
    in_scope = scope.predicate(e.region_code)
    program = [e.program_key == program_key] if program_key else []
    rows: dict[tuple[str, str], ProgramMonth] = {}

    def row(region: str, key: str) -> ProgramMonth:
        return rows.setdefault((region, key), ProgramMonth(region, key))

    child = _child(e.region_code, region_code).label("child")
    paid = await session.execute(
        select(child, e.program_key, func.count(distinct(Payment.household_id)), func.sum(Payment.amount))
        .join(e, e.id == Payment.enrollment_id).where(Payment.period == month, in_scope, *program)
        .group_by(child, e.program_key))
    for region, key, households, amount in paid:
        r = row(region, key)
        r.recipient_households, r.amount = households, float(amount or 0)
    members = await session.execute(
        select(child, e.program_key, func.count(distinct(Membership.person_id)))
        .select_from(Payment).join(e, e.id == Payment.enrollment_id)
        .join(Membership, and_(Membership.household_id == Payment.household_id, Membership.valid_from < nxt,
                               or_(Membership.valid_to.is_(None), Membership.valid_to > first)))
        .where(Payment.period == month, in_scope, *program).group_by(child, e.program_key))
    for region, key, persons in members:
        row(region, key).recipient_persons = persons
    for attribute, column, extra in (("new_cases", e.start_date, []), ("ended_cases", e.end_date, [e.status == "ENDED"])):
        counted = await session.execute(select(child, e.program_key, func.count()).where(
            column >= first, column < nxt, in_scope, *program, *extra).group_by(child, e.program_key))
        for region, key, n in counted:
            setattr(row(region, key), attribute, n)
    result.programs = sorted(rows.values(), key=lambda r: (r.region_code, r.program_key))

    regions: dict[str, RegionMonth] = {}
    alert_child = _child(Alert.region_code, region_code).label("child")
    alert_scope = scope.predicate(Alert.region_code)
    for attribute, where in (("alerts_raised", [Alert.raised_at >= start, Alert.raised_at < end]),
                             ("alerts_disposed", [Alert.status.in_(DISPOSED), Alert.updated_at >= start,
                                                  Alert.updated_at < end])):
        for region, n in await session.execute(select(alert_child, func.count()).where(alert_scope, *where)
                                               .group_by(alert_child)):
            setattr(regions.setdefault(region, RegionMonth(region)), attribute, n)
    ref_child = _child(Referral.region_code, region_code).label("child")
    as_of = min(nxt, dt.date.today())
    for region, n in await session.execute(select(ref_child, func.count()).where(
            scope.predicate(Referral.region_code), overdue_clause(as_of)).group_by(ref_child)):
        regions.setdefault(region, RegionMonth(region)).referrals_overdue = n
    result.regions = sorted(regions.values(), key=lambda r: r.region_code)
    return result


CSV_HEADER = ["month", "region_code", "program_key", "recipient_households", "recipient_persons", "amount",
              "new_cases", "ended_cases", "alerts_raised", "alerts_disposed", "referrals_overdue"]


def to_csv(stats: MonthlyStatistics) -> str:
    """One line per region and program, then one per region for alerts and referrals (program empty)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for r in stats.programs:
        writer.writerow([stats.month, r.region_code, r.program_key, r.recipient_households, r.recipient_persons,
                         f"{r.amount:.2f}", r.new_cases, r.ended_cases, "", "", ""])
    for g in stats.regions:
        writer.writerow([stats.month, g.region_code, "", "", "", "", "", "", g.alerts_raised, g.alerts_disposed,
                         g.referrals_overdue])
    return out.getvalue()


def to_xlsx(stats: MonthlyStatistics) -> bytes:
    """The same rows as :func:`to_csv` in one worksheet (numbers as numbers)."""
    import xlsxwriter  # local: ~20 ms at import, only XLSX statistics need it (not every CLI or server start)

    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    sheet = book.add_worksheet(stats.month)
    rows = list(csv.reader(io.StringIO(to_csv(stats))))
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if r and c >= 3 and value != "":
                sheet.write_number(r, c, float(value))
            else:
                sheet.write_string(r, c, value)
    book.close()
    return out.getvalue()


async def export_statistics(session: AsyncSession, actor: Actor, region_code: str, month: str,
                            fmt: str = "csv") -> str | bytes:
    """The CSV (text) or XLSX (bytes) of :func:`monthly_statistics` under the caller's ``export`` scope on
    enrolments, audited."""
    if fmt not in ("csv", "xlsx"):
        raise DomainError.single(ErrorCode.VALIDATION, "format must be CSV or XLSX", "format")
    scope = actor.scope("export", "enrollment")
    if scope.narrow(region_code).empty:
        raise DomainError.single(ErrorCode.FORBIDDEN, f"exporting statistics of {region_code} needs the 'export' "
                                                      "permission on enrolments there", "regionCode")
    stats = await monthly_statistics(session, scope, region_code, month)
    content: str | bytes = to_csv(stats) if fmt == "csv" else to_xlsx(stats)
    audit.record(session, actor, "export", "statistics", f"{region_code}:{month}", region_code,
                 {"month": month, "rows": len(stats.programs) + len(stats.regions), "format": fmt})
    return content
