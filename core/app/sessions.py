"""The sessions a request's work runs in: on PostgreSQL, bound to the caller's row-level scope.

Kept apart from the server module so that every route (GraphQL, exports) opens its request's sessions the same
way; see :mod:`aidgraph.core.storage.rls` for the policies they meet.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aidgraph.core.access.actor import Actor
from aidgraph.core.storage.db import async_session_factory
from aidgraph.core.storage.rls import session_info


def request_sessions(components: Any, actor: Actor | None) -> async_sessionmaker[AsyncSession]:
    """Sessions for one request: on PostgreSQL with row-level security on, each of their transactions starts
    by setting the caller's region envelope (:meth:`Actor.row_scope`; core/storage/rls.py), the second line
    behind the scope predicate every query applies. Without an actor the setting is empty: nothing is visible."""
    assert components.session_factory is not None and components.engine is not None
    if not components.settings.row_level_security or components.engine.dialect.name != "postgresql":
        return components.session_factory
    if actor is None:
        return async_session_factory(components.engine, session_info("", "anonymous"))
    return async_session_factory(components.engine, session_info(actor.row_scope(), actor.username))
