"""Operating the server (issue 12, item 13): why an operator can tell whether it lives, whether it may take
traffic, and what it is doing.

- ``/healthz`` (the server's own): the process answers.
- ``/readyz``: the database answers and is migrated to head, and the outbox lag is under
  :data:`MAX_OUTBOX_LAG_SECONDS`; otherwise 503 JSON naming what is wrong. Search is reported as ``ok``,
  ``degraded`` (configured but not answering: the API still works, searches answer SEARCH_UNAVAILABLE) or
  ``off``; a degraded search does not make the server unready. With the embedded engine, ``search_engine``
  says whether it runs, is being restarted after its death, or was given up (and how often it was restarted).
- ``/metrics``: Prometheus text (prometheus-client): requests, latency and errors per GraphQL operation
  (aidgraph.schema.metrics), outbox rows pending and the age of the oldest.
- Every response carries ``X-Request-Id`` (the client's when it sent a sane one, else a new one) and each
  request is logged as one JSON line with it (logger ``aidgraph.access``).

Timestamps: every ``DateTime`` the API answers is UTC with its zone (``2026-12-02T08:00:00+00:00``), the
one documented choice (schema/scalars or the types' resolvers); the database stores naive UTC.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import re
import time
import uuid
from contextvars import ContextVar
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aidgraph.core.app.guard import RequestGuard
from aidgraph.core.storage.db import make_sync_engine
from aidgraph.core.storage.migrate import head_revision
from aidgraph.core.storage.models import Outbox
from aidgraph.core.search.indexer import pending_clause
from aidgraph.schema.metrics import OUTBOX_DEAD_LETTERS, OUTBOX_LAG, OUTBOX_PENDING

MAX_OUTBOX_LAG_SECONDS = 300.0
REQUEST_ID_HEADER = "X-Request-Id"
_SANE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

request_id: ContextVar[str | None] = ContextVar("aidgraph_request_id", default=None)
access_log = logging.getLogger("aidgraph.access")


class RequestIds:
    """ASGI middleware: a request id on every response and one JSON log line per request."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = dict(scope.get("headers", ())).get(REQUEST_ID_HEADER.lower().encode(), b"").decode("latin-1")
        rid = sent if _SANE_ID.match(sent) else uuid.uuid4().hex
        token = request_id.set(rid)
        started = time.perf_counter()
        status = {"code": 500}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = [h for h in message.get("headers", ()) if h[0].lower() != REQUEST_ID_HEADER.lower().encode()]
                headers.append((REQUEST_ID_HEADER.lower().encode(), rid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            access_log.info(json.dumps({
                "ts": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"),
                "request_id": rid, "method": scope.get("method"), "path": scope.get("path"),
                "status": status["code"], "ms": round((time.perf_counter() - started) * 1000, 1)}))
            request_id.reset(token)


def ops_middleware(components) -> list[Middleware]:
    """The middleware every deployment gets (outermost first): request ids and logs, then the body guard."""
    return [Middleware(RequestIds), Middleware(RequestGuard, max_bytes=components.settings.max_request_bytes)]


async def readiness(components) -> tuple[bool, dict]:
    """(ready, report): database reachable and at head, outbox lag under the bound; search state reported."""
    report: dict = {"database": "ok", "migrations": None, "search": "off", "outbox": None}
    ready = True
    engine = components.engine
    head = head_revision()
    try:
        async with engine.connect() as conn:
            try:
                current = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one_or_none()
            except Exception:  # noqa: BLE001 - no alembic_version table: never migrated
                current = None
                await conn.rollback()
            report["migrations"] = {"current": current, "head": head}
            if current != head:
                ready = False
                report["database"] = "not migrated: run `aidgraph init-db`" if current is None else \
                    "migrations pending: run `aidgraph init-db` (it upgrades to head)"
            else:
                pending, oldest = (await conn.execute(select(func.count(), func.min(Outbox.created_at)).where(
                    pending_clause()))).one()
                dead = (await conn.execute(select(func.count()).select_from(Outbox).where(
                    Outbox.dead_at.is_not(None)))).scalar_one()
                lag = 0.0
                if oldest is not None:
                    lag = max((dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - oldest).total_seconds(), 0.0)
                report["outbox"] = {"pending": pending, "lag_seconds": round(lag, 1), "dead_letters": dead}
                if lag > MAX_OUTBOX_LAG_SECONDS:
                    ready = False
                    report["outbox"]["problem"] = f"lag above {MAX_OUTBOX_LAG_SECONDS:.0f} s"
    except Exception as e:  # noqa: BLE001 - the database does not answer
        return False, {**report, "database": f"unreachable ({type(e).__name__})"}
    runtime = getattr(components, "search", None) or components.services.get("search")
    if runtime is None and getattr(components, "search", "absent") is None:
        report["search"] = "degraded"  # configured, but it did not start: searches answer SEARCH_UNAVAILABLE
    elif runtime is not None:
        try:
            alive = await asyncio.wait_for(asyncio.to_thread(runtime.client.ping), timeout=2)
        except Exception:  # noqa: BLE001
            alive = False
        report["search"] = "ok" if alive else "degraded"
        supervisor = getattr(runtime, "supervisor", None)
        if supervisor is not None:  # the embedded engine: is it being restarted, or did the server give up?
            report["search_engine"] = {"embedded": True, "state": supervisor.state, "restarts": supervisor.restarts}
    return ready, report


def ops_routes(components) -> list:
    """``/readyz`` and ``/metrics`` (``/healthz`` is the server's own)."""

    async def readyz(_request: Request) -> Response:
        ready, report = await readiness(components)
        return JSONResponse({"status": "ready" if ready else "not ready", **report}, status_code=200 if ready else 503)

    async def metrics(_request: Request) -> Response:
        ready, report = await readiness(components)
        outbox = report.get("outbox") or {}
        OUTBOX_PENDING.set(outbox.get("pending", 0))
        OUTBOX_LAG.set(outbox.get("lag_seconds", 0.0))
        OUTBOX_DEAD_LETTERS.set(outbox.get("dead_letters", 0))
        registry = REGISTRY
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return [Route("/readyz", readyz, methods=["GET"]), Route("/metrics", metrics, methods=["GET"])]


# --- the CLI never creates a database silently ----------------------------------------------------------------

COMMANDS_WITHOUT_DATABASE = frozenset({"init-db", "demo", "export-schema", "plugins", "pipia"})
"""CLI commands that may run without a migrated database: ``init-db`` and ``demo`` create it, the others do
not open it. Every other command refuses an absent or unmigrated database (:func:`require_database`)."""


class DatabaseNotReady(RuntimeError):
    pass


def require_database(url: str) -> None:
    """Raise :class:`DatabaseNotReady` (naming the URL and ``aidgraph init-db``) unless the database exists and
    is migrated to head. Opening a missing SQLite file would create it: the file is checked first."""
    u = make_url(url)
    shown = u.render_as_string(hide_password=True)
    fix = f"create it with `AIDGRAPH_DATABASE_URL={shown} aidgraph init-db` (or `aidgraph demo`)"
    if u.get_backend_name() == "sqlite" and u.database not in (None, "", ":memory:"):
        if not Path(u.database).exists():
            raise DatabaseNotReady(f"no database at {shown}: {fix}")
    engine = make_sync_engine(url)
    try:
        with engine.connect() as conn:
            try:
                current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one_or_none()
            except Exception:  # noqa: BLE001 - no alembic_version table
                current = None
    except DatabaseNotReady:
        raise
    except Exception as e:  # noqa: BLE001 - cannot connect
        raise DatabaseNotReady(f"cannot open the database at {shown} ({type(e).__name__}): {fix}") from None
    finally:
        engine.dispose()
    head = head_revision()
    if current is None:
        raise DatabaseNotReady(f"the database at {shown} is not migrated: {fix}")
    if current != head:
        raise DatabaseNotReady(f"the database at {shown} is at revision {current}, the code needs {head}: run "
                               f"`aidgraph init-db` to upgrade it")
