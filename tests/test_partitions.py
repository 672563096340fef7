"""Monthly partitions of economic_item and feed_record on PostgreSQL (migration 0024, core/storage/partitions.py,
``aidgraph partitions``), on a real embedded PostgreSQL server; SQLite keeps its plain tables."""

from __future__ import annotations

import datetime as dt
import json
import threading
from decimal import Decimal

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from aidgraph.core.app.cli import app
from aidgraph.core.monitoring.feeds import import_feed
from aidgraph.core.storage.db import make_sync_engine, session_scope
from aidgraph.core.storage.migrate import current_revision, downgrade, head_revision, upgrade
from aidgraph.core.storage.models import EconomicItem, FeedRecord
from aidgraph.core.storage.partitions import (
    MONTHS_AHEAD,
    add_months,
    ensure_month_partitions,
    is_partitioned,
    list_partitions,
    month_of,
    partition_name,
)
from aidgraph.core.storage.rls import APP_ROLE
from tests.conftest import make_database
from tests.monitoring.conftest import seed_world

TODAY = dt.date.today()
IMPORTED = add_months(month_of(TODAY), -21)
"""The month the import test writes: past (income of a future month is refused), within the partitions' window."""
STRAY = add_months(month_of(TODAY), -25)
"""The month the command test's row waits in the default partition for."""


@pytest.fixture(scope="module")
def db_url(request, tmp_path_factory) -> str:
    """PostgreSQL: SQLite's tables are not partitioned (one test below checks that)."""
    return make_database("postgres", request, tmp_path_factory)


@pytest.fixture(scope="module")
def world(sync_engine):
    return seed_world(sync_engine, households=6, start=70)


def where(engine, table: str, condition: str, params: dict | None = None) -> dict[str, int]:
    """Rows of ``table`` matching ``condition`` by the partition that holds them (tableoid)."""
    with engine.connect() as conn:
        return dict(conn.execute(text(f"SELECT tableoid::regclass::text, count(*) FROM {table} WHERE {condition} "
                                      "GROUP BY 1"), params or {}).all())


