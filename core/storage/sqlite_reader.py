"""The reader process of :mod:`aidgraph.core.storage.sqlite_arrow`: one SELECT through the ADBC SQLite driver,
its rows written to standard output as an Arrow IPC stream.

A process of its own because the ADBC driver carries its own copy of the SQLite library. SQLite's locks on a
file are POSIX advisory locks, which belong to the process, and a library copy that closes its descriptor of
the file releases every lock the process holds on it, including those of Python's ``sqlite3`` connections to
the same file (SQLite, "How To Corrupt An SQLite Database File", section 2.2.1: multiple copies of SQLite
linked into the same application); each copy also maps the WAL index on its own. Tried in one process, a test
that read through the driver while two imports wrote crashed with SIGBUS once in ten runs (not traced further:
a bus error is what touching a mapping that the other copy shrank would give).

Input (standard input, JSON): ``uri`` (a ``file:`` URI, opened read-only), ``sql``, ``parameters`` (the
statement's ``?`` parameters in order: integers, reals and text), ``batch_rows``, ``busy_timeout_ms``,
``categorical`` (text columns sent dictionary-encoded, as polars categoricals), ``refused_status``. Exit
status 0 with the stream on standard output; ``refused_status`` with the driver's message on standard error when
the driver refuses the statement or a value (its type inference, :mod:`aidgraph.core.storage.sqlite_arrow`).
Imports nothing of the platform's, so the process starts in a fraction of a second. No platform module imports
this one: the driver's SQLite library is loaded only in the reader process.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import adbc_driver_manager
import adbc_driver_sqlite
import polars as pl


def _parameters(values: list[Any]) -> pl.DataFrame:
    """The parameters as one row whose columns' types are the values' (``p0``, ``p1``, ...)."""
    types = {int: pl.Int64, float: pl.Float64, str: pl.Utf8}
    return pl.DataFrame({f"p{i}": pl.Series([v], dtype=types[type(v)]) for i, v in enumerate(values)})


def read(job: dict[str, Any]) -> pl.DataFrame:
    """The statement's rows as the driver gives them, the ``categorical`` text columns made categorical."""
    with adbc_driver_sqlite.connect(job["uri"]) as database, \
            adbc_driver_manager.AdbcConnection(database) as connection:
        with adbc_driver_manager.AdbcStatement(connection) as pragma:
            pragma.set_sql_query(f"PRAGMA busy_timeout = {int(job['busy_timeout_ms'])}")
            pragma.execute_update()
        with adbc_driver_manager.AdbcStatement(connection) as statement:
            statement.set_options(**{"adbc.sqlite.query.batch_rows": str(int(job["batch_rows"]))})
            statement.set_sql_query(job["sql"])
            if job["parameters"]:
                statement.bind_stream(_parameters(job["parameters"]))
            stream, _ = statement.execute_query()
            frame = pl.DataFrame(stream)
    return frame.with_columns(pl.col(name).cast(pl.Categorical) for name in job["categorical"]
                              if frame.schema[name] == pl.Utf8)


def main() -> int:
    job = json.load(sys.stdin)
    try:
        frame = read(job)
    except (adbc_driver_manager.Error, pl.exceptions.ComputeError) as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return int(job["refused_status"])
    frame.write_ipc_stream(sys.stdout.buffer, compression="uncompressed")
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
