"""Search inside the server process: the engine (embedded or configured), the background indexer, the API.

:func:`open_search` connects to ``AIDGRAPH_OPENSEARCH_URL`` (credentials and TLS from the settings) or starts
the embedded osmem-server, then starts the background indexer, whose first pass builds the index from the
database when the alias does not exist yet. :func:`install` adds start-up and shut-down hooks to the
server's components so that ``components.search`` holds the :class:`SearchRuntime` the Search field uses.
The server starts even when the search engine is down: Search then answers SEARCH_UNAVAILABLE and the
indexer keeps the outbox until the engine is back.

Who brings the engine back differs: the embedded engine is this server's own process, so an
:class:`~aidgraph.core.search.embedded.EngineSupervisor` restarts it when it dies and the indexer rebuilds the
empty index from the database; a configured cluster (``AIDGRAPH_OPENSEARCH_URL``) is someone else's to run,
so the server restarts nothing and the indexer only backs off and resumes when the cluster answers again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Any

from opensearchpy import OpenSearch
from sqlalchemy import Engine

from aidgraph.core.access.actor import Actor
from aidgraph.core.storage.config import Settings
from aidgraph.core.storage.db import make_sync_engine
from aidgraph.core.search.client import BULK_TIMEOUT, SearchUnavailable, make_client
from aidgraph.core.search.embedded import EmbeddedSearch, EngineSupervisor
from aidgraph.core.search.indexer import BackgroundIndexer, stop_background_indexer
from aidgraph.core.search.mapping import DEFAULT_ALIAS, SearchLayout, build_layout
from aidgraph.core.search.query import EngineQuirks, SearchPage, SearchRequest, search
from aidgraph.core.search.rebuild import ForeignIndexError, check_owner, reindex

log = logging.getLogger("aidgraph.search")


@dataclass
class SearchRuntime:
    url: str
    alias: str
    layout: SearchLayout
    client: OpenSearch
    """Fails fast: for searches."""
    bulk_client: OpenSearch
    engine: Engine
    indexer: BackgroundIndexer | None = None
    embedded: EmbeddedSearch | None = None
    quirks: EngineQuirks | None = None
    supervisor: EngineSupervisor | None = None
    settings: Settings | None = None

    def search(self, actor: Actor, request: SearchRequest) -> SearchPage:
        outdated = self.indexer.outdated if self.indexer is not None else None
        if outdated is not None:
            raise SearchUnavailable(f"the search index is being rebuilt for this release; {outdated}")
        if self.quirks is None:  # decided on the first search that reaches the engine
            self.quirks = EngineQuirks.detect(self.client)
        return search(self.client, self.alias, self.layout, actor, request, self.quirks or EngineQuirks())

    async def asearch(self, actor: Actor, request: SearchRequest) -> SearchPage:
        return await asyncio.to_thread(self.search, actor, request)

    def rebuild(self):
        return reindex(self.engine, self.bulk_client, self.alias, self.layout)

    def wake(self) -> None:
        """Ask the indexer to drain now (after a write) rather than at its next tick."""
        if self.indexer is not None:
            self.indexer.wake()

    def engine_restarted(self, url: str) -> None:
        """The supervisor's callback: a new, empty embedded engine answers at ``url``. Point the clients at it
        (when the port changed) and wake the indexer, which finds the alias missing and rebuilds the index."""
        if url != self.url:
            old = (self.client, self.bulk_client)
            self.url = url
            self.client = make_client(url, self.settings)
            self.bulk_client = make_client(url, self.settings, timeout=BULK_TIMEOUT)
            if self.indexer is not None:
                self.indexer.client = self.bulk_client
            for c in old:
                try:
                    c.close()
                except Exception:  # noqa: BLE001 - the old engine is dead
                    pass
        self.wake()

    @property
    def engine_state(self) -> str | None:
        """The embedded engine's state (``running``, ``restarting``, ``failed``); None with a configured cluster."""
        return self.supervisor.state if self.supervisor is not None else None

    def close(self) -> None:
        if self.supervisor is not None:  # first: stopping the engine must not look like its death
            self.supervisor.stop()
            self.supervisor = None
        stop_background_indexer(self.indexer)
        self.indexer = None
        for c in (self.client, self.bulk_client):
            try:
                c.close()
            except Exception:  # noqa: BLE001 - closing a dead connection pool must not stop the shutdown
                pass
        self.engine.dispose()
        if self.embedded is not None:
            self.embedded.stop()
            self.embedded = None


