"""OpenTelemetry tracing of GraphQL operations (issue 12, item 13), with the real SDK against a live server.

Spans carry the operation's name and the request id the server answers in ``X-Request-Id``; no span carries
the document, a variable, an argument or an error message: an ID number sent in a variable, written inline in
a document, or quoted by an error never appears in any span's name, attribute, event or status. Tracing is off
unless configured, and then nothing is added to the request path. The OTLP/HTTP export is checked end to end
against a small collector on loopback: the bytes that leave the server do not contain the ID number either.
"""

from __future__ import annotations

import datetime as dt
import http.server
import threading
import time
import uuid

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from aidgraph.core.app.demo import ensure_demo_user
from aidgraph.core.app.server import default_components
from aidgraph.core.app.tracing import PrivateOpenTelemetryExtension
from aidgraph.core.graph.idnumber import make as make_id
from aidgraph.core.storage.config import load_settings
from aidgraph.core.storage.db import make_sync_engine
from tests.conftest import server_settings
from tests.live import OPERATION_TEXT, run_live_server


def everything_recorded(span) -> str:
    """Every string a span would export: name, attributes, events and their attributes, status."""
    parts = [span.name, span.status.description or ""]
    parts += [f"{k}={v}" for k, v in (span.attributes or {}).items()]
    for event in span.events:
        parts.append(event.name)
        parts += [f"{k}={v}" for k, v in (event.attributes or {}).items()]
    return "\n".join(parts)


@pytest.fixture(scope="module")
def traced(sqlite_url):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = server_settings(sqlite_url)
    engine = make_sync_engine(sqlite_url)
    token = ensure_demo_user(engine, settings, username="tracer44", region_codes=("44",))
    engine.dispose()
    with run_live_server(default_components(settings, tracer_provider=provider)) as live:
        live.token = token
        yield live, exporter


def new_number() -> str:
    return make_id("440106", dt.date(1983, 4, 5) + dt.timedelta(days=uuid.uuid4().int % 3000), uuid.uuid4().int % 997)


def test_spans_carry_operation_and_request_id_never_variables(traced):
    live, exporter = traced
    exporter.clear()
    number = new_number()
    response = live.post(OPERATION_TEXT["RegisterHousehold"], {"input": {
        "regionCode": "440106001001", "address": "天河区追踪路1号", "idempotencyKey": uuid.uuid4().hex,
        "members": [{"name": "追踪户主", "idNumber": number, "relationToHead": "SELF", "phone": "13800138000"}]}},
        "RegisterHousehold", headers={"X-Request-Id": "trace-register-1"})
    assert response.status_code == 200 and response.json()["data"]["registerHousehold"]["errors"] == []
    assert response.headers["X-Request-Id"] == "trace-register-1"
    spans = exporter.get_finished_spans()
    operation = [s for s in spans if s.name == "GraphQL Query: RegisterHousehold"]
    assert len(operation) == 1, [s.name for s in spans]
    attributes = operation[0].attributes
    assert attributes["graphql.operation.name"] == "RegisterHousehold"
    assert attributes["graphql.operation.type"] == "mutation"
    assert attributes["aidgraph.request_id"] == "trace-register-1"
    assert "query" not in attributes
    names = {s.name for s in spans}
    assert {"GraphQL Parsing", "GraphQL Validation"} <= names
    assert all(s.parent.span_id == operation[0].context.span_id for s in spans if s is not operation[0])
    for span in spans:
        recorded = everything_recorded(span)
        assert not any(k.startswith("graphql.param") for k in span.attributes or {})
        for secret in (number, number[6:14], "13800138000", "追踪户主", "追踪路"):
            assert secret not in recorded, (span.name, recorded)


def test_inline_literals_and_error_messages_stay_out_of_spans(traced):
    live, exporter = traced
    exporter.clear()
    number = new_number()
    # An ID number written into the document itself, and an error that quotes it back.
    inline = live.post(f'query Inline {{ search(query: "{number}") {{ totalCount }} }}', None, "Inline",
                       headers={"X-Request-Id": "trace-inline-1"})
    assert inline.status_code == 200
    bad = live.post(f'query Bad {{ household(id: "{number}") {{ id }} nosuchfield(x: "{number}") }}', None, "Bad",
                    headers={"X-Request-Id": "trace-bad-1"})
    assert bad.status_code == 200 and bad.json()["errors"]
    spans = exporter.get_finished_spans()
    by_request = {s.attributes.get("aidgraph.request_id") for s in spans if s.kind.name == "SERVER"}
    assert {"trace-inline-1", "trace-bad-1"} <= by_request
    failed = next(s for s in spans if s.attributes.get("aidgraph.request_id") == "trace-bad-1")
    assert failed.status.status_code.name == "ERROR" and failed.attributes["graphql.error_codes"]
    for span in spans:
        assert number not in everything_recorded(span) and number[6:14] not in everything_recorded(span)


