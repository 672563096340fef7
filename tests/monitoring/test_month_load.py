"""A whole month of an item feed stored as the month's new partition (PostgreSQL: feeds.store_month over
partitions.load_month) must store, reject, audit and mark stale exactly what the batches through the parent
store, leave a partition the same as one the migration or the import makes, keep rows others wrote meanwhile,
and leave nothing behind when it fails. On a real embedded PostgreSQL server; SQLite never takes this way."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import delete, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aidgraph.core.graph.idnumber import make
from aidgraph.core.monitoring import feeds
from aidgraph.core.monitoring.feeds import FEEDS, MONTH_LOAD_TRIGGERS, STALE_GUARD, import_feed, whole_month
from aidgraph.core.storage.bulk import insert_frame
from aidgraph.core.storage.db import make_sync_engine, session_scope
from aidgraph.core.storage.models import AuditLog, DecisionSnapshot, DecisionStale, EconomicItem
from aidgraph.core.storage.partitions import (
    PartitionError,
    add_months,
    ensure_month_partitions,
    load_month,
    month_is_empty,
    month_of,
    partition_name,
)
from tests.conftest import make_database
from tests.monitoring.conftest import seed_world
from tests.monitoring.test_feeds import read_rejected

TODAY = dt.date.today()
NEVER = 10**9
"""``month_load_min_rows`` that keeps every file on the batches."""


@pytest.fixture(scope="module")
def db_url(request, tmp_path_factory) -> str:
    """PostgreSQL: SQLite's tables are not partitioned (one test below checks it never takes this way)."""
    return make_database("postgres", request, tmp_path_factory)


@pytest.fixture(scope="module")
def world(sync_engine):
    return seed_world(sync_engine, households=6, members=2, start=110)


def month(n: int) -> dt.date:
    """A past month within the partitions' window, one per test (the tests share the module's database)."""
    return add_months(month_of(TODAY), -30 - n)


def income_file(tmp_path, people, period: dt.date, name: str = "income"):
    """Lines 1-9: six stored, an unknown person, a bad amount, a repeat of line 1."""
    rows = [{"id_number": p.id_number, "period": f"{period:%Y-%m}", "kind": "WAGE", "amount": 1000 + 10 * i,
             "source": "税务"} for i, p in enumerate(people[:6])]
    rows += [{"id_number": make("440106", dt.date(1980, 5, 5), 321), "period": f"{period:%Y-%m}", "kind": "WAGE",
              "amount": 5, "source": "税务"},
             {"id_number": people[0].id_number, "period": f"{period:%Y-%m}", "kind": "PENSION", "amount": -1,
              "source": "社保"},
             dict(rows[0])]
    path = tmp_path / f"{name}-{period:%Y-%m}.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    return path


def stored(engine, name: str):
    with Session(engine) as s:
        return s.execute(select(EconomicItem.household_id, EconomicItem.person_id, EconomicItem.kind,
                                EconomicItem.source, EconomicItem.amount, EconomicItem.period_start,
                                EconomicItem.period_end, EconomicItem.recorded_by, EconomicItem.row_hash,
                                EconomicItem.source_file, EconomicItem.line_number)
                         .where(EconomicItem.source_file == name).order_by(EconomicItem.line_number)).all()


def audit_details(engine, name: str) -> list[dict]:
    with Session(engine) as s:
        found = s.scalars(select(AuditLog.detail).where(AuditLog.action == "import_feed").order_by(AuditLog.id)).all()
    return [d for d in found if isinstance(d, dict) and d.get("file") == name]


def stale_households(engine) -> set[int]:
    with Session(engine) as s:
        return set(s.scalars(select(DecisionStale.household_id)))


def clear_stale(engine) -> None:
    with Session(engine) as s, s.begin():
        s.execute(delete(DecisionStale))


