"""The server keeps its embedded search engine alive (issue 12, item 11), and never restarts a configured one.

Against the real osmem-server and a live server on both storage engines: the embedded engine is killed with
SIGKILL while clients keep writing; the writes succeed, /readyz says search is degraded while the engine is
down, the server's supervisor starts a new engine on the same port, the indexer rebuilds the index from the
database, and Search finds a household registered while the engine was down. Restarts are bounded (a broken
binary gives up after the configured attempts, with a delay between them). With a configured cluster the
server restarts nothing: the indexer backs off, and resumes when the cluster is back.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
import os
import signal
import socket
import time

from osmem_server import OsmemServer

from aidgraph.core.app.demo import ensure_demo_user
from aidgraph.core.app.server import default_components
from aidgraph.core.graph.idnumber import make as make_id
from aidgraph.core.search.client import embedded_state_file, resolve_url
from aidgraph.core.search.embedded import EmbeddedSearch, EngineSupervisor
from aidgraph.core.storage.db import make_sync_engine
from tests.conftest import server_settings
from tests.live import run_live_server, wait_for

FAST = {"interval": 0.2, "max_backoff": 1.0,
        "restart": {"check_interval": 0.2, "first_delay": 0.3, "max_delay": 1.0}}
"""Short delays for the tests (the defaults: a pass a second, back-off to 5 s, restarts 1 s apart doubling)."""

_numbers = itertools.count(1)


def register(live, name: str) -> dict:
    """RegisterHousehold over HTTP; the write must succeed whatever the search engine is doing."""
    n = next(_numbers)
    number = make_id("440106", dt.date(1961, 1, 1) + dt.timedelta(days=n + os.getpid() % 5000), n % 997)
    body = live.op("RegisterHousehold", {"input": {
        "regionCode": "440106001001", "address": "天河区重启路1号",
        "members": [{"name": name, "idNumber": number, "relationToHead": "SELF"}]}})
    payload = body["data"]["registerHousehold"]
    assert payload["errors"] == [], payload["errors"]
    return payload["household"]


def finds(live, household: dict) -> bool:
    body = live.op("Search", {"query": household["householdNumber"]})
    return "errors" not in body and [e["node"]["id"] for e in body["data"]["search"]["edges"]] == [household["id"]]


def readyz(live) -> dict:
    return live.client.get(f"{live.url}/readyz").json()


def start_live(db_url, **changes):
    settings = server_settings(db_url, **changes)
    engine = make_sync_engine(db_url)
    token = ensure_demo_user(engine, settings, username="admin44", region_codes=("44",))
    engine.dispose()
    return token, run_live_server(default_components(settings, **FAST))


def test_a_killed_embedded_engine_is_restarted_and_the_index_rebuilt(db_url, graph, monkeypatch):
    token, server = start_live(db_url)
    with server as live:
        live.token = token
        runtime = live.components.search
        assert runtime.embedded is not None and runtime.supervisor is not None
        before = register(live, "重启前户主")
        assert wait_for(lambda: finds(live, before)), "the embedded engine never indexed"
        state_file = embedded_state_file(live.components.settings)
        if db_url.startswith("sqlite"):  # beside the database file: bound to it, shared with no other installation
            assert str(state_file) == db_url.removeprefix("sqlite:///") + ".search.json"
        assert resolve_url(live.components.settings) == runtime.url
        url, first_pid = runtime.url, runtime.embedded.pid

        # 1. Killed while its binary cannot start (restarts fail): writes succeed, /readyz says degraded and
        #    restarting, Search says SEARCH_UNAVAILABLE; attempts are spaced, not a spin.
        monkeypatch.setenv("OSMEM_SERVER_BIN", "/bin/false")
        os.kill(first_pid, signal.SIGKILL)
        down = [register(live, f"停机户主{i}") for i in range(3)]
        assert wait_for(lambda: len(runtime.supervisor.attempts) >= 2, timeout=30)
        report = readyz(live)
        assert report["search"] == "degraded", report
        assert report["search_engine"] == {"embedded": True, "state": "restarting", "restarts": 0}, report
        assert report["status"] == "ready"  # a degraded search does not take the API out of service
        body = live.op("Search", {"query": "停机户主"})
        assert body["errors"][0]["extensions"]["code"] == "SEARCH_UNAVAILABLE"
        gaps = [b - a for a, b in zip(runtime.supervisor.attempts, list(runtime.supervisor.attempts)[1:])]
        assert all(g >= 0.25 for g in gaps), gaps

        # 2. The binary is back: the next attempt starts an engine on the same port, the index is rebuilt
        #    and what was written while the engine was down is found.
        monkeypatch.delenv("OSMEM_SERVER_BIN")
        assert wait_for(lambda: all(finds(live, h) for h in [before, *down])), readyz(live)
        assert runtime.url == url and runtime.embedded.pid != first_pid  # same port, new process
        assert json.loads(state_file.read_text(encoding="utf-8"))["pid"] == runtime.embedded.pid
        assert resolve_url(live.components.settings) == url
        report = readyz(live)
        assert report["search"] == "ok" and report["search_engine"]["state"] == "running"
        assert report["search_engine"]["restarts"] == 1
        assert runtime.indexer.rebuilds >= 1

        # 3. Killed again, with a working binary: the time from the kill to a record written meanwhile being
        #    found is the outage a caseworker sees.
        killed = time.monotonic()
        os.kill(runtime.embedded.pid, signal.SIGKILL)
        late = register(live, "再次停机户主")
        assert wait_for(lambda: finds(live, late) and finds(live, before))
        outage = time.monotonic() - killed
        print(f"embedded engine kill -> record found: {outage:.2f} s; supervisor restart "
              f"{runtime.supervisor.last_restart_seconds:.2f} s")
        assert runtime.supervisor.restarts == 2 and runtime.url == url


def test_a_broken_engine_binary_is_given_up_after_the_limit(tmp_path, monkeypatch, caplog):
    settings = server_settings(f"sqlite:///{tmp_path / 'none.db'}")
    embedded = EmbeddedSearch.start(settings)
    handed: list[str] = []
    supervisor = EngineSupervisor(embedded, handed.append, check_interval=0.05, first_delay=0.2, max_delay=0.4,
                                  max_restarts=3, window=600).start()
    try:
        monkeypatch.setenv("OSMEM_SERVER_BIN", "/bin/false")
        caplog.set_level(logging.ERROR, logger="aidgraph.search.embedded")
        os.kill(embedded.pid, signal.SIGKILL)
        assert wait_for(lambda: supervisor.state == "failed", timeout=30)
        attempts = list(supervisor.attempts)
        assert len(attempts) == 3 and handed == [] and supervisor.restarts == 0
        gaps = [b - a for a, b in zip(attempts, attempts[1:])]
        assert gaps[0] >= 0.18 and gaps[1] >= 0.38, gaps  # 0.2 s, then doubled (capped at 0.4 s)
        time.sleep(1.0)
        assert list(supervisor.attempts) == attempts  # given up: no more attempts
        messages = [r.getMessage() for r in caplog.records]
        assert sum("restart attempt" in m and "failed" in m for m in messages) == 3
        assert any("gave up after 3 restart attempts" in m for m in messages)
    finally:
        supervisor.stop()
        embedded.stop()


def _free_addr() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def _answers(addr: str) -> bool:
    host, port = addr.split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            return True
    except OSError:
        return False


def test_a_configured_cluster_is_never_restarted_the_indexer_resumes(db_url, graph):
    addr = _free_addr()
    cluster = OsmemServer.start(freeze=False, japanese=False, addr=addr)
    try:
        token, server = start_live(db_url, opensearch_url=cluster.url)
        with server as live:
            live.token = token
            runtime = live.components.search
            assert runtime.embedded is None and runtime.supervisor is None
            before = register(live, "集群户主")
            assert wait_for(lambda: finds(live, before))
            os.kill(cluster.pid, signal.SIGKILL)
            cluster.process.wait()
            down = register(live, "集群停机户主")  # writes succeed while the cluster is down
            assert wait_for(lambda: runtime.indexer.last_error is not None, timeout=30)
            report = readyz(live)
            assert report["search"] == "degraded" and "search_engine" not in report
            time.sleep(2.0)  # several indexer passes, backing off
            assert not _answers(addr)  # nobody started an engine in the cluster's place
            cluster.process.stdout.close()
            cluster = OsmemServer.start(freeze=False, japanese=False, addr=addr)  # the operator brings it back
            assert wait_for(lambda: finds(live, down) and finds(live, before)), runtime.indexer.last_error
            assert readyz(live)["search"] == "ok"
    finally:
        cluster.close()
        if cluster.process.stdout is not None:
            cluster.process.stdout.close()
