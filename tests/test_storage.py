"""Migrations, the region tree and the storage engines, on SQLite and PostgreSQL."""

from __future__ import annotations

import time

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select, text

from aidgraph.core.policy.host import build_plugin_manager
from aidgraph.core.storage.db import make_sync_engine
from aidgraph.core.storage.migrate import current_revision, upgrade
from aidgraph.core.storage.models import Base, Region
from aidgraph.core.storage.partitions import comparison_filter
from aidgraph.core.graph.regions import load_regions


def test_migrations_match_models(sync_engine):
    # Plugins own tables too (the medical plugin's medical_claim): registering every plugin declares them.
    build_plugin_manager()
    with sync_engine.connect() as conn:
        # the monthly partitions of PostgreSQL (migration 0023) are not model tables: the same filter as autogenerate
        context = MigrationContext.configure(conn, opts={"include_object": comparison_filter(conn.dialect.name)})
        diff = compare_metadata(context, Base.metadata)
    assert diff == [], f"models and migrations differ: {diff}"
    assert current_revision(sync_engine) is not None


def test_region_tree_loaded_and_reload_is_idempotent(sync_engine):
    with sync_engine.connect() as conn:
        counts = dict(conn.execute(select(Region.level, func.count()).group_by(Region.level)).all())
    assert counts["PROVINCE"] == 31
    assert counts["CITY"] == 342
    assert counts["COUNTY"] == 2978
    assert counts["TOWNSHIP"] == 41352
    assert counts["VILLAGE"] == 17498 + 26842 + 17718
    started = time.perf_counter()
    again = load_regions(sync_engine)
    assert again == counts
    assert time.perf_counter() - started < 30


def test_region_parents_are_consistent(sync_engine):
    with sync_engine.connect() as conn:
        dongguan_town = conn.execute(select(Region.parent_code).where(Region.code == "441900003")).scalar_one()
    assert dongguan_town == "441900"
    orphans = 0
    with sync_engine.connect() as conn:
        orphans = conn.execute(text(
            "SELECT count(*) FROM region c LEFT JOIN region p ON p.code = c.parent_code "
            "WHERE c.parent_code IS NOT NULL AND p.code IS NULL")).scalar_one()
    assert orphans == 0


def test_sqlite_pragmas(tmp_path):
    engine = make_sync_engine(f"sqlite:///{tmp_path / 'p.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -262144
    upgrade(engine)
    upgrade(engine)  # a second upgrade is a no-op
