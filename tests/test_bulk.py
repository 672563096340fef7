"""The batch jobs' bulk helpers (aidgraph.core.storage.bulk) on SQLite and PostgreSQL: what is written through COPY or raw
executemany reads back through the models exactly as if the ORM had written it; one-parameter key lists of
any length; the write lock taken before a batch reads."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import polars as pl
import psycopg
import pytest
from sqlalchemy import JSON, Text, cast, column, delete, event, func, literal, make_url, or_, select, table, text
from sqlalchemy.orm import Session

from aidgraph.core.storage import bulk
from aidgraph.core.storage.bulk import (any_of, copy_out, dialect_of, driver_connection, insert_frame,
                                       lock_for_writing, read_frame, streaming_aggregate, update_frame)
from aidgraph.core.storage.db import async_session_factory, make_async_engine, make_sync_engine, session_scope
from aidgraph.core.storage.models import AuditLog, Outbox, Region

AT = dt.datetime(2025, 9, 3, 14, 5, 6, 123456)


def test_insert_frame_round_trips_through_the_models(sync_engine):
    texts = ["普通", "含,逗号", 'with "quotes"', "two\nlines", "", None, "  spaced  ", "back\\slash"]
    frame = pl.DataFrame({
        "at": [AT] * len(texts),
        "actor": [f"bulk-{i}" for i in range(len(texts))],
        "action": ["bulk_test"] * len(texts),
        "object_type": ["thing"] * len(texts),
        "object_id": texts,
        "region_code": ["440106"] * len(texts),
        "detail": [None if t is None else json.dumps({"text": t}, ensure_ascii=False) for t in texts],
    })
    with session_scope(sync_engine) as session:
        assert insert_frame(session, "audit_log", frame) == len(texts)
        assert insert_frame(session, "audit_log", frame.clear()) == 0
    with Session(sync_engine) as session:
        rows = session.scalars(select(AuditLog).where(AuditLog.action == "bulk_test").order_by(AuditLog.id)).all()
        assert [r.object_id for r in rows] == texts  # empty text stays empty, NULL stays NULL
        assert all(r.at == AT for r in rows)
        assert [r.detail for r in rows] == [None if t is None else {"text": t} for t in texts]
        # audit_log is append-only (migration 0010): the test rows stay in this module's database.


def test_insert_frame_booleans_and_integers(sync_engine):
    frame = pl.DataFrame({"entity": ["PERSON", "ALERT"], "entity_id": [2**40, 7], "version": [1, 3],
                          "deleted": [True, False], "created_at": [AT, AT]})
    with session_scope(sync_engine) as session:
        insert_frame(session, "outbox", frame)
    with Session(sync_engine) as session:
        rows = session.execute(select(Outbox.entity_id, Outbox.version, Outbox.deleted)
                               .where(Outbox.entity_id.in_([2**40, 7])).order_by(Outbox.entity_id)).all()
        assert rows == [(7, 3, False), (2**40, 1, True)]
        session.execute(delete(Outbox).where(Outbox.entity_id.in_([2**40, 7])))
        session.commit()


@pytest.mark.parametrize("size", [0, 1, 70_000])
def test_any_of_binds_any_number_of_keys_as_one_parameter(sync_engine, size):
    """70,000 keys: more than SQLite's 32,766 and PostgreSQL's 65,535 bound parameters allow as an IN list."""
    with Session(sync_engine) as session:
        codes = session.scalars(select(Region.code).order_by(Region.code).limit(max(size - 5, 0))).all()
        keys = list(codes) + [f"no-such-{i}" for i in range(size - len(codes))]
        dialect = dialect_of(session)
        found = session.scalars(select(Region.code).where(any_of(Region.code, keys, dialect))).all()
        assert sorted(found) == sorted(codes)
        lengths = session.scalars(select(func.count()).select_from(Region)
                                  .where(any_of(func.length(Region.code), [2, 4], dialect))).one()
        assert lengths == session.scalars(select(func.count()).select_from(Region)
                                          .where(Region.level.in_(["PROVINCE", "CITY"]))).one()


def test_lock_for_writing_makes_a_second_batch_wait_and_then_see_the_first(sync_engine):
    """Two batches that each read (is my row there?) then write: the second reads only after the first commits."""
    marker = "lock-test"
    first_locked = threading.Event()
    seen_by_second: list[int] = []

    def first():
        with session_scope(sync_engine) as session:
            lock_for_writing(session, ["audit_log"])
            first_locked.set()
            time.sleep(0.5)
            insert_frame(session, "audit_log", pl.DataFrame({
                "at": [AT], "actor": ["first"], "action": [marker], "object_type": ["thing"]}))

    def second():
        first_locked.wait(5)
        with session_scope(sync_engine) as session:
            lock_for_writing(session, ["audit_log"])
            seen_by_second.append(session.scalar(select(func.count()).select_from(AuditLog)
                                                 .where(AuditLog.action == marker)))

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert seen_by_second == [1]  # (audit_log is append-only: the row stays)


def test_update_frame_sets_columns_by_key(sync_engine):
    frame = pl.DataFrame({"entity": ["PERSON"] * 3, "entity_id": [9_001, 9_002, 9_003], "version": [1, 1, 1],
                          "deleted": [False] * 3, "created_at": [AT] * 3})
    with session_scope(sync_engine) as session:
        insert_frame(session, "outbox", frame)
        ids = session.scalars(select(Outbox.id).where(Outbox.entity_id.in_([9_001, 9_002, 9_003]))
                              .order_by(Outbox.entity_id)).all()
    later = AT + dt.timedelta(hours=1)
    with session_scope(sync_engine) as session:
        assert update_frame(session, "outbox", pl.DataFrame({
            "id": ids[:2], "version": [5, 6], "deleted": [True, False], "processed_at": [later, None]})) == 2
        assert update_frame(session, "outbox", pl.DataFrame(schema={"id": pl.Int64, "version": pl.Int64})) == 0
    with Session(sync_engine) as session:
        rows = session.execute(select(Outbox.entity_id, Outbox.version, Outbox.deleted, Outbox.processed_at)
                               .where(Outbox.id.in_(ids)).order_by(Outbox.entity_id)).all()
        assert rows == [(9_001, 5, True, later), (9_002, 6, False, None), (9_003, 1, False, None)]
        session.execute(delete(Outbox).where(Outbox.id.in_(ids)))
        session.commit()


def test_both_helpers_work_in_an_async_session(sync_engine):
    """The server's sessions run on aiosqlite / psycopg's async connection, which have no synchronous cursor:
    the helpers write through SQLAlchemy's adapted cursor there, with the same values."""
    url = sync_engine.url.render_as_string(hide_password=False)
    frame = pl.DataFrame({"entity": ["PERSON"] * 2, "entity_id": [9_101, 9_102], "version": [1, 1],
                          "deleted": [False, True], "created_at": [AT] * 2})

    async def go() -> None:
        engine = make_async_engine(url)
        async with async_session_factory(engine)() as session:
            def write(sync_session: Session) -> None:
                assert insert_frame(sync_session, "outbox", frame) == 2
                ids = sync_session.scalars(select(Outbox.id).where(Outbox.entity_id.in_([9_101, 9_102]))
                                           .order_by(Outbox.entity_id)).all()
                assert update_frame(sync_session, "outbox", pl.DataFrame({"id": ids[:1], "version": [4]})) == 1
            await session.run_sync(write)
            await session.commit()
        await engine.dispose()

    asyncio.run(go())
    with Session(sync_engine) as session:
        rows = session.execute(select(Outbox.entity_id, Outbox.version, Outbox.deleted, Outbox.created_at)
                               .where(Outbox.entity_id.in_([9_101, 9_102])).order_by(Outbox.entity_id)).all()
        assert rows == [(9_101, 4, False, AT), (9_102, 1, True, AT)]
        session.execute(delete(Outbox).where(Outbox.entity_id.in_([9_101, 9_102])))
        session.commit()


