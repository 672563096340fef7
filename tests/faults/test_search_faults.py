"""The search engine stopped (SIGSTOP) and killed (SIGKILL) under a stream of writes (issue 12, item 12), on
both storage engines, against a live server with its embedded osmem-server.

tests/search/test_indexer.py and test_search_api.py stop and kill the engine between single writes; here two
clients keep writing throughout, with a ledger. Every write must be acknowledged while the engine hangs and
while it is dead and restarted (the write path never waits for search), nothing may be half-written, and once
the supervisor's new engine is rebuilt every acknowledged household is found by Search.
"""

from __future__ import annotations

import os
import signal
import uuid

from aidgraph.core.app.demo import ensure_demo_user
from aidgraph.core.app.server import default_components
from aidgraph.core.storage.db import make_sync_engine
from tests.conftest import server_settings
from tests.faults.ledger import Ledger, Writers, check_database
from tests.live import run_live_server, wait_for

FAST = {"interval": 0.2, "max_backoff": 1.0, "restart": {"check_interval": 0.2, "first_delay": 0.3}}


def test_writes_go_on_while_the_engine_hangs_and_dies(db_url):
    settings = server_settings(db_url)
    engine = make_sync_engine(db_url)
    token = ensure_demo_user(engine, settings, username="stream44", region_codes=("44",))
    engine.dispose()
    ledger = Ledger(marker=f"检索故障{uuid.uuid4().hex[:8]}")
    with run_live_server(default_components(settings, **FAST)) as live:
        live.token = token
        runtime = live.components.search
        writers = Writers(live.url, token, ledger, n=2).start()
        try:
            assert wait_for(lambda: len(ledger.acknowledged()) >= 4)
            pid = runtime.embedded.pid
            os.kill(pid, signal.SIGSTOP)  # hangs: every request to it times out
            try:
                before = len(ledger.acknowledged())
                assert wait_for(lambda: len(ledger.acknowledged()) >= before + 4), "writes waited for a hung engine"
            finally:
                os.kill(pid, signal.SIGCONT)
            before = len(ledger.acknowledged())
            os.kill(pid, signal.SIGKILL)  # dies: the supervisor restarts it, the indexer rebuilds
            assert wait_for(lambda: len(ledger.acknowledged()) >= before + 4), "writes waited for a dead engine"
            assert wait_for(lambda: runtime.supervisor.restarts == 1 and runtime.embedded.pid != pid)
            before = len(ledger.acknowledged())
            assert wait_for(lambda: len(ledger.acknowledged()) >= before + 2)
        finally:
            writers.join()
        failed = [w.error for w in ledger.writes if not w.acknowledged]
        assert not failed, failed  # the server never went away: every write was answered, and successfully
        check_database(db_url, ledger, exactly_once=True)

        def all_found() -> bool:
            for w in ledger.acknowledged():
                if w.operation != "RegisterHousehold":
                    continue
                body = live.op("Search", {"query": w.answer["household"]["householdNumber"], "kinds": ["HOUSEHOLD"]})
                if "errors" in body or [e["node"]["id"] for e in body["data"]["search"]["edges"]] != \
                        [w.answer["household"]["id"]]:
                    return False
            return True

        assert wait_for(all_found, timeout=90, step=0.5), runtime.indexer.last_error
        print(f"search faults under writes: {len(ledger.writes)} writes, all acknowledged and found")
