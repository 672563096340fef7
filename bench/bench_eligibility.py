"""Benchmark: EligibilityGaps (政策找人) for every program over a whole region, against a hand-written baseline.

    python bench/bench_eligibility.py --households 100000 [--repeat 3] [--province 44] [--keep DIR]

1. A SQLite database with the region tree, seeded by ``aidgraph.core.app.seed`` with N households of the province (not
   timed). The region measured is the whole province: every seeded household is in it.
2. Platform, end to end: the contract's ``EligibilityGaps`` operation over HTTP against a live server (all
   programs, first page and totalCount), and the engine call behind it (``PolicyEngine.gaps``).
3. Baseline in the same run over the same data: raw SQL (one statement per table, no ORM) and plain polars
   group-bys and joins computing the same rules with the same parameter values (dibao with Guangdong's
   employment-cost deduction and single-person inclusion, tekun, dibao_edge, expenditure_hardship, employment,
   temporary_emergency, disability). Its gap counts per program must equal the platform's (checked).
Prints the medians over ``--repeat`` runs, households per second of each, and the ratios.
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
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aidgraph.core.storage.config import load_settings  # noqa: E402
from aidgraph.core.storage.db import async_session_factory, make_async_engine, make_sync_engine  # noqa: E402
from aidgraph.core.graph.economics import window_start  # noqa: E402
from aidgraph.core.policy.engine import PolicyEngine  # noqa: E402
from aidgraph.core.storage.migrate import upgrade  # noqa: E402
from aidgraph.core.graph.regions import load_regions  # noqa: E402
from aidgraph.core.app.seed import seed_province  # noqa: E402

BASELINE_PROGRAMS = ("dibao", "tekun", "dibao_edge", "expenditure_hardship", "employment", "temporary_emergency",
                     "disability")
GAPS = """query EligibilityGaps($regionCode: String!, $program: String, $first: Int, $after: String) {
  eligibilityGaps(regionCode: $regionCode, program: $program, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node { household { id householdNumber } program { key } reasons monthlyAmount } }
  }
}"""


def baseline(engine, province: str, on: dt.date, params) -> dict[str, int]:
    """Gap counts per program computed with raw SQL and plain polars (no list columns, no plugin machinery)."""
    start = window_start(on)
    with engine.connect() as conn:
        hh = pl.DataFrame(conn.execute(text(
            "SELECT h.id, h.region_code, (r.name LIKE '%村委会' OR r.name LIKE '%村民委员会' OR r.name LIKE '%村' "
            "OR r.name LIKE '%乡' OR r.name LIKE '%镇') AS rural FROM household h JOIN region r ON r.code = h.region_code "
            "WHERE h.region_code >= :p AND h.region_code < :q"), {"p": province, "q": province[:-1] + chr(ord(province[-1]) + 1)}
        ).all(), schema={"hid": pl.Int64, "region": pl.String, "rural": pl.Boolean}, orient="row")
        people = pl.DataFrame(conn.execute(text(
            "SELECT m.household_id, p.id, p.birth_date, m.relation_to_head, p.disability_level, p.disability_category,"
            " p.major_disease, p.hospitalised, p.labour_capacity, p.employment_status, p.hukou_region_code "
            "FROM membership m JOIN person p ON p.id = m.person_id WHERE m.valid_from <= :on AND "
            "(m.valid_to IS NULL OR m.valid_to > :on)"), {"on": on}).all(), orient="row", schema={
            "hid": pl.Int64, "pid": pl.Int64, "birth": pl.String, "rel": pl.String, "dis": pl.Int32, "dcat": pl.String,
            "major": pl.Boolean, "hosp": pl.Boolean, "cap": pl.String, "emp": pl.String, "hukou": pl.String})
        edges = pl.DataFrame(conn.execute(text(
            "SELECT r.from_person_id, r.to_person_id, r.kind, o.birth_date, o.labour_capacity, o.death_date, "
            "t.birth_date, t.labour_capacity, t.death_date FROM relationship r "
            "JOIN person o ON o.id = r.from_person_id JOIN person t ON t.id = r.to_person_id "
            "WHERE r.valid_from <= :on AND (r.valid_to IS NULL OR r.valid_to > :on)"), {"on": on}).all(), orient="row",
            schema={"a": pl.Int64, "b": pl.Int64, "kind": pl.String, "a_birth": pl.String, "a_cap": pl.String,
                    "a_death": pl.String, "b_birth": pl.String, "b_cap": pl.String,
                    "b_death": pl.String})
        flows = pl.DataFrame(conn.execute(text(
            "SELECT household_id, kind, SUM(amount * (julianday(MIN(period_end, :on)) - julianday(MAX(period_start, :s)) "
            "+ 1) / (julianday(period_end) - julianday(period_start) + 1)) FROM economic_item "
            "WHERE period_end >= :s AND period_start <= :on AND kind IN ('WAGE','BUSINESS','PROPERTY_INCOME','TRANSFER',"
            "'PENSION','EXPENDITURE_MEDICAL','EXPENDITURE_EDUCATION') GROUP BY household_id, kind"),
            {"on": on.isoformat(), "s": start.isoformat()}).all(), orient="row",
            schema={"hid": pl.Int64, "kind": pl.String, "amount": pl.Float64})
        assets = pl.DataFrame(conn.execute(text(
            "SELECT household_id, SUM(amount) FROM (SELECT household_id, amount, ROW_NUMBER() OVER (PARTITION BY "
            "household_id, person_id, kind, source ORDER BY period_end DESC, id DESC) rn FROM economic_item WHERE "
            "kind IN ('DEPOSIT','SECURITIES') AND period_end <= :on) WHERE rn = 1 GROUP BY household_id"),
            {"on": on.isoformat()}).all(), orient="row", schema={"hid": pl.Int64, "assets": pl.Float64})

    def age(col: str) -> pl.Expr:
        d = pl.col(col).str.to_date()
        before = (d.dt.month().cast(pl.Int32) * 100 + d.dt.day().cast(pl.Int32)) > on.month * 100 + on.day
        return on.year - d.dt.year().cast(pl.Int32) - before.cast(pl.Int32)

    p = lambda key: params.value(key, on)  # noqa: E731
    people = people.with_columns(age=age("birth"), local=pl.col("hukou").str.starts_with(province))
    # support obligors: relationship edges, then the duties implied by relations to the head
    edges = edges.with_columns(a_age=age("a_birth"), b_age=age("b_birth"))
    able_a = (pl.col("a_cap").fill_null("FULL") != "NONE") & pl.col("a_death").is_null()
    able_b = (pl.col("b_cap").fill_null("FULL") != "NONE") & pl.col("b_death").is_null()
    explicit = pl.concat([
        edges.filter(pl.col("kind").is_in(["SUPPORT_OBLIGOR", "SPOUSE"]) & able_a).select(pid="b", other="a"),
        edges.filter((pl.col("kind") == "PARENT") & (pl.col("b_age") < 18) & able_a).select(pid="b", other="a"),
        edges.filter((pl.col("kind") == "SPOUSE") & able_b).select(pid="a", other="b"),
        edges.filter((pl.col("kind") == "PARENT") & (pl.col("b_age") >= 18) & able_b).select(pid="a", other="b"),
    ])
    pairs = people.select("hid", "pid", "rel", "age").join(
        people.select("hid", other="pid", orel="rel", oage="age", ocap="cap"), on="hid").filter(pl.col("pid") != pl.col("other"))
    couple = pl.col("orel").is_in(["SELF", "SPOUSE"])
    implied = pairs.filter(
        ((pl.col("rel").is_in(["CHILD", "GRANDCHILD"]) & (pl.col("age") < 18) & couple)
         | (pl.col("rel").is_in(["PARENT", "GRANDPARENT"]) & couple)
         | ((pl.col("rel") == "SELF") & (pl.col("orel") == "SPOUSE")) | ((pl.col("rel") == "SPOUSE") & (pl.col("orel") == "SELF"))
         | (pl.col("rel").is_in(["SELF", "SPOUSE"]) & (pl.col("orel") == "CHILD")))
        & (pl.col("ocap").fill_null("FULL") != "NONE") & (pl.col("oage") >= 18)).select("pid", "other")
    obligors = pl.concat([explicit, implied]).group_by("pid").agg(obl=pl.col("other").n_unique())
    people = people.join(obligors, on="pid", how="left").with_columns(pl.col("obl").fill_null(0))

    severe = p("dibao.severe_disability_max_level")
    groups = set(p("dibao.single_inclusion_groups"))
    single = pl.lit(False)
    if "severe_disability" in groups:
        single = single | (pl.col("dis") <= severe).fill_null(False)
    if "serious_illness" in groups:
        single = single | pl.col("major").fill_null(False)
    if "mental_intellectual_3_4" in groups:
        single = single | (pl.col("dcat").is_in(["MENTAL", "INTELLECTUAL", "精神", "智力"]) & pl.col("dis").is_in([3, 4])).fill_null(False)
    if "disabled_elderly" in groups:
        single = single | ((pl.col("age") >= p("dibao.elderly_age")) & pl.col("dis").is_not_null())
    tekun_person = (pl.col("obl") == 0) & ((pl.col("age") < p("tekun.minor_age_limit")) | (
        ((pl.col("age") >= p("tekun.elderly_age")) | (pl.col("dis") <= severe).fill_null(False)) & (pl.col("cap") == "NONE")))
    working = (pl.col("age") >= p("employment.working_age_min")) & (pl.col("age") < p("employment.working_age_max"))
    agg = people.group_by("hid").agg(
        n=pl.len(), local=pl.col("local").sum(), single=single.sum(), tekun=tekun_person.sum(),
        employed=(pl.col("emp") == "EMPLOYED").sum(), able=(working & pl.col("cap").is_in(["FULL", "PARTIAL"])).sum(),
        hosp=pl.col("hosp").fill_null(False).sum(),
        severe_dis=(pl.col("dis") <= p("disability.severe_max_level")).fill_null(False).sum())
    money = flows.pivot(on="kind", index="hid", values="amount")
    for kind in ("WAGE", "BUSINESS", "PROPERTY_INCOME", "TRANSFER", "PENSION", "EXPENDITURE_MEDICAL", "EXPENDITURE_EDUCATION"):
        if kind not in money.columns:
            money = money.with_columns(pl.lit(0.0).alias(kind))
    money = money.with_columns(pl.exclude("hid").fill_null(0.0)).select(
        "hid", income=(pl.sum_horizontal("WAGE", "BUSINESS", "PROPERTY_INCOME", "TRANSFER", "PENSION") / 12).round(2),
        earned=(pl.sum_horizontal("WAGE", "BUSINESS") / 12).round(2),
        rigid=(pl.sum_horizontal("EXPENDITURE_MEDICAL", "EXPENDITURE_EDUCATION") / 12).round(2))
    f = (hh.join(agg, on="hid", how="left").join(money, on="hid", how="left").join(assets, on="hid", how="left")
         .with_columns(pl.col("n", "local", "single", "tekun", "employed", "able", "hosp", "severe_dis").fill_null(0),
                       pl.col("income", "earned", "rigid", "assets").fill_null(0.0)))
    urban = params.column("dibao.urban_standard", on, region_column="region").cast(pl.Float64)
    rural = params.column("dibao.rural_standard", on, region_column="region").cast(pl.Float64)
    deduction = pl.min_horizontal(pl.col("employed") * float(p("guangdong.employment_cost_deduction")), pl.col("earned")) \
        if province == "44" else pl.lit(0.0)
    f = f.with_columns(std=pl.when(pl.col("rural")).then(rural).otherwise(urban), urban=urban,
                       ded=pl.min_horizontal(deduction, pl.col("income")).clip(lower_bound=0).round(2))
    f = f.with_columns(pci=((pl.col("income") - pl.col("ded")).round(2) / pl.max_horizontal("n", 1)).round(2),
                       pca=pl.col("assets") / pl.max_horizontal("n", 1))
    left = pl.col("pci") - pl.col("rigid") / pl.max_horizontal("n", 1)
    resident = (pl.col("local") > 0) | pl.lit(bool(p("dibao.covers_non_hukou_residents")))
    line = pl.col("urban") * p("dibao.low_income_multiplier")
    scopes = set(p("dibao.single_inclusion_households"))
    scope_ok = pl.lit(False)
    if "low_income" in scopes:
        scope_ok = scope_ok | (pl.col("pci") < line)
    if "expenditure_hardship" in scopes:
        scope_ok = scope_ok | (left < pl.col("std"))
    tekun_std = pl.col("std") * p("tekun.standard_multiplier")
    rules = {
        "dibao": resident & (pl.col("pca") <= pl.col("std") * p("dibao.financial_assets_limit_months"))
        & ((pl.col("pci") < pl.col("std")) | ((pl.col("single") > 0) & scope_ok)),
        "tekun": resident & (pl.col("pca") <= tekun_std * p("tekun.financial_assets_limit_months"))
        & (pl.col("tekun") > 0) & (pl.col("pci") < tekun_std),
        "dibao_edge": resident & (pl.col("pca") <= pl.col("std") * p("dibao_edge.financial_assets_limit_months"))
        & (pl.col("pci") >= pl.col("std")) & (pl.col("pci") < line),
        "expenditure_hardship": resident & (pl.col("pci") >= pl.col("std"))
        & (pl.col("pci") < pl.col("urban") * p("expenditure_hardship.income_multiplier")) & (left < pl.col("std")),
        "employment": (pl.col("able") > 0) & (pl.col("employed") == 0),
        "temporary_emergency": (pl.lit(bool(p("temporary.no_hukou_limit"))) | (pl.col("local") > 0)) & (pl.col("hosp") > 0),
        "disability": pl.col("severe_dis") > 0,  # nobody is enrolled yet: only the nursing subsidy applies
    }
    counts = f.select(**{k: v.sum() for k, v in rules.items()}).row(0, named=True)
    return {k: int(v) for k, v in counts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--households", type=int, default=100_000)
    parser.add_argument("--province", default="44")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="reuse or keep the seeded database in this folder")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="aidgraph-bench-elig-"))
    folder.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{folder / 'bench.db'}"
    on = dt.date.today()
    engine = make_sync_engine(url)
    started = time.perf_counter()
    upgrade(engine)
    load_regions(engine)
    seed_province(engine, args.province, args.households, 1, as_of=on)
    print(f"seeded {args.households:,} households of province {args.province} in {time.perf_counter() - started:.1f} s "
          f"(SQLite {folder / 'bench.db'})")

    settings = load_settings({}).with_(database_url=url, env="test", secret_key="bench-" + "0" * 32)
    policy = PolicyEngine(settings)
    params = policy.province(args.province).params

    async def engine_gaps():
        aengine = make_async_engine(url)
        try:
            async with async_session_factory(aengine)() as session:
                return await policy.gaps(session, region_code=args.province, on=on, limit=100)
        finally:
            await aengine.dispose()

    async def all_gap_counts() -> dict[str, int]:
        """Gap counts per program from one set-at-a-time decision over the region (the engine's own path)."""
        from aidgraph.core.policy.engine import household_frame

        aengine = make_async_engine(url)
        try:
            async with async_session_factory(aengine)() as session:
                frame = await household_frame(session, on=on, region_code=args.province)
        finally:
            await aengine.dispose()
        decided = policy.province(args.province).decide(frame, on).filter(pl.col("eligible") & ~pl.col("enrolled"))
        counts = decided.group_by("program").len()
        return dict(zip(counts["program"].to_list(), counts["len"].to_list()))

    engine_times, http_times, base_times = [], [], []
    gaps = None
    for _ in range(args.repeat):
        t = time.perf_counter()
        total_engine, gaps = asyncio.run(engine_gaps())
        engine_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        base = baseline(engine, args.province, on, params)
        base_times.append(time.perf_counter() - t)
    platform_counts = asyncio.run(all_gap_counts())
    mismatches = {k: (platform_counts.get(k, 0), v) for k, v in base.items() if platform_counts.get(k, 0) != v}

    from aidgraph.core.app.demo import ensure_demo_user
    from aidgraph.core.app.server import default_components
    from tests.live import run_live_server

    token = ensure_demo_user(engine, settings, username="bench44", region_codes=(args.province,))
    with run_live_server(default_components(settings.with_(opensearch_url="http://127.0.0.1:9"))) as live:
        for _ in range(args.repeat):
            t = time.perf_counter()
            response = live.post(GAPS, {"regionCode": args.province, "first": 100}, "EligibilityGaps", token=token)
            http_times.append(time.perf_counter() - t)
            body = response.json()
            assert "errors" not in body, body
        total = body["data"]["eligibilityGaps"]["totalCount"]
    n = args.households
    programs = len(policy.province(args.province).programs)

    def line(name, times):
        median = statistics.median(times)
        return median, f"{name:<44} median {median:8.3f} s  {n / median:12,.0f} households/s"

    e, e_line = line(f"platform engine gaps ({programs} programs)", engine_times)
    h, h_line = line(f"platform EligibilityGaps over HTTP ({programs})", http_times)
    b, b_line = line(f"baseline raw SQL + polars ({len(BASELINE_PROGRAMS)} programs)", base_times)
    print(e_line)
    print(h_line)
    print(b_line)
    print(f"ratio engine / baseline: {e / b:.2f}x the baseline's time; HTTP end to end / baseline: {h / b:.2f}x")
    print(f"gaps found: {total:,} (all programs); per program: "
          + ", ".join(f"{k} {v:,}" for k, v in sorted(platform_counts.items())))
    print("baseline counts equal the platform's for " + ", ".join(BASELINE_PROGRAMS) if not mismatches
          else f"MISMATCH platform vs baseline: {mismatches}")
    engine.dispose()
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    if mismatches:
        sys.exit(1)


if __name__ == "__main__":
    main()