def open_search(settings: Settings, *, url: str | None = None, pm: Any = None, alias: str = DEFAULT_ALIAS,
                background: bool = True, interval: float = 1.0, max_backoff: float = 5.0,
                ready_timeout: float = 10.0, supervise: bool = True,
                restart: dict[str, float] | None = None) -> SearchRuntime:
    """Connect (or start the embedded engine), then start the indexer and wait briefly for its first pass.

    With the embedded engine and ``supervise``, an :class:`EngineSupervisor` restarts it when it dies
    (``restart``: its keyword arguments, e.g. ``max_restarts``; ``AIDGRAPH_SEARCH_MAX_RESTARTS`` sets that one).
    """
    url = url or settings.opensearch_url
    embedded = None
    if url is None:
        embedded = EmbeddedSearch.start(settings)
        url = embedded.url
        log.info("embedded search engine (osmem-server) at %s", url)
    runtime = SearchRuntime(url=url, alias=alias, layout=build_layout(pm), client=make_client(url, settings),
                            bulk_client=make_client(url, settings, timeout=BULK_TIMEOUT),
                            engine=make_sync_engine(settings.database_url), embedded=embedded, settings=settings)
    if embedded is None:
        # A configured cluster may hold another installation's index under the same alias: never search it or
        # drain this database's changes into it (the server then serves without search and logs why).
        try:
            check_owner(runtime.engine, runtime.client, alias, unmarked_ok=True)
        except ForeignIndexError:
            runtime.close()
            raise
        except Exception:  # noqa: BLE001 - an unreachable cluster: the indexer backs off and checks nothing yet
            log.warning("search: could not check which database the index at %s belongs to", url)
    if embedded is not None and supervise:
        options: dict[str, Any] = {"max_restarts": settings.search_max_restarts, **(restart or {})}
        runtime.supervisor = EngineSupervisor(embedded, runtime.engine_restarted, **options).start()
    if background:
        runtime.indexer = BackgroundIndexer(runtime.engine, runtime.bulk_client, alias, runtime.layout,
                                            interval=interval, max_backoff=max_backoff,
                                            rebuild=runtime.rebuild,
                                            keep=dt.timedelta(hours=settings.outbox_keep_hours),
                                            max_attempts=settings.outbox_max_attempts).start()
        deadline = time.monotonic() + ready_timeout
        while runtime.indexer.passes == 0 and runtime.indexer.last_error is None and time.monotonic() < deadline:
            time.sleep(0.05)
    return runtime


def install(components: Any, *, url: str | None = None, pm: Any = None, alias: str = DEFAULT_ALIAS,
            **kwargs: Any) -> None:
    """Add search to the server's components (``aidgraph.core.app.server.AppComponents``): started with it, stopped with it."""

    async def startup(c: Any) -> None:
        plugin_manager = pm if pm is not None else c.policy_engine.pm
        try:
            c.search = await asyncio.to_thread(open_search, c.settings, url=url, pm=plugin_manager,
                                               alias=alias, **kwargs)
        except Exception:  # noqa: BLE001 - the platform serves without search; Search says SEARCH_UNAVAILABLE
            log.exception("search could not be started; Search answers SEARCH_UNAVAILABLE")

    async def shutdown(c: Any) -> None:
        runtime, c.search = c.search, None
        if runtime is not None:
            await asyncio.to_thread(runtime.close)

    components.on_startup.append(startup)
    components.on_shutdown.append(shutdown)
