"""Eligibility decisions kept current (aidgraph.core.policy.decisions): after any write, the next 政策找人 read
equals a full recomputation by the engine (PolicyEngine.gaps), on both engines.

Each write below goes through the ORM or plain SQL, never through a decisions API: the database triggers are
what must notice it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import delete, select, text, update

from aidgraph.core.access.scope import Scope
from aidgraph.core.policy import decisions
from aidgraph.core.policy.engine import PolicyEngine
from aidgraph.core.storage.config import Settings, builtin_province_configs
from aidgraph.core.storage.db import async_session_factory, make_async_engine, session_scope
from aidgraph.core.storage.models import (
    DecisionSnapshot,
    DecisionStale,
    EconomicItem,
    EligibilityDecision,
    EmergencyEvent,
    Enrollment,
    Household,
    Membership,
    Person,
    Relationship,
)
from tests.plugins.db import add_household, relate

ON = dt.date(2025, 6, 1)
VILLAGE = "440507001001"  # a Shantou 社区 (urban)
OTHER = "440507001003"


@pytest.fixture(scope="module")
def households(sync_engine):
    with session_scope(sync_engine) as s:
        built = {
            "poor": add_household(s, VILLAGE, [{"age": 45, "employment_status": "EMPLOYED"}, {"age": 12}], wages=1000),
            "edge": add_household(s, VILLAGE, [{"age": 45}, {"age": 44, "relation_to_head": "SPOUSE"}], wages=3400),
            "enrolled": add_household(s, VILLAGE, [{"age": 50}], wages=300, enrolled=["dibao"]),
            "elderly": add_household(s, OTHER, [{"age": 80, "labour_capacity": "NONE"}]),
            "child": add_household(s, VILLAGE, [{"age": 70, "labour_capacity": "NONE"}]),
            "obligor": add_household(s, OTHER, [{"age": 45}], wages=8000),
            "rich": add_household(s, VILLAGE, [{"age": 40}], wages=500, deposits=1_000_000),
            "guangzhou": add_household(s, "440106001001", [{"age": 60, "labour_capacity": "NONE"}], wages=200),
        }
        relate(s, built["obligor"].person_ids[0], built["child"].person_ids[0], "SUPPORT_OBLIGOR")
    return built


def run(db_url, work):
    async def main():
        engine = make_async_engine(db_url)
        try:
            return await work(async_session_factory(engine))
        finally:
            await engine.dispose()

    return asyncio.run(main())


def kept(db_url, engine, **kwargs):
    return run(db_url, lambda factory: decisions.gaps(factory, engine, on=ON, **kwargs))


def recomputed(db_url, engine, **kwargs):
    async def work(factory):
        async with factory() as session:
            return await engine.gaps(session, on=ON, **kwargs)

    return run(db_url, work)


def assert_equal(db_url, engine, **kwargs):
    """The kept answer equals the engine's full recomputation: total, rows, amounts and reasons."""
    total, page = kept(db_url, engine, **kwargs)
    expected_total, expected = recomputed(db_url, engine, **kwargs)
    assert total == expected_total
    assert page.to_dicts() == expected.to_dicts()
    return total, page


def gap_keys(db_url, engine, region="44") -> set[tuple[int, str]]:
    _, page = kept(db_url, engine, region_code=region)
    return set(zip(page["household_id"].to_list(), page["program"].to_list()))


def test_kept_answers_equal_the_full_recomputation(db_url, households, engine):
    total, page = assert_equal(db_url, engine, region_code="44")
    assert total > 0 and (households["poor"].household_id, "dibao") in set(
        zip(page["household_id"].to_list(), page["program"].to_list()))
    assert households["enrolled"].household_id not in page.filter(pl.col("program") == "dibao")["household_id"]
    for kwargs in ({"region_code": "4405", "program": "dibao"}, {"region_code": "4405", "scope": Scope.of(["4401"])},
                   {"region_code": VILLAGE}, {"region_code": "44", "scope": Scope.of(["440106"])},
                   {"region_code": "44", "limit": 2}, {"region_code": "4405", "program": "no_such_program"},
                   {"region_code": "4405", "scope": Scope.of(["440507001001", "440106"])}):
        assert_equal(db_url, engine, **kwargs)
    first = page.row(0, named=True)
    assert_equal(db_url, engine, region_code="44", limit=3, after=(first["household_id"], first["program"]))


