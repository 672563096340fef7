"""Authentication: who is behind an HTTP request.

Until token authentication is configured this answers every request with the development actor in
development mode and refuses in production (the authorization issue replaces it with JWT bearer tokens).
"""

from __future__ import annotations

from starlette.requests import Request

from core.actor import Actor, development_actor
from core.config import Settings


class Unauthenticated(Exception):
    """No valid credentials: the server answers HTTP 401 with a JSON error and no data."""


async def actor_for_request(request: Request, settings: Settings, session_factory) -> Actor:
    if settings.production:
        raise Unauthenticated("authentication required")
    actor = development_actor()
    actor.remote_addr = request.client.host if request.client else None
    return actor
