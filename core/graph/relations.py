"""Graph queries over persons, households and relationships.

- who lives together (共同生活) in a household on a date;
- who must support a person (赡养/抚养/扶养义务人): explicit SUPPORT_OBLIGOR edges, spouses, parents of a
  minor, adult children of a parent;
- how two persons are connected, for conflict-of-interest checks (关系保/人情保): a breadth-first search
  over relationship edges and shared households, one SQL statement per depth level (the whole frontier at
  once), bounded in depth.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from aidgraph.core.graph.idnumber import age_on
from aidgraph.core.storage.models import Membership, Person, Relationship, RelationshipKind

ADULT_AGE = 18


def _valid_on(model, on: dt.date):
    return and_(model.valid_from <= on, or_(model.valid_to.is_(None), model.valid_to > on))


@dataclass(frozen=True)
class RelationView:
    """A relationship as seen from one person: ``kind`` describes ``other`` relative to that person."""

    kind: str
    other_person_id: int
    since: dt.date
    until: dt.date | None


def view_kind(kind: str, seen_from_source: bool) -> str:
    """The contract's Relationship.kind of the *other* person, seen from the queried one."""
    if kind == RelationshipKind.SPOUSE.value:
        return "SPOUSE"
    if kind == RelationshipKind.PARENT.value:
        return "CHILD" if seen_from_source else "PARENT"
    if kind == RelationshipKind.GUARDIAN.value:
        return "WARD" if seen_from_source else "GUARDIAN"
    return "SUPPORTED" if seen_from_source else "SUPPORT_OBLIGOR"


async def members_at(session: AsyncSession, household_id: int, on: dt.date | None = None) -> list[tuple[Membership, Person]]:
    on = on or dt.date.today()
    rows = await session.execute(
        select(Membership, Person)
        .join(Person, Person.id == Membership.person_id)
        .where(Membership.household_id == household_id, _valid_on(Membership, on))
        .order_by(Membership.relation_to_head != "SELF", Membership.id)
    )
    return [(m, p) for m, p in rows.all()]


async def relationships_of(session: AsyncSession, person_ids: list[int], on: dt.date | None = None
                           ) -> dict[int, list[RelationView]]:
    """Current relationships of many persons at once, each seen from its person."""
    on = on or dt.date.today()
    result: dict[int, list[RelationView]] = {pid: [] for pid in person_ids}
    if not person_ids:
        return result
    rows = (
        await session.execute(
            select(Relationship).where(
                or_(Relationship.from_person_id.in_(person_ids), Relationship.to_person_id.in_(person_ids)),
                _valid_on(Relationship, on),
            ).order_by(Relationship.id)
        )
    ).scalars()
    for r in rows:
        if r.from_person_id in result:
            result[r.from_person_id].append(RelationView(view_kind(r.kind, True), r.to_person_id, r.valid_from, r.valid_to))
        if r.to_person_id in result:
            result[r.to_person_id].append(RelationView(view_kind(r.kind, False), r.from_person_id, r.valid_from, r.valid_to))
    return result


async def support_obligors(session: AsyncSession, person_ids: list[int], on: dt.date | None = None
                           ) -> dict[int, list[int]]:
    """Persons with a legal duty to support each person (whether they live in the same household or not)."""
    on = on or dt.date.today()
    relations = await relationships_of(session, person_ids, on)
    others = {v.other_person_id for views in relations.values() for v in views} | set(person_ids)
    births = dict((await session.execute(select(Person.id, Person.birth_date).where(Person.id.in_(others)))).all())
    deaths = dict((await session.execute(select(Person.id, Person.death_date).where(Person.id.in_(others)))).all())
    result: dict[int, list[int]] = {}
    for pid, views in relations.items():
        obligors: list[int] = []
        for v in views:
            if deaths.get(v.other_person_id) is not None:
                continue
            duty = (
                v.kind in ("SUPPORT_OBLIGOR", "SPOUSE")
                or (v.kind == "PARENT" and age_on(births[pid], on) < ADULT_AGE)  # 抚养: parents of a minor
                or (v.kind == "CHILD" and age_on(births[v.other_person_id], on) >= ADULT_AGE)  # 赡养: adult children
            )
            if duty and v.other_person_id not in obligors:
                obligors.append(v.other_person_id)
        result[pid] = obligors
    return result


@dataclass(frozen=True)
class PathStep:
    person_id: int
    via: str | None
    """How this person is reached from the previous one: a relationship kind or ``HOUSEHOLD``."""


async def shortest_path(session: AsyncSession, a: int, b: int, max_depth: int = 4, on: dt.date | None = None
                        ) -> list[PathStep] | None:
    """The shortest chain of relationships or shared households from ``a`` to ``b``, or None within max_depth."""
    if a == b:
        return [PathStep(a, None)]
    on = on or dt.date.today()
    parent: dict[int, tuple[int, str]] = {}
    visited = {a}
    frontier = {a}
    for _ in range(max_depth):
        if not frontier:
            return None
        edges = await _neighbours(session, frontier, on)
        next_frontier: set[int] = set()
        for src, dst, via in edges:
            if dst in visited:
                continue
            visited.add(dst)
            parent[dst] = (src, via)
            next_frontier.add(dst)
            if dst == b:
                steps = [PathStep(b, via)]
                cur = src
                while cur != a:
                    prev, v = parent[cur]
                    steps.append(PathStep(cur, v))
                    cur = prev
                steps.append(PathStep(a, None))
                return list(reversed(steps))
        frontier = next_frontier
    return None


async def _neighbours(session: AsyncSession, frontier: set[int], on: dt.date) -> list[tuple[int, int, str]]:
    ids = sorted(frontier)
    rel_rows = (
        await session.execute(
            select(Relationship.from_person_id, Relationship.to_person_id, Relationship.kind).where(
                or_(Relationship.from_person_id.in_(ids), Relationship.to_person_id.in_(ids)),
                _valid_on(Relationship, on),
            ).order_by(Relationship.id)
        )
    ).all()
    edges: list[tuple[int, int, str]] = []
    for f, t, kind in rel_rows:
        if f in frontier:
            edges.append((f, t, kind))
        if t in frontier:
            edges.append((t, f, kind))
    mine = select(Membership.household_id, Membership.person_id).where(
        Membership.person_id.in_(ids), _valid_on(Membership, on)).subquery()
    co_rows = (
        await session.execute(
            select(mine.c.person_id, Membership.person_id)
            .join(Membership, Membership.household_id == mine.c.household_id)
            .where(_valid_on(Membership, on), Membership.person_id != mine.c.person_id)
            .order_by(Membership.id)
        )
    ).all()
    edges += [(src, dst, "HOUSEHOLD") for src, dst in co_rows]
    return edges