READ_TEXTS = ["普通", "含,逗号", 'with "quotes"', "two\nlines", "", None, "  spaced  ", "back\\slash", "100%", "t"]
READ_ROWS = [(None if i == 3 else 2**40 + i, None if i == 4 else i / 10 - 0.35 + (1e20 if i == 6 else 0), value,
              None if i == 5 else dt.date(2024, 2, 28) + dt.timedelta(days=i), None if i == 7 else i % 2 == 0)
             for i, value in enumerate(READ_TEXTS)]
"""Awkward values: empty text and NULL, separators, quotes, line breaks, big integers, a leap day."""


def _read_table(session) -> None:
    session.execute(text("CREATE TEMPORARY TABLE read_probe (n BIGINT, x DOUBLE PRECISION, s TEXT, d DATE, "
                         "b BOOLEAN)"))
    for row in READ_ROWS:
        session.execute(text("INSERT INTO read_probe VALUES (:n, :x, :s, :d, :b)"), dict(zip("nxsdb", row)))


@contextlib.contextmanager
def _statements(engine) -> Iterator[list[str]]:
    """The statements the engine sends while the block runs (its listener removed after)."""
    seen: list[str] = []

    def note(*args) -> None:
        seen.append(args[2])

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def test_read_frame_reads_every_value_as_the_cursor_gives_it(sync_engine):
    """On PostgreSQL the rows come as COPY CSV (``_copy_read``): every text (empty and NULL told apart,
    separators, quotes, line breaks, a literal ``%`` beside bound parameters), integer, float, date and boolean
    must come back as the driver's own tuples give them, also through an IN list and a one-parameter key list."""
    schema = {"n": pl.Int64, "x": pl.Float64, "s": pl.Utf8, "d": pl.Date, "b": pl.Boolean}
    columns = [column(c) for c in schema]
    probe = table("read_probe", *columns)
    with _statements(sync_engine) as statements, Session(sync_engine) as session:
        _read_table(session)
        dialect = dialect_of(session)
        stmt = (select(*probe.c).where(or_(probe.c.s.like("%,%"), probe.c.s.in_(["", "t", "two\nlines", "100%"]),
                                           probe.c.n.is_(None), any_of(probe.c.n, [2**40, 2**40 + 6, 2**40 + 9], dialect),
                                           probe.c.s.is_(None)))
                .order_by(probe.c.d.nulls_last()))
        picked = [0, 1, 3, 4, 6, 8, 9, 5]  # the rows the statement selects, NULL date last
        expected = pl.DataFrame([READ_ROWS[i] for i in picked], schema=schema, orient="row")
        del statements[:]
        got = read_frame(session, stmt, schema)
        assert got.height == 8 and got.equals(expected)
        assert got.filter(pl.col("s") == "")["s"].to_list() == [""] and got["s"].null_count() == 1
        if dialect == "postgresql":  # the COPY is not a statement of the engine's; the one before it is
            assert statements == ["SELECT 1"]
        # a literal percent sign, with and without parameters beside it
        for bound in ([], [2**40 + 8]):
            stmt = select(*probe.c).where(text("s = '100%'"), *([probe.c.n.in_(bound)] if bound else []))
            assert read_frame(session, stmt, schema).equals(expected.filter(pl.col("s") == "100%"))
        empty = read_frame(session, select(*probe.c).where(probe.c.n < 0), schema)
        assert empty.is_empty() and empty.schema == pl.Schema(schema)
        session.rollback()