def test_a_province_without_configuration_has_no_gaps(db_url, engine):
    assert kept(db_url, engine, region_code="11")[0] == 0


def write(sync_engine, statement_or_work):
    with session_scope(sync_engine) as s:
        if callable(statement_or_work):
            statement_or_work(s)
        else:
            s.execute(statement_or_work)


def test_every_kind_of_write_is_seen_by_the_next_read(db_url, sync_engine, households, engine):
    assert_equal(db_url, engine, region_code="44")  # a snapshot exists: the triggers now mark changes
    h = households
    writes = [
        # income: the poor household's head now earns enough to leave dibao
        lambda s: s.add(EconomicItem(household_id=h["poor"].household_id, person_id=h["poor"].person_ids[0],
                                     kind="WAGE", source="tax", amount=60_000, period_start=dt.date(2025, 1, 1),
                                     period_end=dt.date(2025, 5, 31))),
        # an application: the gap closes
        lambda s: s.add(Enrollment(household_id=h["edge"].household_id, program_key="dibao_edge",
                                   province_code="44", region_code=VILLAGE, status="APPLIED")),
        # the enrolment is withdrawn: the gap opens again
        update(Enrollment).where(Enrollment.household_id == h["enrolled"].household_id).values(status="WITHDRAWN"),
        # the only able support obligor dies: the old person becomes tekun
        update(Person).where(Person.id == h["obligor"].person_ids[0]).values(death_date=dt.date(2025, 3, 1)),
        # the rich household's deposits are spent
        update(EconomicItem).where(EconomicItem.household_id == h["rich"].household_id,
                                   EconomicItem.kind == "DEPOSIT").values(amount=0),
        # an emergency
        lambda s: s.add(EmergencyEvent(household_id=h["rich"].household_id, kind="MAJOR_ILLNESS", region_code=VILLAGE,
                                       occurred_on=dt.date(2025, 5, 25))),
        # the rich household's head moves into the poor household (one membership ends, another starts)
        lambda s: (s.execute(update(Membership).where(Membership.person_id == h["rich"].person_ids[0])
                             .values(valid_to=dt.date(2025, 1, 1))), s.flush(),
                   s.add(Membership(household_id=h["poor"].household_id, person_id=h["rich"].person_ids[0],
                                    relation_to_head="OTHER", valid_from=dt.date(2025, 1, 1)))),
        # a relationship ends
        delete(Relationship).where(Relationship.to_person_id == h["child"].person_ids[0]),
        # a household moves from Shantou to Guangzhou
        update(Household).where(Household.id == h["elderly"].household_id).values(region_code="440106001001"),
        # a household is registered, and another one removed with everything it had
        lambda s: add_household(s, VILLAGE, [{"age": 75, "labour_capacity": "NONE"}], wages=100),
        text(f"DELETE FROM membership WHERE household_id = {h['guangzhou'].household_id}"),
        text(f"DELETE FROM economic_item WHERE household_id = {h['guangzhou'].household_id}"),
        delete(Household).where(Household.id == h["guangzhou"].household_id),
    ]
    seen = []
    for work in writes:
        before = gap_keys(db_url, engine)
        write(sync_engine, work)
        assert_equal(db_url, engine, region_code="44")
        assert_equal(db_url, engine, region_code="4405", program="dibao")
        seen.append(before != gap_keys(db_url, engine))
    # the writes were not no-ops for the decisions (most change which households have gaps)
    assert sum(seen) >= 8, seen
    with session_scope(sync_engine) as s:
        assert s.scalar(select(DecisionStale.id).limit(1)) is None  # every mark consumed


def test_a_new_date_or_policy_recomputes_the_province(db_url, households, engine, pm, tmp_path):
    assert_equal(db_url, engine, region_code="44")
    later = dt.date(2025, 7, 1)
    total, _ = run(db_url, lambda factory: decisions.gaps(factory, engine, region_code="44", on=later))

    async def snapshot(factory):
        async with factory() as session:
            return await session.get(DecisionSnapshot, "44")

    assert run(db_url, snapshot).as_of == later
    # a raised standard in a copy of the configuration: a different policy version, a full recomputation
    configs = tmp_path / "configs"
    shutil.copytree(builtin_province_configs(), configs)
    for path in Path(configs, "44").rglob("*.toml"):
        body = path.read_text(encoding="utf-8")
        if "dibao.urban_standard" in body:
            path.write_text(body.replace("1200", "2600", 1), encoding="utf-8")
    raised = PolicyEngine(Settings(province_configs_dir=configs), pm)
    assert decisions.policy_version(raised.province("44")) != decisions.policy_version(engine.province("44"))
    assert_equal(db_url, raised, region_code="44")
    assert run(db_url, snapshot).policy_version == decisions.policy_version(raised.province("44"))
    assert_equal(db_url, engine, region_code="44")  # and back