def test_compiled_operations_are_traced_too(traced):
    live, exporter = traced
    exporter.clear()
    response = live.post(OPERATION_TEXT["HouseholdList"], {"regionCode": "440106", "first": 5}, "HouseholdList",
                         headers={"X-Request-Id": "trace-list-1"})
    assert response.status_code == 200 and "errors" not in response.json()
    spans = [s for s in exporter.get_finished_spans() if s.name == "GraphQL Query: HouseholdList"]
    assert len(spans) == 1
    assert spans[0].attributes["aidgraph.request_id"] == "trace-list-1"
    assert spans[0].attributes["graphql.operation.name"] == "HouseholdList"
    assert spans[0].attributes.get("aidgraph.compiled") is True


def test_tracing_is_off_unless_configured():
    assert load_settings({}).otel_endpoint is None
    assert load_settings({"AIDGRAPH_OTEL_ENDPOINT": "http://c:4318/v1/traces"}).otel_endpoint == "http://c:4318/v1/traces"
    assert load_settings({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}).otel_endpoint == "http://c:4318/v1/traces"
    assert load_settings({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/t"}).otel_endpoint == "http://c:4318/t"
    assert load_settings({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}).otel_endpoint is None
    components = default_components(load_settings({}))
    assert components.tracer_provider is None
    assert not any(isinstance(e, type) and issubclass(e, PrivateOpenTelemetryExtension) or
                   getattr(e, "func", None) is PrivateOpenTelemetryExtension for e in components.schema.extensions)


class Collector(http.server.BaseHTTPRequestHandler):
    bodies: list[bytes] = []

    def do_POST(self):  # noqa: N802 - the handler's protocol
        Collector.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()
        self.wfile.write(b"")

    def log_message(self, *args):
        pass


def test_otlp_export_to_a_collector_leaks_nothing(sqlite_url):
    collector = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=collector.serve_forever, daemon=True)
    thread.start()
    Collector.bodies = []
    try:
        endpoint = f"http://127.0.0.1:{collector.server_address[1]}/v1/traces"
        settings = server_settings(sqlite_url, otel_endpoint=endpoint)
        engine = make_sync_engine(sqlite_url)
        token = ensure_demo_user(engine, settings, username="tracer44", region_codes=("44",))
        engine.dispose()
        number = new_number()
        with run_live_server(default_components(settings)) as live:
            live.token = token
            assert live.components.tracer_provider is not None
            body = live.post(OPERATION_TEXT["RegisterHousehold"], {"input": {
                "regionCode": "440106001001", "address": "天河区导出路2号",
                "members": [{"name": "导出户主", "idNumber": number, "relationToHead": "SELF"}]}},
                "RegisterHousehold", headers={"X-Request-Id": "trace-export-1"}).json()
            assert body["data"]["registerHousehold"]["errors"] == []
        deadline = time.monotonic() + 30  # the server's shutdown flushed the batch
        while not Collector.bodies and time.monotonic() < deadline:
            time.sleep(0.1)
        assert Collector.bodies, "nothing was exported"
        raw = b"".join(Collector.bodies)
        assert number.encode() not in raw and "导出户主".encode() not in raw
        exported = ExportTraceServiceRequest()
        exported.ParseFromString(Collector.bodies[0])
        spans = [s for rs in exported.resource_spans for ss in rs.scope_spans for s in ss.spans]
        operation = next(s for s in spans if s.name == "GraphQL Query: RegisterHousehold")
        attributes = {a.key: a.value.string_value for a in operation.attributes}
        assert attributes["aidgraph.request_id"] == "trace-export-1"
        assert attributes["graphql.operation.name"] == "RegisterHousehold"
        service = {a.key: a.value.string_value for rs in exported.resource_spans for a in rs.resource.attributes}
        assert service["service.name"] == "aidgraph"
    finally:
        collector.shutdown()