def test_read_frame_falls_back_to_tuples_where_csv_would_not_give_the_same(sync_engine):
    """A timestamp column, or a parameter SQLAlchemy converts before the driver sees it (a JSON value), is read
    from the cursor's tuples."""
    with Session(sync_engine) as session:
        with session.begin():
            session.add(AuditLog(at=AT, actor="read-frame", action="bulk_read_test", object_type="thing",
                                 object_id="1", region_code="440106", detail={"k": 1}))
        with _statements(sync_engine) as statements:
            stamps = read_frame(session, select(AuditLog.at).where(AuditLog.actor == "read-frame"), {"at": pl.Datetime})
            by_json = read_frame(session, select(AuditLog.object_id).where(
                AuditLog.actor == "read-frame", AuditLog.detail.isnot(None),
                cast(AuditLog.detail, Text) != cast(literal({"k": 2}, JSON), Text)), {"object_id": pl.Utf8})
        assert stamps["at"].to_list() == [AT]
        assert by_json["object_id"].to_list() == ["1"]
        assert "SELECT 1" not in statements  # no COPY was made
        session.rollback()


def test_streaming_aggregate_sets_its_planner_settings_for_its_block_and_puts_back_what_was_set(sync_engine):
    with Session(sync_engine) as session:
        if dialect_of(session) != "postgresql":
            with streaming_aggregate(session):  # nothing to set on SQLite
                assert session.execute(text("SELECT 1")).scalar_one() == 1
            return
        names = ["enable_hashagg", "enable_partitionwise_aggregate", "parallel_tuple_cost"]
        shown = "SELECT " + ", ".join(f"current_setting('{n}')" for n in names)
        defaults = tuple(session.execute(text(shown)).one())
        assert defaults == ("on", "off", "0.1")
        with streaming_aggregate(session):
            assert tuple(session.execute(text(shown)).one()) == ("off", "on", "0.01")
        assert tuple(session.execute(text(shown)).one()) == defaults
        session.execute(text("SET LOCAL enable_hashagg = off"))  # a caller's own choice survives the block
        session.execute(text("SET LOCAL parallel_tuple_cost = 0.5"))
        with pytest.raises(ZeroDivisionError), streaming_aggregate(session):
            1 / 0
        assert tuple(session.execute(text(shown)).one()) == ("off", "off", "0.5")
        session.rollback()
        assert tuple(session.execute(text(shown)).one()) == defaults  # transaction-local only


