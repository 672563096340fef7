"""kill -9 of the server under a stream of writes, with a client ledger (issue 12, item 12), on both engines.

Two clients register households (two or three members each) and add members to acknowledged households over
HTTP, every write with an idempotency key, and record in a ledger which writes the server acknowledged. The
server process (``aidgraph serve``) is killed with SIGKILL mid-stream. The database must then hold every
acknowledged write as it was answered, no household half-written (each registration's members all there or
none, one head per household, an outbox row for each); the server is started again on the same database, the
acknowledged writes replay their first answers, and re-sending every unacknowledged write with its key leaves
each write exactly once.
"""

from __future__ import annotations

import time
import uuid

from aidgraph.core.app.demo import ensure_demo_user
from aidgraph.core.storage.db import make_sync_engine
from tests.conftest import server_settings
from tests.faults.ledger import Ledger, Write, Writers, check_database, send
from tests.faults.process import ServerProcess

import httpx
from tests.live import wait_for


def server_env(db_url: str, tmp_path) -> tuple[dict[str, str], str]:
    settings = server_settings(db_url)
    engine = make_sync_engine(db_url)
    token = ensure_demo_user(engine, settings, username="ledger44", region_codes=("44",))
    engine.dispose()
    env = {"AIDGRAPH_DATABASE_URL": db_url, "AIDGRAPH_ENV": "test", "AIDGRAPH_SECRET_KEY": str(settings.secret_key),
           "AIDGRAPH_STATE_DIR": str(tmp_path)}
    return env, token


def test_kill_9_under_a_write_stream_loses_no_acknowledged_write(db_url, tmp_path):
    env, token = server_env(db_url, tmp_path)
    ledger = Ledger(marker=f"账本{uuid.uuid4().hex[:8]}")
    started = time.monotonic()
    server = ServerProcess(env, tmp_path, "first").wait_ready()
    print(f"server ready in {time.monotonic() - started:.1f} s")
    writers = Writers(server.url, token, ledger, n=2).start()
    try:
        assert wait_for(lambda: len(ledger.acknowledged()) >= 12), server.output()[-3000:]
        server.kill()  # mid-stream: both clients are sending
    finally:
        writers.join()
        server.stop()
    refused = [w.error for w in ledger.writes if w.error and w.error.startswith(("GraphQL", "user errors", "HTTP"))]
    assert not refused, refused  # before the kill every write was acknowledged; after it none was answered
    first = check_database(db_url, ledger)
    assert first["acknowledged"] >= 12

    again = ServerProcess(env, tmp_path, "second").wait_ready()
    try:
        with httpx.Client() as client:
            for w in ledger.acknowledged():  # the first answer, after the restart too
                replay = Write(w.operation, w.input)
                send(client, again.url, token, replay)
                assert replay.answer is not None, replay.error
                assert replay.answer["household"]["id"] == w.answer["household"]["id"]
            for w in ledger.unacknowledged():  # the client retries what it never heard back about
                send(client, again.url, token, w)
                assert w.acknowledged, w.error
        after = check_database(db_url, ledger, exactly_once=True)
    finally:
        again.stop()
    registered = sum(1 for w in ledger.writes if w.operation == "RegisterHousehold")
    assert after["households"] == registered  # exactly once: one household per registration sent
    print(f"ledger: {first['acknowledged']} acknowledged, {first['unacknowledged']} unacknowledged at the kill, "
          f"{after['households']} households after the retries")
