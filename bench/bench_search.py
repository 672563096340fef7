"""Search latency: name, ID-number and filtered queries through the platform's Search vs the same request raw.

Usage::

    python bench/bench_search.py --persons 100000 --queries 200

Loads synthetic persons (see :func:`load_persons`) into a SQLite file, indexes them into the embedded
osmem-server (or ``--url``), then times ``aidgraph.core.search.query.search`` (validation, scope filter, facets,
highlights, cursor encoding) against ``client.search`` with the identical prebuilt body, in the same run.
Prints median and p95 in milliseconds and the ratio platform / raw.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert  # noqa: E402

from aidgraph.core.access.actor import Actor, system_actor  # noqa: E402
from aidgraph.core.storage.db import make_sync_engine  # noqa: E402
from aidgraph.core.graph.idnumber import CHECK_CHARS, WEIGHTS  # noqa: E402
from aidgraph.core.storage.migrate import upgrade  # noqa: E402
from aidgraph.core.storage.models import Person  # noqa: E402
from aidgraph.core.access.scope import Scope  # noqa: E402
from aidgraph.core.search.client import BULK_TIMEOUT, make_client  # noqa: E402
from aidgraph.core.search.embedded import EmbeddedSearch  # noqa: E402
from aidgraph.core.search.mapping import DEFAULT_ALIAS, build_layout  # noqa: E402
from aidgraph.core.search.query import EngineQuirks, SearchRequest, build_body, search  # noqa: E402

SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈")
GIVEN = list("伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬建国志文海燕春梅晓云鹏辉")
COUNTIES = ["440103", "440104", "440105", "440106", "440111", "440112", "440303", "440304", "440305", "440306",
            "440402", "440604", "440606", "441302", "441303", "445102", "445202", "440802", "440902", "441202"]


def synthetic_persons(n: int, seed: int = 7) -> dict[str, np.ndarray]:
    """Columns of ``n`` persons: valid GB 11643 ID numbers, Chinese names, Guangdong village-level codes."""
    rng = np.random.default_rng(seed)
    county = np.array(COUNTIES)[rng.integers(0, len(COUNTIES), n)]
    township = rng.integers(1, 20, n)
    village = rng.integers(1, 30, n)
    region = np.char.add(np.char.add(county, np.char.zfill(township.astype(str), 3)),
                         np.char.zfill(village.astype(str), 3))
    birth = (np.datetime64("1940-01-01") + rng.integers(0, 365 * 80, n).astype("timedelta64[D]"))
    birth_text = np.datetime_as_string(birth, unit="D")
    ymd = np.char.replace(birth_text, "-", "")
    seq = np.arange(n) % 1000
    first17 = np.char.add(np.char.add(county, ymd), np.char.zfill(seq.astype(str), 3))
    digits = np.frombuffer("".join(first17.tolist()).encode(), dtype=np.uint8).reshape(n, 17) - 48
    check = (digits * np.array(WEIGHTS)).sum(axis=1) % 11
    id_number = np.char.add(first17, np.array(list(CHECK_CHARS))[check])
    # Unique ID numbers: (county, birth date, sequence) repeats are rare; drop them set-at-a-time.
    _, keep = np.unique(id_number, return_index=True)
    keep.sort()
    surname = np.array(SURNAMES)[rng.integers(0, len(SURNAMES), n)]
    given1 = np.array(GIVEN)[rng.integers(0, len(GIVEN), n)]
    given2 = np.where(rng.random(n) < 0.6, np.array(GIVEN)[rng.integers(0, len(GIVEN), n)], "")
    name = np.char.add(np.char.add(surname, given1), given2)
    sex = np.where(seq % 2 == 1, "MALE", "FEMALE")
    return {"id_number": id_number[keep], "name": name[keep], "region_code": region[keep],
            "hukou_region_code": county[keep], "birth_date": birth[keep], "sex": sex[keep]}


def load_persons(url: str, n: int, seed: int = 7, batch: int = 50_000) -> dict[str, np.ndarray]:
    """Insert synthetic persons (executemany per batch of ``batch`` rows); returns the columns."""
    engine = make_sync_engine(url)
    upgrade(engine)
    cols = synthetic_persons(n, seed)
    birth = cols["birth_date"].astype("datetime64[D]").astype(object)
    total = len(cols["id_number"])
    with engine.begin() as conn:
        for start in range(0, total, batch):
            end = min(start + batch, total)
            conn.execute(insert(Person), [
                {"id_number": i, "name": nm, "region_code": r, "hukou_region_code": h, "birth_date": b, "sex": s,
                 "version": 1}
                for i, nm, r, h, b, s in zip(cols["id_number"][start:end].tolist(), cols["name"][start:end].tolist(),
                                             cols["region_code"][start:end].tolist(),
                                             cols["hukou_region_code"][start:end].tolist(), birth[start:end],
                                             cols["sex"][start:end].tolist())])
    engine.dispose()
    return cols


def scoped_actor(prefix: str) -> Actor:
    """A caller whose search scope is one region (decided once, like a request's)."""
    actor = Actor(username=f"bench-{prefix}", display_name="bench")
    actor._decide = lambda _actor, action, _object: Scope.of([prefix]) if action == "search" else Scope.nothing()
    return actor


def percentile(values: list[float], p: float) -> float:
    return float(np.percentile(np.asarray(values), p))


def measure_latency(client, cols: dict[str, np.ndarray], queries: int, seed: int = 11) -> list[tuple]:
    """(kind, platform median, platform p95, raw median, raw p95) in milliseconds."""
    rng = random.Random(seed)
    layout = build_layout()
    quirks = EngineQuirks.detect(client) or EngineQuirks()
    names = cols["name"].tolist()
    ids = cols["id_number"].tolist()
    regions = cols["region_code"].tolist()
    workloads = {
        "name": [(system_actor(), SearchRequest(query=rng.choice(names)[:2])) for _ in range(queries)],
        "id_number": [(system_actor(), SearchRequest(query=rng.choice(ids))) for _ in range(queries)],
        "filtered": [(scoped_actor(r[:6]), SearchRequest(query=rng.choice(names)[:1], kinds=("PERSON",),
                                                         region_code=r[:9]))
                     for r in (rng.choice(regions) for _ in range(queries))],
    }
    rows = []
    for kind, work in workloads.items():
        search(client, DEFAULT_ALIAS, layout, *work[0], quirks)  # warm-up
        platform, raw = [], []
        for actor, request in work:
            t = time.perf_counter()
            search(client, DEFAULT_ALIAS, layout, actor, request, quirks)
            platform.append((time.perf_counter() - t) * 1000)
            body, _ = build_body(layout, actor, request, quirks)
            t = time.perf_counter()
            client.search(index=DEFAULT_ALIAS, body=body)
            raw.append((time.perf_counter() - t) * 1000)
        rows.append((kind, statistics.median(platform), percentile(platform, 95), statistics.median(raw),
                     percentile(raw, 95)))
    return rows


def print_latency(rows: list[tuple]) -> None:
    print(f"{'query':<10} {'platform median':>16} {'p95':>8} {'raw median':>11} {'p95':>8} {'ratio':>6}")
    for kind, pm, p95, rm, r95 in rows:
        print(f"{kind:<10} {pm:>13.2f} ms {p95:>5.2f} ms {rm:>8.2f} ms {r95:>5.2f} ms {pm / rm:>6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--url", help="OpenSearch URL (default: the embedded osmem-server)")
    args = parser.parse_args()
    from aidgraph.core.search.rebuild import reindex

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        cols = load_persons(url, args.persons)
        embedded = None if args.url else EmbeddedSearch.start()
        client = make_client(args.url or embedded.url, timeout=BULK_TIMEOUT)
        try:
            engine = make_sync_engine(url)
            reindex(engine, client)
            engine.dispose()
            print(f"{len(cols['id_number'])} persons indexed; {args.queries} queries of each kind")
            print_latency(measure_latency(client, cols, args.queries))
        finally:
            if embedded:
                embedded.stop()


if __name__ == "__main__":
    main()
