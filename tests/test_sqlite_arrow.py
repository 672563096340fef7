"""Large SQLite reads through the reader process (aidgraph.core.storage.sqlite_arrow, aidgraph.core.storage.sqlite_reader),
on a real SQLite file and the real ADBC driver: the same frame as the cursor for every column type, NULLs in any
position, parameters and IN lists; the cursor where another connection would not see what the caller sees; the
cursor's answer or error where the driver refuses a value."""

from __future__ import annotations

import datetime as dt
import sqlite3
import sys
import threading

import polars as pl
import pytest
from sqlalchemy import (Boolean, Column, Date, DateTime, Float, Integer, MetaData, String, Table, cast, func, insert,
                        select)
from sqlalchemy.exc import StatementError

from aidgraph.core.storage import bulk, sqlite_arrow
from aidgraph.core.storage.bulk import any_of, driver_connection, read_frame, start_large_read
from aidgraph.core.storage.db import make_sync_engine

META = MetaData()
THING = Table("thing", META, Column("id", Integer, primary_key=True), Column("name", String),
              Column("amount", Float), Column("on", Date), Column("at", DateTime), Column("flag", Boolean),
              Column("loose", Integer))  # SQLite keeps text it cannot make an integer as text
SCHEMA = {"id": pl.Int64, "name": pl.Utf8, "amount": pl.Float64, "on": pl.Date, "at": pl.Datetime, "flag": pl.Boolean}
ROWS = 3000
"""Rows of the test table. Its text, real, date and datetime columns are NULL in the first 2,000: within the
driver's first batch of :data:`sqlite_arrow.BATCH_ROWS` rows those NULLs and the values after them are read
together; with batches of 64 (the second case) the first batch holds only NULLs, which the driver cannot type."""


def _row(i: int) -> dict:
    first = i < 2000  # the text, real, date and datetime columns are NULL throughout the first 2,000 rows
    return {"id": i + 1, "name": None if first else ("普通" if i % 3 else f"含,逗号 {i}"),
            "amount": None if first else (i if i % 2 else i + 0.25), "on": None if first else dt.date(2025, 1 + i % 12, 1),
            "at": None if first else dt.datetime(2025, 9, 3, 14, 5, 6, i), "flag": None if i % 5 == 0 else bool(i % 2),
            "loose": i}


@pytest.fixture
def engine(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite_arrow, "PROCESS_READ_MIN_BYTES", 0)  # the test file is small
    engine = make_sync_engine(f"sqlite:///{tmp_path / 'arrow.db'}")
    META.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(THING), [_row(i) for i in range(ROWS)])
    yield engine
    engine.dispose()


def _both(engine, stmt, schema=SCHEMA) -> tuple[pl.DataFrame | None, pl.DataFrame]:
    """What the reader process gives (None: it was not used) and what the cursor gives, on one connection."""
    with engine.connect() as conn:
        arrow = sqlite_arrow.arrow_read(conn, driver_connection(conn), stmt, schema)
        cursor = read_frame(conn, stmt, schema)
        assert read_frame(conn, stmt, schema, large=True).equals(cursor)
    return arrow, cursor


