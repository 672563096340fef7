"""The batch jobs' bulk helpers (aidgraph.core.storage.bulk) on SQLite and PostgreSQL: what is written through COPY or raw
executemany reads back through the models exactly as if the ORM had written it; one-parameter key lists of
any length; the write lock taken before a batch reads."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
import time

import polars as pl
import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from aidgraph.core.storage.bulk import any_of, dialect_of, insert_frame, lock_for_writing, update_frame
from aidgraph.core.storage.db import async_session_factory, make_async_engine, session_scope
from aidgraph.core.storage.models import AuditLog, Outbox, Region

AT = dt.datetime(2025, 9, 3, 14, 5, 6, 123456)


def test_insert_frame_round_trips_through_the_models(sync_engine):
    texts = ["普通", "含,逗号", 'with "quotes"', "two\nlines", "", None, "  spaced  ", "back\\slash"]
    frame = pl.DataFrame({
        "at": [AT] * len(texts),
        "actor": [f"bulk-{i}" for i in range(len(texts))],
        "action": ["bulk_test"] * len(texts),
        "object_type": ["thing"] * len(texts),
        "object_id": texts,
        "region_code": ["440106"] * len(texts),
        "detail": [None if t is None else json.dumps({"text": t}, ensure_ascii=False) for t in texts],
    })
    with session_scope(sync_engine) as session:
        assert insert_frame(session, "audit_log", frame) == len(texts)
        assert insert_frame(session, "audit_log", frame.clear()) == 0
    with Session(sync_engine) as session:
        rows = session.scalars(select(AuditLog).where(AuditLog.action == "bulk_test").order_by(AuditLog.id)).all()
        assert [r.object_id for r in rows] == texts  # empty text stays empty, NULL stays NULL
        assert all(r.at == AT for r in rows)
        assert [r.detail for r in rows] == [None if t is None else {"text": t} for t in texts]
        # audit_log is append-only (migration 0010): the test rows stay in this module's database.


def test_insert_frame_booleans_and_integers(sync_engine):
    frame = pl.DataFrame({"entity": ["PERSON", "ALERT"], "entity_id": [2**40, 7], "version": [1, 3],
                          "deleted": [True, False], "created_at": [AT, AT]})
    with session_scope(sync_engine) as session:
        insert_frame(session, "outbox", frame)
    with Session(sync_engine) as session:
        rows = session.execute(select(Outbox.entity_id, Outbox.version, Outbox.deleted)
                               .where(Outbox.entity_id.in_([2**40, 7])).order_by(Outbox.entity_id)).all()
        assert rows == [(7, 3, False), (2**40, 1, True)]
        session.execute(delete(Outbox).where(Outbox.entity_id.in_([2**40, 7])))
        session.commit()


@pytest.mark.parametrize("size", [0, 1, 70_000])
def test_any_of_binds_any_number_of_keys_as_one_parameter(sync_engine, size):
    """70,000 keys: more than SQLite's 32,766 and PostgreSQL's 65,535 bound parameters allow as an IN list."""
    with Session(sync_engine) as session:
        codes = session.scalars(select(Region.code).order_by(Region.code).limit(max(size - 5, 0))).all()
        keys = list(codes) + [f"no-such-{i}" for i in range(size - len(codes))]
        dialect = dialect_of(session)
        found = session.scalars(select(Region.code).where(any_of(Region.code, keys, dialect))).all()
        assert sorted(found) == sorted(codes)
        lengths = session.scalars(select(func.count()).select_from(Region)
                                  .where(any_of(func.length(Region.code), [2, 4], dialect))).one()
        assert lengths == session.scalars(select(func.count()).select_from(Region)
                                          .where(Region.level.in_(["PROVINCE", "CITY"]))).one()


def test_lock_for_writing_makes_a_second_batch_wait_and_then_see_the_first(sync_engine):
    """Two batches that each read (is my row there?) then write: the second reads only after the first commits."""
    marker = "lock-test"
    first_locked = threading.Event()
    seen_by_second: list[int] = []

    def first():
        with session_scope(sync_engine) as session:
            lock_for_writing(session, ["audit_log"])
            first_locked.set()
            time.sleep(0.5)
            insert_frame(session, "audit_log", pl.DataFrame({
                "at": [AT], "actor": ["first"], "action": [marker], "object_type": ["thing"]}))

    def second():
        first_locked.wait(5)
        with session_scope(sync_engine) as session:
            lock_for_writing(session, ["audit_log"])
            seen_by_second.append(session.scalar(select(func.count()).select_from(AuditLog)
                                                 .where(AuditLog.action == marker)))

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert seen_by_second == [1]  # (audit_log is append-only: the row stays)


def test_update_frame_sets_columns_by_key(sync_engine):
    frame = pl.DataFrame({"entity": ["PERSON"] * 3, "entity_id": [9_001, 9_002, 9_003], "version": [1, 1, 1],
                          "deleted": [False] * 3, "created_at": [AT] * 3})
    with session_scope(sync_engine) as session:
        insert_frame(session, "outbox", frame)
        ids = session.scalars(select(Outbox.id).where(Outbox.entity_id.in_([9_001, 9_002, 9_003]))
                              .order_by(Outbox.entity_id)).all()
    later = AT + dt.timedelta(hours=1)
    with session_scope(sync_engine) as session:
        assert update_frame(session, "outbox", pl.DataFrame({
            "id": ids[:2], "version": [5, 6], "deleted": [True, False], "processed_at": [later, None]})) == 2
        assert update_frame(session, "outbox", pl.DataFrame(schema={"id": pl.Int64, "version": pl.Int64})) == 0
    with Session(sync_engine) as session:
        rows = session.execute(select(Outbox.entity_id, Outbox.version, Outbox.deleted, Outbox.processed_at)
                               .where(Outbox.id.in_(ids)).order_by(Outbox.entity_id)).all()
        assert rows == [(9_001, 5, True, later), (9_002, 6, False, None), (9_003, 1, False, None)]
        session.execute(delete(Outbox).where(Outbox.id.in_(ids)))
        session.commit()


def test_both_helpers_work_in_an_async_session(sync_engine):
    """The server's sessions run on aiosqlite / psycopg's async connection, which have no synchronous cursor:
    the helpers write through SQLAlchemy's adapted cursor there, with the same values."""
    url = sync_engine.url.render_as_string(hide_password=False)
    frame = pl.DataFrame({"entity": ["PERSON"] * 2, "entity_id": [9_101, 9_102], "version": [1, 1],
                          "deleted": [False, True], "created_at": [AT] * 2})

    async def go() -> None:
        engine = make_async_engine(url)
        async with async_session_factory(engine)() as session:
            def write(sync_session: Session) -> None:
                assert insert_frame(sync_session, "outbox", frame) == 2
                ids = sync_session.scalars(select(Outbox.id).where(Outbox.entity_id.in_([9_101, 9_102]))
                                           .order_by(Outbox.entity_id)).all()
                assert update_frame(sync_session, "outbox", pl.DataFrame({"id": ids[:1], "version": [4]})) == 1
            await session.run_sync(write)
            await session.commit()
        await engine.dispose()

    asyncio.run(go())
    with Session(sync_engine) as session:
        rows = session.execute(select(Outbox.entity_id, Outbox.version, Outbox.deleted, Outbox.created_at)
                               .where(Outbox.entity_id.in_([9_101, 9_102])).order_by(Outbox.entity_id)).all()
        assert rows == [(9_101, 4, False, AT), (9_102, 1, True, AT)]
        session.execute(delete(Outbox).where(Outbox.entity_id.in_([9_101, 9_102])))
        session.commit()
