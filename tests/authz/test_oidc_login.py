"""OpenID Connect login (issue 14, optional and configured) against a real provider process over HTTP
(tests/oidc_provider.py, started here with uvicorn), on both engines: a configured user signs in at the provider
and gets the same session as a password login; a forged signature, another audience, another nonce, another issuer,
an expired token, a tampered state, a refused authorization, an unknown and a deactivated user are all refused
with nothing but an audit row written; without configuration the routes do not exist."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from aidgraph.core.access import users
from aidgraph.core.app.demo import ensure_demo_user
from aidgraph.core.app.server import default_components
from aidgraph.core.storage.db import make_sync_engine, session_scope
from aidgraph.core.storage.models import AuditLog
from tests.conftest import server_settings
from tests.live import free_port, run_live_server

ROOT = Path(__file__).resolve().parents[2]
CLIENT_ID, CLIENT_SECRET = "aidgraph-console", "s3cret-of-the-province"
ME = "query Me { me { username roles } }"


@pytest.fixture(scope="module")
def provider():
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    env = {**os.environ, "OIDC_TEST_ISSUER": issuer, "OIDC_TEST_CLIENT_ID": CLIENT_ID,
           "OIDC_TEST_CLIENT_SECRET": CLIENT_SECRET, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "uvicorn", "tests.oidc_provider:app", "--host", "127.0.0.1",
                                "--port", str(port), "--log-level", "warning"], cwd=ROOT, env=env)
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise RuntimeError("the OIDC provider did not start")
        time.sleep(0.1)
    yield issuer
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def server(db_url, provider):
    engine = make_sync_engine(db_url)
    for username in ("zhang.caseworker", "left.office"):  # users with a role (policies loaded on the way)
        ensure_demo_user(engine, server_settings(db_url), username=username, role="township_caseworker",
                         region_code="440106011")
    with session_scope(engine) as session:
        users.set_active(session, "left.office", False)
    engine.dispose()
    settings = server_settings(db_url, oidc_issuer=provider, oidc_client_id=CLIENT_ID,
                               oidc_client_secret=CLIENT_SECRET, oidc_username_claim="preferred_username")
    with run_live_server(default_components(settings)) as live:
        httpx.post(f"{provider}/test/setup", json={"redirect_uri": f"{live.url}/auth/oidc/callback"})
        yield live


def _setup(provider: str, username: str, mode: str = "ok") -> None:
    httpx.post(f"{provider}/test/setup", json={"mode": mode, "user": {"sub": f"idp|{username}",
                                                                      "preferred_username": username}})


def sign_in(server, provider: str, username: str, mode: str = "ok", tamper_state: bool = False):
    """The browser's path: aidgraph -> provider -> aidgraph's callback. (the callback's response, the client)"""
    _setup(provider, username, mode)
    client = httpx.Client(follow_redirects=False, timeout=30)
    start = client.get(f"{server.url}/auth/oidc/login", params={"next": "/console#/alerts"})
    assert start.status_code == 302 and start.headers["location"].startswith(f"{provider}/authorize?")
    back = client.get(start.headers["location"])
    assert back.status_code == 302, back.text
    location = back.headers["location"]
    assert location.startswith(f"{server.url}/auth/oidc/callback?")
    if tamper_state:
        location = location.replace("state=", "state=x", 1)
    return client.get(location), client


def _audits(db_url, action: str) -> list[AuditLog]:
    engine = make_sync_engine(db_url)
    with session_scope(engine) as session:
        rows = session.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)).all()
        session.expunge_all()
    engine.dispose()
    return list(rows)


def test_a_configured_user_signs_in_at_the_provider_and_gets_a_session(server, provider, db_url):
    answer, client = sign_in(server, provider, "zhang.caseworker")
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/console#/alerts"
    assert client.cookies.get("aidgraph_session") and client.cookies.get("aidgraph_csrf")
    me = client.post(f"{server.url}/graphql", json={"query": ME},
                     headers={"X-CSRF-Token": client.cookies["aidgraph_csrf"]})
    assert me.json()["data"]["me"] == {"username": "zhang.caseworker", "roles": ["township_caseworker"]}
    without_csrf = client.post(f"{server.url}/graphql", json={"query": ME})
    assert without_csrf.status_code == 403  # the cookie session is the password login's: CSRF still required
    login = _audits(db_url, "login")[-1]
    assert login.actor == "zhang.caseworker" and login.detail["method"] == "oidc"
    assert login.detail["subject"] == "idp|zhang.caseworker" and login.detail["issuer"] == provider


@pytest.mark.parametrize("mode, reason", [
    ("forged", "InvalidSignatureError"), ("wrong_aud", "InvalidAudienceError"), ("wrong_nonce", "nonce mismatch"),
    ("wrong_iss", "InvalidIssuerError"), ("expired", "ExpiredSignatureError")])
def test_a_token_that_does_not_verify_is_refused(server, provider, db_url, mode, reason):
    answer, client = sign_in(server, provider, "zhang.caseworker", mode)
    assert answer.status_code == 401, answer.text
    assert answer.json()["errors"][0]["extensions"]["code"] == "OIDC_TOKEN"
    assert "aidgraph_session" not in client.cookies
    failed = _audits(db_url, "login_failed")[-1]
    assert failed.detail == {"method": "oidc", "username": None, "reason": reason}


def test_state_refusals_and_unknown_or_inactive_users(server, provider, db_url):
    tampered, client = sign_in(server, provider, "zhang.caseworker", tamper_state=True)
    assert tampered.status_code == 400 and tampered.json()["errors"][0]["extensions"]["code"] == "OIDC_STATE"
    no_flow = httpx.get(f"{server.url}/auth/oidc/callback", params={"code": "x", "state": "y"})
    assert no_flow.status_code == 400 and "start again" in no_flow.json()["errors"][0]["message"]
    denied, _ = sign_in(server, provider, "zhang.caseworker", "deny")
    assert denied.status_code == 401 and denied.json()["errors"][0]["extensions"]["code"] == "OIDC_DENIED"
    for username, reason in (("nobody.here", "unknown user"), ("left.office", "inactive")):
        refused, client = sign_in(server, provider, username)
        assert refused.status_code == 403, refused.text
        assert refused.json()["errors"][0]["message"].startswith("no active aidgraph user")
        assert "aidgraph_session" not in client.cookies
        assert _audits(db_url, "login_failed")[-1].detail == {"method": "oidc", "username": username,
                                                                "reason": reason}
    engine = make_sync_engine(db_url)
    with session_scope(engine) as session:
        assert users.get_user(session, "nobody.here") is None  # never created


def test_without_an_issuer_there_is_no_oidc_login(db_url):
    with run_live_server(default_components(server_settings(db_url))) as live:
        assert httpx.get(f"{live.url}/auth/oidc/login").status_code == 404
