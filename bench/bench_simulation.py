"""Benchmark: a policy simulation (政策模拟) over a whole province, against plain polars over the same frame.

    python bench/bench_simulation.py --households 100000 [--province 44] [--repeat 3] [--warm-repeat 1] [--keep DIR]
    python bench/bench_simulation.py --database PATH [--province 44] [--repeat 1] [--warm-repeat 3] [--drop-kept]

1. A SQLite database with the region tree, seeded by ``aidgraph.core.app.seed`` (what ``aidgraph seed`` runs)
   with N households of the province (not timed); or ``--database``: a province seeded before (for example the
   1,880,000-household province of ``bench_decisions.py``), used as it is and left in place (the simulation
   writes no audit entry, ``record=False``; it keeps the province's household frames, as in production).
2. Platform: :class:`aidgraph.core.policy.simulation.Simulator` raising the rural dibao standard by 8% (the
   issue's example) over the whole province, every program, baseline against reform:
   - cold: a fresh simulator, as in a new process (nothing in memory): the household facts come from the kept
     frames (aidgraph.core.policy.frames), or, the first time a province is simulated for the date (always so
     with ``--drop-kept``), from the tables, and are then kept; baseline decided, reform decided;
   - warm: the household facts and baseline decisions in memory (the frame cache), a different reform each
     run (+8%, +10%, ...): what a planner trying values waits for (``--warm-repeat`` runs after each cold one).
3. Baseline in the same run over the same household frame: plain polars (members exploded, group-bys, no plugin
   machinery) computing the same dibao and near-dibao (dibao_edge) rules and the dibao gap benefit with the same
   parameter values, baseline and reform. Its eligible households and dibao cost must equal the platform's
   (checked; a mismatch exits 1).
Prints the medians, households per second, and the ratio warm simulation / plain polars.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aidgraph.core.access.actor import system_actor  # noqa: E402
from aidgraph.core.app.seed import seed_province  # noqa: E402
from aidgraph.core.graph.regions import load_regions  # noqa: E402
from aidgraph.core.policy import frames  # noqa: E402
from aidgraph.core.policy.engine import PolicyEngine  # noqa: E402
from aidgraph.core.policy.simulation import ParameterChange, Simulator, reform_params  # noqa: E402
from aidgraph.core.storage.config import load_settings  # noqa: E402
from aidgraph.core.storage.db import async_session_factory, make_async_engine, make_sync_engine  # noqa: E402
from aidgraph.core.storage.migrate import upgrade  # noqa: E402

KEY = "dibao.rural_standard"
MENTAL_OR_INTELLECTUAL = ["MENTAL", "INTELLECTUAL", "精神", "智力"]


def plain(frame: pl.DataFrame, params, on: dt.date, province: str) -> dict[str, float]:
    """Dibao and near-dibao over the household frame in plain polars: eligible households and the dibao cost."""
    p = lambda key: params.value(key, on)  # noqa: E731
    urban = params.column("dibao.urban_standard", on).cast(pl.Float64)
    rural = params.column("dibao.rural_standard", on).cast(pl.Float64)
    f = frame.select("household_id", "region_code", "rural", "member_count", "monthly_income", "monthly_earned_income",
                     "monthly_rigid_expenditure", "per_capita_financial_assets", "receiving", "income_verified",
                     "assets_verified").with_columns(
        urban=urban, std=pl.when(pl.col("rural")).then(rural).otherwise(urban))
    m = frame.select("household_id", "members").explode("members").unnest("members").drop_nulls("person_id")
    groups = set(p("dibao.single_inclusion_groups"))
    severe = p("dibao.severe_disability_max_level")
    single = pl.lit(False)
    if "severe_disability" in groups:
        single = single | (pl.col("disability_level") <= severe).fill_null(False)
    if "serious_illness" in groups:
        single = single | pl.col("major_disease").fill_null(False)
    if "mental_intellectual_3_4" in groups:
        single = single | (pl.col("disability_category").is_in(MENTAL_OR_INTELLECTUAL)
                           & pl.col("disability_level").is_in([3, 4])).fill_null(False)
    if "disabled_elderly" in groups:
        single = single | ((pl.col("age") >= p("dibao.elderly_age")) & pl.col("disability_level").is_not_null())
    m = m.join(f.select("household_id", "std"), on="household_id", how="left")
    own = pl.col("own_monthly_income").fill_null(0.0)
    agg = m.group_by("household_id").agg(
        local=pl.col("local_hukou").sum(), employed=(pl.col("employment_status") == "EMPLOYED").sum(),
        single_n=(single & (own < pl.col("std"))).sum(),
        single_amount=pl.when(single).then((pl.col("std") - own).clip(lower_bound=0.0)).otherwise(0.0).sum())
    f = f.join(agg, on="household_id", how="left").with_columns(
        pl.col("local", "employed", "single_n").fill_null(0), pl.col("single_amount").fill_null(0.0))
    deduction = (pl.min_horizontal(pl.col("employed") * float(p("guangdong.employment_cost_deduction")),
                                   pl.col("monthly_earned_income")) if province == "44" else pl.lit(0.0))
    n = pl.max_horizontal(pl.col("member_count"), 1)
    f = f.with_columns(ded=pl.min_horizontal(deduction, pl.col("monthly_income")).clip(lower_bound=0.0))
    f = f.with_columns(pci=(pl.col("monthly_income") - pl.col("ded")) / n)  # unrounded, as the rules assess it
    resident = (pl.col("local") > 0) | pl.lit(bool(p("dibao.covers_non_hukou_residents")))
    verified = pl.col("income_verified").fill_null(False) & pl.col("assets_verified").fill_null(False)
    line = pl.col("urban") * float(p("dibao.low_income_multiplier"))
    scopes = set(p("dibao.single_inclusion_households"))
    scope_ok = pl.lit(False)
    if "low_income" in scopes:
        scope_ok = scope_ok | (pl.col("pci") < line)
    if "expenditure_hardship" in scopes:
        scope_ok = scope_ok | pl.col("receiving").list.contains("expenditure_hardship") | (
            pl.col("pci") - pl.col("monthly_rigid_expenditure") / n < pl.col("std"))
    below = pl.col("pci") < pl.col("std")
    dibao = (resident & verified
             & (pl.col("per_capita_financial_assets") <= p("dibao.financial_assets_limit_months") * pl.col("std"))
             & (below | ((pl.col("single_n") > 0) & scope_ok)))
    if p("dibao.benefit_method_urban") != "gap" or p("dibao.benefit_method_rural") != "gap":
        raise SystemExit("the plain baseline computes the gap method only")
    amount = pl.when(below).then((pl.col("std") - pl.col("pci")).clip(lower_bound=0) * pl.col("member_count")).otherwise(
        pl.col("single_amount"))
    amount = (amount * 100).round(6).round(0, mode="half_away_from_zero") / 100  # one rounding, to the fen
    receiving_basic = pl.col("receiving").list.contains("dibao") | pl.col("receiving").list.contains("tekun")
    edge = (resident & ~receiving_basic & verified
            & (pl.col("per_capita_financial_assets") <= p("dibao_edge.financial_assets_limit_months") * pl.col("std"))
            & (pl.col("pci") < line))
    row = f.select(dibao=dibao.sum(), dibao_cost=pl.when(dibao).then(amount).otherwise(0.0).sum(),
                   dibao_edge=edge.sum()).row(0, named=True)
    return {"dibao": int(row["dibao"]), "dibao_cost": round(float(row["dibao_cost"]), 2),
            "dibao_edge": int(row["dibao_edge"])}


def figures(result, side: str) -> dict[str, float]:
    programs = {key: (b, r) for key, b, r in result.by_program}
    pick = 0 if side == "baseline" else 1
    return {"dibao": programs["dibao"][pick].households, "dibao_cost": programs["dibao"][pick].monthly_cost,
            "dibao_edge": programs["dibao_edge"][pick].households}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--households", type=int, default=100_000)
    parser.add_argument("--province", default="44")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--warm-repeat", type=int, default=1, help="warm runs after each cold one")
    parser.add_argument("--keep", type=Path, help="keep the seeded database in this folder")
    parser.add_argument("--database", type=Path, help="an SQLite database seeded before: no seeding, left in place")
    parser.add_argument("--drop-kept", action="store_true",
                        help="drop the province's kept frames for the date first: the first cold run reads the tables")
    args = parser.parse_args()
    on = dt.date.today()
    if args.database:
        folder = args.database.parent
        url = f"sqlite:///{args.database}"
        print(f"using the province seeded in {args.database} (not seeded again, not removed; migrated to the "
              f"current schema)")
        engine = make_sync_engine(url)
        upgrade(engine)
        engine.dispose()
    else:
        folder = args.keep or Path(tempfile.mkdtemp(prefix="aidgraph-bench-sim-"))
        folder.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{folder / 'bench.db'}"
        engine = make_sync_engine(url)
        started = time.perf_counter()
        upgrade(engine)
        load_regions(engine)
        seed_province(engine, args.province, args.households, 1, as_of=on)
        engine.dispose()
        print(f"seeded {args.households:,} households of province {args.province} in "
              f"{time.perf_counter() - started:.1f} s (SQLite {folder / 'bench.db'})")
    settings = load_settings({}).with_(database_url=url, env="test", secret_key="bench-" + "0" * 32)
    policy = PolicyEngine(settings)
    baseline_params = policy.province(args.province).params
    current = float(baseline_params.value(KEY, on))
    actor = system_actor("bench")

    async def simulate(simulator: Simulator, factor: float):
        aengine = make_async_engine(url)
        try:
            async with async_session_factory(aengine)() as session:
                change = [ParameterChange(KEY, round(current * factor, 2))]
                t = time.perf_counter()
                result = await simulator.run(session, actor, args.province, change, on=on, record=False)
                return time.perf_counter() - t, result
        finally:
            await aengine.dispose()

    if args.drop_kept:  # measure the first simulation ever of this province and date: facts read from the tables
        async def drop():
            aengine = make_async_engine(url)
            try:
                async with async_session_factory(aengine)() as session:
                    await frames.drop(session, args.province, on)
                    await session.commit()
            finally:
                await aengine.dispose()
        asyncio.run(drop())

    cold_times: dict[str, list[float]] = {}
    warm_times, plain_times = [], []
    mismatches: list[str] = []
    for i in range(args.repeat):
        simulator = Simulator(PolicyEngine(settings))  # a fresh process's cache: nothing in memory
        seconds, cold = asyncio.run(simulate(simulator, 1.08))
        cold_times.setdefault(cold.frame_source, []).append(seconds)
        for j in range(args.warm_repeat):
            seconds, warm = asyncio.run(simulate(simulator, 1.10 + 0.02 * (i * args.warm_repeat + j)))
            assert warm.cached
            warm_times.append(seconds)
        frame = warm._frame
        reform = reform_params(baseline_params, warm.changes, on)
        t = time.perf_counter()
        base_plain = plain(frame, baseline_params, on, args.province)
        reform_plain = plain(frame, reform, on, args.province)
        plain_times.append(time.perf_counter() - t)
        for side, got in (("baseline", base_plain), ("reform", reform_plain)):
            platform = figures(warm, side)
            for k, v in got.items():
                if abs(platform[k] - v) > 0.01:
                    mismatches.append(f"{side} {k}: platform {platform[k]} plain {v}")
    n = cold.households_in_scope
    programs = len(cold.by_program)
    print(f"households in scope {n:,}; programs evaluated {programs}; change {KEY} {current:g} -> "
          f"{current * 1.08:g} (+8%) from {on}")
    persons = int(cold._frame["member_count"].sum())
    print(f"persons in scope {persons:,}")
    print(f"reform +8%: monthly cost {cold.baseline.monthly_cost:,.2f} -> {cold.reform.monthly_cost:,.2f}, one-off "
          f"{cold.baseline.one_off_cost:,.2f} -> {cold.reform.one_off_cost:,.2f}, a year's cost change "
          f"{cold.year_cost_change:+,.2f} yuan; newly eligible {cold.newly_eligible.households:,} households; "
          f"affected rows {cold.affected.height:,}")

    def line(name, times):
        median = statistics.median(times)
        return median, f"{name:<58} median {median:8.3f} s  {n / median:12,.0f} households/s"

    sources = {"tables": "facts read from the tables, then kept", "kept": "facts from the kept frames"}
    colds = {source: line(f"simulation cold ({sources[source]})", times) for source, times in cold_times.items()}
    w, w_line = line(f"simulation warm (frame in memory, reform of {programs} programs)", warm_times)
    b, b_line = line("plain polars: dibao + near-dibao, baseline + reform", plain_times)
    for _c, c_line in colds.values():
        print(c_line)
    print(w_line)
    print(b_line)
    print(f"ratio warm simulation / plain polars: {w / b:.2f}x; "
          + "; ".join(f"cold ({source}) / plain polars: {c / b:.2f}x" for source, (c, _) in colds.items()))
    phases = ", ".join(f"{k} {v:.3f} s" for k, v in warm.timings.items())
    print(f"warm phases: {phases}")
    phases = ", ".join(f"{k} {v:.3f} s" for k, v in cold.timings.items())
    print(f"cold phases: {phases}")
    print("plain polars figures equal the platform's (dibao households and cost, near-dibao households; baseline and "
          "reform)" if not mismatches else "MISMATCH: " + "; ".join(mismatches))
    if not args.keep and not args.database:
        shutil.rmtree(folder, ignore_errors=True)
    if mismatches:
        sys.exit(1)


if __name__ == "__main__":
    main()
