"""Fixtures of the security tests (issue 12): real policies, actors bound to the real Casbin authorizer of the
module's database, and helpers that run services in their own transactions, concurrently when asked."""

from __future__ import annotations

import asyncio

import pytest

from aidgraph.core.access import authz
from aidgraph.core.access.actor import Actor, RoleGrant
from aidgraph.core.storage.db import async_session_factory, make_async_engine
from aidgraph.core.storage.errors import DomainError
from tests.authz.conftest import policies  # noqa: F401  (the module-scoped fixture, shared)


def actor_for(db_url: str, username: str, *grants: tuple[str, str]) -> Actor:
    actor = Actor(username=username, display_name=username, grants=tuple(RoleGrant(r, c) for r, c in grants))
    return authz.authorizer_for(db_url).bind(actor)


async def in_transaction(factory, work):
    """``work(session)`` in one transaction committed on success: (result, None) or (None, DomainError)."""
    async with factory() as session:
        try:
            result = await work(session)
            await session.commit()
            return result, None
        except DomainError as e:
            await session.rollback()
            return None, e


def run_all(db_url: str, works: list):
    """Run every ``work(session)`` concurrently, each in its own session and transaction."""
    async def main():
        engine = make_async_engine(db_url)
        try:
            factory = async_session_factory(engine)
            return await asyncio.gather(*(in_transaction(factory, w) for w in works))
        finally:
            await engine.dispose()
    return asyncio.run(main())


def run_one(db_url: str, work):
    return run_all(db_url, [work])[0]


@pytest.fixture(autouse=True, scope="module")
def _fresh_authorizers():
    authz.forget_authorizers()
    yield
    authz.forget_authorizers()
