"""Processed search-outbox rows are purged (issue 12): by age, in batches, never a pending row; by the background
indexer on its schedule and by ``aidgraph index --purge``; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, insert, select
from typer.testing import CliRunner

from aidgraph.core.search import indexer
from aidgraph.core.search.client import make_client
from aidgraph.core.search.rebuild import reindex
from aidgraph.core.search.indexer import BackgroundIndexer, purge_processed
from aidgraph.core.search.mapping import build_layout
from aidgraph.core.storage.models import Outbox

NOW = dt.datetime(2026, 12, 3, 12, 0)
"""The clock of the tests that pass ``now`` to the purge; the background indexer and the CLI read the real one."""


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def _fill(engine, now: dt.datetime = NOW) -> dict[str, list[int]]:
    """Old processed, recent processed and pending rows (ids by kind), as of ``now``."""
    rows = {"old": [now - dt.timedelta(hours=30 + i) for i in range(25)],
            "recent": [now - dt.timedelta(hours=2)] * 3, "pending": [None] * 4}
    ids: dict[str, list[int]] = {}
    with engine.begin() as conn:
        conn.execute(Outbox.__table__.delete())
        for kind, stamps in rows.items():
            ids[kind] = [conn.execute(insert(Outbox).returning(Outbox.id), {
                "entity": "PERSON", "entity_id": n + 1, "version": 1, "created_at": now - dt.timedelta(days=3),
                "processed_at": stamp}).scalar_one() for n, stamp in enumerate(stamps)]
    return ids


def _left(engine) -> set[int]:
    with engine.connect() as conn:
        return set(conn.execute(select(Outbox.id)).scalars())


def test_purge_deletes_only_rows_processed_before_the_cutoff_in_batches(sync_engine, monkeypatch):
    ids = _fill(sync_engine)
    monkeypatch.setattr(indexer, "PURGE_BATCH", 10)  # three batches for the 25 old rows
    assert purge_processed(sync_engine, dt.timedelta(hours=24), now=NOW) == 25
    assert _left(sync_engine) == set(ids["recent"]) | set(ids["pending"])
    assert purge_processed(sync_engine, dt.timedelta(hours=24), now=NOW) == 0  # safe to re-run
    assert purge_processed(sync_engine, dt.timedelta(hours=0), now=NOW) == 3  # never the pending ones
    assert _left(sync_engine) == set(ids["pending"])


def test_the_background_indexer_purges_on_its_schedule(sync_engine, osmem_clone):
    """A pass of the indexer against a real search engine drains the pending rows and purges the old processed
    ones; the next pass within PURGE_EVERY purges nothing."""
    now = _utcnow()
    _fill(sync_engine, now)
    client = make_client(osmem_clone.url, timeout=30)
    try:
        reindex(sync_engine, client)
        worker = BackgroundIndexer(sync_engine, client, layout=build_layout(), keep=dt.timedelta(hours=24))
        worker.run_once()  # not started as a thread: one pass, in this thread
        assert worker.purged == 25
        with sync_engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(Outbox).where(
                Outbox.processed_at.is_(None))).scalar() == 0  # the pending rows were drained, then kept
            assert conn.execute(select(func.count()).select_from(Outbox)).scalar() == 3 + 4
        with sync_engine.begin() as conn:  # another old processed row, before the next purge is due
            conn.execute(insert(Outbox), {"entity": "PERSON", "entity_id": 99, "version": 1,
                                          "processed_at": now - dt.timedelta(days=5)})
        worker.run_once()
        assert worker.purged == 25 and len(_left(sync_engine)) == 8
    finally:
        client.close()


def test_cli_purge(sync_engine, db_url, monkeypatch):
    from aidgraph.core.app.cli import app

    ids = _fill(sync_engine, _utcnow())
    monkeypatch.setenv("AIDGRAPH_DATABASE_URL", db_url)
    result = CliRunner().invoke(app, ["index", "--purge", "--keep-hours", "24"])
    assert result.exit_code == 0, result.output
    assert "purged 25 outbox row(s)" in " ".join(result.output.split())
    with sync_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Outbox).where(Outbox.processed_at.is_(None))).scalar() == 4
    assert _left(sync_engine) == set(ids["recent"]) | set(ids["pending"])
