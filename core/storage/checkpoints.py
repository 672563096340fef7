"""SQLite's checkpoints run beside a bulk job instead of inside its commits (WAL mode).

Why this module exists: in WAL mode a commit appends the pages it changed to the write-ahead log, and once the
log holds more than ``wal_autocheckpoint`` pages (1,000 by default) the committing connection copies the log
back into the database file and syncs the file before its commit returns. A feed import's batch changes
hundreds of megabytes of index pages on a province-sized file, so each batch waited for a checkpoint of its own:
profiled on the 5,000,000-person benchmark province, the income file's commits took 10.6 s and the
hospitalisation file's 3.6 s. With the checkpoints beside them, the month's seven files imported in 97.2 s and
103.1 s against 105.5-115.5 s (the stores of the two files 49.2-49.5 s and 6.0-6.3 s against 55.3-56.9 s and
8.4-9.9 s; bench/README.md).

:func:`background_checkpoints` turns the automatic checkpoint off on the engine's connections while a job runs
and runs the checkpoints on a thread with a connection of its own, every :data:`INTERVAL` seconds, while the job
goes on. They are PASSIVE checkpoints: they never wait for or block a reader or the writer, and copy what no
reader still needs. When the last job leaves, one last checkpoint runs in its thread, so what the job wrote is
in the database file when it returns, as it was with automatic checkpoints, and the log is truncated when
nothing else is using the database. Nothing happens on PostgreSQL, or on SQLite not in WAL mode or in memory.

The durability is unchanged: a commit is in the log (``synchronous=NORMAL``, :mod:`aidgraph.core.storage.db`)
whether or not a checkpoint has copied it yet, and a database opened after a crash reads the log.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, event

log = logging.getLogger(__name__)

INTERVAL = 0.25
"""Seconds between two background checkpoints. A checkpoint with nothing new to copy costs microseconds."""

_SETTING = "aidgraph_wal_autocheckpoint"
"""Key in a pooled connection's ``info``: the ``wal_autocheckpoint`` it was last given by :func:`_listen`'s listener."""
_ORIGINAL = "aidgraph_wal_autocheckpoint_original"
"""Key in a pooled connection's ``info``: its ``wal_autocheckpoint`` before any job turned it off."""


@dataclass
class Checkpoints:
    """The background checkpoints of one engine, shared by the jobs running on it."""

    database: str
    users: int = 0
    runs: int = 0
    """Background checkpoints run so far."""
    frames: int = 0
    """Log frames (pages) the last checkpoint found copied into the database file."""
    failures: int = 0
    """Checkpoints that raised (logged; the final one and SQLite's own later ones copy what they left)."""
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    connection: sqlite3.Connection | None = None

    def run_once(self) -> tuple[int, int, int]:
        """One PASSIVE checkpoint: (busy, frames in the log, frames copied into the database file)."""
        assert self.connection is not None
        busy, frames, copied = self.connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.runs += 1
        self.frames = copied
        return busy, frames, copied

    def _loop(self) -> None:
        while not self.stop.wait(INTERVAL):
            try:
                self.run_once()
            except sqlite3.Error as exc:
                self.failures += 1
                log.warning("background checkpoint of %s failed: %s", self.database, exc)


_lock = threading.Lock()
_engines: "weakref.WeakKeyDictionary[Engine, Checkpoints]" = weakref.WeakKeyDictionary()
_listening: "weakref.WeakSet[Engine]" = weakref.WeakSet()


def _deferring(engine: Engine) -> bool:
    state = _engines.get(engine)
    return state is not None and state.users > 0


def _listen(engine: Engine) -> None:
    """Give every connection checked out of ``engine``'s pool the automatic checkpoint the moment wants: off
    while a job of :func:`background_checkpoints` runs, its own value otherwise (a connection already checked
    out when the last job leaves gets its value back at its next checkout)."""
    if engine in _listening:
        return

    def checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if _ORIGINAL not in record.info:
            record.info[_ORIGINAL] = dbapi_connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
            record.info[_SETTING] = record.info[_ORIGINAL]
        wanted = 0 if _deferring(engine) else record.info[_ORIGINAL]
        if record.info[_SETTING] != wanted:
            dbapi_connection.execute(f"PRAGMA wal_autocheckpoint={int(wanted)}")
            record.info[_SETTING] = wanted

    event.listen(engine, "checkout", checkout)
    _listening.add(engine)


def _wal_database(engine: Engine) -> str | None:
    """The file of ``engine``'s database when it is SQLite in WAL mode, else None."""
    if engine.dialect.name != "sqlite":
        return None
    with engine.connect() as conn:
        mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
        main = [row for row in conn.exec_driver_sql("PRAGMA database_list").all() if row[1] == "main"]
    if str(mode).lower() != "wal" or not main or not main[0][2]:
        return None
    return str(main[0][2])


@contextmanager
def background_checkpoints(engine: Engine) -> Iterator[Checkpoints | None]:
    """While the block runs, ``engine``'s commits leave the checkpoints to a thread of their own (module
    docstring); yields the engine's :class:`Checkpoints`, shared with any other job in the block at the same
    time, or None when there is nothing to do (not SQLite in WAL mode)."""
    database = _wal_database(engine)
    if database is None:
        yield None
        return
    with _lock:
        _listen(engine)
        state = _engines.get(engine)
        if state is None or state.users == 0:
            state = Checkpoints(database)
            state.connection = sqlite3.connect(database, check_same_thread=False, isolation_level=None)
            state.thread = threading.Thread(target=state._loop, name="sqlite-checkpoints", daemon=True)
            _engines[engine] = state
            state.thread.start()
        state.users += 1
    try:
        yield state
    finally:
        with _lock:
            state.users -= 1
            last = state.users == 0
            if last:
                _finish(state)


def _finish(state: Checkpoints) -> None:
    """The last job has left: stop the thread, copy what is left into the database file, and truncate the log
    if nothing else is using the database right now (no waiting: ``busy_timeout`` 0)."""
    state.stop.set()
    assert state.thread is not None and state.connection is not None
    state.thread.join()
    try:
        busy, frames, copied = state.run_once()
        if not busy and frames == copied:
            state.connection.execute("PRAGMA busy_timeout=0")
            state.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except sqlite3.Error as exc:
        # The job's writes are committed; the next commit's automatic checkpoint copies what this one left.
        state.failures += 1
        log.warning("final checkpoint of %s failed: %s", state.database, exc)
    finally:
        state.connection.close()