def test_copy_out_reads_what_psycopgs_copy_reads_and_leaves_the_connection_as_a_statement_would(sync_engine):
    """``copy_out`` (PostgreSQL) reads libpq's buffer directly: the bytes must be psycopg's ``Copy``'s, bound
    parameters included; an error before the first row or in the middle of the rows raises psycopg's error for
    it and leaves the transaction failed, as any failed statement would (a rollback makes it usable again)."""
    if sync_engine.dialect.name != "postgresql":
        pytest.skip("COPY is PostgreSQL's")
    statement = ("COPY (SELECT x, 'row ' || x || %(tail)s, x / 3.0 FROM generate_series(1, 70000) AS x) "
                 "TO STDOUT (FORMAT csv)")
    with Session(sync_engine) as session:
        driver = driver_connection(session)
        expected = bytearray()
        with driver.cursor() as cursor, cursor.copy(statement, {"tail": "'s, \"quoted\"\n"}) as copy:
            for block in copy:
                expected += block
        got = copy_out(driver, statement, {"tail": "'s, \"quoted\"\n"})
        assert got == bytes(expected) and got.count(b"\n") > 70000
        assert copy_out(driver, "COPY (SELECT 1 WHERE false) TO STDOUT") == b""
        # a statement longer than the socket takes at once (a key list bound into its text): sent whole
        keys = list(range(10**12, 10**12 + 300_000))
        long = copy_out(driver, "COPY (SELECT sum(k) FROM unnest(%(keys)s::bigint[]) AS k) TO STDOUT", {"keys": keys})
        assert long == f"{sum(keys)}\n".encode()
        for failing, error in (("COPY (SELECT 1 / 0) TO STDOUT", psycopg.errors.DivisionByZero),
                               ("COPY (SELECT x, 1 / (60000 - x) FROM generate_series(1, 70000) x) TO STDOUT",
                                psycopg.errors.DivisionByZero),
                               ("COPY (SELECT nothing FROM nowhere) TO STDOUT", psycopg.errors.UndefinedTable)):
            session.rollback()
            driver = driver_connection(session)  # a transaction's first statement: it is begun first
            with pytest.raises(error):
                copy_out(driver, failing)
            assert driver.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
            session.rollback()
            assert session.execute(text("SELECT 42")).scalar_one() == 42
        session.rollback()
        driver = driver_connection(session)
        assert copy_out(driver, "COPY (SELECT 7) TO STDOUT") == b"7\n"
        assert driver.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        session.rollback()


STAGE_TABLES = """
CREATE TABLE {t} (id INTEGER PRIMARY KEY, key VARCHAR(64), day DATE NOT NULL, amount NUMERIC(14, 2) NOT NULL,
                  flag BOOLEAN, note TEXT, region_code VARCHAR(12) REFERENCES region (code), CHECK (amount >= 0));
CREATE UNIQUE INDEX uq_{t} ON {t} (key, day) WHERE key IS NOT NULL;
CREATE TABLE {t}_log (row_id INTEGER);
CREATE TRIGGER {t}_logged AFTER INSERT ON {t} BEGIN INSERT INTO {t}_log (row_id) VALUES (NEW.id); END;
INSERT INTO {t} (key, day, amount, note, region_code) VALUES ('k1', '2025-09-01', 5, 'stored before', '440106');
"""


