"""``aidgraph reindex`` and ``aidgraph index --verify``: the index rebuilt from, or checked against, the database.

Reindex streams every searchable row (one statement per kind, a server-side cursor on PostgreSQL) into a
new concrete index with refresh off, then moves the alias to it in one request. A reader thread builds the
next batch of documents while the previous one is being indexed. Changes committed while it
ran are not lost: the outbox rows written or processed since it started are applied again to the new index
after the swap (external versions make repeats harmless), and rows still pending are the indexer's as usual.

Verify reads (id, version) of every row of a kind from the database and (entity_id, _version) of every
document of that kind from the index (``search_after`` over ``entity_id``), compares them as numpy arrays,
and repairs: documents missing or older are rewritten from the database, documents of rows that no longer
exist are deleted. Documents ahead of the database (a restored database) cannot be lowered with external
versions, so when there are any the repair is a full reindex.
"""

from __future__ import annotations

import datetime as dt
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
from opensearchpy import OpenSearch
from sqlalchemy import Engine, func, or_, select

from aidgraph.core.storage.identity import database_identity
from aidgraph.core.storage.models import Outbox
from aidgraph.core.search import indexes
from aidgraph.core.search.indexes import owners_of
from aidgraph.core.search.documents import MODELS, load_docs, stream_docs, version_statement
from aidgraph.core.search.indexer import apply_changes
from aidgraph.core.search.mapping import DEFAULT_ALIAS, KINDS, SearchLayout, build_layout, doc_id

Progress = Callable[[str, int], None]
"""progress(kind, documents written since the last call)."""


class ReindexError(RuntimeError):
    """Documents the engine refused while building a new index; the alias was not moved."""


class ForeignIndexError(RuntimeError):
    """The index behind the alias was built from another database (or its owner is unknown and the operation
    would change it): nothing was touched. ``--force`` overrides, after the operator has checked."""


class RepairTooLarge(RuntimeError):
    """A repair would delete more than the configured share of the index: nothing was touched."""


def check_owner(engine: Engine, client: OpenSearch, alias: str, *, unmarked_ok: bool) -> str:
    """This database's identity, after checking that every index behind ``alias`` was built from it.

    An index stamped by another database raises :class:`ForeignIndexError` naming both ids. An index without a
    stamp (built before stamps existed) passes only where ``unmarked_ok`` (a reindex, which replaces it with a
    stamped one; not a repair, which would write this database's image into it).
    """
    mine = database_identity(engine)
    for name, owner in owners_of(client, alias).items():
        if owner is None and not unmarked_ok:
            raise ForeignIndexError(f"index {name} (alias {alias}) carries no database identity, so it cannot be "
                                    f"shown to be this database's ({mine}): rebuild it with `aidgraph reindex` from "
                                    "the installation that serves it, or give --force")
        if owner is not None and owner != mine:
            raise ForeignIndexError(f"index {name} (alias {alias}) was built from database {owner}, not from this "
                                    f"one ({mine}): check AIDGRAPH_DATABASE_URL and the search engine's address "
                                    "(AIDGRAPH_OPENSEARCH_URL, or the state directory's embedded engine); nothing "
                                    "was changed")
    return mine


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


@dataclass
class ReindexResult:
    index: str
    counts: dict[str, int]
    seconds: float
    replaced: list[str]
    caught_up: int

    @property
    def documents(self) -> int:
        return sum(self.counts.values())


def row_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {kind: conn.execute(select(func.count()).select_from(MODELS[kind])).scalar_one() for kind in KINDS}


