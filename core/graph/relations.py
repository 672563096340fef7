"""Graph queries over persons, households and relationships.

- who lives together (共同生活) in a household on a date;
- who must support a person (赡养/抚养/扶养义务人): explicit SUPPORT_OBLIGOR edges, spouses, parents of a
  minor, adult children of a parent;
- how two persons are connected, for conflict-of-interest checks (关系保/人情保): a breadth-first search
  over relationship edges and shared households, one SQL statement per depth level (the whole frontier at
  once), bounded in depth;
- recording and ending a relationship (RecordRelationship, :func:`record_relationship`): the edge is stored
  once and read from both ends, so the reverse edge follows; both persons must be in the caller's scope;
  the audit log, the aid chain of each person's household and the search outbox are written with it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from aidgraph.core.access.actor import Actor
from aidgraph.core.graph import aidchain, audit, idempotency, outbox
from aidgraph.core.graph.idnumber import age_on
from aidgraph.core.storage.errors import DomainError, ErrorCode, not_found
from aidgraph.core.storage.models import (
    AidChainKind,
    Membership,
    OutboxEntity,
    Person,
    Relationship,
    RelationshipKind,
)
from aidgraph.core.storage.validity import valid_on

ADULT_AGE = 18


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
        .where(Membership.household_id == household_id, valid_on(Membership, on))
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
                valid_on(Relationship, on),
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
                valid_on(Relationship, on),
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
        Membership.person_id.in_(ids), valid_on(Membership, on)).subquery()
    co_rows = (
        await session.execute(
            select(mine.c.person_id, Membership.person_id)
            .join(Membership, Membership.household_id == mine.c.household_id)
            .where(valid_on(Membership, on), Membership.person_id != mine.c.person_id)
            .order_by(Membership.id)
        )
    ).all()
    edges += [(src, dst, "HOUSEHOLD") for src, dst in co_rows]
    return edges


# --- RecordRelationship ------------------------------------------------------------------------------------

VIEW_KINDS = ("SPOUSE", "PARENT", "CHILD", "GUARDIAN", "WARD", "SUPPORT_OBLIGOR", "SUPPORTED")
"""The contract's RelationshipKind: what the *other* person is to the person the edge is seen from."""

_CHINESE = {"SPOUSE": "配偶 spouse", "PARENT": "父母 parent", "CHILD": "子女 child", "GUARDIAN": "监护人 guardian",
            "WARD": "被监护人 ward", "SUPPORT_OBLIGOR": "赡养/抚养/扶养义务人 support obligor",
            "SUPPORTED": "被赡养/抚养/扶养人 supported person"}


def stored_edge(person_id: int, other_person_id: int, kind: str) -> tuple[int, int, str]:
    """The stored (from, to, kind) of "``other`` is ``kind`` to ``person``": the inverse of :func:`view_kind`.

    SPOUSE is symmetric and stored from the lower id, so one index covers both directions."""
    if kind == "SPOUSE":
        low, high = sorted((person_id, other_person_id))
        return low, high, RelationshipKind.SPOUSE.value
    if kind == "PARENT":
        return other_person_id, person_id, RelationshipKind.PARENT.value
    if kind == "CHILD":
        return person_id, other_person_id, RelationshipKind.PARENT.value
    if kind == "GUARDIAN":
        return other_person_id, person_id, RelationshipKind.GUARDIAN.value
    if kind == "WARD":
        return person_id, other_person_id, RelationshipKind.GUARDIAN.value
    if kind == "SUPPORT_OBLIGOR":
        return other_person_id, person_id, RelationshipKind.SUPPORT_OBLIGOR.value
    if kind == "SUPPORTED":
        return person_id, other_person_id, RelationshipKind.SUPPORT_OBLIGOR.value
    raise DomainError.single(ErrorCode.VALIDATION, f"unknown relationship kind {kind!r} (known: "
                                                   f"{', '.join(VIEW_KINDS)})", "kind")


def _edge_match(src: int, dst: int, kind: str):
    same = and_(Relationship.from_person_id == src, Relationship.to_person_id == dst)
    if kind == RelationshipKind.SPOUSE.value:  # edges stored before the lower-id rule may run either way
        same = or_(same, and_(Relationship.from_person_id == dst, Relationship.to_person_id == src))
    return and_(same, Relationship.kind == kind)


async def _persons_for_update(session: AsyncSession, actor: Actor, ids: dict[str, int]) -> dict[str, Person]:
    """Both persons, each in the caller's ``update`` scope on persons (one statement), or errors for each."""
    wanted = sorted(set(ids.values()))
    found = {p.id: p for p in (await session.execute(select(Person).where(
        Person.id.in_(wanted), actor.scope("update", "person").predicate(Person.region_code)))).scalars()}
    missing = [pid for pid in wanted if pid not in found]
    readable = set((await session.execute(select(Person.id).where(
        Person.id.in_(missing), actor.scope("read", "person").predicate(Person.region_code)))).scalars()) if missing else set()
    errors = []
    for field, pid in ids.items():
        if pid in found:
            continue
        if pid in readable:  # the caller can see this person, so saying so leaks nothing
            errors.append(DomainError.single(ErrorCode.FORBIDDEN, "you may not change this person's relationships",
                                             field).errors[0])
        else:
            errors.append(not_found("person", field).errors[0])
    if errors:
        raise DomainError(errors)
    return {field: found[pid] for field, pid in ids.items()}