@pytest.mark.parametrize("batch_rows", [sqlite_arrow.BATCH_ROWS, 64])
def test_every_column_type_and_null_position_reads_as_the_cursor_reads_it(engine, monkeypatch, batch_rows):
    """With the first 2,000 rows' text and reals NULL: read by the process when its first batch holds values of
    each column; through the cursor when a batch of only NULLs comes first (the driver then refuses the text)."""
    monkeypatch.setattr(sqlite_arrow, "BATCH_ROWS", batch_rows)
    stmt = select(THING.c.id, THING.c.name, cast(THING.c.amount, Float), THING.c.on, THING.c.at, THING.c.flag
                  ).order_by(THING.c.id)
    arrow, cursor = _both(engine, stmt)
    assert cursor.height == ROWS
    # The driver's own SQLite library is loaded in the reader process only, never beside sqlite3's in this one.
    assert "adbc_driver_sqlite" not in sys.modules and "adbc_driver_manager" not in sys.modules
    if batch_rows > 2000:
        assert arrow is not None
        parsed = sqlite_arrow_parsed(arrow)
        assert parsed.equals(cursor)
        assert parsed.schema == cursor.schema and list(cursor.schema) == list(SCHEMA)
    else:
        assert arrow is None
    assert cursor.row(0) == (1, None, None, None, None, None)
    assert cursor.row(2001) == (2002, "含,逗号 2001", 2001.0, dt.date(2025, 10, 1), dt.datetime(2025, 9, 3, 14, 5, 6, 2001), True)
    assert cursor["name"].null_count() == 2000 and cursor["flag"].null_count() == ROWS // 5
    empty = select(THING.c.id, THING.c.name).where(THING.c.id <= 2000)  # a text column NULL throughout
    arrow, cursor = _both(engine, empty, {"id": pl.Int64, "name": pl.Utf8})
    assert arrow is not None and arrow.equals(cursor) and cursor["name"].null_count() == 2000


def sqlite_arrow_parsed(frame: pl.DataFrame) -> pl.DataFrame:
    """The reader's frame with dates and datetimes parsed, as read_frame parses them."""
    return frame.with_columns(pl.col("on").str.to_date("%Y-%m-%d"), pl.col("at").str.to_datetime())


def test_parameters_in_lists_and_json_key_lists_are_bound_as_the_cursor_binds_them(engine):
    schema = {"id": pl.Int64, "name": pl.Utf8, "total": pl.Float64}
    ids = list(range(2100, 2900, 7))
    stmt = (select(THING.c.id, THING.c.name, cast(func.sum(THING.c.amount), Float))
            .where(THING.c.on >= dt.date(2025, 3, 1), THING.c.on <= dt.date(2025, 9, 30),
                   THING.c.name.in_(["普通", "含,逗号 2103"]), any_of(THING.c.id, ids, "sqlite"),
                   THING.c.flag.is_(True), THING.c.name != "it's")
            .group_by(THING.c.id, THING.c.name).order_by(THING.c.id))
    arrow, cursor = _both(engine, stmt, schema)
    assert arrow is not None and arrow.equals(cursor)
    assert 0 < cursor.height < len(ids)
    nothing = stmt.where(THING.c.id < 0)
    arrow, cursor = _both(engine, nothing, schema)
    assert arrow is not None and arrow.is_empty() and cursor.is_empty() and arrow.columns == list(schema)


def test_a_value_the_driver_refuses_is_read_through_the_cursor(engine):
    with engine.begin() as conn:  # an integer column's later row holds text: the driver refuses it
        conn.execute(insert(THING), [{"id": ROWS + 1, "loose": "text"}])
    schema = {"id": pl.Int64, "loose": pl.Int64}
    stmt = select(THING.c.id, THING.c.loose).order_by(THING.c.id)
    with engine.connect() as conn:
        assert sqlite_arrow.arrow_read(conn, driver_connection(conn), stmt, schema) is None
        with pytest.raises(Exception) as cursor_error:
            read_frame(conn, stmt, schema)
        with pytest.raises(type(cursor_error.value)):
            read_frame(conn, stmt, schema, large=True)
    as_text = select(THING.c.id, cast(THING.c.loose, String))  # asked as text: every value is made text
    arrow, cursor = _both(engine, as_text, {"id": pl.Int64, "loose": pl.Utf8})
    assert arrow is not None and arrow.equals(cursor) and cursor["loose"][-1] == "text"


