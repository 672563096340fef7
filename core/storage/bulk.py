"""Set-at-a-time writes and lookups for the batch jobs (seed, feed import, monitoring run).

The batch paths move hundreds of thousands to millions of rows. Passing each row through SQLAlchemy's
parameter processing costs more than the database's own work, so these helpers hand whole polars frames to
the driver inside the caller's transaction: PostgreSQL ``COPY ... FROM STDIN (FORMAT csv)``, SQLite
``executemany`` of rows already converted to what SQLAlchemy would have stored (ISO dates, 0/1 booleans,
JSON text), for a large frame into a staging table and then one ``INSERT ... SELECT`` (:func:`_staged_insert`);
a job writing many batches can stage the next one on another thread meanwhile (:func:`stage_image`).
Lookups by a long list of keys bind the list as ONE parameter (SQLite ``json_each``, PostgreSQL ``=
ANY(array)``), so a million keys are one statement, not hundreds of IN lists.

:func:`lock_for_writing` starts a batch's transaction with the write lock already held (SQLite ``BEGIN
IMMEDIATE``, PostgreSQL ``LOCK TABLE``), so that what a batch reads before it writes (which rows are already
stored) cannot change under it when two jobs run at once.
"""

from __future__ import annotations

import contextlib
import json
import selectors
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import polars as pl
import psycopg
from psycopg import pq
from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    Connection,
    Executable,
    Integer,
    Select,
    String,
    any_,
    bindparam,
    func,
    literal_column,
    select,
)
from sqlalchemy.orm import QueryableAttribute, Session
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from aidgraph.core.storage.sqlite_arrow import FrameSchema as FrameSchema  # where read_frame's callers find it
from aidgraph.core.storage.sqlite_arrow import arrow_job, arrow_read, run_arrow_job


def dialect_of(bind: Connection | Session) -> str:
    return bind.get_bind().dialect.name if isinstance(bind, Session) else bind.dialect.name


def _connection(bind: Connection | Session) -> Connection:
    """The connection of the caller's transaction (a session's, or the connection given)."""
    return bind.connection() if isinstance(bind, Session) else bind


def driver_connection(bind: Connection | Session) -> Any:
    """The DB-API connection (psycopg or sqlite3) under the caller's transaction, for COPY and executemany."""
    driver = _connection(bind).connection.driver_connection
    if driver is None:  # only a connection that was invalidated has none
        raise RuntimeError("the connection has no driver connection")
    return driver


AUDIT_PENDING = "aidgraph_audit_pending"
"""Session flag: audit rows were written through the driver; aidgraph.core.graph.audit seals them at commit."""

MONEY_DECIMALS = 2
"""Float columns are written with two decimals: every float the batch jobs write is an amount in yuan
(``Numeric(14, 2)``) or a score (``Numeric(8, 2)``), and both engines must store the same value."""


def sqlite_rows(frame: pl.DataFrame) -> list[tuple[Any, ...]]:
    """Rows as SQLite stores them through SQLAlchemy: ISO dates, 'YYYY-MM-DD HH:MM:SS.ffffff', 0/1 booleans."""
    return sqlite_values(frame).rows()