def _create(url: str, table: str) -> None:
    connection = sqlite3.connect(make_url(url).database)
    try:
        connection.executescript(STAGE_TABLES.format(t=table))
    finally:
        connection.close()


def _stage_frame(rows: int) -> pl.DataFrame:
    """Values whose stored form depends on the column's affinity: numbers as text, floats that round, NULLs,
    booleans, a key stored before and keys repeated within the frame."""
    return pl.DataFrame({
        "key": [None if i % 7 == 0 else f"k{i % (rows // 2)}" for i in range(rows)],
        "day": [dt.date(2025, 9, 1)] * rows,
        "amount": [i * 0.1 + 0.005 for i in range(rows)],
        "flag": [None if i % 5 == 0 else i % 2 == 0 for i in range(rows)],
        "note": [["12", "3.50", "text", None][i % 4] for i in range(rows)],
        "region_code": [None if i % 3 == 0 else "440106" for i in range(rows)],
    })


CONSTANT_COLUMNS = {
    # one value in every row, each stored by the column's affinity: text of a number into NUMERIC, a float that
    # rounds, a NULL, a boolean, a region the foreign key checks
    "amount": pl.lit("12.50"), "flag": pl.lit(True), "note": pl.lit(None, pl.Utf8), "region_code": pl.lit("440106"),
}


@pytest.mark.parametrize("constants", [False, True], ids=["varying", "constant-columns"])
@pytest.mark.parametrize("rows", [10, 4_000])
def test_sqlite_staged_insert_stores_and_counts_what_one_insert_per_row_would(sqlite_url, monkeypatch, rows,
                                                                             constants):
    """From ``STAGE_MIN_ROWS`` rows SQLite writes through a staging table and one ``INSERT ... SELECT``: the
    stored values, their storage classes, ids (frame order), trigger firings and skipped conflicts are those of
    one ``INSERT`` per row (the path below the threshold), which the test forces on a twin table. Columns
    holding one value in every row (``day`` always; four more in the second variant) are bound once, not
    staged: they are stored as the same values bound in each row would be."""
    engine = make_sync_engine(sqlite_url)
    frame = _stage_frame(rows)
    if constants:
        frame = frame.with_columns(expr.alias(name) for name, expr in CONSTANT_COLUMNS.items())
    suffix = f"{rows}_{int(constants)}"
    stored, statements = {}, {}
    for name, threshold in ((f"stage_direct_{suffix}", 10**9), (f"stage_staged_{suffix}", 1)):
        monkeypatch.setattr(bulk, "STAGE_MIN_ROWS", threshold)
        seen: list[str] = []
        _create(sqlite_url, name)
        with session_scope(engine) as session:
            driver_connection(session).set_trace_callback(seen.append)
            counted = insert_frame(session, name, frame, skip_conflicts_on="(key, day) WHERE key IS NOT NULL")
            driver_connection(session).set_trace_callback(None)
        with engine.connect() as conn:
            stored[name] = (counted, conn.exec_driver_sql(
                f"SELECT id, key, day, amount, typeof(amount), flag, typeof(flag), note, typeof(note), region_code "
                f"FROM {name} ORDER BY id").all(), conn.exec_driver_sql(f"SELECT row_id FROM {name}_log").all())
            assert conn.exec_driver_sql("SELECT name FROM sqlite_temp_master").all() == []
        statements[name] = [s for s in seen if s.startswith(f"INSERT INTO {name} ")]
        stages = [s for s in seen if s.startswith("CREATE TABLE temp.aidgraph_stage_")]
    direct, staged = (f"stage_direct_{suffix}", f"stage_staged_{suffix}")
    assert stored[direct] == stored[staged]
    if constants:
        assert {r[3:9] for r in stored[staged][1][1:]} == {(12.5, "real", 1, "integer", None, "null")}
    # the staging table holds the varying columns only
    assert stages == [f"CREATE TABLE temp.aidgraph_stage_{staged} "
                      f"({'key' if constants else 'key, amount, flag, note, region_code'})"]
    counted, table_rows, logged = stored[staged]
    distinct_keys = len({k for k in frame["key"].to_list() if k is not None} - {"k1"})
    assert counted == distinct_keys + frame["key"].null_count() == len(table_rows) - 1  # one row stored before
    assert len(logged) == len(table_rows)
    # the paths taken: one INSERT of values per row, against one INSERT ... SELECT from the staging table
    assert statements[direct] and all(" VALUES " in s for s in statements[direct])
    assert len(set(statements[staged])) == 1 and " SELECT " in statements[staged][0]
    # the constant columns as parameters (the trace shows them bound)
    assert ("SELECT key, '2025-09-01', '12.50', 1, NULL, '440106' FROM" if constants
            else "SELECT key, '2025-09-01', amount, flag, note, region_code FROM") in statements[staged][0]
    engine.dispose()


