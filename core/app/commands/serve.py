"""``aidgraph serve``, ``aidgraph demo`` and ``aidgraph export-schema``."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import typer
import uvicorn

from aidgraph.core.access.actor import system_actor
from aidgraph.core.app.commands.monitor import load_monitoring
from aidgraph.core.app.demo import ensure_demo_login, ensure_demo_user, seed_demo_day
from aidgraph.core.app.seed import seed_province
from aidgraph.core.app.server import create_app, default_components
from aidgraph.core.app.synthetic_feeds import synthetic_feeds
from aidgraph.core.graph.audit import seal
from aidgraph.core.graph.regions import load_regions
from aidgraph.core.monitoring.cycle import run_month
from aidgraph.core.monitoring.feeds import import_feed
from aidgraph.core.storage.config import load_settings
from aidgraph.core.storage.db import make_sync_engine, session_scope
from aidgraph.core.storage.migrate import upgrade
from aidgraph.schema.build import schema_sdl
from aidgraph.core.app.terminal import console

SCHEMA_FILE = Path("schema") / "schema.graphql"
"""Where ``export-schema`` writes by default: the product's ``schema/`` folder of the checkout it runs in."""


def serve(host: str = typer.Option("127.0.0.1", help="interface to listen on"),
          port: int = typer.Option(8000, help="TCP port")) -> None:
    """Serve the GraphQL API (POST /graphql; GraphiQL at GET /graphql in development) and the console (/console)."""
    settings = load_settings()
    components = default_components(settings)
    console.print(f"aidgraph on http://{host}:{port}/graphql, console http://{host}:{port}/console ({settings.env}; "
                  f"database {settings.database_url.split('@')[-1]})")
    uvicorn.run(create_app(components), host=host, port=port, log_level="info")


def demo(province: str = typer.Option("44", help="province to seed (44 Guangdong, 35 Fujian, 62 Gansu)"),
         households: int = typer.Option(2000, help="synthetic households to seed"),
         seed: int = typer.Option(1, help="random seed of the synthetic data"),
         host: str = typer.Option("127.0.0.1"), port: int = typer.Option(8000),
         no_serve: bool = typer.Option(False, "--no-serve", help="prepare everything, do not start the server")) -> None:
    """Migrate, load the regions, seed a demo province, import a month of synthetic department feeds and run
    that month's monitoring (so there are alerts to see), seed a normal day (enrolments decided by the rules with
    their payments, the approval queue, disposed alerts), create a demo administrator with a console password
    (kept in the state directory), print the console URL and the login, then serve.

    Every step is idempotent: running the demo again reuses what is there. Demo data is synthetic and the
    policy values marked illustrative in province_configs/ are not real ones.
    """
    settings = load_settings()
    engine = make_sync_engine(settings.database_url)
    with console.status("migrating the database"):
        upgrade(engine)
    with console.status("loading the NBS 2023 division tree"):
        load_regions(engine)
    today = dt.date.today()
    with console.status(f"seeding {households} synthetic households for province {province}"):
        seed_province(engine, province, households, seed, as_of=today)
    with console.status(f"importing synthetic department feeds and monitoring {today:%Y-%m}"):
        monitoring = demo_monitoring_month(engine, settings, province, seed, today)
    with session_scope(engine) as session:
        seal(session)  # audit rows the batch writers (seed, feeds, monitoring) left unsealed, chained here
    with console.status("a normal day: enrolments decided by the rules, payments, the approval queue, alerts disposed"):
        day = seed_demo_day(settings, province, today)
    token = ensure_demo_user(engine, settings, username="demo-admin", region_codes=(province,))
    password = ensure_demo_login(engine, settings, username="demo-admin")
    with session_scope(engine) as session:
        seal(session)
    engine.dispose()
    console.print(f"[green]demo ready[/green]: province {province}, {households} synthetic households (illustrative)")
    if day.seeded:
        receiving = ", ".join(f"{program} {n}" for program, n in day.active.items())
        console.print(f"demo day: households receiving {receiving}; {day.waiting} enrolments in the approval queue; "
                      f"{day.payments} payments; {day.medical_claims} medical aid claims settled; "
                      f"{day.alerts_disposed} alerts disposed")
    levels = ", ".join(f"{level} {n}" for level, n in sorted(monitoring.households_by_level.items()))
    console.print(f"monitoring {monitoring.month}: households by warning level {levels or 'none'}; alerts raised "
                  f"{monitoring.alerts_raised}, updated {monitoring.alerts_updated}")
    console.print(f"console: http://{host}:{port}/console  login: demo-admin / {password}", highlight=False)
    console.print("bearer token for demo-admin (province_admin of the demo province):")
    console.print(token, soft_wrap=True, highlight=False)
    if not no_serve:
        serve(host=host, port=port)


def demo_monitoring_month(engine, settings, province: str, seed: int, today):
    """One month of synthetic feeds (``aidgraph.core.app.synthetic_feeds``, dated up to today) imported, then that month's
    monitoring run: the demo's alerts. Re-running on the same day stores and changes nothing."""


    month_start = today.replace(day=1)
    with tempfile.TemporaryDirectory(prefix="aidgraph-demo-feeds-") as directory:
        for kind, path in synthetic_feeds(engine, province, month_start, Path(directory), seed, last_day=today).items():
            import_feed(engine, kind, path, province=province, actor=system_actor("demo"), today=today)
    params, indicators, categories = load_monitoring(province, settings)
    with session_scope(engine) as session:
        return run_month(session, province, f"{month_start:%Y-%m}", params=params, indicators=indicators,
                         category_programs=categories, actor=system_actor("demo"), today=today)


def export_schema(output: Path = typer.Option(SCHEMA_FILE, help="where to write the SDL")) -> None:
    """Write the live schema's SDL (the committed schema/schema.graphql)."""

    schema = default_components().schema
    assert schema is not None  # default_components always builds one
    sdl = schema_sdl(schema)
    output.write_text(sdl, encoding="utf-8")
    console.print(f"schema written to {output} ({len(sdl.splitlines())} lines)")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("demo")(demo)
    app.command("export-schema")(export_schema)