def test_refreshing_twice_writes_the_same_rows(db_url, households, engine):
    async def rows(factory):
        async with factory() as session:
            return sorted((await session.execute(select(EligibilityDecision.household_id, EligibilityDecision.program,
                                                        EligibilityDecision.gap))).all())

    run(db_url, lambda factory: decisions.refresh_province(factory, engine, "44", ON))
    first = run(db_url, rows)
    report = run(db_url, lambda factory: decisions.refresh_province(factory, engine, "44", ON, chunk=2))
    assert report is not None and report.households >= 8 and run(db_url, rows) == first


def test_no_marks_before_the_first_snapshot(sqlite_url, engine):
    """A seed or first import pays nothing for the triggers: they mark only once a snapshot exists."""
    from aidgraph.core.storage.db import make_sync_engine

    sync = make_sync_engine(sqlite_url)
    try:
        with session_scope(sync) as s:
            add_household(s, VILLAGE, [{"age": 40}], wages=100)
            assert s.scalar(select(DecisionStale.id).limit(1)) is None
    finally:
        sync.dispose()


def test_a_write_committed_during_a_refresh_is_not_lost(db_url, sync_engine, households, engine):
    """PostgreSQL: a writer whose change commits while a refresh runs keeps its mark (the refresh consumes only
    the marks of its snapshot). On SQLite the refresh holds the only write lock, so the case cannot arise."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time")
    assert_equal(db_url, engine, region_code="44")
    connection = sync_engine.connect()
    transaction = connection.begin()
    connection.execute(update(Person).where(Person.id == households["child"].person_ids[0]).values(
        labour_capacity="FULL", birth_date=dt.date(1990, 1, 1)))  # no longer an old person without capacity
    run(db_url, lambda factory: decisions.refresh_stale(factory, engine))  # does not see the uncommitted change
    transaction.commit()
    connection.close()
    assert_equal(db_url, engine, region_code="44")


def test_the_refresh_command(db_url, households, engine):
    """``aidgraph decisions refresh`` recomputes the configured provinces in full (then the stale households),
    ``status`` shows the snapshot, a wrong province or date is refused naming it; re-running writes the same."""
    from tests.workflow.test_commands import cli

    done = cli(db_url, "decisions", "refresh", "--province", "44", "--as-of", ON.isoformat())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "province 44 in full" in done.stdout and "households" in done.stdout
    status = cli(db_url, "decisions", "status")
    assert status.returncode == 0 and ON.isoformat() in status.stdout and "(current)" in status.stdout, status.stdout
    assert_equal(db_url, engine, region_code="44")  # the snapshot is the one the read uses (same date, version)
    refused = cli(db_url, "decisions", "refresh", "--province", "99")
    assert refused.returncode == 2 and "99" in refused.stdout + refused.stderr
    refused = cli(db_url, "decisions", "refresh", "--as-of", "2025-13-01")
    assert refused.returncode == 2 and "--as-of" in refused.stdout + refused.stderr


def test_both_page_plans_give_the_same_answers(db_url, households, engine, monkeypatch):
    """Many gaps under a region are paged in household order with the region filtered, few through the region
    index and sorted: the threshold changes the plan, never the answer."""
    for broad in (0, 10**9):
        monkeypatch.setattr(decisions, "BROAD_REGION_GAPS", broad)
        total, page = assert_equal(db_url, engine, region_code="44")
        first = page.row(0, named=True)
        for kwargs in ({"region_code": "4405", "limit": 2}, {"region_code": "44", "scope": Scope.of(["440507"])},
                       {"region_code": "44", "program": "dibao"},
                       {"region_code": "44", "limit": 3, "after": (first["household_id"], first["program"])}):
            assert_equal(db_url, engine, **kwargs)
