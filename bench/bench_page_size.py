"""Benchmark: one month of person-ordered items into ``economic_item``'s table and four indexes on SQLite, by page
size, on a history grown month by month and on a packed copy of it (issue 15 item 5; the reason for
``aidgraph.core.storage.db.SQLITE_PAGE_SIZE`` and ``aidgraph copy-db``).

    python bench/bench_page_size.py [--persons 1000000] [--months 13] [--sizes 4096 16384] [--rounds 2]
                                    [--cache-mib 64] [--workdir DIR]

What is built (timed and printed, not compared): for each page size, a database file holding ``economic_item``
as the model declares it (its columns, checks and four indexes, from ``aidgraph.core.storage.models``; foreign
keys not enforced and no trigger, so neither side pays for them; the fed items' unique key as SQLite has it) and ``--months`` months of history written month
by month as the monthly import writes them, one item a person a month in person order, in transactions of
250,000 rows; then a packed copy of it (``VACUUM INTO``, what ``aidgraph copy-db`` does).

What is timed, ``--rounds`` times, the databases alternated and each read from disk (its pages dropped from the OS
cache first): the next month's items, staged in a temporary table, inserted by ``INSERT ... SELECT`` in
transactions of 250,000 rows (the import's staged batches), then checkpointed. Each round adds a month to every
database, so a packed copy is packed only for the first round.

Prints each database's times and median, and each median's ratio to the first page size grown month by month (the
baseline: what a database made before 16 KiB pages were the default holds after months of imports). The cache is
``--cache-mib`` a connection (the platform's is 256 MiB against indexes of a 44,000,000-item table; the default
keeps that proportion for the default size)."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.schema import CreateIndex, CreateTable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aidgraph.core.storage.models import FED_ITEM_KEYS, EconomicItem  # noqa: E402
from bench.bench_monitoring import uncache  # noqa: E402

BATCH = 250_000
COLUMNS = ("household_id", "person_id", "kind", "source", "amount", "period_start", "period_end", "recorded_at",
           "recorded_by", "row_hash", "source_file", "line_number")
KINDS = ("WAGE", "PENSION", "BUSINESS", "TRANSFER")


def table_ddl() -> list[str]:
    """The table and the indexes SQLite has of it (the fed items' unique key is another index on PostgreSQL)."""
    table = EconomicItem.__table__
    dialect = sqlite_dialect.dialect()
    other_engines = {name for engine, (name, _columns) in FED_ITEM_KEYS.items() if engine != "sqlite"}
    return [str(CreateTable(table).compile(dialect=dialect))] + [
        str(CreateIndex(index).compile(dialect=dialect)) for index in sorted(table.indexes, key=lambda i: str(i.name))
        if index.name not in other_engines]


def month_rows(persons: int, month: int) -> list[tuple]:
    """One item a person, in person order; a household holds about 2.7 persons, as in the seeded provinces."""
    rnd = random.Random(month)
    first = dt.date(2024 + month // 12, month % 12 + 1, 1)
    return [(p * 10 // 27 + 1, p, KINDS[p % 4], "TAX", round(rnd.uniform(100, 9000), 2), first.isoformat(),
             first.replace(day=28).isoformat(), "2025-01-01 00:00:00", "import", f"{rnd.getrandbits(256):064x}",
             "income.csv", p) for p in range(1, persons + 1)]


def connect(path: Path, cache_mib: int) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(f"PRAGMA cache_size=-{cache_mib * 1024}")
    return db


def stage(db: sqlite3.Connection, rows: list[tuple]) -> None:
    """The rows in a temporary table, as the import stages a batch (on a thread of its own, not timed here)."""
    db.execute(f"CREATE TEMP TABLE stage ({', '.join(COLUMNS)})")
    db.executemany(f"INSERT INTO stage VALUES ({', '.join('?' * len(COLUMNS))})", rows)


def insert_month(db: sqlite3.Connection, rows: int, bound: list[tuple] | None = None) -> None:
    """``rows`` rows into ``economic_item``, a transaction a batch: the staged ones (:func:`stage`), or ``bound``'s
    bound one by one (how the history is built)."""
    marks = ", ".join("?" * len(COLUMNS))
    for start in range(0, rows, BATCH):
        db.execute("BEGIN IMMEDIATE")
        if bound is None:
            db.execute(f"INSERT INTO economic_item ({', '.join(COLUMNS)}) SELECT * FROM stage "
                       f"WHERE rowid > {start} AND rowid <= {start + BATCH} ORDER BY rowid")
        else:
            db.executemany(f"INSERT INTO economic_item ({', '.join(COLUMNS)}) VALUES ({marks})",
                           bound[start:start + BATCH])
        db.execute("COMMIT")


def build(path: Path, page_size: int, persons: int, months: int, cache_mib: int) -> float:
    started = time.perf_counter()
    with contextlib.closing(connect(path, cache_mib)) as db:
        db.execute(f"PRAGMA page_size={page_size}")
        db.execute("PRAGMA journal_mode=WAL")
        for ddl in table_ddl():
            db.execute(ddl)
        for month in range(months):
            rows = month_rows(persons, month)
            insert_month(db, len(rows), bound=rows)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return time.perf_counter() - started


def timed_month(path: Path, persons: int, month: int, cache_mib: int) -> float:
    rows = month_rows(persons, month)
    os.sync()  # the pages written before are clean, then dropped
    uncache(path)
    with contextlib.closing(connect(path, cache_mib)) as db:
        stage(db, rows)
        started = time.perf_counter()
        insert_month(db, len(rows))
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=13)
    parser.add_argument("--sizes", type=int, nargs="+", default=[4096, 16384])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--cache-mib", type=int, default=64)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="aidgraph-pages-"))
    workdir.mkdir(parents=True, exist_ok=True)
    databases: dict[str, Path] = {}
    for size in args.sizes:
        grown = workdir / f"grown_{size}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{grown}{suffix}").unlink(missing_ok=True)
        took = build(grown, size, args.persons, args.months, args.cache_mib)
        packed = workdir / f"packed_{size}.db"
        packed.unlink(missing_ok=True)
        started = time.perf_counter()
        with contextlib.closing(sqlite3.connect(grown, isolation_level=None)) as db:
            db.execute("VACUUM INTO ?", (str(packed),))
        print(f"{size}-byte pages: {args.months} months of {args.persons} items grown month by month in {took:.1f} s "
              f"({grown.stat().st_size / 1e9:.2f} GB), packed copy in {time.perf_counter() - started:.1f} s "
              f"({packed.stat().st_size / 1e9:.2f} GB)", flush=True)
        databases[f"{size}, grown"] = grown
        databases[f"{size}, packed"] = packed
    times: dict[str, list[float]] = {name: [] for name in databases}
    for round_ in range(args.rounds):
        for name, path in databases.items():
            times[name].append(timed_month(path, args.persons, args.months + round_, args.cache_mib))
            print(f"  round {round_ + 1}, {name}: {times[name][-1]:.2f} s", flush=True)
    baseline = statistics.median(times[f"{args.sizes[0]}, grown"])
    print(f"\none month of {args.persons} items, median of {args.rounds} (ratio to {args.sizes[0]}-byte pages grown "
          f"month by month, {baseline:.2f} s):")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:>14}: {median:6.2f} s  ratio {median / baseline:.2f}  ({', '.join(f'{v:.2f}' for v in values)})")
    for path in databases.values():
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
