"""OpenTelemetry tracing of GraphQL operations (issue 12, item 13): why an operator can follow one request
through the server into their tracing backend, and why the traces carry no personal data.

Off unless configured: ``AIDGRAPH_OTEL_ENDPOINT`` (an OTLP/HTTP traces URL such as
``http://collector:4318/v1/traces``), or the standard ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` /
``OTEL_EXPORTER_OTLP_ENDPOINT``; ``OTEL_SDK_DISABLED=true`` turns it off again. The packages are the extra
``aidgraph[otel]`` (opentelemetry-api, -sdk and the OTLP/HTTP exporter); configuring tracing without them is
an error at start-up naming the extra. When off, nothing is added to the request path.

When on, strawberry's :class:`~strawberry.extensions.tracing.OpenTelemetryExtension` records, per operation, a
server span ``GraphQL Query: <operation name>`` with its parse and validation spans (no span per field: that
hook wraps every field of every answer and doubled the time of a list page), and the contract's compiled HouseholdList / HouseholdDetail (schema/compiled.py, which bypass strawberry's
executor) get the same operation span. Attributes: the operation name and type, the request id the server
returns in ``X-Request-Id``, and the codes of GraphQL errors. Never recorded: the document
(a literal in it may be an ID number), variables and resolver arguments (strawberry's ``graphql.param.*``),
exception and error messages (they may quote input), so nothing a role may not read reaches a trace backend.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator
from functools import partial
from typing import Any

from aidgraph.core.storage.config import Settings

try:  # the optional extra aidgraph[otel]
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import SpanKind, Status, StatusCode
    from strawberry.extensions import LifecycleStep, SchemaExtension
    from strawberry.extensions.tracing.opentelemetry import OpenTelemetryExtension
    OTEL_MISSING: str | None = None
except ImportError as missing:  # pragma: no cover - the test extra installs it
    OTEL_MISSING = str(missing)

log = logging.getLogger("aidgraph.tracing")

MAX_NAME = 100
"""Operation names longer than this are cut in span names and attributes."""


class TracingNotInstalled(RuntimeError):
    pass


def _operation_name(name: str | None) -> str | None:
    return name[:MAX_NAME] if name else None


def _error_codes(errors: Any) -> list[str]:
    codes = []
    for e in errors or ():
        code = ((getattr(e, "extensions", None) or {}).get("code")) or "ERROR"
        codes.append(str(code)[:40])
    return codes


if OTEL_MISSING is None:

    class PrivateOpenTelemetryExtension(OpenTelemetryExtension):
        """strawberry's OpenTelemetry extension, recording the operation and the request id but not the
        document, the variables, the arguments or error messages; spans for the operation, its parsing and its
        validation (none per field: see ``resolve``)."""

        def __init__(self, *, tracer: Any, request_id: Callable[[], str | None] = lambda: None,
                     execution_context: Any = None):
            # One instance per operation (spans are per request), sharing one tracer: strawberry's constructor
            # would look the tracer up again for every request.
            self._tracer = tracer
            self._arg_filter = lambda _args, _info: {}  # never record resolver arguments
            self._span_holder = {}
            self._request_id = request_id
            if execution_context is not None:
                self.execution_context = execution_context

        def on_operation(self) -> Generator[None, None, None]:
            name = _operation_name(self.execution_context.operation_name)
            span = self._tracer.start_span(f"GraphQL Query: {name}" if name else "GraphQL Query", kind=SpanKind.SERVER)
            self._span_holder[LifecycleStep.OPERATION] = span
            span.set_attribute("component", "graphql")
            rid = self._request_id()
            if rid:
                span.set_attribute("aidgraph.request_id", rid)
            yield
            resolved = _operation_name(self.execution_context.operation_name)
            if resolved:
                if not name:
                    span.update_name(f"GraphQL Query: {resolved}")
                span.set_attribute("graphql.operation.name", resolved)
            try:
                span.set_attribute("graphql.operation.type", self.execution_context.operation_type.value)
            except Exception:  # noqa: BLE001 - a document that did not parse has no operation type
                pass
            errors = self.execution_context.pre_execution_errors or \
                getattr(self.execution_context.result, "errors", None)
            if errors:
                codes = _error_codes(errors)
                span.set_attribute("graphql.error_codes", codes)
                span.set_status(Status(StatusCode.ERROR, ", ".join(sorted(set(codes)))))
            span.end()

        # No per-field spans: strawberry applies an extension's resolver hook to every field of every answer,
        # which turns each plain attribute read into an awaited call (measured: the general path's HouseholdList
        # page took about twice as long); the operation, parse and validation spans cost microseconds.
        resolve = SchemaExtension.resolve  # type: ignore[assignment]


def configured(settings: Settings) -> bool:
    return settings.otel_endpoint is not None


def tracer_provider_for(settings: Settings) -> Any:
    """The SDK's tracer provider exporting over OTLP/HTTP to the configured endpoint in batches (a background
    thread; requests never wait for the collector), or None when tracing is not configured."""
    if not configured(settings):
        return None
    if OTEL_MISSING is not None:
        raise TracingNotInstalled(f"tracing is configured (AIDGRAPH_OTEL_ENDPOINT / OTEL_EXPORTER_OTLP_*) but the "
                                  f"OpenTelemetry packages are missing ({OTEL_MISSING}): install aidgraph[otel]")
    provider = TracerProvider(resource=Resource.create({"service.name": "aidgraph"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otel_endpoint)))
    log.info("tracing GraphQL operations to %s", settings.otel_endpoint)
    return provider


def tracing_extension(provider: Any, request_id: Callable[[], str | None]) -> Any:
    """A strawberry extension factory (one instance per operation: spans are per request) for ``provider``."""
    if OTEL_MISSING is not None:
        raise TracingNotInstalled(f"the OpenTelemetry packages are missing ({OTEL_MISSING}): install aidgraph[otel]")
    tracer = trace.get_tracer("strawberry", tracer_provider=provider)
    return partial(PrivateOpenTelemetryExtension, tracer=tracer, request_id=request_id)


class CompiledOperationTracer:
    """The operation span of a contract operation answered by its compiled plan (schema/compiled.py)."""

    def __init__(self, provider: Any):
        self.tracer = trace.get_tracer("aidgraph", tracer_provider=provider)

    @staticmethod
    def started() -> int:
        return time.time_ns()

    def record(self, started: int, operation_name: str | None, request_id: str | None, errors: Any) -> None:
        name = _operation_name(operation_name)
        span = self.tracer.start_span(f"GraphQL Query: {name}" if name else "GraphQL Query", kind=SpanKind.SERVER,
                                      start_time=started)
        span.set_attribute("component", "graphql")
        span.set_attribute("aidgraph.compiled", True)
        span.set_attribute("graphql.operation.type", "query")
        if name:
            span.set_attribute("graphql.operation.name", name)
        if request_id:
            span.set_attribute("aidgraph.request_id", request_id)
        if errors:
            codes = _error_codes(errors)
            span.set_attribute("graphql.error_codes", codes)
            span.set_status(Status(StatusCode.ERROR, ", ".join(sorted(set(codes)))))
        span.end()