async def record_relationship(session: AsyncSession, actor: Actor, *, person_id: int | None,
                              other_person_id: int | None, kind: str, since: dt.date | None = None,
                              until: dt.date | None = None, idempotency_key: str | None = None,
                              today: dt.date | None = None) -> int:
    """Record that ``other_person_id`` is ``kind`` to ``person_id`` from ``since`` (default today), or, with
    ``until``, end the current such relationship on that day (exclusive); returns ``person_id``.

    Errors (nothing written): unknown or out-of-scope person (NOT_FOUND) or one the caller may read but not
    change (FORBIDDEN); a person related to themself, ``until`` not after ``since``, a second current edge of
    the same kind between the same two persons, ending an edge that does not exist (VALIDATION / NOT_FOUND).
    """
    today = today or dt.date.today()
    claim = await idempotency.claim(session, actor, "recordRelationship", idempotency_key, {
        "personId": person_id, "otherPersonId": other_person_id, "kind": kind, "since": since, "until": until})
    if claim.replay is not None:
        return claim.replay["person_id"]
    if person_id is None:
        raise not_found("person", "personId")
    if other_person_id is None:
        raise not_found("person", "otherPersonId")
    if person_id == other_person_id:
        raise DomainError.single(ErrorCode.VALIDATION, "a person cannot be related to themself", "otherPersonId")
    src, dst, stored = stored_edge(person_id, other_person_id, kind)
    if since is not None and until is not None and until <= since:
        raise DomainError.single(ErrorCode.VALIDATION, f"until {until} must be after since {since}", "until")
    persons = await _persons_for_update(session, actor, {"personId": person_id, "otherPersonId": other_person_id})
    current = (await session.execute(select(Relationship).where(
        _edge_match(src, dst, stored), Relationship.valid_to.is_(None)).order_by(Relationship.id))).scalars().first()
    label = _CHINESE[kind]
    if until is None:
        if current is not None:
            raise DomainError.single(ErrorCode.VALIDATION, f"person {other_person_id} is already recorded as {label} "
                                                           f"of person {person_id} since {current.valid_from}; end "
                                                           f"that relationship first", "kind")
        edge = Relationship(from_person_id=src, to_person_id=dst, kind=stored, valid_from=since or today)
        session.add(edge)
        action, what = "record_relationship", f"recorded from {edge.valid_from}"
    elif current is not None and since in (None, current.valid_from):
        if until <= current.valid_from:
            raise DomainError.single(ErrorCode.VALIDATION, f"until {until} must be after since {current.valid_from}",
                                     "until")
        edge = current
        edge.valid_to = until
        action, what = "end_relationship", f"ended on {until} (since {edge.valid_from})"
    elif since is not None:  # a past relationship, recorded with both ends
        edge = Relationship(from_person_id=src, to_person_id=dst, kind=stored, valid_from=since, valid_to=until)
        session.add(edge)
        action, what = "record_relationship", f"recorded from {since} until {until}"
    else:
        raise DomainError.single(ErrorCode.NOT_FOUND, f"no current {label} relationship between persons "
                                                      f"{person_id} and {other_person_id} to end", "kind")
    try:
        await session.flush()
    except IntegrityError:  # a concurrent request stored the same current edge first (uq_relationship_current_edge)
        raise DomainError.single(ErrorCode.VALIDATION, f"person {other_person_id} is already recorded as {label} of "
                                                       f"person {person_id} (recorded concurrently)", "kind") from None
    summary = f"关系 relationship: person {other_person_id} is {label} of person {person_id}, {what}"
    households = (await session.execute(select(Membership.household_id).where(
        Membership.person_id.in_([person_id, other_person_id]), valid_on(Membership, today)
    ).distinct().order_by(Membership.household_id))).scalars().all()
    for household_id in households:
        aidchain.append(session, household_id, AidChainKind.MEMBERSHIP, summary, ref_type="relationship",
                        ref_id=edge.id, actor=actor.username)
    for person in persons.values():
        person.version += 1
        outbox.emit(session, OutboxEntity.PERSON, person.id, person.version)
    audit.record(session, actor, action, "relationship", edge.id, persons["personId"].region_code,
                 {"personId": person_id, "otherPersonId": other_person_id, "kind": kind,
                  "since": edge.valid_from.isoformat(), "until": until.isoformat() if until else None})
    await claim.remember({"person_id": person_id})
    await session.flush()
    return person_id
