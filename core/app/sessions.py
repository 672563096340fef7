"""The sessions a request's work runs in: on PostgreSQL, bound to the caller's row-level scope.

Kept apart from the server module so that every route (GraphQL, exports) opens its request's sessions the same
way; see :mod:`aidgraph.core.storage.rls` for the policies they meet.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aidgraph.core.access.actor import Actor
from aidgraph.core.storage.db import async_session_factory
from aidgraph.core.storage.rls import UNRESTRICTED, session_info


_FACTORIES: dict[tuple[int, str, str], tuple[Any, async_sessionmaker[AsyncSession]]] = {}
_FACTORIES_LIMIT = 4096


def request_sessions(components: Any, actor: Actor | None) -> async_sessionmaker[AsyncSession]:
    """Sessions for one request: on PostgreSQL with row-level security on, each of their transactions starts
    by setting the caller's region envelope (:meth:`Actor.row_scope`; core/storage/rls.py), the second line
    behind the scope predicate every query applies. Without an actor the setting is empty: nothing is visible."""
    assert components.session_factory is not None and components.engine is not None
    if not components.settings.row_level_security or components.engine.dialect.name != "postgresql":
        return components.session_factory
    setting, reason = ("", "anonymous") if actor is None else (actor.row_scope(), actor.username)
    # One factory per (engine, scope, user), kept: what is keyed by factory (the disclosure audit's group-commit
    # writer, aidgraph.core.graph.privacy) then lives across that user's requests instead of one per request.
    key = (id(components.engine), setting, reason)
    found = _FACTORIES.get(key)
    if found is None or found[0] is not components.engine:
        if len(_FACTORIES) >= _FACTORIES_LIMIT:
            _FACTORIES.clear()
        found = (components.engine, async_session_factory(components.engine, session_info(setting, reason)))
        _FACTORIES[key] = found
    return found[1]


def identity_sessions(components: Any) -> async_sessionmaker[AsyncSession]:
    """Sessions for authenticating a request (the user, the grants, a revoked token): no caller yet, so no scope.
    On PostgreSQL with row-level security they run on a pool of their own (``AppComponents.identity_engine``),
    which leaves the request pool's connections holding their callers' scopes."""
    found = components.identity_sessions or components.session_factory
    assert found is not None, "the server has not started: no session factory"
    return found


def system_sessions(components: Any, reason: str) -> async_sessionmaker[AsyncSession]:
    """Sessions for the server's own work outside any caller's request, with the explicit system scope named by
    ``reason`` (the login routes: they write audit rows in the user's home region before there is a caller)."""
    assert components.session_factory is not None and components.engine is not None
    if not components.settings.row_level_security or components.engine.dialect.name != "postgresql":
        return components.session_factory
    key = (id(components.engine), UNRESTRICTED, "system:" + reason)
    found = _FACTORIES.get(key)
    if found is None or found[0] is not components.engine:
        found = (components.engine, async_session_factory(components.engine,
                                                          session_info(UNRESTRICTED, "system:" + reason)))
        _FACTORIES[key] = found
    return found[1]
