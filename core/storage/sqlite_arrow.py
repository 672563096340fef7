"""Large reads from a SQLite file as Arrow columns, past Python's ``sqlite3`` module.

``sqlite3`` makes a Python object of every value a statement returns, and building a polars frame from those
objects costs more than SQLite's own reading: the monitoring run's window of income flows (8.9 million grouped
rows) and the feed import's person directory (5,007,294 persons) spend most of their time there
(bench/README.md). The ADBC SQLite driver (``adbc-driver-sqlite``, Apache Arrow's database connectivity) steps
the same statement in C and builds Arrow arrays without a Python object per value. It runs in a process of its
own (:mod:`aidgraph.core.storage.sqlite_reader` says why it must), which hands the rows back as an Arrow IPC
stream; the caller's process meanwhile has its core free (the import validates its file while the directory is
read).

Starting that process costs 0.2-0.4 s, so :func:`arrow_read` is for reads the caller knows to be large (a whole
province's persons or flows), and only in a database file of :data:`PROCESS_READ_MIN_BYTES` or more: a smaller
file holds no read worth a process.

It reads through a connection of its own, so it is taken only where that connection sees exactly what the
caller's would:

- the caller's connection holds no transaction. ``sqlite3`` begins one only before its first write, so until
  then each of the caller's statements reads the last committed state, as the other connection does. Once the
  caller has written, its uncommitted rows are visible to it alone, and the cursor is used;
- the database is one file: not in memory, nothing attached, no temporary table (which only the caller's
  connection can see).

The driver infers each column's Arrow type from its first batch of rows (:data:`BATCH_ROWS`) and refuses a
later value of another type; a column whose first batch is all NULL is taken for an integer, and values of
several types within the first batch are all made text. So a real column is read cast to REAL (an integer sum
among real ones would stop it), and a frame whose columns are not of the types asked for is not used. Where the
driver refuses (a text column NULL throughout the first batch, then text; a value of an unexpected type),
:func:`arrow_read` returns None and the caller reads through its cursor, which gives the cursor's answer or its
error. Marking every NULL in a column of its own would spare that, at a third more of the reader's time: the
flows window took 11.2 s in the reader with a NULL mark and the value filled for each text and real column,
against 8.5 s without (bench/README.md).
"""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Connection, Float, Select, cast
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement

FrameSchema = Mapping[str, "pl.DataType | type[pl.DataType]"]
"""A frame's column names and polars types, in order (``{"id": pl.Int64, ...}``); also what
:func:`aidgraph.core.storage.bulk.read_frame` is given."""

INTEGER_TYPES: frozenset[Any] = frozenset({pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32,
                                           pl.UInt64, pl.Boolean})
"""Columns read as SQLite integers (a boolean is stored as 0/1)."""

TEXT_TYPES: frozenset[Any] = frozenset({pl.Utf8, pl.Date, pl.Datetime, pl.Categorical})
"""Columns read as text (SQLite stores dates and datetimes as ISO text). A categorical column is made one by
the reader, so that a text of few distinct values crosses to the caller as small codes and one dictionary (the
monitoring run's flow keys: a few hundred keys for 8.7 million rows)."""

REAL_TYPES: frozenset[Any] = frozenset({pl.Float32, pl.Float64})


def _as_read(dtype: Any) -> Any:
    """The type a column of ``dtype`` has as the reader gives it: text for dates and datetimes."""
    kind = dtype.base_type()
    return pl.Categorical if kind == pl.Categorical else pl.Utf8 if kind in TEXT_TYPES else \
        pl.Int64 if kind in INTEGER_TYPES else pl.Float64

BATCH_ROWS = 65536
"""Rows the driver steps per Arrow batch (its default is 1,024): fewer, larger arrays for polars to join."""

PROCESS_READ_MIN_BYTES = 256 * 1024 * 1024
"""A database file smaller than this is read through the cursor: none of its reads is large enough to pay for
starting the reader process (0.2-0.4 s, against about 1 microsecond a row saved: the province's 5,007,294
persons in 7.8-8.4 s against 12.0-12.1 s, its 8,736,389 flows in 11.2-11.4 s against 21.3-21.8 s; bench/README.md)."""

READER_MODULE = "aidgraph.core.storage.sqlite_reader"
"""What the reader process runs (``python -m``). Not imported here: that would load the driver's SQLite library
into the caller's process, which is what the process is for."""

REFUSED = 3
"""The reader's exit status when the driver refused the statement or a value: read through the cursor."""

BUSY_TIMEOUT_MS = 10000
"""As the engine's own connections (:mod:`aidgraph.core.storage.db`): a reader waits this long for a lock."""


def database_file(driver: sqlite3.Connection) -> Path | None:
    """The file of the connection's one database, or None when another connection could not read the same rows
    (in memory, another database attached, or a temporary table in use)."""
    databases = driver.execute("PRAGMA database_list").fetchall()
    main = [row for row in databases if row[1] == "main"]
    if not main or not main[0][2] or any(row[1] not in ("main", "temp") for row in databases):
        return None
    if any(row[1] == "temp" for row in databases) and \
            driver.execute("SELECT count(*) FROM temp.sqlite_master").fetchone()[0]:
        return None
    return Path(main[0][2])


