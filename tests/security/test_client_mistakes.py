"""Client mistakes and malformed requests (issue 12, items 7 and 8): a coded GraphQL error or an HTTP 400
with a JSON body, never a 500, a traceback, SQL or the request's parameters; each logged as one line."""

from __future__ import annotations

import logging

import httpx
import pytest

from aidgraph.core.app.demo import ensure_demo_user
from aidgraph.core.app.server import default_components
from aidgraph.core.storage.db import make_sync_engine
from aidgraph.schema.relay import to_global_id
from tests.conftest import server_settings
from tests.live import run_live_server

LEAKS = ("Traceback", "SELECT", "sqlalchemy", "sqlite3", "psycopg", "File \"", "[parameters", "WHERE")


@pytest.fixture(scope="module")
def live(db_url):
    settings = server_settings(db_url, max_request_bytes=64 * 1024)
    engine = make_sync_engine(db_url)
    token = ensure_demo_user(engine, settings, username="mistake-admin", region_codes=("44",))
    engine.dispose()
    with run_live_server(default_components(settings)) as server:
        server.token = token
        yield server


def raw(live, content: bytes, content_type: str = "application/json") -> httpx.Response:
    return live.client.post(f"{live.url}/graphql", content=content,
                            headers={"Authorization": f"Bearer {live.token}", "Content-Type": content_type})


MISTAKES = {
    "first_101": ('{ households(regionCode: "44", first: 101) { totalCount } }', {}),
    "negative_first": ('{ households(regionCode: "44", first: -1) { totalCount } }', {}),
    "bad_cursor": ('{ households(regionCode: "44", after: "!!not-a-cursor") { totalCount } }', {}),
    "cursor_of_another_list": ('query($a: String) { households(regionCode: "44", after: $a) { totalCount } }',
                               {"a": "eyJ4IjoxfQ=="}),
    "region_off_a_level": ('{ households(regionCode: "44010") { totalCount } }', {}),
    "region_not_digits": ('{ households(regionCode: "44\' OR 1=1 --") { totalCount } }', {}),
    "oversized_node_id": ('query($id: ID!) { node(id: $id) { id } }', {"id": "A" * 5000}),
    "huge_integer_id": ('query($id: ID!) { node(id: $id) { id } }',
                        {"id": to_global_id("Household", 10 ** 30)}),
    "undefined_fragment": ("{ me { ...Nope } }", {}),
    "unknown_operation": ("query A { me { username } }", {}),
}


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_client_mistake_answers_a_code(live, name, caplog):
    query, variables = MISTAKES[name]
    body = {"query": query, "variables": variables}
    if name == "unknown_operation":
        body["operationName"] = "B"
    with caplog.at_level(logging.INFO):
        r = live.client.post(f"{live.url}/graphql", json=body, headers={"Authorization": f"Bearer {live.token}"})
    assert r.status_code in (200, 400), r.text
    payload = r.json()
    text = r.text
    for leak in LEAKS:
        assert leak not in text, text
    if payload.get("errors"):
        for error in payload["errors"]:
            assert error.get("extensions", {}).get("code"), payload
            assert error["extensions"]["code"] != "INTERNAL_SERVER_ERROR", payload  # a mistake, not a crash
    else:  # a harmless answer (null) is also acceptable for lookups of unknown ids
        assert name in ("huge_integer_id", "oversized_node_id") and payload["data"]["node"] is None
    for record in caplog.records:
        message = record.getMessage()
        assert "\n" not in message and record.exc_info is None, message


@pytest.mark.parametrize("content, content_type", [
    (b"null", "application/json"),
    (b'"a bare string"', "application/json"),
    (b"[1, 2]", "application/json"),
    (b"\xff\xfe{\"query\": \"{ me { username } }\"}", "application/json"),
    (b"{\"query\": \"{ me { username } }\", \"variables\": " + b"[" * 50_000 + b"]" * 50_000 + b"}",
     "application/json"),
    (b"{\"query\": 42}", "application/json"),
    (b"{\"query\": \"{ me { username } }\", \"variables\": \"x\"}", "application/json"),
    (b"{not json", "application/json"),
    (b"", "application/json"),
])
def test_malformed_bodies_answer_400_json(live, content, content_type):
    r = raw(live, content, content_type)
    assert r.status_code == 400, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["errors"][0]["extensions"]["code"]


def test_body_size_limit(live):
    big = b'{"query": "{ me { username } }", "variables": {"pad": "' + b"x" * (70 * 1024) + b'"}}'
    r = raw(live, big)
    assert r.status_code == 400 and r.json()["errors"][0]["extensions"]["code"] == "REQUEST_TOO_LARGE"
    ok = raw(live, b'{"query": "{ me { username } }"}')
    assert ok.status_code == 200 and ok.json()["data"]["me"]["username"] == "mistake-admin"


def test_body_size_limit_without_content_length(live):
    def chunks():
        yield b'{"query": "{ me { username } }", "variables": {"pad": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}}'

    r = live.client.post(f"{live.url}/graphql", content=chunks(),
                         headers={"Authorization": f"Bearer {live.token}", "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["errors"][0]["extensions"]["code"] == "REQUEST_TOO_LARGE"
