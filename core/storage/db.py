"""Database engines and session boundaries for SQLite (embedded default) and PostgreSQL.

The same models and queries run on both. SQLite connections get WAL journaling and foreign keys on every
connect; PostgreSQL goes through psycopg 3 for both the synchronous engine (CLI, batch jobs, migrations)
and the asynchronous one (the GraphQL server). Sessions are owned by the boundary that opens them (a
request, a CLI command, a job); repositories and services never commit.
"""

from __future__ import annotations

import threading
from pathlib import Path
from collections.abc import AsyncIterator, Iterator
from typing import Any
from contextlib import asynccontextmanager, contextmanager

from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.engine import make_url, URL
from sqlalchemy.exc import DBAPIError
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


SQLITE_PAGE_SIZE = 16384
"""The page size of a SQLite database this project creates (SQLite's default is 4096). Set on every connect
before anything else, it takes effect only when the file is new and empty: a database that exists keeps its page
size (``aidgraph copy-db`` writes a copy with this one). Why 16 KiB: a month's items go into indexes ordered by
person and by household, between the months before, so every leaf of those indexes takes a few entries and
splits; fewer, larger pages mean fewer splits and a shallower tree. Measured (bench/README.md, "16 KiB pages"):
a month of 1,000,000 person-ordered items into ``economic_item``'s table and indexes holding 13 months grown month
by month, 10.80 s at 16 KiB against 13.58 s at 4 KiB (``bench/bench_page_size.py``); the benchmark province's income
file stored in 34.7 s against 40.8 s. What it costs: a write to a few scattered rows rewrites larger pages (the
small files' stores and a flag set on 150,000 persons, 2.7 s longer together in that month)."""


SQLITE_PAGE_SIZES = frozenset(2 ** n for n in range(9, 17))
"""The page sizes SQLite takes."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # First: only a file with no page written yet takes it (in WAL mode, before the journal mode is set).
    cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    # 256 MiB of page cache per connection (the default is 2 MiB), allocated only as pages are read: on a
    # province-sized file the batch jobs' index inserts and lookups otherwise cost a system call per page.
    cursor.execute("PRAGMA cache_size=-262144")
    cursor.close()


def copy_sqlite(engine: Engine, target: Path, page_size: int = SQLITE_PAGE_SIZE) -> None:
    """A copy of ``engine``'s SQLite database written to ``target``, a new file, with ``page_size`` bytes a page
    (SQLite's ``VACUUM INTO``): how a database made before :data:`SQLITE_PAGE_SIZE`, or with another page size,
    takes it. The copy is one consistent snapshot, taken while other connections may go on reading and writing
    (what they commit after it began is not in the copy); its tables and indexes are rebuilt packed. Put it in
    place of the database with the server and jobs stopped (its WAL and shared-memory files removed with it).

    Raises ``ValueError`` naming what is wrong: not a SQLite file database, a page size SQLite does not take (a
    power of two from 512 to 65536), a ``target`` that exists (never overwritten) or is the database itself, or one
    whose folder does not exist. A copy that fails part way is removed."""
    if engine.dialect.name != "sqlite" or not engine.url.database or engine.url.database == ":memory:":
        raise ValueError(f"copy_sqlite copies a SQLite database file, not {engine.url.render_as_string()}")
    if page_size not in SQLITE_PAGE_SIZES:
        raise ValueError(f"page size {page_size}: SQLite takes a power of two from 512 to 65536")
    target = Path(target).absolute()
    if target.exists():  # the database itself included
        raise ValueError(f"{target} exists: the copy is written to a new file")
    if not target.parent.is_dir():
        raise ValueError(f"{target.parent} is not a directory: the copy's folder must exist")
    try:
        with engine.connect() as conn:
            driver = conn.connection.driver_connection
            assert driver is not None
            # The size a page of the next database this connection writes without one of its own (VACUUM INTO's);
            # set back to what every pooled connection has (_sqlite_pragmas) before it returns to the pool.
            driver.execute(f"PRAGMA page_size={page_size}")
            try:
                driver.execute("VACUUM INTO ?", (str(target),))
            finally:
                driver.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
    except BaseException:
        target.unlink(missing_ok=True)  # a copy that failed part way (a full disk) is no copy
        raise


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


_WROTE = text("SELECT pg_current_xact_id_if_assigned() IS NOT NULL")


async def close_session(session: AsyncSession) -> None:
    """Close a request's session, ending an open transaction that wrote nothing with COMMIT.

    For such a transaction COMMIT and ROLLBACK are the same, but not for the driver: psycopg forgets (and
    deallocates) every statement it prepared on the connection when it rolls back, so a request that ends with
    ROLLBACK leaves the next request on that connection to parse and plan each of its statements again; with
    COMMIT, a statement sent often (a page's reads, one household's frame) is prepared after a few executions
    and then not planned again (under row-level security most of a short statement's server time is planning
    the policies). Whether the transaction wrote is asked of PostgreSQL itself (a transaction id is assigned
    at its first write, whatever statement made it), so anything written and not committed is still rolled
    back. SQLite keeps the plain close (its statement cache does not depend on how a transaction ends).
    """
    try:
        if session.in_transaction() and session.bind is not None and session.bind.dialect.name == "postgresql":
            connection = await session.connection()
            if not (await connection.execute(_WROTE)).scalar():
                await session.commit()
    except DBAPIError:
        pass  # an aborted transaction refuses both: close() rolls it back
    finally:
        await session.close()


@asynccontextmanager
async def committing(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """The enclosed work on ``session`` committed when the block ends, rolled back if it raises."""
    try:
        yield session
        await session.commit()
    except BaseException:
        await session.rollback()
        raise


@asynccontextmanager
async def read_session(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session for a few reads (a request's authentication): committed on success, rolled back on error, like
    :func:`session_scope`. Its reads end with COMMIT rather than the ROLLBACK of a bare close, which would make
    the driver forget its prepared statements (see :func:`close_session`)."""
    async with factory() as session, committing(session):
        yield session


@contextmanager
def session_scope(engine: Engine | Connection) -> Iterator[Session]:
    """One transaction for a CLI command or job: commit on success, roll back on any error. On a ``Connection``
    outside a transaction, the session's transaction is that connection's, for a job that keeps one connection
    (and what it attached) across its transactions."""
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
