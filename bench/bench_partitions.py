"""Benchmark: the month's import and scoring read with 1 and with 12 months of history, partitioned by month or not
(PostgreSQL; issue 15 item 4, migration 0023, aidgraph.core.storage.partitions).

    python bench/bench_partitions.py [--households 20000] [--repeat 3] [--province 44] [--seed 7]

What is built (untimed), on an embedded PostgreSQL server:

1. ``plain12``: a database migrated to revision 0023 (the plain tables, with every index, constraint, trigger and
   row-level security policy they have before 0023), the region tree, ``--households`` synthetic households
   seeded with their economic items of the twelve months before the measured month M (the last full month), and
   the synthetic department feeds (``aidgraph.core.app.synthetic_feeds``) of each of those twelve months
   imported through the platform's import: twelve months of ``feed_record`` and ``economic_item`` history
   (the seed's items of the month before them deleted), then ``VACUUM FULL``.
2. ``part12``: a copy of it (CREATE DATABASE ... TEMPLATE) migrated to head: migration 0023 partitions both tables
   by month and moves the rows, so both layouts hold the same rows.
3. ``plain1`` / ``part1``: copies of those with the history before M-1 deleted, then ``VACUUM FULL`` (both layouts
   compacted the same way; the partitioned copies keep their emptied partitions): one month of history.

What is timed, for each of the four databases:

- **import**: every feed file of month M (the month's income file and the other departments' files) through
  ``aidgraph.core.monitoring.feeds.import_feed``, as ``aidgraph import`` runs it, into a fresh copy of the database
  each repetition (the partitioned copy creates M's partitions as part of the import);
- **scoring read**: the monitoring run's reads of month M after that import, through
  ``aidgraph.core.monitoring.indicators.IndicatorContext``: the feed records of every kind dated in M (with their
  households) and the month's economic flows (``economic_flows``, the income and expenditure sums of M), a
  fresh context (no cache) each repetition. The rows read are the same with 1 and with 12 months of history
  (checked).

Prints the median of ``--repeat`` runs of each, and the ratio 12 months / 1 month for each layout (flat means
near 1.0), and partitioned / plain at 12 months.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aidgraph.core.access.actor import system_actor  # noqa: E402
from aidgraph.core.app.seed import seed_province  # noqa: E402
from aidgraph.core.app.synthetic_feeds import synthetic_feeds  # noqa: E402
from aidgraph.core.graph.regions import load_regions  # noqa: E402
from aidgraph.core.monitoring.feeds import FeedFileError, import_feed  # noqa: E402
from aidgraph.core.monitoring.indicators import FLOW_KINDS, IndicatorContext  # noqa: E402
from aidgraph.core.storage.db import make_sync_engine, session_scope  # noqa: E402
from aidgraph.core.storage.migrate import upgrade  # noqa: E402
from aidgraph.core.storage.partitions import add_months, month_of  # noqa: E402
from bench.bench_monitoring import start_postgres  # noqa: E402

FEED_KINDS = ("hospitalisation", "disease", "college_admission", "disability", "unemployment", "income",
              "household_event")


def admin_run(pg, *statements: str) -> None:
    admin = make_sync_engine(pg.get_uri("postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)
    admin.dispose()


def copy_database(pg, source: str, target: str) -> str:
    admin_run(pg, f'DROP DATABASE IF EXISTS "{target}"', f'CREATE DATABASE "{target}" TEMPLATE "{source}"')
    return pg.get_uri(target)


def import_month(engine, files: dict[str, Path], province: str) -> tuple[float, int]:
    """Every file of one month through the platform's import; (seconds, rows stored)."""
    actor = system_actor("bench")
    started = time.perf_counter()
    stored = 0
    for kind in FEED_KINDS:
        if kind in files:
            try:
                stored += import_feed(engine, kind, files[kind], province=province, actor=actor).stored
            except FeedFileError:  # a month without any row of the kind (the first month's income: no prior month)
                continue
    return time.perf_counter() - started, stored


def compact(pg, name: str, before: dt.date) -> None:
    """Delete the history before ``before``, then VACUUM FULL and ANALYZE both tables (every partition)."""
    engine = make_sync_engine(pg.get_uri(name))
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM economic_item WHERE period_start < :m"), {"m": before})
        conn.execute(text("DELETE FROM feed_record WHERE event_date < :m"), {"m": before})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("economic_item", "feed_record"):
            parts = conn.execute(text("SELECT inhrelid::regclass::text FROM pg_inherits "
                                      "WHERE inhparent = to_regclass(:t)"), {"t": table}).scalars().all()
            for relation in parts or [table]:
                conn.exec_driver_sql(f"VACUUM FULL {relation}")
            conn.exec_driver_sql(f"ANALYZE {table}")
    engine.dispose()


