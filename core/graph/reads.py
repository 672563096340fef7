"""The scoped read side of the graph: every query the API answers, batched by key and filtered by scope.

Each function takes the :class:`~aidgraph.core.access.scope.Scope` decided for the request (enrolment readers take the
request's enrolment predicate, which adds department analysts' aid domains) and applies
``scope.predicate(<table>.region_code)`` in SQL, so a record outside the scope is never loaded: it behaves as
a record that does not exist. Functions take many keys at once (DataLoaders call them once per batch), so a
page of households with their members costs a constant number of statements.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from aidgraph.core.storage.encrypted import id_number_index
from aidgraph.core.storage.validity import alive_on, valid_on
from aidgraph.core.storage.models import (
    WARNING_SEVERITY,
    OPEN_ALERT_STATUSES,
    RECEIVING_ENROLLMENT_STATUSES,
    AidChainEvent,
    Alert,
    Enrollment,
    Household,
    LowIncomeCategory,
    Membership,
    Person,
    Region,
)
from aidgraph.core.access.scope import Scope

RECEIVING = tuple(s.value for s in RECEIVING_ENROLLMENT_STATUSES)
CategoryPrograms = Mapping[str, str]
"""Program key -> low-income category (低收入人口类别) its receiving enrolment puts a household in. Callers pass
the deployment's catalogue (``ProgramCatalogue.category_programs()``, from each plugin's ``Program.category``):
the graph floor holds no copy of that policy fact."""


def households_statement(scope: Scope, ids: list[int]) -> Select:
    """Households ``ids`` in scope (:func:`households_by_id`)."""
    return select(Household).where(Household.id.in_(ids), scope.predicate(Household.region_code))


async def households_by_id(session: AsyncSession, scope: Scope, ids: list[int]) -> dict[int, Household]:
    if not ids:
        return {}
    rows = await session.execute(households_statement(scope, ids))
    return {h.id: h for h in rows.scalars()}


async def persons_by_id(session: AsyncSession, scope: Scope, ids: list[int]) -> dict[int, Person]:
    rows = await session.execute(select(Person).where(Person.id.in_(ids), scope.predicate(Person.region_code)))
    return {p.id: p for p in rows.scalars()}


async def person_by_id_number(session: AsyncSession, scope: Scope, number: str) -> Person | None:
    return (
        await session.execute(select(Person).where(Person.id_number_index == id_number_index(number),
                                                   scope.predicate(Person.region_code)))
    ).scalar_one_or_none()


async def regions_by_code(session: AsyncSession, codes: list[str]) -> dict[str, Region]:
    """Regions are public reference data (names of divisions); scoping applies to what lies in them."""
    rows = await session.execute(select(Region).where(Region.code.in_(codes)))
    return {r.code: r for r in rows.scalars()}


async def region_children(session: AsyncSession, scope: Scope, codes: list[str]) -> dict[str, list[Region]]:
    """Children of each region that overlap the scope (a child inside it, or an ancestor of a scope prefix)."""
    rows = (await session.execute(select(Region).where(Region.parent_code.in_(codes)).order_by(Region.code))).scalars()
    result: dict[str, list[Region]] = defaultdict(list)
    for r in rows:
        if r.parent_code is not None and region_visible(scope, r.code):
            result[r.parent_code].append(r)
    return result


def region_visible(scope: Scope, code: str) -> bool:
    """A region is visible when it lies in the scope or contains part of it."""
    return scope.contains(code) or any(p.startswith(code) for p in scope.prefixes)


@dataclass(frozen=True)
class MemberRow:
    household_id: int
    person: Person
    relation_to_head: str
    since: dt.date
    until: dt.date | None


# The statements below that join households select them by ``Household.id``, not by the membership's copy of the
# key: the same rows, but PostgreSQL's generic plan for a prepared statement (what a pooled connection runs
# after five executions) cannot tell how many households the scope's region range holds, and given the key on
# the membership side it once chose to read every household of the range and merge them with the members
# (20,239 rows sorted for a page of 50: 5 ms against 0.5 ms), with or without row-level security.
def members_statement(scope: Scope, ids: list[int]) -> Select:
    """The current members of households ``ids`` in scope, head first (:func:`members_by_household`)."""
    return (
        select(Membership, Person)
        .join(Person, Person.id == Membership.person_id)
        .join(Household, Household.id == Membership.household_id)
        .where(Household.id.in_(ids), valid_on(Membership), scope.predicate(Household.region_code),
               scope.predicate(Person.region_code))
        .order_by(Membership.household_id, Membership.relation_to_head != "SELF", Membership.id)
    )


async def members_by_household(session: AsyncSession, scope: Scope, ids: list[int]) -> dict[int, list[MemberRow]]:
    rows = await session.execute(members_statement(scope, ids))
    result: dict[int, list[MemberRow]] = defaultdict(list)
    for m, p in rows.all():
        result[m.household_id].append(MemberRow(m.household_id, p, m.relation_to_head, m.valid_from, m.valid_to))
    return result


def member_counts_statement(scope: Scope, ids: list[int]) -> Select:
    """Current living members per household of ``ids`` in scope (:func:`member_counts`)."""
    return (
        select(Membership.household_id, func.count())
        .join(Household, Household.id == Membership.household_id)
        .join(Person, Person.id == Membership.person_id)
        .where(Household.id.in_(ids), valid_on(Membership), alive_on(Person), scope.predicate(Household.region_code))
        .group_by(Membership.household_id)
    )


async def member_counts(session: AsyncSession, scope: Scope, ids: list[int]) -> dict[int, int]:
    """Current living members per household: the count the per-capita figures divide by (a deceased member
    stays in the member list, with the death date, until the membership is closed)."""
    rows = await session.execute(member_counts_statement(scope, ids))
    return dict(rows.all())


async def heads_by_household(session: AsyncSession, scope: Scope, ids: list[int]) -> dict[int, Person]:
    rows = await session.execute(
        select(Membership.household_id, Person)
        .join(Person, Person.id == Membership.person_id)
        .where(Membership.household_id.in_(ids), Membership.relation_to_head == "SELF", valid_on(Membership),
               scope.predicate(Person.region_code))
    )
    return {hid: p for hid, p in rows.all()}


async def households_of_persons(session: AsyncSession, scope: Scope, person_ids: list[int]) -> dict[int, list[Household]]:
    """Every household each person belongs to now, in scope. Two statements, each by key: the persons'
    memberships, then their households in scope (:func:`households_by_id`). Joined in one statement, a generic
    plan read every household of the scope's region range (see the note above :func:`members_statement`)."""
    links = (await session.execute(
        select(Membership.person_id, Membership.household_id)
        .where(Membership.person_id.in_(person_ids), valid_on(Membership)))).all()
    households = await households_by_id(session, scope, sorted({hid for _, hid in links}))
    result: dict[int, list[Household]] = defaultdict(list)
    for pid, hid in sorted(links, key=lambda link: link[1]):
        if hid in households:
            result[pid].append(households[hid])
    return result


