"""Migrations, the region tree and the storage engines, on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import sqlite3
import time

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from aidgraph.core.policy.host import build_plugin_manager
from aidgraph.core.storage.db import make_sync_engine
from aidgraph.core.storage.migrate import current_revision, head_revision, upgrade
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
        assert conn.exec_driver_sql("PRAGMA page_size").scalar() == 16384  # a new file takes SQLITE_PAGE_SIZE
    upgrade(engine)
    upgrade(engine)  # a second upgrade is a no-op


def _page_size_and_rows(path) -> tuple[int, list[tuple]]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return (db.execute("PRAGMA page_size").fetchone()[0],
                db.execute("SELECT code, name FROM region ORDER BY code").fetchall())


def test_an_existing_database_keeps_its_page_size_and_copy_db_rewrites_it(tmp_path, monkeypatch):
    """A database made with 4 KiB pages (before SQLITE_PAGE_SIZE) keeps them when the engine connects, is migrated
    and written to as it is; ``aidgraph copy-db`` writes a copy with 16 KiB pages and the same rows, and refuses
    a target that exists, the database itself and a page size SQLite does not take."""
    from aidgraph.core.app.cli import app

    path = tmp_path / "old.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA page_size=4096")
        db.execute("PRAGMA journal_mode=WAL")
    engine = make_sync_engine(f"sqlite:///{path}")
    upgrade(engine)
    load_regions(engine)
    engine.dispose()
    size, rows = _page_size_and_rows(path)
    assert size == 4096 and len(rows) > 40_000

    monkeypatch.setenv("AIDGRAPH_DATABASE_URL", f"sqlite:///{path}")
    runner = CliRunner()
    copied = runner.invoke(app, ["copy-db", str(tmp_path / "new.db")])
    assert copied.exit_code == 0, copied.output
    assert "16384-byte pages" in copied.output
    assert _page_size_and_rows(tmp_path / "new.db") == (16384, rows)
    # The copy is a database the platform opens as any other: at head, in WAL mode once connected.
    copy_engine = make_sync_engine(f"sqlite:///{tmp_path / 'new.db'}")
    assert current_revision(copy_engine) == head_revision()
    with copy_engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    copy_engine.dispose()

    again = runner.invoke(app, ["copy-db", str(tmp_path / "new.db")])
    assert again.exit_code == 2 and "exists" in again.output
    itself = runner.invoke(app, ["copy-db", str(path)])
    assert itself.exit_code == 2 and "exists" in itself.output
    odd = runner.invoke(app, ["copy-db", str(tmp_path / "odd.db"), "--page-size", "10000"])
    assert odd.exit_code == 2 and "page size 10000" in odd.output and not (tmp_path / "odd.db").exists()
    nowhere = runner.invoke(app, ["copy-db", str(tmp_path / "no" / "such.db")])
    assert nowhere.exit_code == 2 and "is not a directory" in nowhere.output
    small = runner.invoke(app, ["copy-db", str(tmp_path / "small.db"), "--page-size", "4096"])
    assert small.exit_code == 0 and _page_size_and_rows(tmp_path / "small.db") == (4096, rows)
    assert _page_size_and_rows(path) == (4096, rows)  # the database itself untouched
