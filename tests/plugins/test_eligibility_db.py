"""The household frame built from the database (SQLite and PostgreSQL), Eligibility for one household and
EligibilityGaps for a region: the same code path, set-at-a-time."""

from __future__ import annotations

import asyncio
import datetime as dt

import polars as pl
import pytest

from aidgraph.core.storage.db import async_session_factory, make_async_engine, session_scope
from aidgraph.core.access.scope import Scope
from tests.plugins.db import add_household, relate

ON = dt.date(2025, 6, 1)
VILLAGE = "440507001001"  # a Shantou 社区 (urban)


@pytest.fixture(scope="module")
def households(sync_engine):
    from sqlalchemy import select

    from aidgraph.core.storage.models import Region

    with session_scope(sync_engine) as s:
        rural_village = s.execute(select(Region.code).where(Region.code.like("4405%"), Region.level == "VILLAGE",
                                                            Region.name.like("%村委会"))).scalars().first()
        poor = add_household(s, VILLAGE, [{"age": 45, "employment_status": "EMPLOYED"}, {"age": 12}], wages=1000)
        edge = add_household(s, VILLAGE, [{"age": 45}, {"age": 44, "relation_to_head": "SPOUSE"}], wages=3400)
        enrolled = add_household(s, VILLAGE, [{"age": 50}], wages=300, enrolled=["dibao"])
        elderly = add_household(s, rural_village, [{"age": 80, "labour_capacity": "NONE"}])
        child = add_household(s, VILLAGE, [{"age": 70, "labour_capacity": "NONE"}])
        obligor = add_household(s, "440507001003", [{"age": 45}], wages=8000)
        relate(s, obligor.person_ids[0], child.person_ids[0], "SUPPORT_OBLIGOR")
        rich = add_household(s, VILLAGE, [{"age": 40}], wages=500, deposits=1_000_000)
        migrant = add_household(s, VILLAGE, [{"age": 30, "hospitalised": True}], hukou="620102",
                                emergencies=[("MAJOR_ILLNESS", dt.date(2025, 5, 20))])
    return {"poor": poor, "edge": edge, "enrolled": enrolled, "elderly": elderly, "child": child, "rich": rich,
            "migrant": migrant, "obligor": obligor, "rural_village": rural_village}


def run(db_url, work):
    async def main():
        engine = make_async_engine(db_url)
        try:
            async with async_session_factory(engine)() as session:
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(main())


def test_household_frame_facts(db_url, households):
    from aidgraph.core.policy.engine import household_frame

    frame = run(db_url, lambda s: household_frame(s, on=ON, region_code="4405"))
    by_id = {r["household_id"]: r for r in frame.iter_rows(named=True)}
    poor = by_id[households["poor"].household_id]
    assert poor["member_count"] == 2 and poor["monthly_income"] == pytest.approx(1000, abs=0.01)
    assert poor["monthly_earned_income"] == pytest.approx(1000, abs=0.01)
    assert sorted(m["age"] for m in poor["members"]) == [12, 45]
    assert all(m["local_hukou"] for m in poor["members"]) and not poor["rural"]
    assert by_id[households["elderly"].household_id]["rural"]
    assert by_id[households["enrolled"].household_id]["enrolled"] == ["dibao"]
    assert by_id[households["child"].household_id]["members"][0]["able_obligors"] == 1
    assert by_id[households["rich"].household_id]["financial_assets"] == pytest.approx(1_000_000)
    assert by_id[households["migrant"].household_id]["members"][0]["local_hukou"] is False


def test_eligibility_one_household_equals_the_region_evaluation(db_url, households, engine):
    region = run(db_url, lambda s: engine.evaluate(s, on=ON, region_code="4405"))
    for name in ("poor", "edge", "elderly", "child", "migrant"):
        hid = households[name].household_id
        one = run(db_url, lambda s: engine.evaluate(s, on=ON, household_ids=[hid]))
        assert one.to_dicts() == region.filter(pl.col("household_id") == hid).to_dicts()


def test_eligibility_results(db_url, households, engine):
    result = run(db_url, lambda s: engine.evaluate(s, on=ON, region_code="4405"))

    def row(name, program):
        return result.filter((pl.col("household_id") == households[name].household_id)
                             & (pl.col("program") == program)).row(0, named=True)

    # GD: 1000 wages - 300 employment costs = 700 / 2 = 350 < 1200: gap (1200 - 350) x 2
    poor = row("poor", "dibao")
    assert poor["eligible"] and poor["monthly_amount"] == pytest.approx(1700)
    assert row("edge", "dibao_edge")["eligible"] and not row("edge", "dibao")["eligible"]
    assert row("elderly", "tekun")["eligible"]  # rural: 1.6 x rural standard 1000
    assert row("elderly", "tekun")["monthly_amount"] == pytest.approx(1600)
    assert not row("child", "tekun")["eligible"]  # an able support obligor
    assert not row("rich", "dibao")["eligible"]  # assets
    assert row("migrant", "temporary_emergency")["eligible"]


