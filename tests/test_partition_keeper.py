"""The server's partition keeper (core/app/maintenance.py, issue 15 item 4): months ahead of the partitioned
history tables are made without anybody running ``aidgraph partitions ensure``, rows a one-at-a-time writer left
in a default partition get their month, a reader holding a table makes the keeper give way instead of queueing
requests behind it, and a role that may not create tables gets a warning that names the command. A real
embedded PostgreSQL; SQLite has no partitions and gets no keeper."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from decimal import Decimal

import pytest
from sqlalchemy import text

from aidgraph.core.app.maintenance import SERVICE, PartitionKeeper, install
from aidgraph.core.app.server import AppComponents
from aidgraph.core.storage.db import make_sync_engine, session_scope
from aidgraph.core.storage.models import EconomicItem
from aidgraph.core.storage.partitions import MONTHS_AHEAD, add_months, month_of, partition_name
from aidgraph.core.storage.rls import install_app_role
from tests.conftest import make_database, server_settings
from tests.monitoring.conftest import seed_world

TODAY = dt.date.today()


@pytest.fixture(scope="module")
def db_url(request, tmp_path_factory) -> str:
    """A database of its own: the keeper is run as of dates ahead, which makes partitions other modules' tests
    do not expect."""
    return make_database("postgres", request, tmp_path_factory)


def partitions(engine, table: str) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(text("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                                     "WHERE i.inhparent = to_regclass(:t)"), {"t": table}).scalars())


def holder(engine, table: str, item_id: int) -> str:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT tableoid::regclass::text FROM {table} WHERE id = :i"),
                            {"i": item_id}).scalar_one()


def test_the_keeper_makes_the_months_ahead_and_gives_stranded_rows_their_month(sync_engine):
    world = seed_world(sync_engine, households=1, start=80)
    person = world.person(0)
    stray = add_months(month_of(TODAY), -30)
    with session_scope(sync_engine) as s:  # as the API writes one item: no partition is made for its month
        item = EconomicItem(household_id=person.household_id, person_id=person.id, kind="WAGE", source="TAX",
                            amount=Decimal("800"), period_start=stray,
                            period_end=add_months(stray, 1) - dt.timedelta(days=1))
        s.add(item)
        s.flush()
        item_id = item.id
    assert holder(sync_engine, "economic_item", item_id) == "economic_item_default"
    ahead = add_months(month_of(TODAY), 7)  # as of a day seven months on: months the migration did not make
    keeper = PartitionKeeper(sync_engine, every_seconds=3600, today=lambda: ahead)
    assert keeper.run_once() and keeper.last_error is None
    wanted = {partition_name(t, add_months(ahead, n)) for t in ("economic_item", "feed_record")
              for n in range(MONTHS_AHEAD + 1)}
    made = partitions(sync_engine, "economic_item") | partitions(sync_engine, "feed_record")
    assert wanted <= made and wanted <= set(keeper.created)
    assert partition_name("economic_item", stray) in keeper.created and keeper.moved == 1
    assert holder(sync_engine, "economic_item", item_id) == partition_name("economic_item", stray)
    before = list(keeper.created)
    assert keeper.run_once() and keeper.created == before  # idempotent


def test_the_keeper_gives_way_to_a_reader_instead_of_queueing_requests_behind_it(sync_engine):
    ahead = add_months(month_of(TODAY), 14)
    keeper = PartitionKeeper(sync_engine, every_seconds=3600, lock_timeout_ms=200, today=lambda: ahead)
    reader = sync_engine.connect()
    try:
        reader.execute(text("SELECT count(*) FROM feed_record"))  # a long reader's transaction holds the table
        started = time.monotonic()
        assert keeper.run_once() is False
        took = time.monotonic() - started
        assert took < 3, took
        assert "feed_record" in keeper.last_error and "lock was not free" in keeper.last_error
        # the keeper's transaction is gone: another reader is not queued behind it
        with sync_engine.connect() as other:
            other.execute(text("SET lock_timeout = 1000"))
            other.execute(text("SELECT count(*) FROM feed_record")).scalar_one()
    finally:
        reader.close()
    assert keeper.run_once() and keeper.last_error is None
    assert partition_name("feed_record", ahead) in partitions(sync_engine, "feed_record")


def test_a_role_that_may_not_create_tables_is_told_the_command(db_url):
    engine = make_sync_engine(db_url)
    install_app_role(engine)  # the request connections' role: owns nothing
    try:
        keeper = PartitionKeeper(engine, every_seconds=3600, today=lambda: add_months(month_of(TODAY), 20))
        assert keeper.run_once() is False
        assert "aidgraph partitions ensure" in keeper.last_error
    finally:
        engine.dispose()


def test_the_server_starts_the_keeper_on_postgresql_only(db_url, sqlite_url):
    async def start_and_stop(url: str):
        components = AppComponents(settings=server_settings(url))
        install(components)
        for hook in components.on_startup:
            await hook(components)
        keeper = components.services.get(SERVICE)
        passes = None
        if keeper is not None:
            for _ in range(100):
                if keeper.passes:
                    break
                await asyncio.sleep(0.05)
            passes, running = keeper.passes, keeper._thread.is_alive()
            assert running
        for hook in reversed(components.on_shutdown):
            await hook(components)
        assert SERVICE not in components.services
        return keeper, passes

    keeper, passes = asyncio.run(start_and_stop(db_url))
    assert keeper is not None and passes == 1 and keeper.last_error is None and not keeper._thread.is_alive()
    keeper, passes = asyncio.run(start_and_stop(sqlite_url))
    assert keeper is None