def describe(engine, table: str, month_: dt.date) -> dict:
    """A partition as the catalogue holds it, its own name written as ``P`` (to compare two months')."""
    name = partition_name(table, month_)
    with engine.connect() as conn:
        def rows(sql: str) -> list:
            return sorted(tuple(str(v).replace(name, "P").replace(f"{month_:%Y-%m-%d}", "START")
                                .replace(f"{add_months(month_, 1):%Y-%m-%d}", "END") for v in r)
                          for r in conn.execute(text(sql), {"t": name}).all())
        return {
            "bound": rows("SELECT pg_get_expr(relpartbound, oid), relispartition, relkind, relrowsecurity "
                          "FROM pg_class WHERE oid = to_regclass(:t)"),
            "parent": rows("SELECT inhparent::regclass::text FROM pg_inherits WHERE inhrelid = to_regclass(:t)"),
            "columns": rows("SELECT attname, format_type(atttypid, atttypmod), attnotnull, "
                            "pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a LEFT JOIN pg_attrdef d ON "
                            "d.adrelid = a.attrelid AND d.adnum = a.attnum WHERE attrelid = to_regclass(:t) "
                            "AND attnum > 0 AND NOT attisdropped"),
            "indexes": rows("SELECT c.relname, pg_get_indexdef(i.indexrelid), "
                            "(SELECT inhparent::regclass::text FROM pg_inherits WHERE inhrelid = i.indexrelid) "
                            "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                            "WHERE i.indrelid = to_regclass(:t)"),
            "constraints": rows("SELECT conname, contype, pg_get_constraintdef(oid), conislocal, coninhcount, "
                                "conparentid <> 0, convalidated FROM pg_constraint "
                                "WHERE conrelid = to_regclass(:t)"),
            "triggers": rows("SELECT regexp_replace(tgname, '[0-9]+$', 'N'), tgenabled, tgparentid <> 0, "
                             "tgconstraint <> 0 FROM pg_trigger WHERE tgrelid = to_regclass(:t)"),
            "privileges": rows("SELECT coalesce(relacl::text, '') FROM pg_class WHERE oid = to_regclass(:t)"),
        }


def test_a_month_stored_as_its_partition_stores_rejects_audits_and_marks_what_the_batches_do(
        sync_engine, world, tmp_path):
    loaded_month = month(1)
    path = income_file(tmp_path, world.persons, loaded_month)
    with session_scope(sync_engine) as s:  # decisions are kept: the month's households must be marked stale
        s.merge(DecisionSnapshot(province_code="44", as_of=TODAY, policy_version="test", households=0,
                                 decisions=0, seconds=0.0))
    clear_stale(sync_engine)
    try:
        loaded = import_feed(sync_engine, "income", path, month_load_min_rows=1)
        assert {"store: write", "store: index", "store: foreign keys", "store: swap"} <= set(loaded.seconds)
        as_partition = (stored(sync_engine, path.name), read_rejected(path), audit_details(sync_engine, path.name),
                        stale_households(sync_engine))
        assert (loaded.read, loaded.stored, loaded.already_stored, loaded.rejected, loaded.economic_items) == \
            (9, 6, 0, 3, 6)
        assert [i.line_number for i in as_partition[0]] == [1, 2, 3, 4, 5, 6]
        assert as_partition[3] == {p.household_id for p in world.persons[:6]} and len(as_partition[3]) == 3
        assert as_partition[2] == [{"kind": "income", "file": path.name, "rows": 6, "lines": [1, 6]}]

        again = import_feed(sync_engine, "income", path, month_load_min_rows=1)  # the month has rows: batches
        assert (again.stored, again.already_stored, again.rejected) == (0, 6, 3)
        assert "store: swap" not in again.seconds

        with session_scope(sync_engine) as s:
            s.execute(delete(EconomicItem).where(EconomicItem.source_file == path.name))
        clear_stale(sync_engine)
        batched = import_feed(sync_engine, "income", path, month_load_min_rows=NEVER)
        assert "store: swap" not in batched.seconds
        assert (batched.stored, batched.rejected, batched.economic_items) == (6, 3, 6)
        assert (stored(sync_engine, path.name), read_rejected(path), stale_households(sync_engine)) == \
            (as_partition[0], as_partition[1], as_partition[3])
        assert audit_details(sync_engine, path.name) == as_partition[2] * 2  # the audit log keeps both imports
    finally:
        with session_scope(sync_engine) as s:
            s.execute(delete(DecisionSnapshot))
        clear_stale(sync_engine)


def test_the_loaded_partition_is_the_same_as_one_the_import_makes(sync_engine, world, tmp_path):
    loaded_month, made_month = month(2), month(3)
    import_feed(sync_engine, "income", income_file(tmp_path, world.persons, loaded_month), month_load_min_rows=1)
    import_feed(sync_engine, "income", income_file(tmp_path, world.persons, made_month), month_load_min_rows=NEVER)
    loaded, made = describe(sync_engine, "economic_item", loaded_month), describe(sync_engine, "economic_item",
                                                                                    made_month)
    for key in loaded:
        assert loaded[key] == made[key], key
    assert len(loaded["indexes"]) == 5 and all(parent != "None" for _, _, parent in loaded["indexes"])
    with sync_engine.connect() as conn:  # the parent reaches the rows; nothing of the load is left
        assert conn.execute(text("SELECT count(*) FROM economic_item WHERE period_start = :m"),
                            {"m": loaded_month}).scalar() == 6
        assert conn.execute(text("SELECT count(*) FROM pg_class WHERE relname LIKE '%\\_load%'")).scalar() == 0


def test_rows_written_into_the_month_while_it_loads_are_kept(sync_engine, world):
    loaded_month = month(4)
    first, second = list(world.households)[:2]
    with session_scope(sync_engine) as s:
        ensure_month_partitions(s.connection(), "economic_item", loaded_month, loaded_month)
    items = feeds.pl.DataFrame({"household_id": [second] * 3, "kind": ["WAGE"] * 3,
                                "source": ["TAX"] * 3, "amount": [1.0, 2.0, 3.0],
                                "period_start": [loaded_month] * 3, "period_end": [loaded_month] * 3,
                                "recorded_at": [dt.datetime(2026, 1, 1)] * 3})

    def concurrent_write(staging: str) -> None:
        # Another transaction (a caseworker's item) commits into the month's old partition meanwhile.
        with session_scope(sync_engine) as other:
            other.add(EconomicItem(household_id=first, kind="DEPOSIT", source="BANK", amount=99,
                                   period_start=loaded_month, period_end=loaded_month))

    with session_scope(sync_engine) as s:
        result = load_month(s.connection(), "economic_item", loaded_month,
                            lambda staging: insert_frame(s, staging, items),
                            handled_triggers=MONTH_LOAD_TRIGGERS, before_swap=concurrent_write)
    assert (result.rows, result.moved) == (3, 1)
    with Session(sync_engine) as s:
        found = s.execute(select(EconomicItem.household_id, EconomicItem.amount).where(
            EconomicItem.period_start == loaded_month).order_by(EconomicItem.amount)).all()
    assert [(h, float(a)) for h, a in found] == [(second, 1.0), (second, 2.0), (second, 3.0), (first, 99.0)]


def test_a_failing_load_leaves_the_month_as_it_was(sync_engine, world):
    loaded_month = month(5)
    with session_scope(sync_engine) as s:
        ensure_month_partitions(s.connection(), "economic_item", loaded_month, loaded_month)
    outside = feeds.pl.DataFrame({"household_id": [list(world.households)[2]] * 2, "kind": ["WAGE"] * 2,
                                  "source": ["TAX"] * 2, "amount": [1.0, 2.0],
                                  "period_start": [loaded_month, add_months(loaded_month, 1)],
                                  "period_end": [loaded_month, add_months(loaded_month, 1)],
                                  "recorded_at": [dt.datetime(2026, 1, 1)] * 2})
    with pytest.raises(IntegrityError, match="_load_bound"):  # a row of the next month
        with session_scope(sync_engine) as s:
            load_month(s.connection(), "economic_item", loaded_month, lambda staging: insert_frame(s, staging, outside),
                       handled_triggers=MONTH_LOAD_TRIGGERS)
    unknown = outside.head(1).with_columns(feeds.pl.lit(10**12).alias("household_id"))
    with pytest.raises(IntegrityError, match="fk_economic_item_household_id_household"):
        with session_scope(sync_engine) as s:
            load_month(s.connection(), "economic_item", loaded_month, lambda staging: insert_frame(s, staging, unknown),
                       handled_triggers=MONTH_LOAD_TRIGGERS)
    with sync_engine.connect() as conn:
        assert month_is_empty(conn, "economic_item", loaded_month)
        assert conn.execute(text("SELECT count(*) FROM pg_class WHERE relname LIKE '%\\_load%'")).scalar() == 0
    assert describe(sync_engine, "economic_item", loaded_month) == describe(sync_engine, "economic_item", month(3))


def test_a_trigger_the_load_does_not_know_sends_the_file_to_the_batches(sync_engine, world, tmp_path):
    loaded_month = month(6)
    path = income_file(tmp_path, world.persons, loaded_month)
    with sync_engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE fired (n bigint)")
        conn.exec_driver_sql("CREATE FUNCTION count_fired() RETURNS trigger AS $$ BEGIN INSERT INTO fired "
                             "SELECT count(*) FROM new_rows; RETURN NULL; END $$ LANGUAGE plpgsql")
        conn.exec_driver_sql("CREATE TRIGGER audit_items AFTER INSERT ON economic_item REFERENCING NEW TABLE AS "
                             "new_rows FOR EACH STATEMENT EXECUTE FUNCTION count_fired()")
    try:
        with session_scope(sync_engine) as s:
            ensure_month_partitions(s.connection(), "economic_item", loaded_month, loaded_month)
        with pytest.raises(PartitionError, match="audit_items"), session_scope(sync_engine) as s:
            load_month(s.connection(), "economic_item", loaded_month, lambda staging: 0,
                       handled_triggers=MONTH_LOAD_TRIGGERS)
        summary = import_feed(sync_engine, "income", path, month_load_min_rows=1)
        assert summary.stored == 6 and "store: swap" not in summary.seconds
        with sync_engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT sum(n) FROM fired").scalar() == 6
    finally:
        with sync_engine.begin() as conn:
            conn.exec_driver_sql("DROP TRIGGER audit_items ON economic_item")
            conn.exec_driver_sql("DROP FUNCTION count_fired()")
            conn.exec_driver_sql("DROP TABLE fired")


def test_the_loads_knowledge_of_the_triggers_is_the_databases(sync_engine):
    """The triggers the load does the work of are exactly economic_item's (so a month is loaded at all), and
    the guard it marks households stale under is the insert trigger's."""
    with sync_engine.connect() as conn:
        triggers = set(conn.execute(text("SELECT tgname FROM pg_trigger WHERE tgrelid = 'economic_item'::regclass "
                                         "AND NOT tgisinternal")).scalars())
        body = conn.execute(text("SELECT prosrc FROM pg_proc WHERE proname = "
                                 "'decision_stale_economic_item_insert_fn'")).scalar()
    assert triggers == MONTH_LOAD_TRIGGERS
    assert f"IF ({STALE_GUARD}) THEN" in body


def test_which_files_may_be_loaded_as_a_month(sync_engine, world):
    rows = feeds.pl.DataFrame({"event_date": [month(7), month(7) + dt.timedelta(days=3)]})
    income = FEEDS["income"]
    assert whole_month(sync_engine, income, rows, TODAY, min_rows=2) == month(7)
    assert whole_month(sync_engine, income, rows, TODAY, min_rows=3) is None  # too few rows
    assert whole_month(sync_engine, FEEDS["hospitalisation"], rows, TODAY, min_rows=1) is None  # feed records
    two = rows.with_columns(feeds.pl.Series("event_date", [month(7), month(8)]))
    assert whole_month(sync_engine, income, two, TODAY, min_rows=1) is None  # two months
    old = feeds.pl.DataFrame({"event_date": [dt.date(2003, 1, 5)]})
    assert whole_month(sync_engine, FEEDS["assets"], old, TODAY, min_rows=1) is None  # the default partition's
    sqlite = make_sync_engine("sqlite://")
    assert whole_month(sqlite, income, rows, TODAY, min_rows=1) is None
    sqlite.dispose()