def test_split_constants_binds_once_only_what_every_row_holds():
    """A column is bound once only when every row holds the same value as SQLite would be given it (after the
    rounding and conversions of ``sqlite_values``): a column with one NULL among values, values that differ
    only before rounding's digits, a list column and a ``keep`` column stay staged; a frame of constants keeps its
    first column staged (a table needs one)."""
    n = 4
    frame = pl.DataFrame({
        "same_text": ["a"] * n, "all_null": pl.Series([None] * n, dtype=pl.Int64),
        "one_null": ["a", None, "a", "a"], "rounds_same": [1.001, 1.002, 1.0, 0.999],
        "rounds_apart": [1.0, 1.01, 1.0, 1.0], "day": [dt.date(2025, 9, 1)] * n, "flag": [False] * n,
        "listed": [[1]] * n, "key": [7] * n,
    })
    varying, constants = bulk.split_constants(frame, keep=("key",))
    assert constants == {"same_text": "a", "all_null": None, "rounds_same": 1.0, "day": "2025-09-01", "flag": 0}
    assert varying.columns == ["one_null", "rounds_apart", "listed", "key"]
    assert varying["rounds_apart"].to_list() == [1.0, 1.01, 1.0, 1.0]
    varying, constants = bulk.split_constants(frame.select("same_text", "day"))
    assert varying.columns == ["same_text"] and constants == {"day": "2025-09-01"}


def _schemas(conn) -> list[str]:
    return [row[1] for row in conn.exec_driver_sql("PRAGMA database_list").all()]


@pytest.mark.parametrize("rows", [10, 4_000])
def test_sqlite_prestaged_insert_stores_and_counts_what_the_frame_would(sqlite_url, rows):
    """A frame staged beforehand on another thread (``stage_image``, as the feed import stages the next batch)
    and given to the connection between transactions (``attached_stage``) stores the same values, storage
    classes, ids, trigger firings and skipped conflicts as the frame given to ``insert_frame`` itself; the
    staging database is attached for the block only."""
    engine = make_sync_engine(sqlite_url)
    frame = _stage_frame(rows)
    with ThreadPoolExecutor(1) as other_thread:
        image = other_thread.submit(bulk.stage_image, frame).result()
    stored, statements = {}, {}
    for name, prestaged in ((f"pre_frame_{rows}", False), (f"pre_staged_{rows}", True)):
        _create(sqlite_url, name)
        seen: list[str] = []
        with engine.connect() as conn:
            with bulk.attached_stage(conn) as load:
                given = load(frame, image) if prestaged else frame
                assert bulk.STAGE_SCHEMA in _schemas(conn)
                conn.rollback()  # the read's transaction: the session's is then its own, committed below
                with Session(bind=conn) as session:
                    driver_connection(session).set_trace_callback(seen.append)
                    counted = insert_frame(session, name, given, skip_conflicts_on="(key, day) WHERE key IS NOT NULL")
                    driver_connection(session).set_trace_callback(None)
                    session.commit()
            assert bulk.STAGE_SCHEMA not in _schemas(conn)
        with engine.connect() as conn:
            stored[name] = (counted, conn.exec_driver_sql(
                f"SELECT id, key, day, amount, typeof(amount), flag, typeof(flag), note, typeof(note), region_code "
                f"FROM {name} ORDER BY id").all(), conn.exec_driver_sql(f"SELECT row_id FROM {name}_log").all())
        statements[name] = [s for s in seen if s.startswith(f"INSERT INTO {name} ")]
    assert stored[f"pre_frame_{rows}"] == stored[f"pre_staged_{rows}"]
    assert stored[f"pre_staged_{rows}"][0] > 0
    assert set(statements[f"pre_staged_{rows}"]) == {  # one statement (the trace repeats it per trigger run)
        f"INSERT INTO pre_staged_{rows} (key, day, amount, flag, note, region_code) SELECT key, '2025-09-01', "
        f"amount, flag, note, region_code FROM {bulk.STAGE_SCHEMA}.rows WHERE true ORDER BY rowid ON CONFLICT "
        f"(key, day) WHERE key IS NOT NULL DO NOTHING"}
    engine.dispose()


