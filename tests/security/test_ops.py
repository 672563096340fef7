"""Operable (issue 12, items 13-14): health and readiness, Prometheus metrics, request ids and JSON access
logs, timestamps with their zone, a CLI that never creates a database silently, and the container files."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from aidgraph.core.app.demo import ensure_demo_user
from aidgraph.core.app.ops import DatabaseNotReady, require_database
from aidgraph.core.app.server import AppComponents, default_components
from aidgraph.core.storage.db import make_sync_engine, session_scope
from aidgraph.core.storage.models import AidChainEvent, Household
from aidgraph.schema.build import build_schema
from aidgraph.schema.relay import to_global_id
from tests.conftest import server_settings
from tests.live import run_live_server

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def live(db_url):
    settings = server_settings(db_url)
    engine = make_sync_engine(db_url)
    token = ensure_demo_user(engine, settings, username="ops-admin", region_codes=("44",))
    with session_scope(engine) as s:
        h = Household(household_number="HOPS000001", region_code="440106011004")
        s.add(h)
        s.flush()
        s.add(AidChainEvent(household_id=h.id, kind="MEMBERSHIP", summary="registered",
                            at=dt.datetime(2026, 12, 1, 8, 0, 0)))
        household_id = h.id
    engine.dispose()
    with run_live_server(default_components(settings)) as server:
        server.token = token
        server.household_id = household_id
        yield server


def test_health_and_ready(live):
    assert live.client.get(f"{live.url}/healthz").json() == {"status": "ok"}
    r = live.client.get(f"{live.url}/readyz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ready" and body["migrations"]["current"] == body["migrations"]["head"]
    assert body["search"] in ("ok", "degraded") and body["outbox"]["pending"] >= 0


def test_unmigrated_database_is_not_ready(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    make_sync_engine(url).dispose()
    engine = make_sync_engine(url)
    with engine.connect() as conn:  # the file exists, with no schema
        conn.exec_driver_sql("CREATE TABLE unrelated (x INTEGER)")
        conn.commit()
    engine.dispose()
    settings = server_settings(url)
    with run_live_server(AppComponents(settings=settings, schema=build_schema(settings=settings))) as server:
        r = server.client.get(f"{server.url}/readyz")
        assert r.status_code == 503 and r.headers["content-type"].startswith("application/json")
        assert r.json()["status"] == "not ready" and "init-db" in r.json()["database"]
        assert server.client.get(f"{server.url}/healthz").status_code == 200


def test_metrics_count_operations_and_error_codes(live):
    live.post("query MetricsProbe { me { username } }")
    live.post("query MetricsProbe { me { username } }")
    live.post('query MetricsBad { households(regionCode: "44", first: 101) { totalCount } }')
    text = live.client.get(f"{live.url}/metrics").text
    count = re.search(r'aidgraph_graphql_requests_total\{operation="MetricsProbe"\} ([0-9.]+)', text)
    assert count and float(count.group(1)) >= 2
    assert re.search(r'aidgraph_graphql_request_seconds_bucket\{le="[0-9.]+",operation="MetricsProbe"\}', text)
    assert re.search(r'aidgraph_graphql_errors_total\{code="VALIDATION"\} [1-9]', text)
    assert "aidgraph_outbox_pending" in text and "aidgraph_outbox_lag_seconds" in text


def test_request_ids_and_json_access_log(live, caplog):
    with caplog.at_level(logging.INFO, logger="aidgraph.access"):
        mine = live.post("{ me { username } }", headers={"X-Request-Id": "probe-123"})
        fresh = live.post("{ me { username } }", headers={"X-Request-Id": "bad id with spaces"})
    assert mine.headers["x-request-id"] == "probe-123"
    assert re.fullmatch(r"[0-9a-f]{32}", fresh.headers["x-request-id"])
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "aidgraph.access"]
    probe = next(line for line in lines if line["request_id"] == "probe-123")
    assert probe["path"] == "/graphql" and probe["status"] == 200 and probe["ms"] >= 0
    assert dt.datetime.fromisoformat(probe["ts"]).tzinfo is not None


def test_timestamps_carry_their_zone(live):
    q = "query($id: ID!) { household(id: $id) { aidChain(first: 5) { edges { node { at } } } } }"
    body = live.post(q, {"id": to_global_id("Household", live.household_id)}).json()
    at = body["data"]["household"]["aidChain"]["edges"][0]["node"]["at"]
    assert at == "2026-12-01T08:00:00+00:00"
    assert dt.datetime.fromisoformat(at).utcoffset() == dt.timedelta(0)


def test_cli_never_creates_a_database_silently(tmp_path):
    path = tmp_path / "absent.db"
    env = {**os.environ, "AIDGRAPH_DATABASE_URL": f"sqlite:///{path}", "AIDGRAPH_STATE_DIR": str(tmp_path)}
    for args in (["token", "someone"], ["audit", "verify"], ["load-regions"]):
        r = subprocess.run([sys.executable, "-m", "aidgraph.core.app.cli", *args], env=env, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode != 0, (args, r.stdout, r.stderr)
        assert "init-db" in r.stderr and str(path) in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
        assert not path.exists(), f"{args} created {path}"
    with pytest.raises(DatabaseNotReady, match="init-db"):
        require_database(f"sqlite:///{path}")
    empty = tmp_path / "empty.db"
    make_sync_engine(f"sqlite:///{empty}").connect().close()
    with pytest.raises(DatabaseNotReady, match="not migrated"):
        require_database(f"sqlite:///{empty}")


def test_cli_accepts_a_migrated_database(sqlite_url):
    require_database(sqlite_url)  # no error


def test_dockerfile_and_compose_file():
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    instructions = [line.split()[0] for line in dockerfile.splitlines() if line and not line.startswith((" ", "#"))]
    assert instructions[0] == "FROM" and "USER" in instructions and "HEALTHCHECK" in instructions
    assert "CMD" in instructions and '"aidgraph", "serve"' in dockerfile
    for copied in re.findall(r"^COPY (?!--from)(\S+)", dockerfile, re.M):
        assert (ROOT / copied).exists(), copied
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert {"aidgraph", "postgres", "opensearch", "migrate"} <= set(services)
    app = services["aidgraph"]
    env = app["environment"]
    assert env["AIDGRAPH_DATABASE_URL"].startswith("postgresql://") and "@postgres:5432/" in env["AIDGRAPH_DATABASE_URL"]
    assert env["AIDGRAPH_OPENSEARCH_URL"].startswith("https://opensearch:9200")
    assert services["migrate"]["command"] == ["aidgraph", "init-db"]
    assert app["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert app["depends_on"]["opensearch"]["condition"] == "service_healthy"
    assert any("/readyz" in part for part in app["healthcheck"]["test"])
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        for dependency in service.get("depends_on", {}):
            assert dependency in services, (name, dependency)
    for volume in [v.split(":")[0] for s in services.values() for v in s.get("volumes", [])]:
        assert volume in compose["volumes"], volume
