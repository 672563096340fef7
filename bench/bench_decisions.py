"""Benchmark: 政策找人 (EligibilityGaps) from the decisions kept current, against a hand-written read of the same table.

    python bench/bench_decisions.py --households 200000 [--engine sqlite|postgres] [--repeat 20] [--workdir DIR]

1. A database with the region tree and N seeded households of the province (reused from ``--workdir``).
2. Full refresh (``aidgraph decisions refresh``): every household and program decided for today and stored;
   timed once, beside the per-request recomputation it replaces (``PolicyEngine.gaps`` over the province).
3. The read, median of ``--repeat``:
   - platform: the contract's ``EligibilityGaps`` over HTTP for the whole province (first 50, totalCount), with
     a province administrator's token: authentication, the compiled scope predicate, the page's reasons (kept
     with each gap row by the refresh), and the disclosure audit rows;
   - baseline: hand-written SQL (the total from the same kept counts, the first 50 rows from the same table,
     indexes and plan, joined to the household numbers, the same stored reasons decoded), serialised with
     json. It does not authenticate, check the scope or write the disclosure audit; that is the platform's
     overhead.
4. After a write: 1% of the households get a new income item (one INSERT ... SELECT, so the triggers mark
   them); the next EligibilityGaps read recomputes them first. Timed once, and the answer is checked equal to
   a full recomputation (the refresh is run again from scratch and compared row for row).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import sys
import time
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aidgraph.core.app.demo import ensure_demo_user  # noqa: E402
from aidgraph.core.app.seed import seed_province  # noqa: E402
from aidgraph.core.app.server import default_components  # noqa: E402
from aidgraph.core.graph.regions import load_regions  # noqa: E402
from aidgraph.core.policy import decisions  # noqa: E402
from aidgraph.core.policy.engine import PolicyEngine  # noqa: E402
from aidgraph.core.storage.config import load_settings  # noqa: E402
from aidgraph.core.storage.db import async_session_factory, make_async_engine, make_sync_engine  # noqa: E402
from aidgraph.core.storage.migrate import upgrade  # noqa: E402
from bench.bench_monitoring import bench_folder, postgres_database  # noqa: E402
from tests.live import run_live_server  # noqa: E402

GAPS = """query EligibilityGaps($regionCode: String!, $program: String, $first: Int, $after: String) {
  eligibilityGaps(regionCode: $regionCode, program: $program, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node { household { id householdNumber } program { key } reasons monthlyAmount } }
  }
}"""
PAGE = 50


def baseline_read(engine, province: str) -> float:
    """Total and first page of the province's gaps, hand-written with the same tables, indexes and plan as the
    platform (the sum of the kept counts; the page in household order with the region filtered), serialised
    with json; returns seconds."""
    low, high = province, province[:-1] + chr(ord(province[-1]) + 1)
    t = time.perf_counter()
    with engine.connect() as conn:
        total = conn.execute(text("SELECT coalesce(sum(gaps), 0) FROM decision_count WHERE region_code = :p"),
                             {"p": province}).scalar_one()
        rows = conn.execute(text(
            "SELECT d.household_id, h.household_number, d.program, d.monthly_amount, d.reasons FROM (SELECT * FROM "
            "eligibility_decision WHERE gap AND region_code || '' >= :l AND region_code || '' < :h "
            "ORDER BY household_id, program LIMIT :n) d JOIN household h ON h.id = d.household_id "
            "ORDER BY d.household_id, d.program"), {"l": low, "h": high, "n": PAGE + 1}).all()
        body = json.dumps({"totalCount": total, "edges": [
            {"household": {"id": r[0], "householdNumber": r[1]}, "program": r[2],
             "monthlyAmount": None if r[3] is None else float(r[3]), "reasons": json.loads(r[4])}
            for r in rows[:PAGE]]})
    assert body
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--households", type=int, default=200_000)
    parser.add_argument("--province", default="44")
    parser.add_argument("--engine", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--skip-recompute", action="store_true",
                        help="do not time the per-request recomputation (minutes at province scale)")
    parser.add_argument("--workdir", type=Path, help="reuse or keep the seeded database in this folder")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the decisions of an earlier run when they are current (no full refresh)")
    args = parser.parse_args()
    with bench_folder(args.workdir, args.engine, "aidgraph-bench-decisions-") as (folder, pg):
        run(args, folder, pg)


def run(args, folder: Path, pg) -> None:
    name = f"decisions_{args.province}_{args.households}"
    url = postgres_database(pg, name) if pg is not None else f"sqlite:///{folder / (name + '.db')}"
    on = dt.date.today()
    engine = make_sync_engine(url)
    t = time.perf_counter()
    upgrade(engine)
    load_regions(engine)
    seed_province(engine, args.province, args.households, 1, as_of=on)
    print(f"{args.engine}: {args.households:,} households of province {args.province} ready in "
          f"{time.perf_counter() - t:.1f} s ({url.split('@')[-1]})")
    settings = load_settings({}).with_(database_url=url, env="test", secret_key="bench-" + "0" * 32,
                                       opensearch_url="http://127.0.0.1:9")
    policy = PolicyEngine(settings)

    async def with_factory(work):
        aengine = make_async_engine(url)
        try:
            return await work(async_session_factory(aengine))
        finally:
            await aengine.dispose()

    async def recompute(factory):
        async with factory() as session:
            return await policy.gaps(session, region_code=args.province, on=on, limit=PAGE + 1)

    if not args.skip_recompute:
        t = time.perf_counter()
        total_recomputed, _ = asyncio.run(with_factory(recompute))
        print(f"per-request recomputation (the path replaced): {time.perf_counter() - t:8.2f} s, "
              f"{total_recomputed:,} gaps")
    report = asyncio.run(with_factory(lambda f: decisions.refresh_province(f, policy, args.province, on,
                                                                          force=not args.reuse)))
    if report is None:
        print("full refresh: skipped (--reuse: the province's decisions are current for today and this policy)")
    else:
        print(f"full refresh: {report.households:,} households, {report.decisions:,} decision rows in "
              f"{report.seconds:.1f} s ({report.households / report.seconds:,.0f} households/s)")
    if pg is not None:
        with make_sync_engine(url, isolation_level="AUTOCOMMIT").connect() as conn:
            conn.exec_driver_sql("VACUUM ANALYZE eligibility_decision")

    token = ensure_demo_user(engine, settings, username="bench-decisions", region_codes=(args.province,))
    platform, baseline = [], []
    with run_live_server(default_components(settings)) as live:
        def read() -> dict:
            response = live.post(GAPS, {"regionCode": args.province, "first": PAGE}, "EligibilityGaps", token=token)
            body = response.json()
            assert "errors" not in body, body
            return body["data"]["eligibilityGaps"]

        read()  # warm: the server's first request builds the province policy
        for _ in range(args.repeat):
            t = time.perf_counter()
            answer = read()
            platform.append(time.perf_counter() - t)
            baseline.append(baseline_read(engine, args.province))
        total = answer["totalCount"]
        if not args.skip_recompute:
            assert total == total_recomputed, (total, total_recomputed)
        with engine.begin() as conn:  # 1% of the households get a month of extra income
            conn.execute(text(
                "INSERT INTO economic_item (household_id, person_id, kind, source, amount, period_start, period_end, "
                "recorded_at) SELECT h.id, NULL, 'TRANSFER', 'bench', 900, :s, :e, :now FROM household h "
                "WHERE h.id % 100 = 0"), {"s": on.replace(day=1), "e": on, "now": dt.datetime.now()})
            marked = conn.execute(text("SELECT count(DISTINCT household_id) FROM decision_stale")).scalar_one()
        t = time.perf_counter()
        after_write = read()
        incremental = time.perf_counter() - t
    p, b = statistics.median(platform), statistics.median(baseline)
    print(f"EligibilityGaps, whole province, first {PAGE} + totalCount ({total:,} gaps), median of {args.repeat}:")
    print(f"  platform over HTTP (token, scope, reasons, audit) {p * 1000:8.1f} ms")
    print(f"  baseline hand-written SQL + json (same table)     {b * 1000:8.1f} ms")
    print(f"  ratio platform / baseline: {p / b:.2f}x")
    print(f"after a write marking {marked:,} households: next read {incremental * 1000:.1f} ms "
          f"(incremental refresh + read), totalCount {after_write['totalCount']:,}")

    async def full_again(factory):
        await decisions.refresh_province(factory, policy, args.province, on)
        return await decisions.gaps(factory, policy, region_code=args.province, on=on, limit=PAGE)

    total_full, _ = asyncio.run(with_factory(full_again))
    print(f"check: a full recomputation gives totalCount {total_full:,} "
          f"({'equal' if total_full == after_write['totalCount'] else 'DIFFERENT'})")
    engine.dispose()
    if total_full != after_write["totalCount"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
