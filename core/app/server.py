"""The HTTP server: strawberry GraphQL on starlette at ``/graphql``, served by uvicorn.

``POST /graphql`` answers queries and mutations for an authenticated actor (no credentials: HTTP 401 with a
JSON error and no data). ``GET /graphql`` serves GraphiQL in development mode only; queries are never taken
over GET, so a mutation can only arrive as a POST with a JSON body. Start-up builds the engine, the
program catalogue and the schema once; components such as the search indexer hook into the lifespan
through :class:`AppComponents`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import strawberry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLRequestData

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.types import Receive, Scope, Send

from aidgraph.core.access.actor import Actor
from aidgraph.core.access.authn import Unauthenticated, check_configuration
from aidgraph.core.app.auth import Forbidden, auth_routes, authenticate_request, cors_middleware
from aidgraph.core.app.oidc import oidc_routes
from aidgraph.core.app.exports import export_route
from aidgraph.core.app.ops import ops_middleware, ops_routes, request_id  # health, metrics, request ids, body guard
from aidgraph.core.app.tracing import CompiledOperationTracer, tracer_provider_for, tracing_extension
from aidgraph.core.app.web import console_routes, graphiql_html
from aidgraph.core.storage.config import Settings, load_settings
from aidgraph.core.storage.db import async_session_factory, make_async_engine
from aidgraph.core.storage.rls import install_app_role
from aidgraph.core.app.maintenance import install as install_partition_keeper
from aidgraph.core.app.sessions import request_sessions
from aidgraph.core.policy.engine import PolicyEngine
from aidgraph.core.policy.programs import ProgramCatalogue
from aidgraph.core.search.runtime import SearchRuntime, install as install_search
from aidgraph.schema.build import build_schema
from aidgraph.schema.compiled import GENERAL_PATH_HEADER, CompiledOperations
from aidgraph.schema.context import Context


@dataclass
class AppComponents:
    """What the server wires together at start-up; tests and the CLI build one and pass it in."""

    settings: Settings
    schema: strawberry.Schema | None = None
    programs: ProgramCatalogue = field(default_factory=ProgramCatalogue)
    policy: PolicyEngine | None = None
    """The policy engine every request uses; built from the settings when not given."""
    search: SearchRuntime | None = None
    """Set by the search component's start-up hook (:func:`aidgraph.core.search.runtime.install`)."""
    services: dict[str, Any] = field(default_factory=dict)
    """Other optional components, by name."""
    on_startup: list[Callable[["AppComponents"], Awaitable[None]]] = field(default_factory=list)
    on_shutdown: list[Callable[["AppComponents"], Awaitable[None]]] = field(default_factory=list)
    engine: AsyncEngine | None = None
    session_factory: async_sessionmaker[AsyncSession] | None = None
    identity_engine: AsyncEngine | None = None
    """PostgreSQL with row-level security: a small pool of its own for the authentication lookups (users, grants,
    revoked tokens; no person-bearing table), whose transactions carry no caller. Apart from the request pool so
    that a request's connections keep their caller's scope across requests instead of switching to the empty
    scope for each authentication and back (two more statements a request; core/storage/rls.py)."""
    identity_sessions: async_sessionmaker[AsyncSession] | None = None
    """Sessions for the authentication lookups: on :attr:`identity_engine` when there is one, else the
    unscoped :attr:`session_factory`."""
    tracer_provider: Any = None
    """The OpenTelemetry tracer provider when tracing is on (core/app/tracing.py); None: off, nothing traced."""

    @property
    def policy_engine(self) -> PolicyEngine:
        """The policy engine, built from the settings on first use when none was given."""
        if self.policy is None:
            self.policy = PolicyEngine(self.settings)
        return self.policy


def default_components(settings: Settings | None = None, *, tracer_provider: Any = None,
                       **search_options: Any) -> AppComponents:
    """Components for a deployment: settings from the environment, the schema with every contribution.
    ``tracer_provider``: trace operations with it (else with the OTLP exporter when ``AIDGRAPH_OTEL_ENDPOINT`` or
    the standard OTEL variables are set, else not at all). ``search_options`` go to
    :func:`aidgraph.core.search.runtime.open_search` (tests shorten its delays)."""
    settings = settings or load_settings()
    policy = PolicyEngine(settings)  # plugins and every province's configuration, validated at start-up
    own_provider = tracer_provider is None
    provider = tracer_provider if tracer_provider is not None else tracer_provider_for(settings)
    extensions = [tracing_extension(provider, request_id.get)] if provider is not None else []
    components = AppComponents(settings=settings, schema=build_schema(extensions=extensions, settings=settings, pm=policy.pm),
                               programs=policy.catalogue(), policy=policy, tracer_provider=provider)
    if provider is not None:
        async def flush_traces(_c: AppComponents) -> None:
            provider.shutdown() if own_provider else provider.force_flush()

        components.on_shutdown.append(flush_traces)
    install_search(components, **search_options)  # AIDGRAPH_OPENSEARCH_URL, or the embedded osmem-server; indexer in the background
    install_partition_keeper(components)  # PostgreSQL: the months ahead of the history tables, made in the background
    return components


