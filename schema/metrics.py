"""Prometheus metrics of the GraphQL API (issue 12, item 13): why an operator sees load, latency and errors
per operation without reading logs.

``aidgraph_graphql_requests_total{operation}``, ``aidgraph_graphql_request_seconds{operation}`` (histogram)
and ``aidgraph_graphql_errors_total{code}`` are counted by :class:`OperationMetrics` (and by the compiled
contract operations, schema/compiled.py, which also count ``aidgraph_graphql_compiled_total{operation}``); the outbox gauges are
set by ``/metrics`` itself (aidgraph.core.app.ops). The operation label is the GraphQL operation name
(``anonymous`` without one), cut to 64 safe characters, and only names seen in the document count, so a
client cannot grow the label set without bound beyond :data:`MAX_OPERATION_LABELS`.

Several worker processes: set ``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode) and every
worker's counts are summed at scrape time.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator

from graphql import GraphQLError
from prometheus_client import Counter, Gauge, Histogram
from strawberry.extensions import SchemaExtension

REQUESTS = Counter("aidgraph_graphql_requests", "GraphQL operations answered", ["operation"])
LATENCY = Histogram("aidgraph_graphql_request_seconds", "GraphQL operation latency", ["operation"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
ERRORS = Counter("aidgraph_graphql_errors", "GraphQL errors answered, by code", ["code"])
COMPILED_ANSWERS = Counter("aidgraph_graphql_compiled", "Operations answered by their compiled plan (schema/compiled.py)",
                           ["operation"])
OUTBOX_PENDING = Gauge("aidgraph_outbox_pending", "Outbox rows not yet indexed", multiprocess_mode="max")
OUTBOX_DEAD_LETTERS = Gauge("aidgraph_outbox_dead_letters", "Outbox rows whose document the search engine refused "
                            "too often (aidgraph index --dead-letters)", multiprocess_mode="max")
OUTBOX_LAG = Gauge("aidgraph_outbox_lag_seconds", "Age of the oldest outbox row not yet indexed",
                   multiprocess_mode="max")

MAX_OPERATION_LABELS = 500
_SAFE = re.compile(r"[^A-Za-z0-9_]")
_labels: set[str] = set()
_labels_lock = threading.Lock()


def operation_label(name: str | None) -> str:
    label = _SAFE.sub("_", name or "anonymous")[:64] or "anonymous"
    with _labels_lock:
        if label not in _labels:
            if len(_labels) >= MAX_OPERATION_LABELS:
                return "other"
            _labels.add(label)
    return label


class OperationMetrics(SchemaExtension):
    """Count each operation, its latency and the codes of its errors."""

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        ec = self.execution_context
        label = operation_label(ec.operation_name if ec.graphql_document is not None else None)
        REQUESTS.labels(label).inc()
        LATENCY.labels(label).observe(time.perf_counter() - started)
        for errors in (ec.pre_execution_errors, getattr(ec.result, "errors", None)):
            for error in errors or ():
                code = (error.extensions or {}).get("code") if isinstance(error, GraphQLError) else None
                ERRORS.labels(_SAFE.sub("_", str(code or "UNKNOWN"))[:40]).inc()