def build(pg, args, month: dt.date, workdir: Path) -> dict[str, Path]:
    """plain12, part12, plain1, part1 (see the module doc); returns month M's feed files."""
    admin_run(pg, 'DROP DATABASE IF EXISTS "plain12"', 'CREATE DATABASE "plain12"')
    engine = make_sync_engine(pg.get_uri("plain12"))
    started = time.perf_counter()
    upgrade(engine, "0023")
    load_regions(engine)
    # Seeded up to M-2 (items of M-13..M-2): each history month's synthetic income is drawn from the month before.
    seed_province(engine, args.province, args.households, args.seed, as_of=add_months(month, -1))
    print(f"seeded {args.households} households in {time.perf_counter() - started:.0f} s", flush=True)
    started = time.perf_counter()
    rows = 0
    # Every history month's files are drawn before any is imported: drawn after, a month's income file would
    # repeat the seeded items and the imported ones of the month before (twice the earners, then four times).
    history = [add_months(month, -back) for back in range(12, 0, -1)]
    drawn = [synthetic_feeds(engine, args.province, m, workdir / f"feeds-{m:%Y%m}", args.seed) for m in history]
    for files in drawn:
        rows += import_month(engine, files, args.province)[1]
    print(f"imported 12 months of feeds of history ({rows} rows stored) in {time.perf_counter() - started:.0f} s",
          flush=True)
    # month M's income is drawn from M-1's, which only the import of M-1's file wrote (the seed stops at M-2)
    files = synthetic_feeds(engine, args.province, month, workdir / f"feeds-{month:%Y%m}", args.seed)
    engine.dispose()
    compact(pg, "plain12", add_months(month, -12))
    engine = make_sync_engine(copy_database(pg, "plain12", "part12"))
    started = time.perf_counter()
    upgrade(engine)  # 0023: partitioned by month, the rows moved
    print(f"part12: migration 0023 in {time.perf_counter() - started:.1f} s", flush=True)
    engine.dispose()
    compact(pg, "part12", add_months(month, -12))
    for layout in ("plain", "part"):
        copy_database(pg, f"{layout}12", f"{layout}1")
        compact(pg, f"{layout}1", add_months(month, -1))
    return files


def describe(pg, name: str, month: dt.date) -> str:
    engine = make_sync_engine(pg.get_uri(name))
    with engine.connect() as conn:
        items = conn.exec_driver_sql("SELECT count(*) FROM economic_item").scalar_one()
        records = conn.exec_driver_sql("SELECT count(*) FROM feed_record").scalar_one()
        months = conn.execute(text("SELECT count(DISTINCT date_trunc('month', event_date)) FROM feed_record "
                                   "WHERE event_date < :m"), {"m": month}).scalar_one()
        partitions = conn.exec_driver_sql("SELECT count(*) FROM pg_inherits WHERE inhparent IN "
                                          "(to_regclass('economic_item'), to_regclass('feed_record'))").scalar_one()
        size = conn.exec_driver_sql("SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_class c "
                                    "WHERE c.relname ~ '^(economic_item|feed_record)' AND c.relkind = 'r'").scalar_one()
    engine.dispose()
    return (f"{name}: {items} economic items, {records} feed records ({months} month(s) of feed history), "
            f"{partitions} partitions, {size}")


def scoring_read(engine, province: str, month: dt.date) -> tuple[float, int]:
    """The monitoring run's reads of the month (feed records of every kind, the month's economic flows)."""
    with session_scope(engine) as session:
        started = time.perf_counter()
        ctx = IndicatorContext(session, province, f"{month:%Y-%m}", None, {})
        rows = sum(ctx.feed(kind).height for kind in FEED_KINDS)
        rows += ctx.economic_flows(FLOW_KINDS, 0).height
        return time.perf_counter() - started, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--households", type=int, default=20000)
    parser.add_argument("--province", default="44")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    month = add_months(month_of(dt.date.today()), -1)  # the last full month: its feeds' dates are all past
    workdir = Path(tempfile.mkdtemp(prefix="bench-partitions-"))
    pg = start_postgres(workdir / "pgdata")
    try:
        files = build(pg, args, month, workdir)
        for name in ("plain1", "plain12", "part1", "part12"):
            print(describe(pg, name, month), flush=True)
        imports: dict[str, list[float]] = {}
        reads: dict[str, list[float]] = {}
        read_rows: dict[str, int] = {}
        for _ in range(args.repeat):
            for name in ("plain1", "plain12", "part1", "part12"):
                engine = make_sync_engine(copy_database(pg, name, "measured"))
                took, _stored = import_month(engine, files, args.province)
                imports.setdefault(name, []).append(took)
                for _ in range(args.repeat):
                    took, rows = scoring_read(engine, args.province, month)
                    reads.setdefault(name, []).append(took)
                    read_rows[name] = rows
                engine.dispose()
        assert read_rows["plain1"] == read_rows["plain12"] == read_rows["part1"] == read_rows["part12"], read_rows
        median = {name: (statistics.median(imports[name]), statistics.median(reads[name])) for name in imports}
        print(f"\nmonth {month:%Y-%m}: import of {sum(1 for k in FEED_KINDS if k in files)} feed files; scoring read "
              f"of {read_rows['part1']} rows (the same with 1 and 12 months of history); medians of {args.repeat} "
              f"imports and {args.repeat * args.repeat} reads")
        print(f"{'layout':12s} {'import 1 mo':>12s} {'import 12 mo':>13s} {'12/1':>6s}   {'read 1 mo':>10s} "
              f"{'read 12 mo':>11s} {'12/1':>6s}")
        for layout, label in (("plain", "plain"), ("part", "partitioned")):
            (i1, r1), (i12, r12) = median[f"{layout}1"], median[f"{layout}12"]
            print(f"{label:12s} {i1:11.2f}s {i12:12.2f}s {i12 / i1:5.2f}x   {r1 * 1000:8.0f}ms {r12 * 1000:9.0f}ms "
                  f"{r12 / r1:5.2f}x")
        (pi, pr), (bi, br) = median["part12"], median["plain12"]
        print(f"at 12 months, partitioned / plain: import {pi / bi:.2f}x, read {pr / br:.2f}x")
    finally:
        pg.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
