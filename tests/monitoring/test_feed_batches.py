"""A file stored in many batches (one transaction each, aidgraph.core.monitoring.feeds.import_feed) must store
and reject exactly what the same file stored in one batch does: repeats whose first occurrence is in another
batch included, and a batch failing after others were stored keeps them and is finished by running it again."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import delete, event, select
from sqlalchemy.orm import Session

from aidgraph.core.graph.idnumber import make
from aidgraph.core.monitoring import feeds
from aidgraph.core.monitoring.feeds import FEEDS, import_feed
from aidgraph.core.storage.db import make_sync_engine
from aidgraph.core.storage.models import EconomicItem, FeedRecord
from tests.monitoring.conftest import seed_world
from tests.monitoring.test_feeds import read_rejected, write_csv

INCOME = FEEDS["income"].names
HOSPITAL = FEEDS["hospitalisation"].names


def _income_file(tmp_path, people):
    """Fourteen lines (2-15) that, stored two at a time, repeat rows across batches every way validate knows."""
    a, b, c, d = people[:4]
    unknown = make("440106", dt.date(1980, 5, 5), 123)
    rows = [
        [a.id_number, "2024-05", "WAGE", "1000.5", "税务"],      # 2 stored
        [b.id_number, "2024-05", "WAGE", "2000", "税务"],        # 3 stored
        [unknown, "2024-05", "WAGE", "10", "税务"],               # 4 no such person
        [c.id_number, "2024-05", "WAGE", "-1", "税务"],          # 5 bad amount
        [a.id_number, "2024-05", "WAGE", "1000.50", "税务"],     # 6 repeats line 2 (another batch)
        [c.id_number, "2024-05", "PENSION", "300", "社保"],      # 7 stored
        [unknown, "2024-05", "WAGE", "10.00", "税务"],            # 8 repeats line 4 (a repeat whatever its person)
        [c.id_number, "2024-05", "WAGE", "-1", "税务"],          # 9 bad amount again (not a repeat: 5 was bad)
        [d.id_number, "2024-05", "WAGE", "400", "税务"],         # 10 stored
        [d.id_number, "2024-05", "WAGE", "400", "税务"],         # 11 repeats line 10 (same batch)
        [b.id_number, "2024-06", "WAGE", "2000", "税务"],        # 12 stored (another month)
        [b.id_number, "2024-05", "WAGE", "2000", "税务"],        # 13 repeats line 3
        [d.id_number, "2024-13", "WAGE", "5", "税务"],           # 14 bad month
        [a.id_number, "2024-06", "WAGE", "1000.5", "税务"],      # 15 stored
    ]
    return write_csv(tmp_path / "income.csv", INCOME, rows)


def _stored_items(engine, name):
    with Session(engine) as s:
        return s.execute(select(EconomicItem.household_id, EconomicItem.person_id, EconomicItem.kind,
                                EconomicItem.amount, EconomicItem.period_start, EconomicItem.source,
                                EconomicItem.row_hash, EconomicItem.line_number)
                         .where(EconomicItem.source_file == name).order_by(EconomicItem.line_number)).all()


def _counts(summary):
    return (summary.read, summary.stored, summary.already_stored, summary.rejected, summary.economic_items)


def test_a_file_in_batches_of_two_stores_and_rejects_what_one_batch_does(sync_engine, tmp_path):
    people = seed_world(sync_engine, households=2, members=2, start=84).persons
    path = _income_file(tmp_path, people)
    whole = import_feed(sync_engine, "income", path)
    expected_items, expected_rejects = _stored_items(sync_engine, path.name), read_rejected(path)
    assert [i.line_number for i in expected_items] == [2, 3, 7, 10, 12, 15]
    assert expected_rejects == {
        4: "id_number: no person with this ID number is registered (persons are not created from feeds)",
        5: expected_rejects[5], 6: "duplicate of line 2", 8: "duplicate of line 4", 9: expected_rejects[9],
        11: "duplicate of line 10", 13: "duplicate of line 3", 14: expected_rejects[14]}
    assert expected_rejects[5].startswith("amount") and expected_rejects[9] == expected_rejects[5]
    with Session(sync_engine) as s, s.begin():
        s.execute(delete(EconomicItem).where(EconomicItem.source_file == path.name))

    batched = import_feed(sync_engine, "income", path, batch_size=2)
    assert _counts(batched) == _counts(whole) == (14, 6, 0, 8, 6)
    assert _stored_items(sync_engine, path.name) == expected_items
    assert read_rejected(path) == expected_rejects
    again = import_feed(sync_engine, "income", path, batch_size=2)
    assert (again.stored, again.already_stored, again.rejected) == (0, 6, 8)


def test_a_record_feed_in_batches_of_two_stores_the_same_records(sync_engine, tmp_path):
    people = seed_world(sync_engine, households=2, members=2, start=88).persons
    rows = [[p.id_number, p.name, f"2024-03-0{i + 1}", "", "人民医院", "", "100", "80", "50"]
            for i, p in enumerate(people)]
    rows.insert(2, rows[0][:])  # line 4 repeats line 2, in the second batch of two
    path = write_csv(tmp_path / "h.csv", HOSPITAL, rows)

    def records():
        with Session(sync_engine) as s:
            return s.execute(select(FeedRecord.person_id, FeedRecord.event_date, FeedRecord.row_hash,
                                    FeedRecord.line_number).where(FeedRecord.source_file == path.name)
                             .order_by(FeedRecord.line_number)).all()

    whole = import_feed(sync_engine, "hospitalisation", path)
    expected = records()
    with Session(sync_engine) as s, s.begin():
        s.execute(delete(FeedRecord).where(FeedRecord.source_file == path.name))
    batched = import_feed(sync_engine, "hospitalisation", path, batch_size=2)
    assert (batched.stored, batched.rejected) == (whole.stored, whole.rejected) == (4, 1)
    assert read_rejected(path) == {4: "duplicate of line 2"}
    assert records() == expected


def test_a_failure_storing_a_later_batch_keeps_the_stored_batches_and_a_rerun_finishes(sync_engine, tmp_path,
                                                                                      monkeypatch):
    people = seed_world(sync_engine, households=2, members=2, start=92).persons
    rows = [[p.id_number, f"2024-0{m}", "WAGE", f"{100 * m}", "税务"] for m in (1, 2) for p in people]
    path = write_csv(tmp_path / "i.csv", INCOME, rows)
    real, calls = feeds.store_batch, []

    def failing_on_the_third_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("the store failed")
        return real(*args, **kwargs)

    monkeypatch.setattr(feeds, "store_batch", failing_on_the_third_batch)
    with pytest.raises(RuntimeError, match="the store failed"):
        import_feed(sync_engine, "income", path, batch_size=2)
    assert len(_stored_items(sync_engine, path.name)) == 4  # the first two batches, the third rolled back
    monkeypatch.setattr(feeds, "store_batch", real)
    rerun = import_feed(sync_engine, "income", path, batch_size=2)
    assert (rerun.stored, rerun.already_stored) == (4, 4)
    assert [i.line_number for i in _stored_items(sync_engine, path.name)] == list(range(2, 10))


def test_an_item_feeds_next_batch_is_staged_on_another_thread_and_no_connection_keeps_the_stage(
        sync_engine, tmp_path, monkeypatch):
    """SQLite: each batch's items are made and staged on the staging thread, one batch ahead, and the staging
    database is detached from the connection afterwards, also when a batch fails (that batch rolled back, the
    ones before kept); PostgreSQL copies each batch as it is."""
    people = seed_world(sync_engine, households=2, members=2, start=96).persons
    rows = [[p.id_number, f"2024-0{m}", "WAGE", f"{100 * m}", "税务"] for m in (1, 2, 3) for p in people]
    path = write_csv(tmp_path / "staged.csv", INCOME, rows)
    real_stage, real_store, staged_on, stored = feeds.stage_items, feeds.store_batch, [], []

    def stage_items(*args, **kwargs):
        staged_on.append(threading.current_thread().name)
        return real_stage(*args, **kwargs)

    monkeypatch.setattr(feeds, "stage_items", stage_items)
    summary = import_feed(sync_engine, "income", path, batch_size=5)
    assert summary.stored == 12
    sqlite = sync_engine.dialect.name == "sqlite"
    assert staged_on == (["stage-items_0"] * 3 if sqlite else [])
    assert [i.line_number for i in _stored_items(sync_engine, path.name)] == list(range(2, 14))
    if not sqlite:
        return

    def failing_in_the_second_batch(session, *args, **kwargs):
        stored.append(1)
        if len(stored) == 2:
            real_store(session, *args, **kwargs)  # written, then the failure: the batch is rolled back
            raise RuntimeError("the store failed")
        return real_store(session, *args, **kwargs)

    engine = make_sync_engine(str(sync_engine.url), pool_size=1, max_overflow=0)  # one connection, reused
    monkeypatch.setattr(feeds, "store_batch", failing_in_the_second_batch)
    again = write_csv(tmp_path / "staged_again.csv", INCOME, [[p.id_number, "2024-04", "WAGE", "1", "税务"]
                                                              for p in people])
    with pytest.raises(RuntimeError, match="the store failed"):
        import_feed(engine, "income", again, batch_size=2)
    with engine.connect() as conn:
        assert [r[1] for r in conn.exec_driver_sql("PRAGMA database_list").all()] == ["main"]
    assert [i.line_number for i in _stored_items(engine, again.name)] == [2, 3]
    engine.dispose()


def test_on_sqlite_the_batches_commit_with_the_checkpoints_left_to_their_thread(sync_engine, tmp_path):
    """SQLite: every batch of an import commits with the automatic checkpoint off, its checkpoints made by
    the thread of aidgraph.core.storage.checkpoints, and the connections checkpoint by themselves again
    afterwards; on PostgreSQL there is nothing to turn off."""
    people = seed_world(sync_engine, households=2, members=2, start=100).persons
    path = write_csv(tmp_path / "checkpoints.csv", INCOME,
                     [[p.id_number, f"2024-0{m}", "WAGE", f"{10 * m}", "税务"] for m in (1, 2) for p in people])
    sqlite = sync_engine.dialect.name == "sqlite"
    at_commit: list[int] = []

    def commit(conn):
        if sqlite:
            at_commit.append(conn.connection.driver_connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0])

    event.listen(sync_engine, "commit", commit)
    try:
        summary = import_feed(sync_engine, "income", path, batch_size=3)
    finally:
        event.remove(sync_engine, "commit", commit)
    assert summary.stored == 8
    if not sqlite:
        return
    assert len(at_commit) >= 3 and set(at_commit) == {0}  # the three batches' commits among them
    with sync_engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
    assert not [t for t in threading.enumerate() if t.name == "sqlite-checkpoints"]
