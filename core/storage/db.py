"""Database engines and session boundaries for SQLite (embedded default) and PostgreSQL.

The same models and queries run on both. SQLite connections get WAL journaling and foreign keys on every
connect; PostgreSQL goes through psycopg 3 for both the synchronous engine (CLI, batch jobs, migrations)
and the asynchronous one (the GraphQL server). Sessions are owned by the boundary that opens them (a
request, a CLI command, a job); repositories and services never commit.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any
from contextlib import contextmanager

from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url, URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker


def sync_url(url: str) -> URL:
    """The URL with the synchronous driver this project uses for that backend."""
    u = make_url(url)
    if u.get_backend_name() == "postgresql":
        return u.set(drivername="postgresql+psycopg")
    if u.get_backend_name() == "sqlite":
        return u.set(drivername="sqlite+pysqlite")
    raise ValueError(f"unsupported database {u.get_backend_name()!r}: use sqlite:/// or postgresql://")


def async_url(url: str) -> URL:
    """The URL with the asynchronous driver this project uses for that backend."""
    u = make_url(url)
    if u.get_backend_name() == "postgresql":
        return u.set(drivername="postgresql+psycopg")
    if u.get_backend_name() == "sqlite":
        return u.set(drivername="sqlite+aiosqlite")
    raise ValueError(f"unsupported database {u.get_backend_name()!r}: use sqlite:/// or postgresql://")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    # 256 MiB of page cache per connection (the default is 2 MiB), allocated only as pages are read: on a
    # province-sized file the batch jobs' index inserts and lookups otherwise cost a system call per page.
    cursor.execute("PRAGMA cache_size=-262144")
    cursor.close()


def make_sync_engine(url: str, **kwargs: Any) -> Engine:
    u = sync_url(url)
    if u.get_backend_name() == "sqlite":
        kwargs.setdefault("connect_args", {"timeout": 30})
    engine = create_engine(u, **kwargs)
    if u.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def make_async_engine(url: str, **kwargs: Any) -> AsyncEngine:
    u = async_url(url)
    if u.get_backend_name() == "sqlite":
        kwargs.setdefault("connect_args", {"timeout": 30})
    else:
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 10)
    engine = create_async_engine(u, **kwargs)
    if u.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def async_session_factory(engine: AsyncEngine, info: dict[str, Any] | None = None) -> async_sessionmaker[AsyncSession]:
    """Sessions on ``engine``; ``info`` goes into every session's ``Session.info`` (a request's row-level scope,
    :func:`aidgraph.core.storage.rls.session_info`)."""
    if info is None:
        return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False, info=info)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction for a CLI command or job: commit on success, roll back on any error."""
    factory = sessionmaker(engine, expire_on_commit=False)
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


class StatementCounter:
    """Counts SQL statements sent through an engine (used by the N+1 tests and the benchmarks)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.count = 0
        self.statements: list[str] = []
        self._lock = threading.Lock()

    def _on_execute(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                    executemany: bool) -> None:
        with self._lock:
            self.count += 1
            self.statements.append(statement)

    def __enter__(self) -> "StatementCounter":
        event.listen(self.engine, "before_cursor_execute", self._on_execute)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._on_execute)

    def reset(self) -> None:
        with self._lock:
            self.count = 0
            self.statements.clear()