def _read_columns(stmt: Select[Any], schema: FrameSchema) -> list[ColumnElement[Any]] | None:
    """The columns the driver is asked for, named ``v0``, ``v1``, ...: a real column cast to REAL (an integer
    among reals would stop the driver), the others as they are."""
    columns: list[ColumnElement[Any]] = []
    for i, (column, dtype) in enumerate(zip(stmt.selected_columns, schema.values())):
        if dtype.base_type() in REAL_TYPES:
            columns.append(cast(column, Float()).label(f"v{i}"))
        elif dtype.base_type() in INTEGER_TYPES or dtype.base_type() in TEXT_TYPES:
            columns.append(column.label(f"v{i}"))
        else:
            return None
    return columns


def _parameters(compiled: SQLCompiler, connection: Connection) -> list[int | float | str] | None:
    """The statement's parameters in order, converted as SQLAlchemy would before handing them to ``sqlite3``;
    None for a value not passed on here (NULL, bytes, another type)."""
    dialect = connection.dialect
    values = compiled.construct_params() or {}
    out: list[int | float | str] = []
    for name in compiled.positiontup or ():
        value = values[name]
        # An IN list's values are rendered as parameters of their own, named after the list's with "_1", "_2", ...
        bound = compiled.binds.get(name)
        if bound is None:
            bound = compiled.binds.get(name.rpartition("_")[0])
        if bound is None:
            return None
        process = bound.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            value = process(value)
        if isinstance(value, bool):
            value = int(value)
        if not isinstance(value, (int, float, str)):
            return None
        out.append(value)
    return out


def arrow_read(connection: Connection, driver: sqlite3.Connection, stmt: Any,
               schema: FrameSchema) -> pl.DataFrame | None:
    """The rows of ``stmt`` (a SELECT with one column per ``schema`` entry) as a frame with ``schema``'s names
    and types (dates and datetimes still ISO text), read by the reader process; None where this path does not
    apply or the driver refused the statement (then read through the cursor)."""
    job = arrow_job(connection, driver, stmt, schema)
    return None if job is None else run_arrow_job(job)


@dataclass(frozen=True)
class ArrowJob:
    """A read :func:`run_arrow_job` gives the reader process: the statement compiled, its parameters bound."""

    job: dict[str, Any]
    schema: FrameSchema


def arrow_job(connection: Connection, driver: sqlite3.Connection, stmt: Any, schema: FrameSchema) -> ArrowJob | None:
    """``stmt`` made ready for the reader process on the caller's connection, or None where the reader would
    not see what the connection sees (module docstring) or the database is too small to be worth it. What the
    job reads is the last committed state when it runs: the caller's connection holds no transaction now, and
    one whose statements only read sees that same state at each of them."""
    if connection.dialect.is_async or not isinstance(stmt, Select) or driver.in_transaction \
            or len(stmt.selected_columns) != len(schema):
        return None
    path = database_file(driver)
    columns = _read_columns(stmt, schema)
    if path is None or columns is None or path.stat().st_size < PROCESS_READ_MIN_BYTES:
        return None
    compiled = stmt.with_only_columns(*columns).compile(dialect=connection.dialect,
                                                        compile_kwargs={"render_postcompile": True})
    if not isinstance(compiled, SQLCompiler):
        return None
    parameters = _parameters(compiled, connection)
    if parameters is None:
        return None
    return ArrowJob({"uri": f"{path.as_uri()}?mode=ro", "sql": compiled.string, "parameters": parameters,
                     "batch_rows": BATCH_ROWS, "busy_timeout_ms": BUSY_TIMEOUT_MS,
                     "categorical": [f"v{i}" for i, dtype in enumerate(schema.values())
                                     if _as_read(dtype) == pl.Categorical],
                     "refused_status": REFUSED}, schema)


def run_arrow_job(prepared: ArrowJob) -> pl.DataFrame | None:
    """Run ``prepared`` in the reader process: :func:`arrow_read`'s frame, or None where the driver refused.
    Needs no connection of the caller's, so it may run on another thread (its wait holds no lock of Python's)."""
    schema = prepared.schema
    done = subprocess.run([sys.executable, "-m", READER_MODULE], input=json.dumps(prepared.job).encode(),
                          capture_output=True, check=False)
    if done.returncode == REFUSED:
        return None
    if done.returncode != 0:
        raise RuntimeError(f"the SQLite reader process failed (exit status {done.returncode}): "
                           f"{done.stderr.decode(errors='replace').strip()[-2000:]}")
    read = pl.read_ipc_stream(io.BytesIO(done.stdout))
    if read.is_empty():
        return pl.DataFrame(schema={name: _as_read(dtype) if dtype.base_type() in TEXT_TYPES else dtype
                                    for name, dtype in schema.items()})
    out = []
    for i, (name, dtype) in enumerate(schema.items()):
        value = read.get_column(f"v{i}")
        as_read = _as_read(dtype)
        if value.null_count() == len(value):  # all NULL: the driver calls that an integer column
            out.append(pl.repeat(None, len(value), dtype=as_read if dtype.base_type() in TEXT_TYPES else dtype,
                                 eager=True).alias(name))
        elif value.dtype.base_type() != as_read:
            return None  # values of several types within the driver's first batch: it made them text
        elif dtype.base_type() == pl.Boolean:
            out.append((value != 0).alias(name))
        else:
            out.append(value.cast(as_read if dtype.base_type() in TEXT_TYPES else dtype).alias(name))
    return pl.DataFrame(out)
