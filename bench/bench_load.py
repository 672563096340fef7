"""A bounded load against a running server (issue 12): N concurrent clients for D seconds on loopback, mixing
HouseholdList, HouseholdDetail, Search and RegisterHousehold; prints p50/p99 per operation and the errors.

    python -m bench.bench_load --url http://127.0.0.1:8000 --token $(aidgraph token admin) --clients 20 --seconds 60

It reads the households it will ask for from the first list page (so it needs a seeded province, e.g.
``aidgraph seed --province 44 --households 2000``), registers new households in one village with fresh
valid ID numbers (each client its own sequence), and counts as an error any non-200 answer, any GraphQL
``errors`` and any mutation payload error. The same script runs against an older checkout (the "before"
figure): it only uses operations that exist there.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import statistics
import time
from collections import defaultdict

import httpx

LIST = """query HouseholdList($regionCode: String!, $first: Int, $after: String) {
  households(regionCode: $regionCode, first: $first, after: $after) {
    totalCount edges { cursor node { id householdNumber memberCount warningLevel head { name idNumber } } }
    pageInfo { hasNextPage endCursor } } }"""
DETAIL = """query HouseholdDetail($id: ID!) { household(id: $id) { id householdNumber address
  members { relationToHead person { id name idNumber sex age } }
  enrollments { id status } alerts { id level } aidChain(first: 10) { edges { node { at kind summary } } } } }"""
SEARCH = """query Search($q: String!) { search(query: $q, first: 10) { totalCount edges { score node { __typename } } } }"""
REGISTER = """mutation RegisterHousehold($input: RegisterHouseholdInput!) {
  registerHousehold(input: $input) { household { id householdNumber } errors { field message code } } }"""

WEIGHTS = (("HouseholdList", 4), ("HouseholdDetail", 4), ("Search", 1), ("RegisterHousehold", 1))
CHECK = "10X98765432"
FACTORS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id_number(county: str, birth: dt.date, seq: int) -> str:
    body = f"{county}{birth:%Y%m%d}{seq % 1000:03d}"
    return body + CHECK[sum(int(d) * f for d, f in zip(body, FACTORS)) % 11]


async def client_loop(n: int, url: str, token: str, deadline: float, ids: list[str], village: str,
                      latencies: dict, errors: dict, with_search: bool) -> None:
    rng = random.Random(n)
    ops = [name for name, w in WEIGHTS for _ in range(w) if with_search or name != "Search"]
    seq = 0
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
        while time.monotonic() < deadline:
            op = rng.choice(ops)
            if op == "HouseholdList":
                body = {"query": LIST, "variables": {"regionCode": village[:6], "first": 20}}
            elif op == "HouseholdDetail":
                body = {"query": DETAIL, "variables": {"id": rng.choice(ids)}}
            elif op == "Search":
                body = {"query": SEARCH, "variables": {"q": rng.choice(["王", "李", "陈", "张"])}}
            else:
                seq += 1
                birth = dt.date(1950, 1, 1) + dt.timedelta(days=(n * 7919 + seq * 104729) % 20000)
                number = id_number("440106", birth, n * 37 + seq)
                body = {"query": REGISTER, "variables": {"input": {
                    "regionCode": village, "address": f"load {n}-{seq}",
                    "idempotencyKey": f"load-{n}-{seq}-{time.time_ns()}",
                    "members": [{"name": "负载", "idNumber": number, "relationToHead": "SELF"}]}}}
            body["operationName"] = op
            started = time.perf_counter()
            try:
                r = await client.post("/graphql", json=body)
                elapsed = time.perf_counter() - started
                payload = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
                problem = None
                if r.status_code != 200:
                    problem = f"HTTP {r.status_code}"
                elif payload.get("errors"):
                    problem = (payload["errors"][0].get("extensions") or {}).get("code") or "GRAPHQL"
                elif op == "RegisterHousehold":
                    errs = payload["data"]["registerHousehold"]["errors"]
                    # a birth date/sequence collision with an existing person is the data, not the server
                    if errs and errs[0]["code"] not in ("DUPLICATE_PERSON", "TRANSFER_REQUIRED"):
                        problem = errs[0]["code"]
            except httpx.HTTPError as e:
                elapsed = time.perf_counter() - started
                problem = type(e).__name__
            latencies[op].append(elapsed)
            if problem:
                errors[(op, problem)] += 1


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def main(args) -> dict:
    headers = {"Authorization": f"Bearer {args.token}"}
    async with httpx.AsyncClient(base_url=args.url, headers=headers, timeout=60) as client:
        r = await client.post("/graphql", json={"query": LIST, "variables": {"regionCode": args.village[:6], "first": 100}})
        ids = [e["node"]["id"] for e in r.json()["data"]["households"]["edges"]]
    if not ids:
        raise SystemExit("no households under the village's county: seed the province first")
    latencies: dict = defaultdict(list)
    errors: dict = defaultdict(int)
    deadline = time.monotonic() + args.seconds
    await asyncio.gather(*(client_loop(n, args.url, args.token, deadline, ids, args.village, latencies, errors,
                                       not args.no_search) for n in range(args.clients)))
    report = {"clients": args.clients, "seconds": args.seconds, "operations": {}, "errors": {}}
    everything = []
    for op, values in sorted(latencies.items()):
        everything += values
        report["operations"][op] = {"count": len(values), "p50_ms": round(percentile(values, 0.5) * 1000, 1),
                                    "p99_ms": round(percentile(values, 0.99) * 1000, 1)}
    report["all"] = {"count": len(everything), "per_second": round(len(everything) / args.seconds, 1),
                     "p50_ms": round(percentile(everything, 0.5) * 1000, 1),
                     "p99_ms": round(percentile(everything, 0.99) * 1000, 1),
                     "mean_ms": round(statistics.fmean(everything) * 1000, 1) if everything else None}
    report["errors"] = {f"{op}:{code}": n for (op, code), n in sorted(errors.items())}
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--token", required=True)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--village", default="440106011004")
    parser.add_argument("--no-search", action="store_true")
    print(json.dumps(asyncio.run(main(parser.parse_args())), ensure_ascii=False, indent=2))
