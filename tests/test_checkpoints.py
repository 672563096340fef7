"""SQLite's checkpoints beside a bulk job (aidgraph.core.storage.checkpoints): inside the block a commit leaves the
copy into the database file to the thread, which makes it while the block runs; when the last job leaves, what it
wrote is in the database file, the log is truncated, the connections get their automatic checkpoint back and the
thread is gone; jobs overlapping on one engine share one thread; nothing to do off SQLite's WAL mode.

What a checkpoint did is read from the database file's size: rows of new pages are in the log until a checkpoint
copies them into the file, which grows then."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from aidgraph.core.storage import checkpoints
from aidgraph.core.storage.checkpoints import background_checkpoints
from aidgraph.core.storage.db import make_sync_engine

PAGES = 1500
"""Rows of about one page each (:func:`_body`): more than the 1,000 pages after which a commit checkpoints by
itself."""


@pytest.fixture
def engine(tmp_path):
    engine = make_sync_engine(f"sqlite:///{tmp_path / 'c.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE page (id INTEGER PRIMARY KEY, body BLOB)")
    yield engine
    engine.dispose()


def _file(engine) -> Path:
    return Path(engine.url.database)


def _body(engine) -> int:
    """Bytes of a row that fills three quarters of a page: one row a page, whatever the database's page size."""
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("PRAGMA page_size").scalar()) * 3 // 4


def _write_pages(engine, rows: int = PAGES) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) "
                             f"INSERT INTO page (body) SELECT randomblob({_body(engine)}) FROM n")


def _autocheckpoint(engine) -> int:
    with engine.connect() as conn:
        return conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()


def _checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "sqlite-checkpoints"]


def test_without_the_block_a_large_commit_checkpoints_by_itself(engine):
    # The measure the other tests read: the file grows at the commit itself.
    before = _file(engine).stat().st_size
    _write_pages(engine)
    assert _file(engine).stat().st_size > before + PAGES * _body(engine)


def test_in_the_block_the_commit_leaves_the_copy_to_the_last_checkpoint(engine, monkeypatch):
    monkeypatch.setattr(checkpoints, "INTERVAL", 3600)  # the thread waits: only the commit could copy
    before = _file(engine).stat().st_size
    with background_checkpoints(engine) as state:
        assert state is not None
        assert _autocheckpoint(engine) == 0
        _write_pages(engine)
        assert _file(engine).stat().st_size == before
        assert state.runs == 0
    # the last one out copied everything and truncated the log
    assert _file(engine).stat().st_size > before + PAGES * _body(engine)
    assert Path(f"{_file(engine)}-wal").stat().st_size == 0
    assert state.runs == 1 and state.failures == 0
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM page").scalar() == PAGES
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"


def test_the_thread_checkpoints_while_the_block_runs(engine):
    before, body = _file(engine).stat().st_size, _body(engine)
    with background_checkpoints(engine) as state:
        assert state is not None
        _write_pages(engine)
        deadline = time.monotonic() + 20
        # The file grows while a checkpoint copies the pages, and the checkpoint is counted when it returns: wait
        # for both (seeing the file grown and asserting the count at once failed on a busy CI machine).
        while (_file(engine).stat().st_size <= before + PAGES * body or state.frames < PAGES) \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _file(engine).stat().st_size > before + PAGES * body
        assert state.runs >= 1 and state.frames >= PAGES


def test_after_the_block_connections_checkpoint_by_themselves_again_and_the_thread_is_gone(engine):
    assert _autocheckpoint(engine) == 1000
    with background_checkpoints(engine):
        assert _autocheckpoint(engine) == 0
        assert len(_checkpoint_threads()) == 1
    assert _autocheckpoint(engine) == 1000
    assert not _checkpoint_threads()
    before = _file(engine).stat().st_size
    _write_pages(engine)
    assert _file(engine).stat().st_size > before + PAGES * _body(engine)


def test_overlapping_jobs_on_one_engine_share_the_thread_until_the_last_leaves(engine):
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, object] = {}

    def first():
        with background_checkpoints(engine) as state:
            seen["first"] = state
            first_in.set()
            second_in.wait(10)
        first_out.set()

    def second():
        first_in.wait(10)
        with background_checkpoints(engine) as state:
            seen["second"] = state
            second_in.set()
            first_out.wait(10)
            seen["threads after the first left"] = len(_checkpoint_threads())
            seen["autocheckpoint after the first left"] = _autocheckpoint(engine)
            _write_pages(engine)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert seen["first"] is seen["second"] is not None
    assert seen["threads after the first left"] == 1
    assert seen["autocheckpoint after the first left"] == 0
    assert not _checkpoint_threads()
    assert _autocheckpoint(engine) == 1000
    assert Path(f"{_file(engine)}-wal").stat().st_size == 0


def test_a_job_after_the_last_one_left_gets_a_thread_of_its_own(engine):
    with background_checkpoints(engine) as first:
        pass
    with background_checkpoints(engine) as second:
        assert second is not first and len(_checkpoint_threads()) == 1
        _write_pages(engine)
    assert not _checkpoint_threads()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM page").scalar() == PAGES


def test_the_log_is_kept_while_another_connection_reads_it(engine):
    # A reader's snapshot still needs the log: no truncation under it, and nothing waits for it.
    _write_pages(engine, 10)
    with engine.connect() as reader:
        reader.exec_driver_sql("BEGIN")
        assert reader.exec_driver_sql("SELECT count(*) FROM page").scalar() == 10
        started = time.monotonic()
        with background_checkpoints(engine):
            _write_pages(engine)
        assert time.monotonic() - started < 5
        assert Path(f"{_file(engine)}-wal").stat().st_size > 0
        assert reader.exec_driver_sql("SELECT count(*) FROM page").scalar() == 10
        reader.exec_driver_sql("COMMIT")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM page").scalar() == PAGES + 10


def test_nothing_to_do_off_sqlite_in_wal_mode(sync_engine):
    memory = make_sync_engine("sqlite://")
    with background_checkpoints(memory) as state:
        assert state is None
    with background_checkpoints(sync_engine) as state:
        assert (state is None) == (sync_engine.dialect.name == "postgresql")
    assert not _checkpoint_threads()