def sqlite_values(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame with each column converted to what :func:`sqlite_rows` binds (rounded floats, dates and
    datetimes as text, booleans as 0/1)."""
    converted = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if dtype == pl.Float64 or dtype == pl.Float32:
            col = col.round(MONEY_DECIMALS)
        elif dtype == pl.Date:
            col = col.dt.strftime("%Y-%m-%d")
        elif dtype == pl.Datetime:
            col = col.dt.strftime("%Y-%m-%d %H:%M:%S.%6f")
        elif dtype == pl.Boolean:
            col = col.cast(pl.Int8)
        converted.append(col)
    return frame.select(converted)


def split_constants(frame: pl.DataFrame, keep: Sequence[str] = ()) -> tuple[pl.DataFrame, dict[str, Any]]:
    """``frame`` converted as :func:`sqlite_values` converts it, split in two: the columns whose values vary, which
    a staging table holds, and the columns holding one value in every row (NULL included), each with its value,
    which the statement reading the staging table binds once as a parameter. Columns in ``keep`` are always
    staged, and so is the first column when every column is constant (a table has at least one column).

    Why: binding the staging table's values is the Python half of a staged write, paid per value. A batch job's
    frames repeat values in whole columns: the time and actor of the job, a status, a month, an entity's kind.
    The monitoring run's 283,290 new alerts with their aid-chain, outbox and audit rows carry 19 such columns
    of 36 (bench/README.md)."""
    values = sqlite_values(frame)
    constants: dict[str, Any] = {}
    for name in values.columns:
        series = values.get_column(name)
        if name in keep or not (series.dtype.is_numeric() or series.dtype in (pl.Utf8, pl.Binary)):
            continue
        nulls = series.null_count()
        if nulls == series.len():
            constants[name] = None
        elif nulls == 0 and bool((series == series[0]).all()):
            constants[name] = series[0]
    if len(constants) == values.width:
        del constants[values.columns[0]]
    return values.drop(list(constants)), constants


def _select_list(names: Sequence[str], constants: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """The select list of ``names`` from a staging table, a constant column (:func:`split_constants`) as a
    parameter; and the parameters, in order."""
    return (", ".join("?" if name in constants else name for name in names),
            [constants[name] for name in names if name in constants])


def copy_text(frame: pl.DataFrame) -> bytes:
    """The frame as PostgreSQL ``COPY ... (FORMAT csv)`` input (empty unquoted field = NULL, "" = empty text)."""
    return frame.write_csv(include_header=False, datetime_format="%Y-%m-%d %H:%M:%S.%6f", date_format="%Y-%m-%d",
                           float_precision=MONEY_DECIMALS, null_value="").encode("utf-8")


def insert_sql(table: str, columns: Sequence[str], mark: str = "?") -> str:
    """``INSERT`` of one row of ``columns``, with the driver's placeholder ``mark`` (``?`` sqlite3, ``%s`` psycopg)."""
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"


def update_sql(table: str, columns: Sequence[str], key: str, mark: str = "?") -> str:
    """``UPDATE`` of ``columns`` on the row whose ``key`` matches; parameters in that order, the key last."""
    return f"UPDATE {table} SET {', '.join(f'{c} = {mark}' for c in columns)} WHERE {key} = {mark}"


def _async_executemany(conn: Connection, build_sql: Callable[[str], str], frame: pl.DataFrame) -> int:
    """The frame's rows through SQLAlchemy's adapted cursor, for a session on an async driver (aiosqlite,
    psycopg's async connection) whose own connection object has no synchronous cursor to COPY or executemany
    with. ``build_sql`` gets the driver's placeholder. One executemany, in the caller's transaction: slower
    than COPY, the same rows and values."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(build_sql("%s"), list(frame.iter_rows()))
    else:
        conn.exec_driver_sql(build_sql("?"), sqlite_rows(frame))
    return frame.height


def copy_sql(table: str, columns: Sequence[str]) -> str:
    return f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT csv)"


def insert_frame(bind: Connection | Session, table: str, rows: pl.DataFrame | Staged, *,
                 skip_conflicts_on: str | None = None) -> int:
    """Insert every row of ``rows`` (its columns are the table's column names) in the caller's transaction.

    JSON columns are given as text columns holding JSON; dates, datetimes and booleans as polars types.
    Returns the number of rows written. Nothing is committed.

    ``skip_conflicts_on`` (SQLite only): a unique index's conflict target, e.g. ``"(a, b) WHERE a IS NOT NULL"``;
    rows that index already holds are skipped (``ON CONFLICT ... DO NOTHING``) and not counted. The index finds
    them while inserting, where a lookup before the insert would search it once more per row.

    ``rows`` may be :class:`Staged`: a frame whose rows the SQLite connection already holds in a staging table
    (:func:`attached_stage`), inserted from there; on any other connection its frame is written as a frame is.
    """
    staged = rows if isinstance(rows, Staged) else None
    frame = rows.frame if isinstance(rows, Staged) else rows
    if frame.is_empty():
        return 0
    if table == "audit_log" and isinstance(bind, Session):
        bind.info[AUDIT_PENDING] = True  # the session seals these rows into the audit chain at commit
    conn = _connection(bind)
    if skip_conflicts_on is not None and (conn.dialect.name != "sqlite" or conn.dialect.is_async):
        raise ValueError("skip_conflicts_on is for SQLite's executemany (COPY cannot skip rows)")
    if conn.dialect.is_async:
        return _async_executemany(conn, lambda mark: insert_sql(table, frame.columns, mark), frame)
    driver = driver_connection(conn)
    if conn.dialect.name == "postgresql":
        with driver.cursor() as cur, cur.copy(copy_sql(table, frame.columns)) as copy:
            copy.write(copy_text(frame))
        return frame.height
    conflicts = "" if skip_conflicts_on is None else f" ON CONFLICT {skip_conflicts_on} DO NOTHING"
    cur = driver.cursor()
    try:
        if staged is not None:
            inserted = _insert_staged(cur, table, frame.columns, staged.table, staged.constants, conflicts)
        elif frame.height >= STAGE_MIN_ROWS:
            inserted = _staged_insert(cur, table, frame, conflicts)
        else:
            cur.executemany(insert_sql(table, frame.columns) + conflicts, sqlite_rows(frame))
            inserted = cur.rowcount
        return frame.height if skip_conflicts_on is None else inserted
    finally:
        cur.close()


STAGE_MIN_ROWS = 1_000
"""From this many rows :func:`insert_frame` and :func:`update_frame` write a frame on SQLite through a staging
table (:func:`_staged_insert`) rather than one statement per row. About where the two cost the same: into
``economic_item`` of a 20,000-household province (its trigger, foreign keys and indexes; medians of 15, rolled
back, two runs) the staged insert took 5x the time of one row at a time for 10 rows, 2x for 100, 0.87-1.15x for
1,000, 0.71-0.73x for 3,000 and 0.77x for 10,000; the staging table's creation is the fixed cost."""


def _staged_insert(cur: Any, table: str, frame: pl.DataFrame, conflicts: str) -> int:
    """``frame``'s rows into ``table`` on SQLite as ONE statement, ``INSERT INTO table SELECT ... FROM`` the
    frame's staging table (:func:`_sqlite_staged`), in the caller's transaction. Returns the rows inserted.

    Why: every statement that can fail after it has changed a page (a table with a trigger or a foreign key,
    which ``economic_item``, ``alert`` and the outbox have) saves each page it changes to a statement journal
    first, so that it can be undone alone. An ``executemany`` is one statement per row, so each row saved the
    pages it touched (a leaf of each index, the table's last page) again, to a temporary file. One statement
    saves each page once. The 5,000,000-person province's income file (3.19M items into ``economic_item`` and
    its four indexes): stored in 57.6-74.8 s this way against 105.3-125.9 s one row at a time (bench/README.md).
    The insert converts the staged values as ``table`` would convert the same values bound directly (its column
    affinities); rows go in the frame's order; ``conflicts`` (``ON CONFLICT ...``) applies as to a direct
    insert."""
    with _sqlite_staged(cur, table, frame) as (stage, constants):
        return _insert_staged(cur, table, frame.columns, stage, constants, conflicts)


def _insert_staged(cur: Any, table: str, names: Sequence[str], stage: str, constants: Mapping[str, Any],
                   conflicts: str) -> int:
    """``INSERT INTO table SELECT`` the staging table's rows, in their order, the ``constants`` bound once;
    returns the rows inserted."""
    select_list, parameters = _select_list(names, constants)
    # "WHERE true": SQLite reads "ON CONFLICT" after a bare FROM as a join constraint.
    cur.execute(f"INSERT INTO {table} ({', '.join(names)}) SELECT {select_list} FROM {stage} WHERE true "
                f"ORDER BY rowid{conflicts}", parameters)
    inserted: int = cur.rowcount
    return inserted


STAGE_SCHEMA = "aidgraph_stage"
"""The in-memory database :func:`attached_stage` attaches to a SQLite connection, holding one staging table."""


@dataclass(frozen=True)
class Staged:
    """A frame whose rows a SQLite connection already holds, in the frame's order, in ``table`` (a staging table
    with the frame's varying columns and no declared types: :func:`stage_image`, :func:`attached_stage`); its
    other columns are ``constants`` (:func:`split_constants`)."""

    frame: pl.DataFrame
    table: str
    constants: Mapping[str, Any]


@dataclass(frozen=True)
class StageImage:
    """:func:`stage_image`'s result: the staging database's ``image`` and the frame's ``constants``."""

    image: bytes
    constants: Mapping[str, Any]


def stage_image(frame: pl.DataFrame) -> StageImage:
    """``frame``'s rows as the image of a SQLite database holding one table, ``rows``: the staging table
    :func:`_sqlite_staged` fills (the frame's varying columns, no declared types, values as :func:`sqlite_rows`
    binds them; the constant columns beside the image, :func:`split_constants`), made on a connection of its own
    to a database in memory.

    Why: filling the staging table is the Python half of a large insert (a tuple per row, each value bound).
    Made on another thread, it overlaps the caller's connection's ``INSERT ... SELECT`` of the batch before,
    which runs in SQLite without Python's lock (:func:`attached_stage` gives the image to that connection). The
    5,000,000-person province's income file (3.19M items in 13 batches, a fresh copy each run): stored in 41.0
    and 44.0 s this way against 46.0 and 48.5 s staging each batch on the connection (bench/README.md)."""
    varying, constants = split_constants(frame)
    with contextlib.closing(sqlite3.connect(":memory:")) as db:
        db.execute(f"CREATE TABLE rows ({', '.join(varying.columns)})")
        db.executemany(insert_sql("rows", varying.columns), varying.rows())
        db.commit()
        return StageImage(db.serialize(), constants)


@contextlib.contextmanager
def attached_stage(conn: Connection) -> Iterator[Callable[[pl.DataFrame, StageImage], Staged]]:
    """An in-memory database attached to ``conn`` (SQLite, synchronous) as :data:`STAGE_SCHEMA` for the block.

    Yields ``load(frame, image)``: puts :func:`stage_image`'s ``image`` of ``frame`` in that database, in place of
    the one before, and returns the :class:`Staged` frame for :func:`insert_frame`. SQLite attaches and replaces
    a database only outside a transaction: ``load`` raises ``RuntimeError`` inside one. Detached at the end; a
    connection that cannot detach it (SQLite refuses while an open transaction has read it) is invalidated, so
    that the pool never hands it out with the schema attached."""
    driver = driver_connection(conn)
    if conn.dialect.name != "sqlite" or conn.dialect.is_async or driver.in_transaction:
        raise RuntimeError("attached_stage needs a synchronous SQLite connection outside a transaction")
    driver.execute(f"ATTACH DATABASE ':memory:' AS {STAGE_SCHEMA}")

    def load(frame: pl.DataFrame, image: StageImage) -> Staged:
        if driver.in_transaction:
            raise RuntimeError("a staging image is loaded between transactions, not inside one")
        driver.deserialize(image.image, name=STAGE_SCHEMA)
        return Staged(frame, f"{STAGE_SCHEMA}.rows", image.constants)

    try:
        yield load
    finally:
        try:
            driver.execute(f"DETACH DATABASE {STAGE_SCHEMA}")
        except sqlite3.Error:
            conn.invalidate()


@contextlib.contextmanager
def _sqlite_staged(cur: Any, table: str, frame: pl.DataFrame, keep: Sequence[str] = ()
                   ) -> Iterator[tuple[str, dict[str, Any]]]:
    """A temporary table holding ``frame``'s rows for one statement on ``table``, dropped after it; yields its
    name and the frame's constant columns, which it does not hold (:func:`split_constants`, ``keep`` staged).
    It has no declared types, indexes or triggers: it keeps the values exactly as bound, and filling it costs
    one append per row.

    Created inside the caller's transaction, so that a rollback leaves no table or rows behind: sqlite3 begins
    a transaction at its first ``INSERT``, not at a ``CREATE``, so one is begun here when none is. On a
    connection in autocommit mode (``isolation_level`` ``None``: each statement its own transaction) the staging
    and the statement are one transaction, committed here, or rolled back when the statement fails. An error
    reaches the caller as SQLite raised it, whatever the cleanup after it meets."""
    connection = cur.connection
    own = not connection.in_transaction and connection.isolation_level is None
    if not connection.in_transaction:
        cur.execute("BEGIN")
    stage = f"temp.aidgraph_stage_{table}"
    try:
        varying, constants = split_constants(frame, keep)
        cur.execute(f"DROP TABLE IF EXISTS {stage}")
        cur.execute(f"CREATE TABLE {stage} ({', '.join(varying.columns)})")
        cur.executemany(insert_sql(stage, varying.columns), varying.rows())
        yield stage, constants
        cur.execute(f"DROP TABLE {stage}")
    except BaseException as error:
        # The caller sees the error that stopped the statement. SQLite may have rolled back the whole
        # transaction by itself (a full disk, an I/O error): the staging table went with it, and a ROLLBACK
        # would fail ("no transaction is active") in place of the error that matters.
        try:
            if not own:
                cur.execute(f"DROP TABLE IF EXISTS {stage}")
            elif connection.in_transaction:
                cur.execute("ROLLBACK")
        except Exception as cleanup:
            error.add_note(f"then the staging table's cleanup failed too: {cleanup}")
        raise
    if own:
        cur.execute("COMMIT")


def any_of(column: ColumnElement[Any] | QueryableAttribute[Any], values: Sequence[Any],
           dialect: str) -> ColumnElement[bool]:
    """``column IN values`` with the whole list bound as one parameter (one statement for any length).

    SQLite reads the list from a JSON array (``json_each``); PostgreSQL compares with ``ANY`` of an array.
    """
    values = list(values)
    if dialect == "postgresql":
        integers = isinstance(column.type, Integer) or bool(values) and all(isinstance(v, int) for v in values)
        array = bindparam(None, values, type_=ARRAY(BigInteger if integers else String))
        return column == any_(array)
    keys: Select[Any] = select(literal_column("value")).select_from(func.json_each(bindparam(None, json.dumps(values))))
    return column.in_(keys.scalar_subquery())


def lock_for_writing(bind: Connection | Session, tables: Sequence[str]) -> None:
    """Take the write lock at the start of a batch's transaction, before it reads what it will compare with.

    SQLite: ``BEGIN IMMEDIATE`` (one writer at a time; others wait up to the busy timeout). PostgreSQL: ``LOCK
    TABLE ... IN SHARE ROW EXCLUSIVE MODE`` (writers of these tables wait for the batch; readers do not).
    Must be the first statement of the transaction.
    """
    conn = _connection(bind)
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"LOCK TABLE {', '.join(tables)} IN SHARE ROW EXCLUSIVE MODE")
    elif not driver_connection(conn).in_transaction:
        # pysqlite begins a transaction only before a write, which already holds SQLite's write lock; so a
        # transaction in progress needs nothing more, and one that has only read is not "in transaction".
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def update_frame(bind: Connection | Session, table: str, frame: pl.DataFrame, key: str = "id") -> int:
    """Set the frame's other columns on the rows whose ``key`` matches, in the caller's transaction.

    PostgreSQL: COPY into a temporary table, then one ``UPDATE ... FROM``. SQLite: the same through a staging
    table (:func:`_sqlite_staged`) from :data:`STAGE_MIN_ROWS` rows, for the reason :func:`_staged_insert` gives;
    below that, ``executemany`` of one UPDATE by key. Keys are unique within the frame. Returns the number of rows
    given. Nothing is committed.
    """
    if frame.is_empty():
        return 0
    conn = _connection(bind)
    columns = [c for c in frame.columns if c != key]
    if conn.dialect.is_async:
        return _async_executemany(conn, lambda mark: update_sql(table, columns, key, mark),
                                  frame.select(*columns, key))
    driver = driver_connection(conn)
    if conn.dialect.name == "postgresql":
        staging = f"_update_{table}"
        with driver.cursor() as cur:
            cur.execute(f"CREATE TEMPORARY TABLE {staging} ON COMMIT DROP AS "
                        f"SELECT {key}, {', '.join(columns)} FROM {table} WHERE false")
            with cur.copy(copy_sql(staging, [key, *columns])) as copy:
                copy.write(copy_text(frame.select(key, *columns)))
            cur.execute(f"UPDATE {table} AS t SET {', '.join(f'{c} = s.{c}' for c in columns)} "
                        f"FROM {staging} AS s WHERE t.{key} = s.{key}")
            cur.execute(f"DROP TABLE {staging}")
    else:
        cur = driver.cursor()
        try:
            if frame.height >= STAGE_MIN_ROWS:
                with _sqlite_staged(cur, table, frame.select(key, *columns), keep=(key,)) as (stage, constants):
                    assignments = ", ".join(f"{c} = ?" if c in constants else f"{c} = s.{c}" for c in columns)
                    cur.execute(f"UPDATE {table} SET {assignments} FROM {stage} AS s WHERE {table}.{key} = s.{key}",
                                [constants[c] for c in columns if c in constants])
            else:
                cur.executemany(update_sql(table, columns, key), sqlite_rows(frame.select(*columns, key)))
        finally:
            cur.close()
    return frame.height


def read_frame(bind: Connection | Session, stmt: Executable, schema: FrameSchema,
               large: bool = False) -> pl.DataFrame:
    """The statement's rows as a frame with ``schema`` (its column names, in order), fetched straight from the
    driver: no per-row result processing, which costs more than the query on million-row reads.

    On PostgreSQL, when every column is a number, text, date or boolean and no parameter needs SQLAlchemy's
    processing (:func:`_copy_read`), the rows come as ``COPY (statement) TO STDOUT`` CSV parsed by polars;
    otherwise, and on SQLite, as the cursor's tuples. ``large``: the caller knows the statement returns a large
    share of a province-sized table (every person, a window of flows); on SQLite it is then read as Arrow
    columns by a reader process where that sees what the caller would (:mod:`aidgraph.core.storage.sqlite_arrow`).
    Numeric columns should be cast to Float or Integer in the statement (drivers return Decimals otherwise);
    dates and datetimes come back as ISO text from SQLite and are parsed here.
    """
    conn = _connection(bind)
    if conn.dialect.name == "postgresql":
        copied = _copy_read(conn, stmt, schema)
        if copied is not None:
            return copied
    arrow = arrow_read(conn, driver_connection(conn), stmt, schema) if large and conn.dialect.name == "sqlite" else None
    if arrow is not None:
        return _parse_sqlite_temporal(arrow, schema)
    result = conn.execute(stmt)
    try:
        rows = result.cursor.fetchall()
    finally:
        result.close()
    if conn.dialect.name == "postgresql":
        return pl.DataFrame(rows, schema=schema, orient="row")
    temporal = {name for name, dtype in schema.items() if dtype in (pl.Date, pl.Datetime)}
    frame = pl.DataFrame(rows, orient="row", schema={n: pl.Utf8 if n in temporal else t for n, t in schema.items()})
    return _parse_sqlite_temporal(frame, schema)


def start_large_read(bind: Connection | Session, stmt: Executable,
                     schema: FrameSchema) -> Future[pl.DataFrame | None] | None:
    """:func:`read_frame` of a ``large`` statement begun now and finished on a thread of its own, where the read
    goes past the caller's connection: on SQLite through the reader process
    (:func:`aidgraph.core.storage.sqlite_arrow.arrow_job`; the thread only waits for it), so the caller goes on
    with other statements meanwhile. The future's frame is the one :func:`read_frame` would return, or None
    where the reader refused the statement (read it with :func:`read_frame` then). None, and nothing begun,
    where the read cannot go past the connection: PostgreSQL, a transaction of the caller's, a database in
    memory or too small for the reader process."""
    conn = _connection(bind)
    if conn.dialect.name != "sqlite":
        return None
    job = arrow_job(conn, driver_connection(conn), stmt, schema)
    if job is None:
        return None
    future: Future[pl.DataFrame | None] = Future()

    def run() -> None:
        try:
            frame = run_arrow_job(job)
            future.set_result(None if frame is None else _parse_sqlite_temporal(frame, schema))
        except BaseException as exc:  # handed to whoever waits for the frame
            future.set_exception(exc)

    threading.Thread(target=run, name="large-read", daemon=True).start()
    return future


def _parse_sqlite_temporal(frame: pl.DataFrame, schema: FrameSchema) -> pl.DataFrame:
    """``frame`` (read from SQLite, dates and datetimes as ISO text) with them parsed as ``schema`` says."""
    return frame.with_columns(
        pl.col(name).str.slice(0, 10).str.to_date("%Y-%m-%d") if dtype == pl.Date else pl.col(name).str.to_datetime()
        for name, dtype in schema.items() if dtype in (pl.Date, pl.Datetime))


STREAMING_AGGREGATE = {"enable_hashagg": "off", "enable_partitionwise_aggregate": "on", "parallel_tuple_cost": "0.01"}
"""What :func:`streaming_aggregate` sets, transaction-locally, for its block (PostgreSQL planner settings)."""


@contextlib.contextmanager
def streaming_aggregate(bind: Connection | Session) -> Iterator[None]:
    """Within the block, PostgreSQL groups by sorting (here: reading an index in its order) instead of hashing,
    one partition at a time when the groups hold the partition key, and may give the partitions to parallel
    workers (:data:`STREAMING_AGGREGATE`); the settings in force before come back after it, in the same
    transaction. Nothing on SQLite.

    For a statement that groups by the leading columns of the index it reads, with nearly as many groups as rows:
    the planner, estimating the groups from each column's statistics alone, expects few and chooses a hash table,
    which then spills to disk batch after batch. The monitoring run's read of a window's income flows (13.2 million
    items, 8.7 million groups, for the 5,000,000-person province) took 24.3 s hashed, with 675 MB written to
    temporary files, and 11.4 s grouped in the index's order (bench/README.md). Its groups include the month, the
    key ``economic_item`` is partitioned by, so each month's partition can be grouped on its own; the planner
    chose that, with two parallel workers, once the cost it puts on passing a row from a worker was a tenth of
    its default: 5.6-6.1 s against 9.6-10.1 s for the same statement's ``COPY`` (by hand, three runs each).
    """
    conn = _connection(bind)
    if conn.dialect.name != "postgresql":
        yield
        return
    names = list(STREAMING_AGGREGATE)
    reads = ", ".join(f"current_setting('{name}'), set_config('{name}', %({name})s, true)" for name in names)
    row = conn.exec_driver_sql(f"SELECT {reads}", dict(STREAMING_AGGREGATE)).one()
    before = {name: row[2 * i] for i, name in enumerate(names)}
    try:
        yield
    finally:
        puts = ", ".join(f"set_config('{name}', %({name})s, true)" for name in names)
        conn.exec_driver_sql(f"SELECT {puts}", before)


COPY_READ_TYPES: frozenset[Any] = frozenset({pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt32, pl.UInt64,
                                             pl.Float32, pl.Float64, pl.Utf8, pl.Date, pl.Boolean})
"""The column types :func:`read_frame` reads as CSV on PostgreSQL: those whose text form polars parses exactly as
the server writes it (a boolean as ``t``/``f``, turned into one here). Timestamps, decimals and lists are read
as tuples."""


def copy_out(driver: Any, statement: str, params: Mapping[str, Any] | None = None) -> bytes:
    """What ``COPY ... TO STDOUT`` sends, whole, read from libpq through psycopg's ``pq`` interface.

    The server sends one message a row and psycopg's ``Copy`` hands each to Python through a generator and a
    wait. For the monitoring run's flows (8.7 million rows, 367 MB) that cost the reader 4.5-6.0 s of CPU, 2.1 s
    here (one process alternating the two, twice; the 5,007,294 persons of the directory: 3.2-3.3 s against
    2.1 s), CPU the import's validation and the run's scoring need at the same time. Here libpq returns the
    rows it has buffered one call each, and the socket is waited on only when its buffer is empty. The
    parameters are bound into the statement's text by psycopg (``ClientCursor.mogrify``), as for its own COPY,
    and the COPY is part of the connection's transaction, begun first if none is (as psycopg would). A server
    error raises psycopg's error for it; anything else raised while rows are still coming closes the
    connection, whose protocol state is then unknown (the pool discards it)."""
    text = psycopg.ClientCursor(driver).mogrify(statement, params) if params else statement
    if not driver.autocommit and driver.info.transaction_status == pq.TransactionStatus.IDLE:
        driver.execute("SELECT 1")  # psycopg begins the transaction first, as before its own statements
    with driver.lock:
        pgconn = driver.pgconn
        encoding = driver.info.encoding
        pgconn.send_query(text.encode(encoding))  # raises psycopg.OperationalError when it cannot send
        data = bytearray()
        try:
            with selectors.DefaultSelector() as waiting:
                # psycopg's connections are non-blocking: a long statement (a key list bound into the text) is
                # sent as the socket takes it, reading whatever the server sends meanwhile, as libpq requires.
                waiting.register(pgconn.socket, selectors.EVENT_READ | selectors.EVENT_WRITE)
                while pgconn.flush():
                    if any(events & selectors.EVENT_READ for _, events in waiting.select()):
                        pgconn.consume_input()
                waiting.modify(pgconn.socket, selectors.EVENT_READ)

                def results() -> Iterator[Any]:
                    while True:
                        pgconn.consume_input()
                        if pgconn.is_busy():
                            waiting.select()
                            continue
                        result = pgconn.get_result()
                        if result is None:
                            return
                        yield result

                started = next(results())
                if started.status != pq.ExecStatus.COPY_OUT:
                    for _ in results():
                        pass
                    raise psycopg.errors.error_from_result(started, encoding)
                get = pgconn.get_copy_data
                while True:
                    size, row = get(1)
                    if size > 0:
                        data += row
                    elif size == 0:  # nothing buffered: wait for the socket
                        waiting.select()
                        pgconn.consume_input()
                    else:
                        break
                failed = [r for r in results() if r.status != pq.ExecStatus.COMMAND_OK]
        except psycopg.Error:
            raise
        except BaseException:
            driver.close()
            raise
    if failed:
        raise psycopg.errors.error_from_result(failed[0], encoding)
    return bytes(data)


def _copy_read(conn: Connection, stmt: Executable, schema: FrameSchema) -> pl.DataFrame | None:
    """The statement's rows through ``COPY (statement) TO STDOUT (FORMAT csv)`` in the caller's transaction, or
    None where that would not give what the cursor gives (a column type outside :data:`COPY_READ_TYPES`, a
    parameter whose type SQLAlchemy converts before the driver sees it) or where the driver has no synchronous
    cursor (a session on the async driver: the server's requests, whose reads are small).

    Measured on the 5,000,000-person province (bench/README.md): the 5,007,294 entries of the ID-number index in
    3.1 s against 4.3 s fetching tuples and building the frame from them, 2.5 million persons by id in 3.7 s
    against 5.0 s.
    COPY cannot take server-side parameters, so psycopg binds them in the text, as SQLAlchemy compiled them
    (``IN`` lists expanded). The COPY goes to the driver's cursor, past the engine's statement events: a
    statement through the connection first lets them run, so the transaction's data scope
    (:mod:`aidgraph.core.storage.rls`) is in place before the COPY reads anything.
    """
    if conn.dialect.is_async or not isinstance(stmt, ClauseElement) \
            or not all(dtype in COPY_READ_TYPES for dtype in schema.values()):
        return None
    dialect = conn.dialect
    compiled = stmt.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    if not isinstance(compiled, SQLCompiler):
        return None
    for bound in compiled.binds.values():
        kind = bound.type.dialect_impl(dialect)
        if isinstance(kind, ARRAY):
            kind = kind.item_type.dialect_impl(dialect)
        if kind.bind_processor(dialect) is not None:
            return None
    params = {name: list(value) if isinstance(value, tuple) else value
              for name, value in (compiled.construct_params() or {}).items()}
    # SQLAlchemy writes a literal % as %% for psycopg's placeholders; psycopg undoes that only when it binds
    # parameters, so a statement without any gets its percent signs back here.
    sql = compiled.string if params else compiled.string.replace("%%", "%")
    conn.exec_driver_sql("SELECT 1")  # through the engine's statement events: the data scope set before the COPY
    data = copy_out(driver_connection(conn), f"COPY ({sql}) TO STDOUT (FORMAT csv)", params or None)
    read_as = {name: pl.Utf8 if dtype == pl.Boolean else dtype for name, dtype in schema.items()}
    if not data:
        return pl.DataFrame(schema=schema)
    frame = pl.read_csv(data, has_header=False, schema=read_as)
    booleans = [name for name, dtype in schema.items() if dtype == pl.Boolean]
    return frame.with_columns(pl.col(name) == "t" for name in booleans) if booleans else frame
