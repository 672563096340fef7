"""The outbox indexer: drains pending outbox rows into the search index in bulk, losing nothing.

Services write an outbox row (entity, id, version) in the same transaction as every change that affects a
search document. The indexer reads pending rows in id order, builds the documents from the database
set-at-a-time (one statement per kind per batch), writes them with external versions, checks every bulk
item, and only then marks the rows processed. A failed item keeps its rows pending for the next pass; a
search engine that is down or slow leaves every row pending, so writes keep succeeding while the backlog
grows, and it drains when the engine returns. When the alias has vanished (a restarted in-memory engine, a
cluster that lost the index) the indexer rebuilds from the database first. A document the engine refuses
(HTTP 400: a plugin's bad field) is retried on later passes and becomes a dead letter after
``outbox_max_attempts`` of them; processed rows are purged after ``outbox_keep_hours``.

It runs in the server process as a background thread (:func:`start_background_indexer` /
:func:`stop_background_indexer`, started by :mod:`aidgraph.core.search.runtime`) and as ``aidgraph index --follow``.
Several indexers may run at once: versions make duplicate work harmless.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from opensearchpy import OpenSearch
from sqlalchemy import Engine, delete, func, select, update

from aidgraph.core.storage.models import Alert, Outbox
from aidgraph.core.search import indexes
from aidgraph.core.search.client import CLIENT_ERRORS, SearchUnavailable, unavailable_from
from aidgraph.core.search.documents import load_docs
from aidgraph.core.search.mapping import DEFAULT_ALIAS, SearchLayout, build_layout, doc_id

log = logging.getLogger("aidgraph.search.indexer")

BATCH = 2000


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class IndexMissing(Exception):
    """The alias does not exist on the search engine: the index must be rebuilt from the database."""


class IndexOutdated(IndexMissing):
    """The index behind the alias lacks fields of this release's layout: it must be rebuilt from the database
    (every handler of :class:`IndexMissing` does so). The message names the index and the fields."""

    def __init__(self, alias: str, gaps: dict[str, list[str]]):
        self.gaps = gaps
        described = "; ".join(f"{name} lacks {', '.join(fields)}" for name, fields in gaps.items())
        super().__init__(f"the index behind alias {alias} predates this release's layout ({described})")


def check_index(client: OpenSearch, alias: str, layout: SearchLayout, verified: set[str] | None = None) -> None:
    """Raise :class:`IndexMissing` when ``alias`` does not exist, :class:`IndexOutdated` when an index behind it
    lacks the layout's fields; return when the index can take this release's documents and filters.

    ``verified``: concrete indices already found to carry the layout (a caller that checks on every pass keeps
    it): their mappings are not read again, and those found current are added."""
    names = indexes.indices_of(client, alias)
    if not names:
        raise IndexMissing(alias)
    unread = [n for n in names if verified is None or n not in verified]
    gaps = indexes.layout_gaps(client, unread, layout)
    if gaps:
        raise IndexOutdated(alias, gaps)
    if verified is not None:
        verified.update(unread)


@dataclass
class DrainResult:
    rows: int = 0
    processed: int = 0
    indexed: int = 0
    deleted: int = 0
    conflicts: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    dead_letters: int = 0

    def add(self, other: "DrainResult") -> None:
        self.rows += other.rows
        self.processed += other.processed
        self.indexed += other.indexed
        self.deleted += other.deleted
        self.conflicts += other.conflicts
        self.failed.update(other.failed)
        self.dead_letters += other.dead_letters


MAX_ATTEMPTS = 5
"""Passes a refused document is retried before its outbox row becomes a dead letter (``outbox_max_attempts``)."""


def pending_clause():
    """Outbox rows still to index: not processed and not dead letters."""
    return Outbox.processed_at.is_(None) & Outbox.dead_at.is_(None)


def pending_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(Outbox).where(pending_clause())).scalar_one()


def record_refusals(engine: Engine, changes: list[tuple[int, str, int, bool]], failed: dict[str, str],
                    max_attempts: int) -> int:
    """Count one more refused pass on the outbox rows whose documents the engine refused (``failed``: document
    key -> reason); a row refused ``max_attempts`` times becomes a dead letter. Returns the dead letters made."""
    refused = [(outbox_id, failed[doc_id(kind, entity_id)]) for outbox_id, kind, entity_id, _ in changes
               if doc_id(kind, entity_id) in failed]
    if not refused:
        return 0
    now = _utcnow()
    dead = 0
    with engine.begin() as conn:
        for outbox_id, reason in refused:
            attempts = conn.execute(update(Outbox).where(Outbox.id == outbox_id, Outbox.processed_at.is_(None))
                                    .values(attempts=Outbox.attempts + 1, last_error=reason[:2000])
                                    .returning(Outbox.attempts)).scalar_one_or_none()
            if attempts is not None and attempts >= max_attempts:
                conn.execute(update(Outbox).where(Outbox.id == outbox_id).values(dead_at=now))
                dead += 1
                log.error("search outbox row %s is a dead letter after %s refused passes: %s", outbox_id, attempts,
                          reason[:200])
    return dead


def dead_letters(engine: Engine, limit: int = 100) -> list[tuple]:
    """(id, entity, entity id, attempts, last error, dead at) of the dead letters, oldest first."""
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(Outbox.id, Outbox.entity, Outbox.entity_id, Outbox.attempts, Outbox.last_error, Outbox.dead_at)
            .where(Outbox.dead_at.is_not(None)).order_by(Outbox.id).limit(limit)).all()]


def dead_letter_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(Outbox).where(Outbox.dead_at.is_not(None))).scalar_one()


def retry_dead_letters(engine: Engine) -> int:
    """Queue every dead letter again (after the cause, a plugin's document or the mapping, is fixed)."""
    with engine.begin() as conn:
        return conn.execute(update(Outbox).where(Outbox.dead_at.is_not(None))
                            .values(dead_at=None, attempts=0)).rowcount


def apply_changes(engine: Engine, client: OpenSearch, target: str, changes: list[tuple[int, str, int, bool]],
                  layout: SearchLayout, *, refresh: bool = False) -> tuple[DrainResult, list[int]]:
    """Write the current database state of the records named by outbox ``changes`` (id, kind, entity id,
    deleted) to ``target``; returns the result and the outbox ids whose documents are all written."""
    result = DrainResult(rows=len(changes))
    wanted: dict[str, set[int]] = defaultdict(set)
    deleted: set[str] = set()
    for _, kind, entity_id, is_deleted in changes:
        wanted[kind].add(entity_id)
        if is_deleted:
            deleted.add(doc_id(kind, entity_id))
    with engine.connect() as conn:
        alert_households: dict[int, int] = {}
        if wanted.get("ALERT"):
            # A changed alert changes its household's warning level: that document is rewritten too.
            alert_households = dict(conn.execute(
                select(Alert.id, Alert.household_id).where(Alert.id.in_(sorted(wanted["ALERT"])))).all())
            wanted["HOUSEHOLD"].update(alert_households.values())
        docs = {kind: load_docs(conn, kind, sorted(ids), layout) for kind, ids in wanted.items()}
    to_index = []
    to_delete = []
    for kind, ids in wanted.items():
        for entity_id in ids:
            key = doc_id(kind, entity_id)
            found = docs[kind].get(entity_id)
            if found is None or key in deleted:
                to_delete.append(key)  # the database no longer has it: nothing can resurrect it
            else:
                to_index.append(found)
    outcome = indexes.write(client, target, to_index, to_delete, refresh=refresh)
    result.indexed, result.deleted, result.conflicts = outcome.indexed, outcome.deleted, outcome.conflicts
    result.failed = outcome.failed
    done = []
    for outbox_id, kind, entity_id, _ in changes:
        if doc_id(kind, entity_id) not in outcome.ok:
            continue
        if kind == "ALERT" and entity_id in alert_households and \
                doc_id("HOUSEHOLD", alert_households[entity_id]) not in outcome.ok:
            continue
        done.append(outbox_id)
    result.processed = len(done)
    return result, done


PURGE_BATCH = 10_000
PURGE_EVERY = dt.timedelta(minutes=10)
"""How often the background indexer purges processed outbox rows."""


def purge_processed(engine: Engine, keep: dt.timedelta, *, now: dt.datetime | None = None) -> int:
    """Delete the outbox rows processed more than ``keep`` ago, in batches of :data:`PURGE_BATCH` (each its own
    short transaction, so writers are not held up); pending rows are never touched. Safe to re-run. Returns the
    number of rows deleted."""
    cutoff = (now or _utcnow()) - keep
    deleted = 0
    while True:
        with engine.begin() as conn:
            ids = conn.execute(select(Outbox.id).where(Outbox.processed_at.is_not(None), Outbox.processed_at < cutoff)
                               .order_by(Outbox.id).limit(PURGE_BATCH)).scalars().all()
            if not ids:
                return deleted
            conn.execute(delete(Outbox).where(Outbox.id.in_(ids), Outbox.processed_at.is_not(None)))
        deleted += len(ids)


def mark_processed(engine: Engine, outbox_ids: list[int]) -> None:
    if not outbox_ids:
        return
    now = _utcnow()
    with engine.begin() as conn:
        for start in range(0, len(outbox_ids), 5000):
            conn.execute(update(Outbox).where(Outbox.id.in_(outbox_ids[start:start + 5000]),
                                              Outbox.processed_at.is_(None)).values(processed_at=now))


def drain(engine: Engine, client: OpenSearch, alias: str = DEFAULT_ALIAS, layout: SearchLayout | None = None, *,
          batch: int = BATCH, refresh: bool = False, max_rows: int | None = None,
          max_attempts: int = MAX_ATTEMPTS, verified: set[str] | None = None) -> DrainResult:
    """One pass over the pending outbox, in id order, batch by batch.

    Rows whose documents failed stay pending and are retried by the next pass (not this one, so a row that
    keeps failing never starves the rows behind it); after ``max_attempts`` refused passes a row becomes a dead
    letter (:func:`record_refusals`). Raises :class:`IndexMissing` when the alias is gone (:class:`IndexOutdated`
    when its index predates the layout; ``verified`` as in :func:`check_index`) and
    :class:`SearchUnavailable` when the engine cannot be reached; nothing is marked processed then.
    """
    layout = layout or build_layout()
    total = DrainResult()
    last_id = 0
    checked_alias = False
    while max_rows is None or total.rows < max_rows:
        with engine.connect() as conn:
            rows = conn.execute(
                select(Outbox.id, Outbox.entity, Outbox.entity_id, Outbox.deleted)
                .where(pending_clause(), Outbox.id > last_id).order_by(Outbox.id).limit(batch)
            ).all()
        if not rows:
            break
        try:
            if not checked_alias:
                check_index(client, alias, layout, verified)
                checked_alias = True
            changes = [(r[0], r[1], r[2], r[3]) for r in rows]
            result, done = apply_changes(engine, client, alias, changes, layout, refresh=refresh)
        except CLIENT_ERRORS as e:
            raise unavailable_from(e) from e
        mark_processed(engine, done)
        result.dead_letters = record_refusals(engine, changes, result.failed, max_attempts)
        total.add(result)
        last_id = rows[-1][0]
        if len(rows) < batch:
            break
    return total


class BackgroundIndexer:
    """A daemon thread that drains the outbox every ``interval`` seconds (sooner after :meth:`wake`).

    While the engine is unavailable it waits with a doubling back-off up to ``max_backoff`` seconds; when
    the alias is missing it calls ``rebuild`` (a full reindex from the database) before draining. With
    ``keep``, it also purges the outbox rows processed more than ``keep`` ago, every :data:`PURGE_EVERY`, so the
    table does not grow with every write ever made.
    """

    def __init__(self, engine: Engine, client: OpenSearch, alias: str = DEFAULT_ALIAS,
                 layout: SearchLayout | None = None, *, interval: float = 1.0, max_backoff: float = 5.0,
                 rebuild: Callable[[], object] | None = None, refresh: bool = False,
                 keep: dt.timedelta | None = None, max_attempts: int = MAX_ATTEMPTS):
        self.engine = engine
        self.client = client
        self.alias = alias
        self.layout = layout or build_layout()
        self.interval = interval
        self.max_backoff = max_backoff
        self.rebuild = rebuild
        self.refresh = refresh
        self.keep = keep
        self.max_attempts = max_attempts
        self.purged = 0
        self._last_purge: dt.datetime | None = None
        self.last_error: str | None = None
        self.last_result: DrainResult | None = None
        self.passes = 0
        self.rebuilds = 0
        self.outdated: str | None = None
        """Why the index behind the alias cannot serve this release's searches while it is rebuilt, or None."""
        self._verified: set[str] = set()
        """Concrete indices whose mapping was found to carry the layout: not read again on every pass."""
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="aidgraph-search-indexer", daemon=True)

    def start(self) -> "BackgroundIndexer":
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def run_once(self) -> DrainResult:
        # The engine may have come back empty (an in-memory engine restarted, a lost index), or hold an index an
        # earlier release built: check on every pass, even with an empty outbox, so search recovers without
        # waiting for a write.
        if self.rebuild is not None:
            try:
                check_index(self.client, self.alias, self.layout, self._verified)
            except IndexMissing as e:
                self._rebuild(e)
        try:
            result = drain(self.engine, self.client, self.alias, self.layout, refresh=self.refresh,
                           max_attempts=self.max_attempts, verified=self._verified)
        except IndexMissing as e:
            if self.rebuild is None:
                raise
            self._rebuild(e)
            result = drain(self.engine, self.client, self.alias, self.layout, refresh=self.refresh,
                           max_attempts=self.max_attempts, verified=self._verified)
        now = _utcnow()
        if self.keep is not None and (self._last_purge is None or now - self._last_purge >= PURGE_EVERY):
            self.purged += purge_processed(self.engine, self.keep, now=now)
            self._last_purge = now
        return result

    def _rebuild(self, reason: IndexMissing) -> None:
        if isinstance(reason, IndexOutdated):
            # Until the new index is behind the alias, the old one would answer this release's scope filter
            # wrongly: searches say SEARCH_UNAVAILABLE meanwhile (see SearchRuntime.search).
            self.outdated = str(reason)
            log.warning("%s: rebuilding the index from the database", reason)
        else:
            log.warning("search alias %s is missing: rebuilding the index from the database", self.alias)
        assert self.rebuild is not None
        self.rebuild()
        self.rebuilds += 1
        self.outdated = None

    def _run(self) -> None:
        delay = self.interval
        while not self._stop.is_set():
            try:
                self.last_result = self.run_once()
                self.passes += 1
                if self.last_error:
                    log.warning("search indexer recovered")
                self.last_error = None
                delay = self.interval
            except (SearchUnavailable, IndexMissing, *CLIENT_ERRORS) as e:
                self.last_error = str(e) or type(e).__name__
                log.warning("search indexer: %s; retrying in %.1f s", self.last_error, delay)
                delay = min(max(delay * 2, self.interval), self.max_backoff)
            except Exception as e:  # noqa: BLE001 - the thread must survive anything and keep rows pending
                self.last_error = f"{type(e).__name__}: {e}"
                log.exception("search indexer pass failed")
                delay = min(max(delay * 2, self.interval), self.max_backoff)
            self._wake.wait(delay)
            self._wake.clear()