def test_attached_stage_loads_only_between_transactions_and_is_never_left_attached(sqlite_url):
    """SQLite replaces an attached database only outside a transaction: a load inside one is refused by name.
    However the block ends (here inside a transaction that read the staging table, which SQLite will not detach
    from), the pool never hands out a connection with the staging database attached."""
    engine = make_sync_engine(sqlite_url, pool_size=1, max_overflow=0)
    frame = pl.DataFrame({"id": [1, 2], "note": ["a", None]})
    image = bulk.stage_image(frame)
    with engine.connect() as conn:
        with bulk.attached_stage(conn) as load:
            staged = load(frame, image)
            conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS stage_twice (id INTEGER, note TEXT)")
            conn.exec_driver_sql("BEGIN")
            conn.exec_driver_sql(f"INSERT INTO stage_twice SELECT id, note FROM {staged.table}")
            with pytest.raises(RuntimeError, match="between transactions"):
                load(frame, image)
    with engine.connect() as conn:
        assert bulk.STAGE_SCHEMA not in _schemas(conn)
        assert conn.exec_driver_sql("SELECT count(*) FROM stage_twice").scalar() == 0  # never committed
    with pytest.raises(RuntimeError, match="synchronous SQLite connection outside a transaction"):
        with engine.connect() as conn:
            conn.exec_driver_sql("BEGIN")
            with bulk.attached_stage(conn):
                pass
    engine.dispose()


def test_sqlite_staged_insert_that_fails_leaves_nothing_and_no_staging_table(sqlite_url, monkeypatch):
    """A row the table refuses (a region that does not exist: foreign key) fails the whole insert; the rollback
    leaves neither the frame's rows nor the trigger's, and the staging table is gone with the statement."""
    monkeypatch.setattr(bulk, "STAGE_MIN_ROWS", 1)
    engine = make_sync_engine(sqlite_url)
    _create(sqlite_url, "stage_failing")
    frame = _stage_frame(100).with_columns(
        pl.format("u{}", pl.int_range(pl.len())).alias("key"),
        pl.when(pl.int_range(pl.len()) == 60).then(pl.lit("999999")).otherwise(pl.col("region_code"))
        .alias("region_code"))
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"), session_scope(engine) as session:
        insert_frame(session, "stage_failing", frame)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM stage_failing").scalar() == 1  # the row stored before
        assert conn.exec_driver_sql("SELECT count(*) FROM stage_failing_log").scalar() == 1
        assert conn.exec_driver_sql("SELECT name FROM sqlite_temp_master").all() == []
    engine.dispose()


@pytest.mark.parametrize("rows", [10, 4_000])
def test_sqlite_staged_update_sets_what_one_update_per_row_would(sqlite_url, monkeypatch, rows):
    """``update_frame`` from ``STAGE_MIN_ROWS`` rows on SQLite (one ``UPDATE ... FROM`` a staging table) leaves
    every row, value and storage class as one ``UPDATE`` per row does (forced on a twin table)."""
    engine = make_sync_engine(sqlite_url)
    frame = _stage_frame(rows).with_columns(pl.format("u{}", pl.int_range(pl.len())).alias("key"))
    ids = list(range(2, rows + 2, 2))  # every other row of the frame (id 1 is the row stored before)
    changes = pl.DataFrame({"id": ids, "amount": [i * 0.25 for i in range(len(ids))],
                            "note": [[None, "7", "text"][i % 3] for i in range(len(ids))],
                            "flag": [i % 2 == 1 for i in range(len(ids))], "day": [dt.date(2025, 10, 1)] * len(ids)})
    stored, statements = {}, {}
    for name, threshold in ((f"upd_direct_{rows}", 10**9), (f"upd_staged_{rows}", 1)):
        _create(sqlite_url, name)
        with session_scope(engine) as session:
            insert_frame(session, name, frame)
        monkeypatch.setattr(bulk, "STAGE_MIN_ROWS", threshold)
        seen: list[str] = []
        with session_scope(engine) as session:
            driver_connection(session).set_trace_callback(seen.append)
            assert update_frame(session, name, changes) == len(ids)
            driver_connection(session).set_trace_callback(None)
        with engine.connect() as conn:
            stored[name] = conn.exec_driver_sql(
                f"SELECT id, key, day, amount, typeof(amount), flag, typeof(flag), note, typeof(note), region_code "
                f"FROM {name} ORDER BY id").all()
            assert conn.exec_driver_sql("SELECT name FROM sqlite_temp_master").all() == []
        statements[name] = [s for s in seen if s.startswith(f"UPDATE {name} ")]
    direct, staged = stored[f"upd_direct_{rows}"], stored[f"upd_staged_{rows}"]
    assert direct == staged
    assert [r[2] for r in staged].count("2025-10-01") == len(ids)
    assert len(statements[f"upd_direct_{rows}"]) >= len(ids) and len(set(statements[f"upd_staged_{rows}"])) == 1
    engine.dispose()


