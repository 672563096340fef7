"""The server's own upkeep of the monthly partitions (按月分区, PostgreSQL): months are made before rows need them.

Why: the history tables ``economic_item`` and ``feed_record`` are partitioned by month
(:mod:`aidgraph.core.storage.partitions`). The feed import and the seeder create the months they write, but rows
also arrive one at a time through the API (``recordEconomicItem``), which runs as the application role and may
not create tables: a month nobody imported into lands in the default partition, where the monthly reads find
it only by scanning that partition. ``aidgraph partitions ensure`` fixes that when someone runs it; this keeper
runs the same work (:func:`aidgraph.core.storage.partitions.keep_ahead`) from the server itself, at start and
every ``partition_check_minutes`` (``AIDGRAPH_PARTITION_CHECK_MINUTES``, default 6 hours), so that no cron
entry has to be remembered.

It connects with the server's database URL as given, that is as the tables' owner (the request connections
``SET ROLE`` to the application role; this engine does not). Creating a partition locks the partitioned table
against readers until its transaction ends, and would queue every request behind a long reader (a monitoring
run) while it waits for its lock: each table's transaction therefore runs with a short ``lock_timeout`` and,
when it cannot have the lock at once, gives up and tries again after ``retry_seconds``. A deployment that logs
the server in as a role that may not create tables gets a warning naming the command to run instead. SQLite
has no partitions: nothing is started there.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import make_url, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from aidgraph.core.storage.db import make_sync_engine
from aidgraph.core.storage.partitions import PARTITIONED, keep_ahead

log = logging.getLogger("aidgraph.partitions")

LOCK_TIMEOUT_MS = 1000
"""How long one pass waits for a table's lock before giving up until the retry (an engineering setting)."""
SERVICE = "partition_keeper"
"""The keeper's name among the server's optional components (``AppComponents.services``)."""
RETRY_SECONDS = 300.0
"""When a pass could not finish (a lock not had, the database away), the next try comes after this long."""


class PartitionKeeper:
    """A daemon thread that keeps the months ahead (and the months stranded in the default partitions) made.

    ``run_once`` is one pass over every partitioned table, each in a transaction of its own; ``created`` and
    ``moved`` add up what the passes did, ``last_error`` holds why the last pass failed (``None`` after one
    that did not).
    """

    def __init__(self, engine: Engine, *, every_seconds: float, retry_seconds: float = RETRY_SECONDS,
                 lock_timeout_ms: int = LOCK_TIMEOUT_MS, today: Callable[[], dt.date] = dt.date.today):
        self.engine = engine
        self.every_seconds = every_seconds
        self.retry_seconds = retry_seconds
        self.lock_timeout_ms = int(lock_timeout_ms)
        self.today = today
        self.created: list[str] = []
        self.moved = 0
        self.passes = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="aidgraph-partition-keeper", daemon=True)

    def start(self) -> "PartitionKeeper":
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def run_once(self) -> bool:
        """One pass; True when every table is done, False (and ``last_error`` set) when one had to wait."""
        day = self.today()
        for table in PARTITIONED:
            try:
                with self.engine.begin() as conn:
                    conn.execute(text(f"SET LOCAL lock_timeout = {self.lock_timeout_ms}"))
                    done = keep_ahead(conn, table, day)
            except DBAPIError as e:
                code = getattr(e.orig, "sqlstate", None)
                if code == "55P03":  # lock_not_available: a reader holds the table; never queue requests behind us
                    self.last_error = f"{table}: its lock was not free within {self.lock_timeout_ms} ms"
                elif code == "42501":  # insufficient_privilege: the server does not log in as the tables' owner
                    self.last_error = (f"{table}: the server's database role may not create partitions; run "
                                       "`aidgraph partitions ensure` as the tables' owner (e.g. monthly)")
                else:
                    self.last_error = f"{table}: {type(e.orig).__name__}: {str(e.orig).splitlines()[0]}"
                log.warning("monthly partitions: %s; trying again in %.0f s", self.last_error, self.retry_seconds)
                return False
            self.created += done.created
            self.moved += done.moved
            if done.created:
                log.info("monthly partitions of %s created: %s (%d rows moved from the default partition)",
                         table, ", ".join(done.created), done.moved)
        self.passes += 1
        self.last_error = None
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                ok = self.run_once()
            except Exception as e:  # noqa: BLE001 - the thread must outlive a database that is away
                self.last_error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                log.warning("monthly partitions: %s; trying again in %.0f s", self.last_error, self.retry_seconds)
                ok = False
            self._stop.wait(self.every_seconds if ok else self.retry_seconds)


def install(components: Any) -> None:
    """Start a :class:`PartitionKeeper` with the server (PostgreSQL only) and stop it with the server."""

    async def startup(c: Any) -> None:
        settings = c.settings
        if make_url(settings.database_url).get_backend_name() != "postgresql":
            return
        engine = make_sync_engine(settings.database_url, pool_size=1, max_overflow=0)
        c.services[SERVICE] = PartitionKeeper(engine, every_seconds=60.0 * settings.partition_check_minutes).start()

    async def shutdown(c: Any) -> None:
        keeper = c.services.pop(SERVICE, None)
        if keeper is not None:
            await asyncio.to_thread(keeper.stop)
            keeper.engine.dispose()

    components.on_startup.append(startup)
    components.on_shutdown.append(shutdown)