def reindex(engine: Engine, client: OpenSearch, alias: str = DEFAULT_ALIAS, layout: SearchLayout | None = None, *,
            batch: int = 5000, progress: Progress | None = None, keep_old: bool = False,
            kinds: tuple[str, ...] = KINDS, force: bool = False) -> ReindexResult:
    """Build a new index from the database and swap ``alias`` to it (see the module docstring).

    Refuses (:class:`ForeignIndexError`) when the alias points at another database's index, unless ``force``;
    the new index is stamped with this database's identity."""
    layout = layout or build_layout()
    owner = database_identity(engine) if force else check_owner(engine, client, alias, unmarked_ok=True)
    started_clock = time.perf_counter()
    started = _utcnow()
    with engine.connect() as conn:
        high_water = conn.execute(select(func.coalesce(func.max(Outbox.id), 0))).scalar_one()
    name = indexes.create_index(client, alias, layout, bulk_load=True, owner=owner)
    counts: dict[str, int] = {kind: 0 for kind in kinds}
    try:
        for kind, docs in _prefetched(engine, kinds, batch, layout):
            outcome = indexes.write(client, name, docs, chunk_size=batch)
            if outcome.failed:
                sample = "; ".join(f"{k}: {v}" for k, v in list(outcome.failed.items())[:3])
                raise ReindexError(f"{len(outcome.failed)} {kind.lower()} document(s) refused: {sample}")
            counts[kind] += len(docs)
            if progress:
                progress(kind, len(docs))
        indexes.finish_bulk_load(client, name)
    except BaseException:
        client.indices.delete(index=name, ignore_unavailable=True)
        raise
    replaced = indexes.swap_alias(client, alias, name)
    caught_up = catch_up(engine, client, alias, layout, high_water, started)
    if not keep_old:
        for old in replaced:
            client.indices.delete(index=old, ignore_unavailable=True)
    return ReindexResult(name, counts, time.perf_counter() - started_clock, replaced, caught_up)


def _prefetched(engine: Engine, kinds: tuple[str, ...], batch: int, layout: SearchLayout
                ) -> Iterator[tuple[str, list]]:
    """(kind, documents) batches, read and built by a worker thread while the previous batch is being sent,
    so the database read and the engine's indexing overlap instead of taking turns."""
    out: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for kind in kinds:
                with engine.connect() as conn:
                    for docs in stream_docs(conn, kind, batch, layout):
                        while not stop.is_set():
                            try:
                                out.put((kind, docs), timeout=0.5)
                                break
                            except queue.Full:
                                continue
                        if stop.is_set():
                            return
            out.put(done)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, which raises it
            out.put(e)

    worker = threading.Thread(target=produce, name="aidgraph-reindex-reader", daemon=True)
    worker.start()
    try:
        while True:
            item = out.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join(timeout=30)


def catch_up(engine: Engine, client: OpenSearch, alias: str, layout: SearchLayout, high_water: int,
             since: dt.datetime, batch: int = 2000) -> int:
    """Apply again every outbox row written after ``high_water`` or processed since ``since``."""
    applied = 0
    last = 0
    while True:
        with engine.connect() as conn:
            rows = conn.execute(
                select(Outbox.id, Outbox.entity, Outbox.entity_id, Outbox.deleted)
                .where(Outbox.id > last, or_(Outbox.id > high_water, Outbox.processed_at >= since))
                .order_by(Outbox.id).limit(batch)).all()
        if not rows:
            return applied
        apply_changes(engine, client, alias, [(r[0], r[1], r[2], r[3]) for r in rows], layout)
        applied += len(rows)
        last = rows[-1][0]


@dataclass
class KindCheck:
    kind: str
    in_database: int = 0
    in_index: int = 0
    missing: int = 0
    stale: int = 0
    ahead: int = 0
    extra: int = 0
    repaired: int = 0
    blocked: int = 0
    """Missing documents a recent delete's version kept out (repaired by a reindex)."""
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def differences(self) -> int:
        return self.missing + self.stale + self.ahead + self.extra


@dataclass
class VerifyResult:
    kinds: dict[str, KindCheck]
    reindexed: ReindexResult | None = None
    outdated: dict[str, list[str]] = field(default_factory=dict)
    """Indices behind the alias whose mapping lacks this release's fields (repaired by a reindex)."""

    @property
    def differences(self) -> int:
        return sum(k.differences for k in self.kinds.values()) + len(self.outdated)


def database_versions(engine: Engine, kind: str, batch: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
    ids: list[np.ndarray] = []
    versions: list[np.ndarray] = []
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=batch).execute(version_statement(kind))
        for part in result.partitions(batch):
            arr = np.asarray(part, dtype=np.int64).reshape(-1, 2)
            ids.append(arr[:, 0])
            versions.append(arr[:, 1])
    if not ids:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(ids), np.concatenate(versions)


