"""The per-request context: who is asking, one database session, and the DataLoaders built on it.

Reads go through DataLoaders over :mod:`aidgraph.core.graph.reads`, which apply the actor's scope in SQL. The request's
one ``AsyncSession`` is guarded by a lock because strawberry resolves sibling fields concurrently and a
session must not be used by two coroutines at once. Mutations run their write in the same session inside
``write()``: one transaction, committed only if the service raised nothing; the loaders are then cleared so
the payload reads what was written.

The policy engine and the search runtime are typed fields, set by the server from its components; every
resolver takes ``info: Info`` (this module's alias), so ``info.context`` is a :class:`Context` to mypy too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import strawberry
from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from strawberry.dataloader import DataLoader

from aidgraph.core.access.authz import enrollment_read_predicate
from aidgraph.core.access.scope import Scope
from aidgraph.core.graph import reads
from aidgraph.core.graph.economics import economics_for
from aidgraph.core.access.actor import Actor
from aidgraph.core.storage.config import Settings
from aidgraph.core.storage.db import close_session, committing
from aidgraph.core.storage.models import Enrollment
from aidgraph.core.policy.engine import PolicyEngine
from aidgraph.core.policy.programs import ProgramCatalogue
from aidgraph.core.search.runtime import SearchRuntime


@dataclass
class Context:
    actor: Actor
    settings: Settings
    session_factory: async_sessionmaker[AsyncSession]
    programs: ProgramCatalogue
    policy: PolicyEngine
    """The province policy engine (plugins and every province's configuration), built once by the server."""
    search: SearchRuntime | None = None
    """The search runtime once the server's search component started; None: Search answers SEARCH_UNAVAILABLE."""
    request: Any = None
    response: Any = None
    services: dict[str, Any] = field(default_factory=dict)
    """Other components the server shares between requests, by name (the simulator's frame cache, ...); the
    policy engine and search are the typed fields above."""
    _session: AsyncSession | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _loaders: dict[str, DataLoader[Any, Any]] = field(default_factory=dict)
    _enrollment_visibility: ColumnElement[bool] | None = None

    @asynccontextmanager
    async def db(self) -> AsyncIterator[AsyncSession]:
        """The request's session, one coroutine at a time."""
        async with self._lock:
            if self._session is None:
                self._session = self.session_factory()
            yield self._session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """One all-or-nothing transaction for a mutation."""
        async with self.db() as session:
            if session.in_transaction():
                await session.commit()  # end the read snapshot so the write sees the latest data
            async with committing(session):
                yield session
        self._loaders.clear()

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await close_session(session)

    def loader(self, name: str, fetch: Callable[[AsyncSession, list[Any]], Awaitable[dict[Any, Any]]],
               default: Any = None) -> DataLoader[Any, Any]:
        """A per-request DataLoader named ``name``; ``fetch(session, keys)`` returns a dict by key."""
        if name not in self._loaders:
            async def batch(keys: list[Any]) -> list[Any]:
                async with self.db() as session:
                    found = await fetch(session, list(keys))
                return [found.get(k, default() if callable(default) else default) for k in keys]

            self._loaders[name] = DataLoader(load_fn=batch)
        return self._loaders[name]

    # --- the loaders the core types use; every one applies the actor's read scope ----------------------

    def scope(self, object_type: str = "household") -> Scope:
        return self.actor.scope("read", object_type)

    @property
    def enrollment_visibility(self) -> ColumnElement[bool]:
        """Enrolments this request may read: the ``enrollment`` scope, plus the programs of one aid domain
        for roles granted only that domain (department analysts); built once per request."""
        if self._enrollment_visibility is None:
            by_domain: dict[str, list[str]] = {}
            for key, info in self.programs.programs.items():
                by_domain.setdefault(info.domain, []).append(key)
            self._enrollment_visibility = enrollment_read_predicate(self.actor, Enrollment.region_code,
                                                                    Enrollment.program_key, by_domain)
        return self._enrollment_visibility

    @property
    def households(self) -> DataLoader[Any, Any]:
        return self.loader("households", lambda s, k: reads.households_by_id(s, self.scope("household"), k))

    @property
    def persons(self) -> DataLoader[Any, Any]:
        return self.loader("persons", lambda s, k: reads.persons_by_id(s, self.scope("person"), k))

    @property
    def regions(self) -> DataLoader[Any, Any]:
        return self.loader("regions", reads.regions_by_code)

    @property
    def region_children(self) -> DataLoader[Any, Any]:
        return self.loader("region_children", lambda s, k: reads.region_children(s, self.scope(), k), list)

    @property
    def members(self) -> DataLoader[Any, Any]:
        return self.loader("members", lambda s, k: reads.members_by_household(s, self.scope("person"), k), list)

    @property
    def member_counts(self) -> DataLoader[Any, Any]:
        return self.loader("member_counts", lambda s, k: reads.member_counts(s, self.scope(), k), 0)

    @property
    def heads(self) -> DataLoader[Any, Any]:
        return self.loader("heads", lambda s, k: reads.heads_by_household(s, self.scope("person"), k))

    @property
    def categories(self) -> DataLoader[Any, Any]:
        return self.loader("categories", lambda s, k: reads.categories_by_household(
            s, self.enrollment_visibility, k, self.programs.category_programs()), list)

    @property
    def warning_levels(self) -> DataLoader[Any, Any]:
        return self.loader("warning_levels", lambda s, k: reads.warning_levels_by_household(s, self.scope("alert"), k))

    @property
    def enrollments(self) -> DataLoader[Any, Any]:
        return self.loader("enrollments", lambda s, k: reads.enrollments_by_household(s, self.enrollment_visibility, k), list)

    @property
    def enrollments_by_id(self) -> DataLoader[Any, Any]:
        return self.loader("enrollments_by_id", lambda s, k: reads.enrollments_by_id(s, self.enrollment_visibility, k))

    @property
    def alerts(self) -> DataLoader[Any, Any]:
        return self.loader("alerts", lambda s, k: reads.alerts_by_household(s, self.scope("alert"), k), list)

    @property
    def alerts_by_id(self) -> DataLoader[Any, Any]:
        return self.loader("alerts_by_id", lambda s, k: reads.alerts_by_id(s, self.scope("alert"), k))

    @property
    def households_of_persons(self) -> DataLoader[Any, Any]:
        return self.loader("households_of_persons",
                           lambda s, k: reads.households_of_persons(s, self.scope("household"), k), list)

    @property
    def economics(self) -> DataLoader[Any, Any]:
        return self.loader("economics", self.economics_of)

    async def economics_of(self, session: AsyncSession, ids: list[int], in_scope: bool = False) -> dict[Any, Any]:
        """Economic status of the households among ``ids`` in the read scope, after the province's deductions
        (employment costs, ...): the loader above and the compiled HouseholdDetail (schema/compiled.py), which
        passes ``in_scope`` for a household it has just read through the scope."""
        visible = ids if in_scope else list(await reads.households_by_id(session, self.scope("household"), ids))
        found = await economics_for(session, visible)
        if found:
            deductions = await self.policy.income_deductions(session, list(found))
            found = {hid: replace(e, monthly_deduction=Decimal(str(round(deductions.get(hid, 0.0), 2))))
                     for hid, e in found.items()}
        return found


Info = strawberry.Info[Context, None]
"""What every resolver takes as ``info``: ``info.context`` is this module's :class:`Context` (the root value is
unused)."""