async def categories_by_household(session: AsyncSession, visible: ColumnElement[bool], ids: list[int],
                                  category_programs: CategoryPrograms) -> dict[int, list[str]]:
    """Low-income categories that apply now: a receiving enrolment in the category's program.

    ``visible`` is the request's enrolment predicate (see :func:`aidgraph.core.access.authz.enrollment_read_predicate`)."""
    rows = await session.execute(
        select(Enrollment.household_id, Enrollment.program_key)
        .where(Enrollment.household_id.in_(ids), Enrollment.status.in_(RECEIVING),
               Enrollment.program_key.in_(list(category_programs)), visible)
        .distinct()
    )
    result: dict[int, list[str]] = defaultdict(list)
    for hid, key in rows.all():
        cat = category_programs[key]
        if cat not in result[hid]:
            result[hid].append(cat)
    order = list(LowIncomeCategory.__members__)
    return {hid: sorted(cats, key=order.index) for hid, cats in result.items()}


async def warning_levels_by_household(session: AsyncSession, scope: Scope, ids: list[int]) -> dict[int, str]:
    """The most severe level among each household's open alerts."""
    rows = await session.execute(
        select(Alert.household_id, Alert.level)
        .where(Alert.household_id.in_(ids), Alert.status.in_(OPEN_ALERT_STATUSES), scope.predicate(Alert.region_code))
    )
    result: dict[int, str] = {}
    for hid, level in rows.all():
        if hid not in result or WARNING_SEVERITY[level] > WARNING_SEVERITY[result[hid]]:
            result[hid] = level
    return result


async def enrollments_by_household(session: AsyncSession, visible, ids: list[int]) -> dict[int, list[Enrollment]]:
    """Enrolments of many households; ``visible`` is the request's enrolment predicate."""
    rows = await session.execute(
        select(Enrollment).where(Enrollment.household_id.in_(ids), visible)
        .order_by(Enrollment.household_id, Enrollment.applied_at.desc(), Enrollment.id.desc())
    )
    result: dict[int, list[Enrollment]] = defaultdict(list)
    for e in rows.scalars():
        result[e.household_id].append(e)
    return result


async def alerts_by_household(session: AsyncSession, scope: Scope, ids: list[int]) -> dict[int, list[Alert]]:
    rows = await session.execute(
        select(Alert).where(Alert.household_id.in_(ids), scope.predicate(Alert.region_code))
        .order_by(Alert.household_id, Alert.raised_at.desc(), Alert.id.desc())
    )
    result: dict[int, list[Alert]] = defaultdict(list)
    for a in rows.scalars():
        result[a.household_id].append(a)
    return result