def index_versions(client: OpenSearch, alias: str, kind: str, page: int = 10_000) -> tuple[np.ndarray, np.ndarray]:
    ids: list[int] = []
    versions: list[int] = []
    after = None
    while True:
        body = {"query": {"term": {"kind": kind}}, "sort": [{"entity_id": "asc"}], "size": page,
                "_source": False, "version": True, "track_total_hits": False}
        if after is not None:
            body["search_after"] = after
        hits = client.search(index=alias, body=body)["hits"]["hits"]
        for h in hits:
            ids.append(int(h["sort"][0]))
            versions.append(int(h["_version"]))
        if len(hits) < page:
            break
        after = hits[-1]["sort"]
    return np.asarray(ids, dtype=np.int64), np.asarray(versions, dtype=np.int64)


def verify(engine: Engine, client: OpenSearch, alias: str = DEFAULT_ALIAS, layout: SearchLayout | None = None, *,
           repair: bool = True, batch: int = 2000, max_delete_share: float = 0.1, force: bool = False
           ) -> VerifyResult:
    """Compare ids and versions of every kind between database and index; repair differences if asked.

    Never touches another database's index (:func:`check_owner`; with ``repair``, an unstamped one neither),
    and never repairs by deleting more than ``max_delete_share`` of the index's documents (documents of rows
    the database does not have): :class:`RepairTooLarge`, nothing changed. ``force`` lifts both, for an operator who has checked.
    """
    layout = layout or build_layout()
    if not force:
        check_owner(engine, client, alias, unmarked_ok=not repair)
    client.indices.refresh(index=alias)
    checks: dict[str, KindCheck] = {}
    plans = []
    for kind in KINDS:
        db_ids, db_versions = database_versions(engine, kind)
        ix_ids, ix_versions = index_versions(client, alias, kind)
        check = KindCheck(kind, in_database=len(db_ids), in_index=len(ix_ids))
        missing = np.setdiff1d(db_ids, ix_ids, assume_unique=True)
        extra = np.setdiff1d(ix_ids, db_ids, assume_unique=True)
        _, db_pos, ix_pos = np.intersect1d(db_ids, ix_ids, assume_unique=True, return_indices=True)
        db_v, ix_v = db_versions[db_pos], ix_versions[ix_pos]
        common = db_ids[db_pos]
        stale = common[db_v > ix_v]
        ahead = common[db_v < ix_v]
        check.missing, check.extra, check.stale, check.ahead = len(missing), len(extra), len(stale), len(ahead)
        checks[kind] = check
        plans.append((kind, check, missing, extra, stale))
    in_index = sum(c.in_index for c in checks.values())
    deleting = sum(c.extra for c in checks.values())
    if repair and not force and in_index and deleting > max_delete_share * in_index:
        raise RepairTooLarge(f"the repair would delete {deleting} of the index's {in_index} documents (documents of "
                             f"rows this database does not have), more than {max_delete_share:.0%}: is this the "
                             "database the index was built from? Nothing was changed; give --force to repair anyway")
    for kind, check, missing, extra, stale in plans:
        if repair and check.differences:
            if len(extra):
                removed = indexes.write(client, alias, [], [doc_id(kind, int(i)) for i in extra])
                check.failed.update(removed.failed)
            for ids, version_type in ((missing, "external_gte"), (stale, "external")):
                ids_list = ids.tolist()
                for start in range(0, len(ids_list), batch):
                    with engine.connect() as conn:
                        docs = load_docs(conn, kind, ids_list[start:start + batch], layout)
                    outcome = indexes.write(client, alias, list(docs.values()), version_type=version_type)
                    check.failed.update(outcome.failed)
                    if version_type == "external_gte":
                        check.blocked += len(outcome.conflicted)
            check.repaired = check.missing + check.stale + check.extra - len(check.failed) - check.blocked
    result = VerifyResult(checks, outdated=indexes.layout_gaps(client, indexes.indices_of(client, alias), layout))
    if repair and (result.outdated or any(c.ahead or c.blocked for c in checks.values())):
        # External versions cannot go down, and a deleted document's version outlives it for a while
        # (index.gc_deletes): documents ahead of the database (a restored database), and missing documents
        # whose delete left a higher version behind, need a new index; so does an index built for an earlier
        # layout (its strict mapping refuses this release's documents).
        result.reindexed = reindex(engine, client, alias, layout, force=force)
        for c in checks.values():
            c.repaired = c.differences
    if repair:
        client.indices.refresh(index=alias)
    return result
