"""Kept household frames (core/policy/frames.py, migration 0023) on both engines: after every kind of write the
kept frame equals a fresh read of the tables, chunk by chunk, once the stale marks are applied; nothing the
write removed survives in a chunk; at most three dates are kept per province; on PostgreSQL a request outside
the province reads no chunk."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from sqlalchemy import func, select, text

from aidgraph.core.policy import decisions, frames
from aidgraph.core.policy.engine import default_engine, household_frame
from aidgraph.core.storage.db import async_session_factory, make_async_engine, session_scope
from aidgraph.core.storage.models import EconomicItem, HouseholdFrameChunk, HouseholdFrameSet
from tests.conftest import make_database
from tests.plugins.db import add_household, relate

ON = dt.date(2025, 6, 1)
SHANTOU = "440507001001"
GUANGZHOU = "440106011004"
FUJIAN = "350102001001"  # 福州 鼓楼区: another province


@pytest.fixture
def fresh_url(request, tmp_path_factory, db_url):
    """A database of its own per test (the kept sets and chunk layout are the thing under test)."""
    kind = "postgres" if db_url.startswith("postgresql") else "sqlite"
    return make_database(kind, request, tmp_path_factory)


def sync(url):
    from aidgraph.core.storage.db import make_sync_engine

    return make_sync_engine(url)


async def _keep(url: str, on: dt.date = ON, chunk: int | None = None) -> None:
    engine = make_async_engine(url)
    try:
        await decisions.keep_frames(async_session_factory(engine), "44", on,
                                    **({} if chunk is None else {"chunk": chunk}))
    finally:
        await engine.dispose()


async def _catch_up_and_compare(url: str, on: dt.date = ON) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    engine = make_async_engine(url)
    try:
        factory = async_session_factory(engine)
        await decisions.refresh_stale(factory, default_engine())
        async with factory() as session:
            kept, version = await frames.load(session, "44", on)
            fresh = await household_frame(session, on=on, region_code="44")
            stale = (await session.execute(text("SELECT count(*) FROM decision_stale"))).scalar_one()
        return kept, fresh, stale
    finally:
        await engine.dispose()


def check(url: str) -> pl.DataFrame:
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        kept, fresh, stale = pool.submit(asyncio.run, _catch_up_and_compare(url)).result()
    assert stale == 0
    assert_frame_equal(kept.sort("household_id"), fresh.sort("household_id"))
    return kept


def keep(url: str, **kw) -> None:
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _keep(url, **kw)).result()


def test_the_kept_frame_follows_every_kind_of_write(fresh_url):
    engine = sync(fresh_url)
    with session_scope(engine) as s:
        built = [add_household(s, SHANTOU if i % 2 else GUANGZHOU, [{"age": 30 + i}, {"age": 8}], wages=800 + 100 * i,
                               on=ON) for i in range(7)]
    keep(fresh_url, chunk=3)  # three chunks: writes land in the first, a middle and the last one
    with engine.connect() as conn:
        built_version = conn.execute(select(HouseholdFrameSet.version)).scalar_one()
    kept = check(fresh_url)
    assert kept.height == 7
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(HouseholdFrameChunk)).scalar_one() == 3

    with session_scope(engine) as s:  # an income changes, a new household is registered
        s.add(EconomicItem(household_id=built[1].household_id, kind="WAGE", source="tax", amount=Decimal("6000"),
                           period_start=dt.date(2025, 1, 1), period_end=dt.date(2025, 1, 31)))
        add_household(s, SHANTOU, [{"age": 70, "labour_capacity": "NONE"}], on=ON)
    assert check(fresh_url).height == 8
    with session_scope(engine) as s:  # a person's facts, a relationship across households
        s.execute(text("UPDATE person SET disability_level = 1 WHERE id = :p"), {"p": built[3].person_ids[0]})
        relate(s, built[4].person_ids[0], built[5].person_ids[0], "SUPPORT_OBLIGOR")
    check(fresh_url)
    with session_scope(engine) as s:  # a household moves to another province, another is deleted
        s.execute(text("UPDATE household SET region_code = :r WHERE id = :h"), {"r": FUJIAN, "h": built[2].household_id})
        s.execute(text("UPDATE person SET region_code = :r WHERE id IN (SELECT person_id FROM membership "
                       "WHERE household_id = :h)"), {"r": FUJIAN, "h": built[2].household_id})
        s.execute(text("DELETE FROM household WHERE id = :h"), {"h": built[6].household_id})
    kept = check(fresh_url)
    assert built[2].household_id not in kept["household_id"] and built[6].household_id not in kept["household_id"]
    with engine.connect() as conn:  # nothing removed survives in any chunk's bytes
        chunks = conn.execute(select(HouseholdFrameChunk.data)).scalars().all()
        held = pl.concat([frames.decode(c) for c in chunks])["household_id"].to_list()
        version = conn.execute(select(HouseholdFrameSet.version)).scalar_one()
    assert built[6].household_id not in held and built[2].household_id not in held
    assert version == built_version + 3  # each of the three catching-ups changed the set once
    with session_scope(engine) as s:  # an address is no fact of the frame: no chunk rewritten, the version stays
        s.execute(text("UPDATE household SET address = 'elsewhere' WHERE id = :h"), {"h": built[1].household_id})
    check(fresh_url)
    with engine.connect() as conn:
        assert conn.execute(select(HouseholdFrameSet.version)).scalar_one() == version
    engine.dispose()


def test_at_most_three_dates_are_kept_per_province(fresh_url):
    engine = sync(fresh_url)
    with session_scope(engine) as s:
        add_household(s, SHANTOU, [{"age": 40}], wages=900, on=ON)
    for months in range(4):
        keep(fresh_url, on=dt.date(2025, 6 + months, 1))
    with engine.connect() as conn:
        dates = conn.execute(select(HouseholdFrameSet.as_of).order_by(HouseholdFrameSet.as_of)).scalars().all()
        orphans = conn.execute(text("SELECT count(*) FROM household_frame_chunk c WHERE NOT EXISTS (SELECT 1 FROM "
                                    "household_frame_set s WHERE s.province_code = c.province_code "
                                    "AND s.as_of = c.as_of)")).scalar_one()
    assert dates == [dt.date(2025, 7, 1), dt.date(2025, 8, 1), dt.date(2025, 9, 1)] and orphans == 0
    engine.dispose()


def test_a_request_outside_the_province_reads_no_chunk(fresh_url):
    if not fresh_url.startswith("postgresql"):
        pytest.skip("SQLite has no row-level security: the application's scope is its only line")
    from aidgraph.core.storage.rls import install_app_role, session_info

    engine = sync(fresh_url)
    with session_scope(engine) as s:
        add_household(s, SHANTOU, [{"age": 40}], wages=900, on=ON)
    keep(fresh_url)
    engine.dispose()

    async def counts():
        app = make_async_engine(fresh_url)
        install_app_role(app.sync_engine)
        try:
            found = {}
            for setting in ("35", "4405", "", "*"):
                async with async_session_factory(app, session_info(setting, "test"))() as session:
                    found[setting] = (await session.execute(
                        select(func.count()).select_from(HouseholdFrameChunk))).scalar_one()
            return found
        finally:
            await app.dispose()

    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        found = pool.submit(asyncio.run, counts()).result()
    assert found == {"35": 0, "4405": 1, "": 0, "*": 1}


def test_a_chunk_grown_by_new_households_is_split(fresh_url, monkeypatch):
    monkeypatch.setattr(frames, "CHUNK_HOUSEHOLDS", 2)
    engine = sync(fresh_url)
    with session_scope(engine) as s:
        for i in range(2):
            add_household(s, SHANTOU, [{"age": 40 + i}], wages=900, on=ON)
    keep(fresh_url, chunk=2)
    with session_scope(engine) as s:  # new households all fall in the last (here the only) chunk: 7 > 2 x 2
        for i in range(5):
            add_household(s, GUANGZHOU, [{"age": 50 + i}], wages=700, on=ON)
    assert check(fresh_url).height == 7
    with engine.connect() as conn:
        sizes = conn.execute(select(HouseholdFrameChunk.households).order_by(
            HouseholdFrameChunk.first_household_id)).scalars().all()
    assert sizes == [2, 2, 2, 1]
    with session_scope(engine) as s:  # and changes after the split still land in the right chunk
        add_household(s, SHANTOU, [{"age": 33}], wages=100, on=ON)
    assert check(fresh_url).height == 8
    engine.dispose()


def test_frames_kept_by_another_release_are_built_again(fresh_url):
    """A kept set whose format (the frame reader's code and columns) is not this release's counts as not kept:
    the next refresh drops it instead of mixing two layouts, and the next simulation reads the tables again."""
    engine = sync(fresh_url)
    with session_scope(engine) as s:
        built = add_household(s, SHANTOU, [{"age": 40}], wages=900, on=ON)
    keep(fresh_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE household_frame_set SET format = 'an older release'"))
    with session_scope(engine) as s:  # a change: its mark reaches the refresh
        s.execute(text("UPDATE household SET address = 'x' WHERE id = :h"), {"h": built.household_id})

    async def after_refresh():
        aengine = make_async_engine(fresh_url)
        try:
            factory = async_session_factory(aengine)
            await decisions.refresh_stale(factory, default_engine())
            async with factory() as session:
                return await frames.version(session, "44", ON), len(await frames.kept_sets(session))
        finally:
            await aengine.dispose()

    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        kept_version, sets = pool.submit(asyncio.run, after_refresh()).result()
    assert kept_version is None and sets == 0
    keep(fresh_url)
    assert check(fresh_url).height == 1
    engine.dispose()


def test_a_refresh_between_two_chunks_of_a_build_loses_nothing(fresh_url):
    """The build runs one short transaction per chunk (SQLite's writers wait for a chunk, not the province).
    Changes consumed by a refresh between two chunks reach the chunk built and the one not built yet; readers see
    no kept set until the build is finished."""
    engine = sync(fresh_url)
    with session_scope(engine) as s:
        built = [add_household(s, SHANTOU, [{"age": 40 + i}], wages=900, on=ON) for i in range(4)]

    async def interleaved():
        aengine = make_async_engine(fresh_url)
        try:
            factory = async_session_factory(aengine)
            async with factory() as session:
                firsts = await frames.begin_build(session, "44", ON, chunk=2)
                await session.commit()
            async with factory() as session:
                await frames.build_chunk(session, "44", ON, firsts, 0)
                await session.commit()
                hidden = await frames.version(session, "44", ON)
            with session_scope(engine) as s:  # one change in the chunk built, one in the chunk still empty
                for b in (built[0], built[3]):
                    s.execute(text("UPDATE person SET disability_level = 2 WHERE id = :p"), {"p": b.person_ids[0]})
            await decisions.refresh_stale(factory, default_engine())
            async with factory() as session:
                await frames.build_chunk(session, "44", ON, firsts, 1)
                await frames.finish_build(session, "44", ON, 0.0)
                await session.commit()
            return firsts, hidden
        finally:
            await aengine.dispose()

    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        firsts, hidden = pool.submit(asyncio.run, interleaved()).result()
    assert len(firsts) == 2 and hidden is None
    kept = check(fresh_url)
    levels = {row["household_id"]: row["members"][0]["disability_level"] for row in kept.iter_rows(named=True)}
    assert levels[built[0].household_id] == levels[built[3].household_id] == 2
    engine.dispose()


def test_the_cli_keeps_lists_and_drops_a_provinces_frames(fresh_url, monkeypatch):
    """``aidgraph decisions keep-frames`` / ``frames`` / ``drop-frames`` against the configured database."""
    from typer.testing import CliRunner

    from aidgraph.core.app.cli import app

    monkeypatch.setenv("AIDGRAPH_DATABASE_URL", fresh_url)
    engine = sync(fresh_url)
    with session_scope(engine) as s:
        add_household(s, SHANTOU, [{"age": 40}], wages=900, on=ON)
        add_household(s, GUANGZHOU, [{"age": 30}, {"age": 5}], wages=1500, on=ON)
    runner = CliRunner()
    none = runner.invoke(app, ["decisions", "frames"])
    assert none.exit_code == 0 and "no household frames kept" in none.output
    kept = runner.invoke(app, ["decisions", "keep-frames", "--province", "44", "--as-of", ON.isoformat()])
    assert kept.exit_code == 0, kept.output
    assert f"province 44: household facts of {ON} kept" in kept.output
    listed = runner.invoke(app, ["decisions", "frames"])
    assert listed.exit_code == 0 and f"province 44: facts of {ON}, 2 households" in listed.output
    wrong = runner.invoke(app, ["decisions", "keep-frames", "--province", "99"])
    assert wrong.exit_code == 2
    dropped = runner.invoke(app, ["decisions", "drop-frames", "--province", "44", "--as-of", ON.isoformat()])
    assert dropped.exit_code == 0 and "no longer kept" in dropped.output
    again = runner.invoke(app, ["decisions", "drop-frames", "--province", "44", "--as-of", ON.isoformat()])
    assert again.exit_code == 1 and "no household frame of province '44'" in again.output
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(HouseholdFrameSet)).scalar_one() == 0
    engine.dispose()