class AidgraphGraphQL(GraphQL):
    """strawberry's ASGI app with our per-request context (actor resolved before any resolver runs)."""

    def __init__(self, components: AppComponents):
        settings = components.settings
        if components.schema is None:
            raise ValueError("the server's components have no schema")
        super().__init__(components.schema, graphql_ide=None if settings.production else "graphiql",
                         allow_queries_via_get=False, multipart_uploads_enabled=False)
        self.components = components
        self.compiled = CompiledOperations(components.schema._schema, settings) \
            if settings.compiled_operations else None
        self.compiled_tracer = CompiledOperationTracer(components.tracer_provider) \
            if components.tracer_provider is not None else None

    async def execute_operation(  # type: ignore[override]
            self, request: Request, request_adapter: Any, request_data: Any, context: Context,
            root_value: Any, sub_response: Response) -> Any:
        """The contract's household list and detail through their compiled plans (schema/compiled.py) when the
        document is one of them; everything else, and whatever a plan leaves, through strawberry."""
        if (self.compiled is not None and isinstance(request_data, GraphQLRequestData)
                and request_data.protocol == "http" and request_adapter.method == "POST"
                and request.headers.get(GENERAL_PATH_HEADER) != "general"):
            started = time.time_ns()
            result = await self.compiled.execute(context, request_data.query, request_data.operation_name,
                                                 request_data.variables)
            if result is not None:
                if self.compiled_tracer is not None:
                    self.compiled_tracer.record(started, request_data.operation_name, request_id.get(),
                                                getattr(result, "errors", None))
                return result
        return await super().execute_operation(request, request_adapter, request_data,
                                               context,  # type: ignore[arg-type]  # (see get_context)
                                               root_value, sub_response)

    @property
    def graphql_ide_html(self) -> str:
        """GraphiQL with its scripts and styles served by this server (no CDN: it works on an intranet)."""
        return graphiql_html()

    async def get_context(self, request: Request | WebSocket,  # type: ignore[override]
                          response: Response | WebSocket) -> Context:
        # strawberry's base class declares a context of None; ours is Context (the Info alias names it)
        c = self.components
        if c.session_factory is None:
            raise RuntimeError("the server has not started: no session factory")
        # Every operation arrives through GraphQLEndpoint, which set the actor; only GraphiQL's page (a GET in
        # development) is rendered without one, and it runs no resolver.
        actor = cast(Actor, getattr(request.state, "actor", None))
        context = Context(actor=actor, settings=c.settings, session_factory=request_sessions(c, actor),
                          programs=c.programs, policy=c.policy_engine, search=c.search, request=request,
                          response=response, services=c.services)
        request.state.graphql_context = context
        return context


def unauthenticated(message: str) -> JSONResponse:
    return JSONResponse({"errors": [{"message": message, "extensions": {"code": "UNAUTHENTICATED"}}]},
                        status_code=401, headers={"WWW-Authenticate": "Bearer"})


class GraphQLEndpoint:
    """ASGI endpoint: authenticate from the headers, then hand the request to strawberry untouched."""

    def __init__(self, components: AppComponents, graphql_app: AidgraphGraphQL):
        self.components = components
        self.graphql_app = graphql_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        if request.method == "GET":
            wants_ide = "text/html" in request.headers.get("accept", "") and not request.query_params
            if wants_ide and not self.components.settings.production:
                await self.graphql_app(scope, receive, send)
            elif wants_ide:
                await PlainTextResponse("GraphiQL is disabled in production", status_code=404)(scope, receive, send)
            else:
                await JSONResponse({"errors": [{"message": "send operations as POST with a JSON body",
                                                "extensions": {"code": "METHOD_NOT_ALLOWED"}}]},
                                   status_code=405, headers={"Allow": "POST"})(scope, receive, send)
            return
        try:
            # The bearer token, or the console's session cookie with its CSRF header (aidgraph.core.app.auth).
            actor: Actor = await authenticate_request(request, self.components)
        except Unauthenticated as e:
            await unauthenticated(str(e))(scope, receive, send)
            return
        except Forbidden as e:
            await JSONResponse({"errors": [{"message": str(e), "extensions": {"code": "CSRF"}}]},
                               status_code=403)(scope, receive, send)
            return
        request.state.actor = actor
        try:
            await self.graphql_app(scope, receive, send)
        finally:
            context = getattr(request.state, "graphql_context", None)
            if context is not None:
                await context.close()


def create_app(components: AppComponents | None = None) -> Starlette:
    components = components or default_components()
    check_configuration(components.settings)  # production without AIDGRAPH_SECRET_KEY fails here, not per request
    endpoint = GraphQLEndpoint(components, AidgraphGraphQL(components))

    async def health(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        engine = components.engine or make_async_engine(components.settings.database_url)
        components.engine = engine
        if components.settings.row_level_security:
            install_app_role(engine.sync_engine)  # PostgreSQL: every connection runs as aidgraph_app
        components.session_factory = async_session_factory(engine)
        identity = components.identity_engine
        if identity is None and components.settings.row_level_security and engine.dialect.name == "postgresql":
            identity = make_async_engine(components.settings.database_url, pool_size=4, max_overflow=4)
            install_app_role(identity.sync_engine)
        components.identity_engine = identity
        components.identity_sessions = (components.session_factory if identity is None
                                        else async_session_factory(identity))
        for hook in components.on_startup:
            await hook(components)
        try:
            yield
        finally:
            for hook in reversed(components.on_shutdown):
                await hook(components)
            await engine.dispose()
            if identity is not None:
                await identity.dispose()

    app = Starlette(routes=[Route("/graphql", endpoint, methods=["GET", "POST"]),
                            Route("/healthz", health, methods=["GET"]),
                            export_route(components),
                            *auth_routes(components), *oidc_routes(components), *console_routes(),
                            *ops_routes(components)],
                    middleware=[*cors_middleware(), *ops_middleware(components)], lifespan=lifespan)
    app.state.components = components
    return app
