"""What keeping the reasons of 政策找人's gap rows costs a decisions refresh (issue 15, item 2).

    python bench/bench_decision_reasons.py --households 100000 [--repeat 3] [--database PATH]

The refresh (``aidgraph.core.policy.decisions.refresh_province``) decides every household of the province batch
by batch and, since migration 0013, also explains the gap rows (eligible, not enrolled) so that a page of
EligibilityGaps is one indexed read. This script isolates that explanation, in one process, over the same
household frames (read once from the database, batches of the refresh's size, outside the timer):

- with reasons: ``decisions._decision_rows`` (what the refresh runs: decide, then explain the gap rows);
- without: the same decision and the same filter, no explanation (the refresh before 0013);

alternating, median of ``--repeat``, and the ratio. It also prints what the stored reasons weigh (bytes of the
JSON per gap row and in all). The database writes are the same for both except those bytes; the full refresh
with its writes is timed by ``bench_decisions.py``.

The database is seeded by ``aidgraph.core.app.seed`` (N households of the province, not timed) in a temporary
folder, or ``--database``: a SQLite province seeded before, read and left as it is.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aidgraph.core.graph.regions import load_regions  # noqa: E402
from aidgraph.core.policy import decisions  # noqa: E402
from aidgraph.core.policy.engine import PolicyEngine, household_frame  # noqa: E402
from aidgraph.core.app.seed import seed_province  # noqa: E402
from aidgraph.core.storage.config import load_settings  # noqa: E402
from aidgraph.core.storage.db import async_session_factory, make_async_engine, make_sync_engine  # noqa: E402
from aidgraph.core.storage.migrate import upgrade  # noqa: E402
from aidgraph.core.storage.models import Household  # noqa: E402
from sqlalchemy import select  # noqa: E402


async def frames(url: str, province: str, on: dt.date) -> list[pl.DataFrame]:
    engine = make_async_engine(url)
    try:
        async with async_session_factory(engine)() as session:
            ids = [r[0] for r in (await session.execute(select(Household.id).where(
                decisions._province_range(province)).order_by(Household.id))).all()]
            out = []
            for start in range(0, len(ids), decisions.CHUNK_HOUSEHOLDS):
                part = ids[start:start + decisions.CHUNK_HOUSEHOLDS]
                out.append(await household_frame(session, on=on, region_code=province, id_range=(part[0], part[-1])))
            return out
    finally:
        await engine.dispose()


def without_reasons(policy, frame: pl.DataFrame, on: dt.date) -> pl.DataFrame:
    """The refresh's rows before 0013: the same decision and filter, no explanation."""
    return (policy.decide(frame, on).filter(pl.col("eligible") | pl.col("enrolled"))
            .with_columns(gap=pl.col("eligible") & ~pl.col("enrolled")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--households", type=int, default=100_000)
    parser.add_argument("--province", default="44")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database", type=Path, help="a SQLite province seeded before (read only)")
    args = parser.parse_args()
    on = dt.date.today()
    with tempfile.TemporaryDirectory(prefix="bench-reasons-") as tmp:
        if args.database is not None:
            url = f"sqlite:///{args.database}"
        else:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            sync = make_sync_engine(url)
            upgrade(sync)
            load_regions(sync)
            print(f"seeding {args.households:,} households of {args.province} (not timed)", flush=True)
            seed_province(sync, args.province, args.households, 7, as_of=on)
            sync.dispose()
        batches = asyncio.run(frames(url, args.province, on))
    policy = PolicyEngine(load_settings()).province(args.province)
    households = sum(f.height for f in batches)
    timings: dict[str, list[float]] = {"with reasons": [], "without": []}
    kept = None
    for _ in range(args.repeat):
        for label in ("without", "with reasons"):
            started = time.perf_counter()
            rows = [decisions._decision_rows(policy, f, on) if label == "with reasons" else without_reasons(policy, f, on)
                    for f in batches]
            timings[label].append(time.perf_counter() - started)
            if label == "with reasons":
                kept = pl.concat(rows)
    assert kept is not None
    gaps = kept.filter(pl.col("gap"))
    weight = gaps["reasons"].str.len_bytes().sum() if gaps.height else 0
    with_s, without_s = (statistics.median(timings[k]) for k in ("with reasons", "without"))
    print(f"\nprovince {args.province}: {households:,} households in {len(batches)} batch(es), {kept.height:,} rows "
          f"kept, {gaps.height:,} gap rows; medians of {args.repeat}")
    print(f"{'decide, no reasons':28s} {without_s:9.2f} s")
    print(f"{'decide + explain gap rows':28s} {with_s:9.2f} s")
    print(f"{'ratio':28s} {with_s / without_s:9.3f}")
    print(f"stored reasons: {weight / max(gaps.height, 1):,.0f} bytes a gap row, {weight / 1e6:,.1f} MB in all")


if __name__ == "__main__":
    main()