async def enrollments_by_id(session: AsyncSession, visible, ids: list[int]) -> dict[int, Enrollment]:
    rows = await session.execute(select(Enrollment).where(Enrollment.id.in_(ids), visible))
    return {e.id: e for e in rows.scalars()}


async def alerts_by_id(session: AsyncSession, scope: Scope, ids: list[int]) -> dict[int, Alert]:
    rows = await session.execute(select(Alert).where(Alert.id.in_(ids), scope.predicate(Alert.region_code)))
    return {a.id: a for a in rows.scalars()}


async def aid_chain_page(session: AsyncSession, scope: Scope, household_id: int, first: int,
                         after: tuple[str, int] | None, count: bool = True
                         ) -> tuple[list[AidChainEvent], bool, int | None]:
    """Newest first, keyset-paged on (at, id); returns (events, has_next, total); ``count=False``: no total
    (None), for a caller that does not answer it."""
    in_scope = exists().where(Household.id == household_id, scope.predicate(Household.region_code))
    base = select(AidChainEvent).where(AidChainEvent.household_id == household_id, in_scope)
    total = (await session.execute(select(func.count()).select_from(base.subquery()))).scalar_one() \
        if count else None
    stmt = base
    if after is not None:
        at, eid = dt.datetime.fromisoformat(after[0]), after[1]
        stmt = stmt.where(or_(AidChainEvent.at < at, and_(AidChainEvent.at == at, AidChainEvent.id < eid)))
    rows = list((await session.execute(stmt.order_by(AidChainEvent.at.desc(), AidChainEvent.id.desc())
                                       .limit(first + 1))).scalars())
    return rows[:first], len(rows) > first, total


def household_filter_clauses(category: str | None, warning_level: str | None, program_key: str | None,
                             name_contains: str | None, category_programs: CategoryPrograms
                             ) -> list[ColumnElement[bool]]:
    """SQL clauses for the contract's HouseholdFilter (all of them set-based, no per-row work)."""
    clauses: list[ColumnElement[bool]] = []
    if category is not None:
        keys = [k for k, c in category_programs.items() if c == category]
        if category == LowIncomeCategory.OTHER.value:  # receiving in a program that names no category
            clauses.append(exists().where(Enrollment.household_id == Household.id, Enrollment.status.in_(RECEIVING),
                                          Enrollment.program_key.not_in(list(category_programs))))
        else:
            clauses.append(exists().where(Enrollment.household_id == Household.id, Enrollment.status.in_(RECEIVING),
                                          Enrollment.program_key.in_(keys)))
    if program_key is not None:
        clauses.append(exists().where(Enrollment.household_id == Household.id, Enrollment.status.in_(RECEIVING),
                                      Enrollment.program_key == program_key))
    if warning_level is not None:
        stronger = [lv for lv, sev in WARNING_SEVERITY.items() if sev > WARNING_SEVERITY[warning_level]]
        clauses.append(exists().where(Alert.household_id == Household.id, Alert.status.in_(OPEN_ALERT_STATUSES),
                                      Alert.level == warning_level))
        clauses.append(~exists().where(Alert.household_id == Household.id, Alert.status.in_(OPEN_ALERT_STATUSES),
                                       Alert.level.in_(stronger)))
    if name_contains:
        pattern = "%" + name_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        clauses.append(exists().where(Membership.household_id == Household.id, valid_on(Membership),
                                      Person.id == Membership.person_id, Person.name.like(pattern, escape="\\")))
    return clauses


async def household_page(session: AsyncSession, scope: Scope, region_code: str, clauses: list, first: int,
                         after_id: int | None) -> tuple[list[Household], bool, int]:
    """A keyset page of households under ``region_code`` within the scope; returns (rows, has_next, total)."""
    narrowed = scope.narrow(region_code)
    where = [narrowed.predicate(Household.region_code), *clauses]
    total = (await session.execute(select(func.count()).select_from(Household).where(*where))).scalar_one()
    stmt = select(Household).where(*where)
    if after_id is not None:
        stmt = stmt.where(Household.id > after_id)
    rows = list((await session.execute(stmt.order_by(Household.id).limit(first + 1))).scalars())
    return rows[:first], len(rows) > first, total


