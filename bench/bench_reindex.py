"""Reindex throughput: ``aidgraph reindex`` of N persons vs a raw ``helpers.bulk`` of the same prebuilt documents.

Usage::

    python bench/bench_reindex.py --persons 1000000 --queries 200   # the target size
    python bench/bench_reindex.py --persons 200000                   # a moderate run

Synthetic persons (valid ID numbers, Chinese names, Guangdong village codes) are inserted into a SQLite file.
Then, in the same run and against the same engine (the embedded osmem-server, or ``--url``):

* platform: :func:`aidgraph.core.search.rebuild.reindex` (stream rows, build documents, bulk with external versions
  and per-item checks into a new index, swap the alias), ``--repeat`` times, median docs/s;
* baseline: the same documents prebuilt in memory, sent with ``opensearchpy.helpers.bulk`` into a fresh index
  with the same mapping, same chunk size, ``--repeat`` times, median docs/s;

and prints docs/s of each and the ratio. Then Search latency (median, p95) for name, ID-number and filtered
queries, platform vs raw (see bench/bench_search.py).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from opensearchpy import helpers  # noqa: E402

from bench.bench_search import load_persons, measure_latency, print_latency  # noqa: E402
from aidgraph.core.storage.db import make_sync_engine  # noqa: E402
from aidgraph.core.search import indexes  # noqa: E402
from aidgraph.core.search.client import BULK_TIMEOUT, make_client  # noqa: E402
from aidgraph.core.search.documents import stream_docs  # noqa: E402
from aidgraph.core.search.embedded import EmbeddedSearch  # noqa: E402
from aidgraph.core.search.mapping import build_layout  # noqa: E402
from aidgraph.core.search.rebuild import reindex  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--url", help="OpenSearch URL (default: the embedded osmem-server)")
    args = parser.parse_args()
    layout = build_layout()
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{tmp}/bench.db"
        t = time.perf_counter()
        cols = load_persons(db, args.persons)
        n = len(cols["id_number"])
        print(f"{n} persons loaded into SQLite in {time.perf_counter() - t:.1f} s")
        engine = make_sync_engine(db)
        embedded = None if args.url else EmbeddedSearch.start()
        url = args.url or embedded.url
        client = make_client(url, timeout=BULK_TIMEOUT)
        try:
            t = time.perf_counter()
            with engine.connect() as conn:  # the baseline's documents, prebuilt outside its timing
                prebuilt = [d for docs in stream_docs(conn, "PERSON", args.batch, layout) for d in docs]
            build_rate = n / (time.perf_counter() - t)
            platform, baseline = [], []
            for _ in range(args.repeat):
                # Baseline first, its index deleted before the platform runs: both start from the same engine
                # state (the platform's index stays behind the alias for the latency part).
                name = indexes.create_index(client, "bench-raw", layout, bulk_load=True)
                actions = ({"_index": name, "_id": d.id, "_version": d.version, "_version_type": "external",
                            "_source": d.source} for d in prebuilt)
                t = time.perf_counter()
                ok, errors = helpers.bulk(client, actions, chunk_size=args.batch, max_chunk_bytes=50 * 1024 * 1024,
                                          raise_on_error=False)
                indexes.finish_bulk_load(client, name)
                baseline.append(n / (time.perf_counter() - t))
                assert ok == n and not errors
                client.indices.delete(index=name)
                result = reindex(engine, client, batch=args.batch)
                assert result.counts["PERSON"] == n
                platform.append(n / result.seconds)
            p, b = statistics.median(platform), statistics.median(baseline)
            print(f"engine {url} ({'embedded osmem-server' if embedded else 'configured'})")
            print(f"reindex (platform): {p:>10,.0f} docs/s  median of {args.repeat}")
            print(f"helpers.bulk (raw): {b:>10,.0f} docs/s  same documents prebuilt")
            print(f"ratio platform/raw: {p / b:.2f}")
            print(f"documents built from the database alone (no engine): {build_rate:,.0f} docs/s")
            print_latency(measure_latency(client, cols, args.queries))
        finally:
            engine.dispose()
            if embedded:
                embedded.stop()


if __name__ == "__main__":
    main()
