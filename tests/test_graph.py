"""Graph queries on both engines: members at a date, support obligors, shortest relationship paths,
and the storage constraints behind them (one head at a time, one current household per person)."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy.exc import IntegrityError

from aidgraph.core.graph import relations as graph
from aidgraph.core.storage.db import async_session_factory, make_async_engine, session_scope
from aidgraph.core.graph.idnumber import make, parse
from aidgraph.core.storage.models import Household, Membership, Person, Relationship

TODAY = dt.date.today()
VILLAGE = "620102001001"  # 畅家巷社区居委会, Lanzhou


def person(session, name: str, birth: dt.date, seq: int) -> Person:
    rid = parse(make("620102", birth, seq))
    p = Person(id_number=rid.number, name=name, sex=rid.sex, birth_date=rid.birth_date,
               hukou_region_code=rid.address_code, region_code=VILLAGE)
    session.add(p)
    session.flush()
    return p


@pytest.fixture(scope="module")
def family(sync_engine):
    """Grandmother alone in one household; her son's family in another; an unrelated neighbour."""
    with session_scope(sync_engine) as s:
        gran = person(s, "王秀兰", dt.date(1940, 1, 1), 2)
        son = person(s, "李强", dt.date(1968, 1, 1), 3)
        wife = person(s, "赵敏", dt.date(1970, 1, 1), 4)
        kid = person(s, "李乐", TODAY.replace(year=TODAY.year - 10), 5)
        neighbour = person(s, "孙浩", dt.date(1975, 1, 1), 7)
        h1 = Household(household_number="HTEST1", region_code=VILLAGE)
        h2 = Household(household_number="HTEST2", region_code=VILLAGE)
        h3 = Household(household_number="HTEST3", region_code=VILLAGE)
        s.add_all([h1, h2, h3])
        s.flush()
        since = dt.date(2020, 1, 1)
        s.add_all([
            Membership(household_id=h1.id, person_id=gran.id, relation_to_head="SELF", valid_from=since),
            Membership(household_id=h2.id, person_id=son.id, relation_to_head="SELF", valid_from=since),
            Membership(household_id=h2.id, person_id=wife.id, relation_to_head="SPOUSE", valid_from=since),
            Membership(household_id=h2.id, person_id=kid.id, relation_to_head="CHILD", valid_from=since),
            Membership(household_id=h3.id, person_id=neighbour.id, relation_to_head="SELF", valid_from=since),
            Relationship(from_person_id=gran.id, to_person_id=son.id, kind="PARENT", valid_from=since),
            Relationship(from_person_id=son.id, to_person_id=wife.id, kind="SPOUSE", valid_from=since),
            Relationship(from_person_id=son.id, to_person_id=kid.id, kind="PARENT", valid_from=since),
        ])
        ids = dict(gran=gran.id, son=son.id, wife=wife.id, kid=kid.id, neighbour=neighbour.id, h1=h1.id, h2=h2.id)
    return ids


def run(db_url, fn):
    async def main():
        engine = make_async_engine(db_url)
        try:
            async with async_session_factory(engine)() as session:
                return await fn(session)
        finally:
            await engine.dispose()
    return asyncio.run(main())


def test_members_at_a_date(db_url, family):
    members = run(db_url, lambda s: graph.members_at(s, family["h2"], TODAY))
    assert [m.relation_to_head for m, _ in members] == ["SELF", "SPOUSE", "CHILD"]
    before = run(db_url, lambda s: graph.members_at(s, family["h2"], dt.date(2019, 12, 31)))
    assert before == []


def test_support_obligors(db_url, family):
    obligors = run(db_url, lambda s: graph.support_obligors(s, [family["gran"], family["kid"], family["wife"]]))
    assert obligors[family["gran"]] == [family["son"]]           # 赡养: the adult son, in another household
    assert obligors[family["kid"]] == [family["son"]]            # 抚养: the parent of a minor
    assert obligors[family["wife"]] == [family["son"]]           # 扶养: the spouse


def test_relationships_seen_from_each_side(db_url, family):
    views = run(db_url, lambda s: graph.relationships_of(s, [family["son"]]))[family["son"]]
    assert sorted((v.kind, v.other_person_id) for v in views) == sorted(
        [("PARENT", family["gran"]), ("SPOUSE", family["wife"]), ("CHILD", family["kid"])])


def test_shortest_path(db_url, family):
    path = run(db_url, lambda s: graph.shortest_path(s, family["gran"], family["wife"]))
    assert [step.person_id for step in path] == [family["gran"], family["son"], family["wife"]]
    assert run(db_url, lambda s: graph.shortest_path(s, family["gran"], family["neighbour"])) is None
    assert run(db_url, lambda s: graph.shortest_path(s, family["gran"], family["kid"], max_depth=1)) is None


def test_one_current_head_and_one_current_household(sync_engine, family):
    with pytest.raises(IntegrityError):
        with session_scope(sync_engine) as s:
            s.add(Membership(household_id=family["h2"], person_id=family["neighbour"], relation_to_head="SELF",
                             valid_from=TODAY))
    with pytest.raises(IntegrityError):
        with session_scope(sync_engine) as s:
            s.add(Membership(household_id=family["h1"], person_id=family["kid"], relation_to_head="GRANDCHILD",
                             valid_from=TODAY))
    with pytest.raises(IntegrityError):  # unknown enum values are refused by the database too
        with session_scope(sync_engine) as s:
            s.add(Membership(household_id=family["h1"], person_id=family["neighbour"], relation_to_head="COUSIN",
                             valid_from=TODAY, valid_to=TODAY + dt.timedelta(days=1)))