def test_the_cursor_reads_what_only_the_callers_connection_sees(engine, tmp_path):
    stmt = select(THING.c.id, THING.c.name).where(THING.c.id > ROWS)
    schema = {"id": pl.Int64, "name": pl.Utf8}
    with engine.connect() as conn:
        conn.execute(insert(THING), [{"id": ROWS + 1, "name": "uncommitted"}])  # begins the transaction
        assert driver_connection(conn).in_transaction
        assert sqlite_arrow.arrow_read(conn, driver_connection(conn), stmt, schema) is None
        assert read_frame(conn, stmt, schema, large=True).rows() == [(ROWS + 1, "uncommitted")]
        conn.rollback()
        driver = driver_connection(conn)
        driver.execute("CREATE TEMPORARY TABLE scratch (x)")  # only this connection sees it
        assert sqlite_arrow.database_file(driver) is None
        driver.execute("DROP TABLE scratch")
        assert sqlite_arrow.database_file(driver) == tmp_path / "arrow.db"
        driver.execute(f"ATTACH DATABASE '{tmp_path / 'other.db'}' AS other")
        assert sqlite_arrow.database_file(driver) is None
    memory = sqlite3.connect(":memory:")
    assert sqlite_arrow.database_file(memory) is None


def test_a_small_file_is_read_through_the_cursor(engine, monkeypatch):
    monkeypatch.setattr(sqlite_arrow, "PROCESS_READ_MIN_BYTES", 1 << 40)
    stmt = select(THING.c.id, THING.c.name)
    with engine.connect() as conn:
        assert sqlite_arrow.arrow_read(conn, driver_connection(conn), stmt, {"id": pl.Int64, "name": pl.Utf8}) is None


def test_a_reader_process_that_fails_raises_with_its_message(engine, monkeypatch):
    stmt = select(THING.c.id)
    with engine.connect() as conn:
        monkeypatch.setattr(sqlite_arrow, "BUSY_TIMEOUT_MS", "not a number")  # the reader cannot start
        with pytest.raises(RuntimeError, match="(?s)reader process failed.*ValueError"):
            sqlite_arrow.arrow_read(conn, driver_connection(conn), stmt, {"id": pl.Int64})


def test_a_statement_the_reader_cannot_prepare_gives_the_cursors_error(engine):
    stmt = select(THING.c.id, func.no_such_function(THING.c.id))
    with engine.connect() as conn:
        assert sqlite_arrow.arrow_read(conn, driver_connection(conn), stmt, {"id": pl.Int64, "x": pl.Int64}) is None
        with pytest.raises(StatementError, match="no_such_function"):
            read_frame(conn, stmt, {"id": pl.Int64, "x": pl.Int64}, large=True)


def test_a_read_begun_ahead_gives_read_frames_frame_on_a_thread_of_its_own(engine, monkeypatch):
    stmt = select(*THING.c[:6]).where(THING.c.id > 10)
    threads: list[str] = []
    real = sqlite_arrow.run_arrow_job

    def watched(job):
        threads.append(threading.current_thread().name)
        return real(job)

    monkeypatch.setattr(bulk, "run_arrow_job", watched)
    with engine.connect() as conn:
        pending = start_large_read(conn, stmt, SCHEMA)
        assert pending is not None
        begun = pending.result(60)
        assert begun is not None and begun.equals(read_frame(conn, stmt, SCHEMA))
    assert threads == ["large-read"]


def test_nothing_is_begun_ahead_where_the_reader_would_not_see_what_the_caller_sees(engine, monkeypatch):
    stmt = select(THING.c.id).where(THING.c.id > ROWS)
    with engine.connect() as conn:
        conn.execute(insert(THING), [{"id": ROWS + 1}])  # the caller's transaction: only it sees the row
        assert start_large_read(conn, stmt, {"id": pl.Int64}) is None
        conn.rollback()
        monkeypatch.setattr(sqlite_arrow, "PROCESS_READ_MIN_BYTES", 1 << 40)  # too small a file
        assert start_large_read(conn, stmt, {"id": pl.Int64}) is None


def test_a_read_begun_ahead_whose_reader_fails_raises_where_its_frame_is_asked_for(engine, monkeypatch):
    with engine.connect() as conn:
        monkeypatch.setattr(sqlite_arrow, "BUSY_TIMEOUT_MS", "not a number")  # the reader cannot start
        pending = start_large_read(conn, select(THING.c.id), {"id": pl.Int64})
        assert pending is not None
        with pytest.raises(RuntimeError, match="(?s)reader process failed.*ValueError"):
            pending.result(60)
