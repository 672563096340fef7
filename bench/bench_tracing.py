"""The cost of OpenTelemetry tracing per GraphQL operation (issue 12, item 13): off against on, interleaved.

    python bench/bench_tracing.py [--rounds 7] [--operations 2000]

Builds the deployment's schema twice, without tracing (the default: no extension at all) and with the real SDK
(a ``BatchSpanProcessor`` and an exporter that drops the spans, so the collector's network is not measured), and
runs ``query Q { __typename }`` through each, alternating, timing process CPU per operation (the batch
processor's thread included). The operation is trivial on purpose: tracing adds the same three spans (operation,
parse, validation) to every operation, so the difference is the per-operation cost whatever the operation.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from aidgraph.core.app.server import default_components
from aidgraph.core.storage.config import load_settings

QUERY = "query Q { __typename }"


class DropSpans(SpanExporter):
    def export(self, spans):  # noqa: ANN001 - the SDK's interface
        return SpanExportResult.SUCCESS


async def cpu_per_operation(schema, n: int) -> float:
    started = time.process_time()
    for _ in range(n):
        result = await schema.execute(QUERY)
        assert not result.errors, result.errors
    return (time.process_time() - started) / n * 1e6


async def main(rounds: int, n: int) -> None:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DropSpans()))
    schemas = {"off": default_components(load_settings({})).schema,
               "on": default_components(load_settings({}), tracer_provider=provider).schema}
    for schema in schemas.values():
        await cpu_per_operation(schema, 200)  # warm up
    runs: dict[str, list[float]] = {name: [] for name in schemas}
    for _ in range(rounds):
        for name, schema in schemas.items():
            runs[name].append(await cpu_per_operation(schema, n))
    off, on = statistics.median(runs["off"]), statistics.median(runs["on"])
    for name, values in runs.items():
        print(f"tracing {name}: median {statistics.median(values):.0f} µs CPU per operation "
              f"({', '.join(f'{v:.0f}' for v in values)})")
    print(f"tracing on adds {on - off:.0f} µs CPU per operation (ratio {on / off:.2f} on a trivial operation)")
    provider.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--operations", type=int, default=2000)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.operations))