def hospital_file(tmp_path, people, day: dt.date, cost: int = 5000):
    path = tmp_path / f"hospital-{day:%Y-%m}.jsonl"
    path.write_text("\n".join(json.dumps({"id_number": p.id_number, "name": "", "admission_date": day.isoformat(),
                                          "discharge_date": "", "hospital": "人民医院", "diagnosis": "",
                                          "total_cost": cost + i, "compliant_cost": cost,
                                          "insurance_paid": cost // 2}, ensure_ascii=False)
                              for i, p in enumerate(people)), encoding="utf-8")
    return path


def income_file(tmp_path, people, month: str, amount: int = 1000):
    path = tmp_path / f"income-{month}.jsonl"
    path.write_text("\n".join(json.dumps({"id_number": p.id_number, "period": month, "kind": "WAGE",
                                          "amount": amount + i, "source": "税务"}) for i, p in enumerate(people)),
                    encoding="utf-8")
    return path


def test_migration_partitions_both_tables_keeping_keys_triggers_policies_and_grants(sync_engine):
    current = month_of(TODAY)
    with sync_engine.connect() as conn:
        for table, key in (("economic_item", "period_start"), ("feed_record", "event_date")):
            assert is_partitioned(conn, table)
            assert conn.execute(text("SELECT pg_get_partkeydef(to_regclass(:t))"), {"t": table}).scalar() == \
                f"RANGE ({key})"
            names = [p.name for p in list_partitions(conn, table)]
            assert names[-1] == f"{table}_default"
            # the months ahead (other tests of the module may have added earlier months by then)
            assert [partition_name(table, add_months(current, n)) for n in range(MONTHS_AHEAD + 1)] == \
                names[-MONTHS_AHEAD - 2:-1]
            pk = conn.execute(text("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = "
                                   "to_regclass(:t) AND contype = 'p'"), {"t": table}).scalar()
            assert pk == f"PRIMARY KEY (id, {key})"
            triggers = conn.execute(text("SELECT count(*) FROM pg_trigger WHERE tgrelid = to_regclass(:t) "
                                         "AND NOT tgisinternal"), {"t": table}).scalar()
            assert triggers == (3 if table == "economic_item" else 0)  # decision_stale (0011): on economic_item
            assert conn.execute(text("SELECT relrowsecurity FROM pg_class WHERE oid = to_regclass(:t)"),
                                {"t": table}).scalar()
            assert conn.execute(text("SELECT count(*) FROM pg_policy WHERE polrelid = to_regclass(:t)"),
                                {"t": table}).scalar() == 1
            assert conn.execute(text("SELECT has_table_privilege(:r, :t, 'SELECT, INSERT, UPDATE, DELETE')"),
                                {"r": APP_ROLE, "t": table}).scalar()
            for name in names:  # reached only through the parent, where the policies are
                assert not conn.execute(text("SELECT has_table_privilege(:r, :t, 'SELECT')"),
                                        {"r": APP_ROLE, "t": name}).scalar()
        unique = conn.execute(text("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = "
                                   "'uq_feed_record_row_hash'")).scalar()
        assert unique == "UNIQUE (row_hash, event_date)"
        indexes = set(conn.execute(text("SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid IN "
                                        "(to_regclass('economic_item'), to_regclass('feed_record'))")).scalars())
        assert {"ix_economic_item_period_flows", "ix_economic_item_household_id", "ix_economic_item_person_id",
                "ix_feed_record_kind_event_date", "ix_feed_record_person_id"} <= indexes


def test_an_import_creates_its_months_partitions_and_its_rows_land_there(sync_engine, world, tmp_path):
    people = world.persons[:6]
    path = income_file(tmp_path, people, f"{IMPORTED:%Y-%m}")
    records, items = partition_name("feed_record", IMPORTED), partition_name("economic_item", IMPORTED)
    with sync_engine.connect() as conn:
        assert records not in {p.name for p in list_partitions(conn, "feed_record")}
        assert items not in {p.name for p in list_partitions(conn, "economic_item")}
    # The income feed's rows are economic items only (migration 0027): only the items' month is made.
    summary = import_feed(sync_engine, "income", path)
    assert (summary.stored, summary.economic_items) == (6, 6)
    assert summary.partitions_created == [items]
    assert where(sync_engine, "economic_item", "source_file = :f", {"f": path.name}) == {items: 6}
    assert where(sync_engine, "feed_record", "source_file = :f", {"f": path.name}) == {}
    again = import_feed(sync_engine, "income", path)  # re-importing the same rows is a no-op
    assert (again.stored, again.already_stored, again.economic_items) == (0, 6, 0)
    assert again.partitions_created == []
    assert where(sync_engine, "economic_item", "source_file = :f", {"f": path.name}) == {items: 6}
    # A feed whose rows are feed records makes the records' month.
    hospital = hospital_file(tmp_path, people, IMPORTED + dt.timedelta(days=4))
    assert import_feed(sync_engine, "hospitalisation", hospital).partitions_created == [records]
    assert where(sync_engine, "feed_record", "source_file = :f", {"f": hospital.name}) == {records: 6}
    assert import_feed(sync_engine, "hospitalisation", hospital).already_stored == 6


def test_the_unique_row_hash_still_refuses_a_second_copy(sync_engine, world, tmp_path):
    path = hospital_file(tmp_path, world.persons[:1], dt.date(2025, 5, 6), cost=4321)
    assert import_feed(sync_engine, "hospitalisation", path).stored == 1
    with session_scope(sync_engine) as s:
        stored = s.scalars(select(FeedRecord.row_hash).where(FeedRecord.source_file == path.name)).one()
    with pytest.raises(DBAPIError, match="duplicate key value"):
        with sync_engine.begin() as conn:
            conn.execute(text("INSERT INTO feed_record (kind, person_id, event_date, payload, row_hash, source_file, "
                              "line_number, imported_at) SELECT kind, person_id, event_date, payload, row_hash, 'x', 1, "
                              "now() FROM feed_record WHERE row_hash = :h"), {"h": stored})


def test_rows_in_the_default_partition_move_when_their_month_is_created(sync_engine, world):
    person = world.person(0)
    month = dt.date(2025, 7, 1)
    with session_scope(sync_engine) as s:  # one row at a time, as the API writes: no partition made for it
        item = EconomicItem(household_id=person.household_id, person_id=person.id, kind="WAGE", source="TAX",
                            amount=Decimal("1234.50"), period_start=month, period_end=dt.date(2025, 7, 31))
        record = FeedRecord(kind="hospitalisation", person_id=person.id, event_date=dt.date(2025, 7, 9),
                            payload={"hospital": "x"}, row_hash="202507k-default-move", source_file="api",
                            line_number=1)
        s.add_all([item, record])
        s.flush()
        ids = (item.id, record.id)
    assert where(sync_engine, "economic_item", "id = :i", {"i": ids[0]}) == {"economic_item_default": 1}
    assert where(sync_engine, "feed_record", "id = :i", {"i": ids[1]}) == {"feed_record_default": 1}
    with sync_engine.begin() as conn:
        # what PostgreSQL does without the move: refuses the partition while the default holds its rows
        with pytest.raises(DBAPIError, match="default partition"):
            with conn.begin_nested():
                conn.exec_driver_sql("CREATE TABLE economic_item_p202507 PARTITION OF economic_item "
                                     "FOR VALUES FROM ('2025-07-01') TO ('2025-08-01')")
        items = ensure_month_partitions(conn, "economic_item", month, month)
        records = ensure_month_partitions(conn, "feed_record", dt.date(2025, 6, 1), month)
    assert (items.created, items.moved) == (["economic_item_p202507"], 1)
    assert records.created == ["feed_record_p202506", "feed_record_p202507"] and records.moved == 1
    assert where(sync_engine, "economic_item", "id = :i", {"i": ids[0]}) == {"economic_item_p202507": 1}
    assert where(sync_engine, "feed_record", "id = :i", {"i": ids[1]}) == {"feed_record_p202507": 1}
    with session_scope(sync_engine) as s:  # the same rows, whole
        moved = s.get(EconomicItem, ids[0])
        assert (moved.amount, moved.period_end, moved.person_id) == (Decimal("1234.50"), dt.date(2025, 7, 31),
                                                                     person.id)
        assert s.get(FeedRecord, ids[1]).payload == {"hospital": "x"}
    with sync_engine.begin() as conn:  # idempotent
        again = ensure_month_partitions(conn, "economic_item", month, month)
    assert (again.created, again.moved) == ([], 0)


def test_two_connections_ensuring_the_same_months_at_once_both_succeed(sync_engine):
    barrier = threading.Barrier(2)
    results, errors = [], []

    def ensure():
        engine = make_sync_engine(str(sync_engine.url.render_as_string(hide_password=False)))
        try:
            with engine.begin() as conn:
                barrier.wait(10)
                results.append(ensure_month_partitions(conn, "feed_record", dt.date(2023, 1, 1),
                                                       dt.date(2023, 6, 1)).created)
        except Exception as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=ensure) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    expected = [partition_name("feed_record", dt.date(2023, m, 1)) for m in range(1, 7)]
    assert sorted(results, key=len) == [[], expected]  # the second waited for the first and found them made


def test_the_cli_ensures_months_ahead_and_strays_and_lists_them(sync_engine, db_url, world, monkeypatch):
    monkeypatch.setenv("AIDGRAPH_DATABASE_URL", db_url)
    person = world.person(1)
    with session_scope(sync_engine) as s:
        s.add(EconomicItem(household_id=person.household_id, person_id=person.id, kind="PENSION", source="SI",
                           amount=Decimal("900"), period_start=STRAY, period_end=add_months(STRAY, 1) - dt.timedelta(days=1)))
    result = CliRunner().invoke(app, ["partitions", "ensure", "--months-ahead", "5", "--today", TODAY.isoformat()])
    assert result.exit_code == 0, result.output
    stray = partition_name("economic_item", STRAY)
    assert partition_name("economic_item", add_months(month_of(TODAY), 5)) in result.output and stray in result.output
    assert where(sync_engine, "economic_item", "period_start = :m", {"m": STRAY}) == {stray: 1}
    listed = CliRunner().invoke(app, ["partitions", "list", "--table", "economic_item", "--exact"])
    assert listed.exit_code == 0, listed.output
    assert stray in listed.output and f"{STRAY:%Y-%m}" in listed.output and "default" in listed.output
    wrong = CliRunner().invoke(app, ["partitions", "list", "--table", "person"])
    assert wrong.exit_code == 1 and "not partitioned" in wrong.output


def test_downgrade_restores_plain_tables_with_every_row_and_upgrade_partitions_them_again(request, tmp_path_factory,
                                                                                          tmp_path):
    engine = make_sync_engine(make_database("postgres", request, tmp_path_factory))
    people = seed_world(engine, households=3, start=80).persons
    months = [add_months(month_of(TODAY), -23), add_months(month_of(TODAY), -22)]
    for month in months:
        import_feed(engine, "income", income_file(tmp_path, people, f"{month:%Y-%m}"))
        import_feed(engine, "hospitalisation", hospital_file(tmp_path, people, month + dt.timedelta(days=9)))

    def snapshot():
        with engine.connect() as conn:
            return (conn.execute(text("SELECT id, period_start, amount FROM economic_item ORDER BY id")).all(),
                    conn.execute(text("SELECT id, row_hash FROM feed_record ORDER BY id")).all())

    # Down to 0026 first: 0027's downgrade gives the fed items their feed records back (tests/monitoring/
    # test_item_feeds_stored_once.py); what 0024 moves is then every row of both tables.
    downgrade(engine, "0026")
    before = snapshot()
    assert len(before[0]) == 2 * len(people) and len(before[1]) == 4 * len(people)
    downgrade(engine, "0023")
    with engine.connect() as conn:
        assert not is_partitioned(conn, "economic_item") and not is_partitioned(conn, "feed_record")
        assert conn.execute(text("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = "
                                 "'uq_feed_record_row_hash'")).scalar() == "UNIQUE (row_hash)"
        assert conn.execute(text("SELECT count(*) FROM pg_class WHERE relname LIKE 'feed_record_p%'")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM pg_policy WHERE polrelid = 'feed_record'::regclass")
                            ).scalar() == 1
    assert snapshot() == before
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert snapshot() == before
    assert where(engine, "economic_item", "true") == {partition_name("economic_item", m): len(people) for m in months}
    again = import_feed(engine, "income", income_file(tmp_path, people, f"{months[1]:%Y-%m}"))
    assert (again.stored, again.already_stored) == (0, len(people))
    with session_scope(engine) as s:  # the sequence went along: a new item gets the next id
        item = EconomicItem(household_id=people[0].household_id, kind="WAGE", source="TAX", amount=Decimal(1),
                            period_start=dt.date(2025, 3, 1), period_end=dt.date(2025, 3, 31))
        s.add(item)
        s.flush()
        assert item.id > max(r[0] for r in before[0])
    engine.dispose()


def test_sqlite_keeps_its_plain_tables(sqlite_url):
    engine = make_sync_engine(sqlite_url)
    with engine.begin() as conn:
        assert not is_partitioned(conn, "economic_item")
        assert ensure_month_partitions(conn, "economic_item", dt.date(2025, 1, 1), dt.date(2025, 3, 1)).created == []
        assert conn.execute(text("SELECT count(*) FROM sqlite_master WHERE name LIKE 'economic_item_p%'")).scalar() == 0
    engine.dispose()