def test_sqlite_staged_insert_on_an_autocommit_connection_commits_what_it_wrote(sqlite_url, monkeypatch):
    """On a connection in autocommit mode a row-by-row insert commits each row; the staged insert commits the
    whole frame, and leaves no transaction open (which a later rollback would otherwise undo)."""
    monkeypatch.setattr(bulk, "STAGE_MIN_ROWS", 1)
    engine = make_sync_engine(sqlite_url)
    _create(sqlite_url, "stage_autocommit")
    frame = _stage_frame(50).with_columns(pl.format("u{}", pl.int_range(pl.len())).alias("key"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        assert insert_frame(conn, "stage_autocommit", frame) == 50
        assert not driver_connection(conn).in_transaction
        conn.rollback()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM stage_autocommit").scalar() == 51
        assert conn.exec_driver_sql("SELECT name FROM sqlite_temp_master").all() == []
    engine.dispose()


@pytest.mark.parametrize("autocommit", [False, True], ids=["transaction", "autocommit"])
def test_sqlite_staged_insert_into_a_full_database_raises_that_error_and_leaves_nothing(tmp_path, monkeypatch,
                                                                                        autocommit):
    """A full database (here: ``max_page_count``) can make SQLite roll back the whole transaction by itself, as it
    does for this table. The caller gets "database or disk is full", not the cleanup's error after it (on an autocommit
    connection a ROLLBACK then failed with "no transaction is active" in its place), and nothing is left: no row,
    no staging table, no open transaction."""
    monkeypatch.setattr(bulk, "STAGE_MIN_ROWS", 1)
    engine = make_sync_engine(f"sqlite:///{tmp_path / 'full.db'}")
    with engine.begin() as conn:
        # No NOT NULL: with one, SQLite 3.40 undoes just the statement and the transaction stays open.
        conn.exec_driver_sql("CREATE TABLE items (id INTEGER PRIMARY KEY, note TEXT)")
        conn.exec_driver_sql("INSERT INTO items (note) VALUES ('stored before')")
    options = {"isolation_level": "AUTOCOMMIT"} if autocommit else {}
    with engine.connect().execution_options(**options) as conn:
        driver = driver_connection(conn)
        limit = driver.execute("PRAGMA max_page_count").fetchone()[0]
        driver.execute(f"PRAGMA max_page_count = {driver.execute('PRAGMA page_count').fetchone()[0] + 5}")
        try:
            with pytest.raises(sqlite3.OperationalError, match="database or disk is full") as raised:
                insert_frame(conn, "items", pl.DataFrame({"note": ["x" * 200] * 5_000}))
            if autocommit:  # no transaction left open (the caller's, otherwise, is the caller's to end)
                assert not driver.in_transaction
            assert not getattr(raised.value, "__notes__", None)  # the cleanup met nothing to complain about
        finally:
            driver.execute(f"PRAGMA max_page_count = {limit}")
        conn.rollback()
        with contextlib.nullcontext() if autocommit else conn.begin():  # the connection is usable again
            assert insert_frame(conn, "items", pl.DataFrame({"note": ["after"] * 2_000})) == 2_000
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT note, count(*) FROM items GROUP BY note ORDER BY note").all() == [
            ("after", 2_000), ("stored before", 1)]
        assert conn.exec_driver_sql("SELECT name FROM sqlite_temp_master").all() == []
    engine.dispose()