async def household_list_page(session: AsyncSession, scope: Scope, person_scope: Scope, alert_scope: Scope,
                              region_code: str, clauses: list, first: int, after_id: int | None
                              ) -> tuple[list[Any], bool, int]:
    """:func:`household_page` with what a list row shows, in one statement: the region's name, the living
    member count (:func:`member_counts`), the head (:func:`heads_by_household`: ``head_id``, ``head_name``,
    ``head_id_number``, ``head_region_code``, null outside ``person_scope``) and the most severe open alert's
    severity (:func:`warning_levels_by_household`, in ``alert_scope``; :data:`WARNING_SEVERITY`). Each part
    carries its scope predicate in SQL, as those functions do; the compiled HouseholdList reads its page with
    it (tests/test_compiled_operations.py checks the answers equal theirs). Returns (rows, has_next, total)."""
    count, page = household_list_statements(scope, person_scope, alert_scope, region_code, clauses, first, after_id)
    total = (await session.execute(count)).scalar_one()
    rows = list((await session.execute(page)).all())
    return rows[:first], len(rows) > first, total


def household_list_statements(scope: Scope, person_scope: Scope, alert_scope: Scope, region_code: str,
                              clauses: list, first: int, after_id: int | None) -> tuple[Select, Select]:
    """The statements of :func:`household_list_page`: the region's total count, and the page (``first`` + 1
    rows after ``after_id``) with what a list row shows."""
    narrowed = scope.narrow(region_code)
    where = [narrowed.predicate(Household.region_code), *clauses]
    count = select(func.count()).select_from(Household).where(*where)
    living = (select(func.count()).select_from(Membership).join(Person, Person.id == Membership.person_id)
              .where(Membership.household_id == Household.id, valid_on(Membership), alive_on(Person))
              .scalar_subquery())
    # The page's keys first, then the head of each household on it: computed beside the keys before the sort,
    # the head lookup ran for every household of the region (SQLite evaluates a correlated subquery of the
    # select list before ORDER BY ... LIMIT: 7 ms for 2,125 households of a city, against 51 rows).
    ids = select(Household.id).where(*where)
    if after_id is not None:
        ids = ids.where(Household.id > after_id)
    page = ids.order_by(Household.id).limit(first + 1).subquery()
    head_id = (select(Membership.person_id).join(Person, Person.id == Membership.person_id)
               .where(Membership.household_id == page.c.id, Membership.relation_to_head == "SELF",
                      valid_on(Membership), person_scope.predicate(Person.region_code))
               .order_by(Membership.id).limit(1).scalar_subquery())
    severity = case(WARNING_SEVERITY, value=Alert.level, else_=0)
    worst = (select(func.max(severity)).where(Alert.household_id == Household.id,
                                              Alert.status.in_(OPEN_ALERT_STATUSES),
                                              alert_scope.predicate(Alert.region_code)).scalar_subquery())
    # The head's id is a column of the keys, so the head is joined on a plain key equality: under PostgreSQL's
    # row-level security (core/storage/rls.py) a join condition holding a subquery is not leakproof, cannot be
    # pushed below the person policy and turned the head lookup into a hash join over every person. The
    # keys keep their LIMIT so that neither engine folds them into the outer query (which would put the
    # subquery back into the join condition).
    keys = select(page.c.id, head_id.label("head_id")).limit(first + 1).subquery()
    stmt = (select(Household.id, Household.household_number, Household.region_code,
                   Region.name.label("region_name"), living.label("member_count"), worst.label("severity"),
                   Person.id.label("head_id"), Person.name.label("head_name"),
                   Person.id_number.label("head_id_number"), Person.region_code.label("head_region_code"))
            .join(keys, keys.c.id == Household.id)
            .outerjoin(Region, Region.code == Household.region_code)
            .outerjoin(Person, Person.id == keys.c.head_id)
            .order_by(Household.id))
    return count, stmt


@dataclass(frozen=True)
class RegionStats:
    households: int
    persons: int
    low_income_persons: int
    open_alerts: int


async def region_stats(session: AsyncSession, scope: Scope, code: str,
                       category_programs: CategoryPrograms) -> RegionStats:
    narrowed = scope.narrow(code)
    households = (await session.execute(
        select(func.count()).select_from(Household).where(narrowed.predicate(Household.region_code)))).scalar_one()
    persons = (await session.execute(
        select(func.count()).select_from(Membership).join(Household, Household.id == Membership.household_id)
        .where(narrowed.predicate(Household.region_code), valid_on(Membership)))).scalar_one()
    receiving = select(Enrollment.household_id).where(
        Enrollment.status.in_(RECEIVING), Enrollment.program_key.in_(list(category_programs)),
        narrowed.predicate(Enrollment.region_code))
    low_income = (await session.execute(
        select(func.count()).select_from(Membership).join(Household, Household.id == Membership.household_id)
        .where(narrowed.predicate(Household.region_code), valid_on(Membership),
               Membership.household_id.in_(receiving)))).scalar_one()
    open_alerts = (await session.execute(
        select(func.count()).select_from(Alert).where(narrowed.predicate(Alert.region_code),
                                                      Alert.status.in_(OPEN_ALERT_STATUSES)))).scalar_one()
    return RegionStats(households, persons, low_income, open_alerts)