def start_background_indexer(engine: Engine, client: OpenSearch, alias: str = DEFAULT_ALIAS,
                             layout: SearchLayout | None = None, **kwargs) -> BackgroundIndexer:
    """Start draining the outbox in a background thread; stop it with :func:`stop_background_indexer`."""
    return BackgroundIndexer(engine, client, alias, layout, **kwargs).start()


def stop_background_indexer(indexer: BackgroundIndexer | None, timeout: float = 30.0) -> None:
    if indexer is not None:
        indexer.stop(timeout)


def follow(engine: Engine, client: OpenSearch, alias: str, layout: SearchLayout, *, interval: float = 1.0,
           on_pass: Callable[[DrainResult | None, str | None], None] | None = None,
           stop: threading.Event | None = None, rebuild: Callable[[], object] | None = None) -> None:
    """``aidgraph index --follow``: drain forever (until ``stop`` is set), reporting each pass."""
    stop = stop or threading.Event()
    delay = interval
    while not stop.is_set():
        try:
            try:
                result = drain(engine, client, alias, layout)
            except IndexMissing:
                if rebuild is None:
                    raise
                rebuild()
                result = drain(engine, client, alias, layout)
            if on_pass:
                on_pass(result, None)
            delay = interval
        except (SearchUnavailable, IndexMissing) as e:
            if on_pass:
                on_pass(None, str(e) or type(e).__name__)
            delay = min(delay * 2, 30.0)
        stop.wait(delay)