def test_gaps_are_eligible_and_not_enrolled(db_url, households, engine):
    total, gaps = run(db_url, lambda s: engine.gaps(s, region_code="4405", program="dibao", on=ON))
    assert total == gaps.height
    ids = set(gaps["household_id"].to_list())
    assert households["poor"].household_id in ids
    assert households["enrolled"].household_id not in ids  # eligible but already applied
    assert gaps["eligible"].all() and not gaps["enrolled"].any()
    # the scope limits the region: nothing outside it
    total, outside = run(db_url, lambda s: engine.gaps(s, region_code="4405", scope=Scope.of(["4401"]), on=ON))
    assert total == 0 and outside.height == 0
    # a page explains its own rows only, in household then program order, after a position
    total, everything = run(db_url, lambda s: engine.gaps(s, region_code="4405", on=ON))
    first = everything.row(0, named=True)
    _, page = run(db_url, lambda s: engine.gaps(s, region_code="4405", on=ON, limit=2,
                                                  after=(first["household_id"], first["program"])))
    assert page.select("household_id", "program").to_dicts() == \
        everything.slice(1, 2).select("household_id", "program").to_dicts()
    assert all(len(r) > 1 for r in page["reasons"].to_list())


def test_region_evaluation_is_a_few_statements(db_url, households, engine):
    from sqlalchemy import event

    async def work(session):
        count = 0

        def on_execute(*_args):
            nonlocal count
            count += 1

        sync_engine = session.bind.sync_engine if hasattr(session.bind, "sync_engine") else session.bind
        event.listen(sync_engine, "before_cursor_execute", on_execute)
        try:
            await engine.evaluate(session, on=ON, region_code="44")
        finally:
            event.remove(sync_engine, "before_cursor_execute", on_execute)
        return count

    assert run(db_url, work) <= 8


def test_a_deceased_member_is_no_longer_counted(db_url, sync_engine):
    """The household register records a death (死亡, the 户籍 feed sets death_date) and leaves the membership to
    the caseworker: from the day of death the person is neither a member in the per-capita income nor an able
    support obligor of a relative, in the engine's frame and in the API's economics alike."""
    from sqlalchemy import update

    from aidgraph.core.graph.economics import economics_for
    from aidgraph.core.policy.engine import household_frame
    from aidgraph.core.storage.models import Person

    with session_scope(sync_engine) as s:
        two = add_household(s, VILLAGE, [{"age": 45}, {"age": 44, "relation_to_head": "SPOUSE"}], wages=1200)
        old = add_household(s, VILLAGE, [{"age": 80, "labour_capacity": "NONE"}])
        son = add_household(s, "440507001003", [{"age": 50}], wages=3000)
        relate(s, son.person_ids[0], old.person_ids[0], "SUPPORT_OBLIGOR")
        died = dt.date(2025, 3, 10)
        s.execute(update(Person).where(Person.id.in_([two.person_ids[1], son.person_ids[0]])).values(death_date=died))

    def frame(on):
        return {r["household_id"]: r for r in run(db_url, lambda s: household_frame(
            s, on=on, household_ids=[two.household_id, old.household_id])).iter_rows(named=True)}

    before, after = frame(dt.date(2025, 3, 9)), frame(ON)
    assert before[two.household_id]["member_count"] == 2 and after[two.household_id]["member_count"] == 1
    assert [m["person_id"] for m in after[two.household_id]["members"]] == [two.person_ids[0]]
    assert before[old.household_id]["members"][0]["able_obligors"] == 1
    assert after[old.household_id]["members"][0]["able_obligors"] == 0
    economics = run(db_url, lambda s: economics_for(s, [two.household_id], ON))[two.household_id]
    assert economics.members == 1


def test_member_count_leaves_out_the_deceased(db_url, sync_engine):
    """memberCount (the API's loader) counts the same living members as the per-capita income."""
    from sqlalchemy import update

    from aidgraph.core.graph.reads import member_counts
    from aidgraph.core.storage.models import Person

    with session_scope(sync_engine) as s:
        built = add_household(s, VILLAGE, [{"age": 60}, {"age": 58, "relation_to_head": "SPOUSE"}])
    assert run(db_url, lambda s: member_counts(s, Scope.everything(), [built.household_id])) == {built.household_id: 2}
    with session_scope(sync_engine) as s:
        s.execute(update(Person).where(Person.id == built.person_ids[1]).values(death_date=dt.date(2025, 1, 5)))
    assert run(db_url, lambda s: member_counts(s, Scope.everything(), [built.household_id])) == {built.household_id: 1}
