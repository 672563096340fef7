"""Login for people against a live server on both engines: /auth/login, the session cookie and its CSRF header,
logout, password changes, rate limits, the audit trail, CORS, and the CLI that sets passwords.

Everything goes over real HTTP (httpx) to a uvicorn server on the module's database; nothing is mocked.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import httpx
import jwt
import pytest
from sqlalchemy import delete, func, select
from typer.testing import CliRunner

from aidgraph.core.access import passwords, users
from aidgraph.core.access.actor import RoleGrant
from aidgraph.core.storage.db import session_scope
from aidgraph.core.storage.models import AppUser, AuditLog, Household, LoginFailure

PASSWORD = "correct horse 电池 staple"
ME = "{ me { username roles } }"
REGISTER = """mutation($input: RegisterHouseholdInput!) { registerHousehold(input: $input) {
  household { id } errors { field message code } } }"""


@pytest.fixture(scope="module")
def people(live_server, sync_engine):
    """A township caseworker with a password, one without, and a deactivated one."""
    with session_scope(sync_engine) as session:
        clerk = users.add_user(session, "li.clerk", [RoleGrant("township_caseworker", "440106011")], "李办事员")
        passwords.set_password(session, clerk, PASSWORD)
        users.add_user(session, "no.password", [RoleGrant("township_caseworker", "440106011")])
        gone = users.add_user(session, "gone.user", [RoleGrant("township_caseworker", "440106011")])
        passwords.set_password(session, gone, PASSWORD)
        gone.active = False
    return live_server


def login(live, username: str, password: str, client: httpx.Client | None = None) -> httpx.Response:
    return (client or live.client).post(f"{live.url}/auth/login", json={"username": username, "password": password})


def audit_count(sync_engine, action: str, username: str) -> int:
    with session_scope(sync_engine) as session:
        return session.scalar(select(func.count()).select_from(AuditLog).where(
            AuditLog.action == action, AuditLog.actor == username))


def test_login_answers_the_bearer_token_and_sets_a_strict_httponly_cookie(people, sync_engine):
    before = audit_count(sync_engine, "login", "li.clerk")
    with httpx.Client() as client:
        response = login(people, "li.clerk", PASSWORD, client)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) >= {"token", "expiresAt"}
        claims = jwt.decode(body["token"], options={"verify_signature": False})
        assert claims["sub"] == "li.clerk"
        expires = dt.datetime.fromisoformat(body["expiresAt"].replace("Z", "+00:00"))
        assert expires.timestamp() == claims["exp"]
        cookies = response.headers.get_list("set-cookie")
        session_cookie = next(c for c in cookies if c.startswith("aidgraph_session="))
        assert "HttpOnly" in session_cookie and "SameSite=strict" in session_cookie and "Path=/" in session_cookie
        csrf_cookie = next(c for c in cookies if c.startswith("aidgraph_csrf="))
        assert "HttpOnly" not in csrf_cookie
        # the same token works as a bearer token, as `aidgraph token` prints it
        me = people.post(ME, token=body["token"]).json()
        assert me["data"]["me"] == {"username": "li.clerk", "roles": ["township_caseworker"]}
    assert audit_count(sync_engine, "login", "li.clerk") == before + 1


def test_wrong_password_unknown_user_inactive_user_and_no_password_get_one_answer(people, sync_engine):
    answers = [login(people, u, p) for u, p in (("li.clerk", "not the password"), ("nobody.here", PASSWORD),
                                                 ("gone.user", PASSWORD), ("no.password", PASSWORD))]
    assert {r.status_code for r in answers} == {401}
    assert len({r.text for r in answers}) == 1
    assert answers[0].json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert not any(r.headers.get("set-cookie") for r in answers)
    assert audit_count(sync_engine, "login_failed", "nobody.here") == 1
    assert audit_count(sync_engine, "login_failed", "gone.user") == 1
    with session_scope(sync_engine) as session:  # a good login later forgets the username's failures
        session.execute(delete(LoginFailure))


def test_graphql_takes_the_cookie_only_with_the_csrf_header(people, sync_engine):
    with httpx.Client() as client:
        assert login(people, "li.clerk", PASSWORD, client).status_code == 200
        csrf = client.cookies["aidgraph_csrf"]
        variables = {"input": {"regionCode": "440106011001", "members": [
            {"name": "陈测试", "idNumber": "44010619800101001X", "relationToHead": "SELF"}]}}
        with session_scope(sync_engine) as session:
            households = session.scalar(select(func.count()).select_from(Household))
        missing = client.post(f"{people.url}/graphql", json={"query": REGISTER, "variables": variables})
        wrong = client.post(f"{people.url}/graphql", json={"query": REGISTER, "variables": variables},
                            headers={"X-CSRF-Token": "0" * 64})
        for response in (missing, wrong):
            assert response.status_code == 403
            assert response.json()["errors"][0]["extensions"]["code"] == "CSRF" and "data" not in response.json()
        with session_scope(sync_engine) as session:
            assert session.scalar(select(func.count()).select_from(Household)) == households
        ok = client.post(f"{people.url}/graphql", json={"query": ME}, headers={"X-CSRF-Token": csrf})
        assert ok.status_code == 200 and ok.json()["data"]["me"]["username"] == "li.clerk"
    # no cookie, no header: 401 as before
    anonymous = httpx.post(f"{people.url}/graphql", json={"query": ME})
    assert anonymous.status_code == 401 and "data" not in anonymous.json()


def test_logout_ends_the_session_and_revokes_the_token(people):
    with httpx.Client() as client:
        token = login(people, "li.clerk", PASSWORD, client).json()["token"]
        csrf = client.cookies["aidgraph_csrf"]
        assert client.post(f"{people.url}/graphql", json={"query": ME}, headers={"X-CSRF-Token": csrf}).status_code == 200
        out = client.post(f"{people.url}/auth/logout")
        assert out.status_code == 200
        assert "aidgraph_session" not in client.cookies
        after = client.post(f"{people.url}/graphql", json={"query": ME}, headers={"X-CSRF-Token": csrf})
        assert after.status_code == 401
    assert people.post(ME, token=token).status_code == 401  # the bearer form of the same token is revoked too


def test_a_user_changes_their_own_password(people, sync_engine):
    with httpx.Client() as client:
        assert login(people, "li.clerk", PASSWORD, client).status_code == 200
        csrf = client.cookies["aidgraph_csrf"]
        url = f"{people.url}/auth/password"
        no_csrf = client.post(url, json={"currentPassword": PASSWORD, "newPassword": "a-new-password-2026"})
        assert no_csrf.status_code == 403
        wrong = client.post(url, json={"currentPassword": "nope", "newPassword": "a-new-password-2026"},
                            headers={"X-CSRF-Token": csrf})
        assert wrong.status_code == 400 and wrong.json()["errors"][0]["extensions"]["field"] == "currentPassword"
        weak = client.post(url, json={"currentPassword": PASSWORD, "newPassword": "short"},
                           headers={"X-CSRF-Token": csrf})
        assert weak.status_code == 400 and weak.json()["errors"][0]["extensions"]["field"] == "newPassword"
        assert login(people, "li.clerk", PASSWORD).status_code == 200  # nothing changed so far
        ok = client.post(url, json={"currentPassword": PASSWORD, "newPassword": "a-new-password-2026"},
                         headers={"X-CSRF-Token": csrf})
        assert ok.status_code == 200, ok.text
    assert login(people, "li.clerk", PASSWORD).status_code == 401
    assert login(people, "li.clerk", "a-new-password-2026").status_code == 200
    with session_scope(sync_engine) as session:  # back to the module's password
        passwords.set_password(session, users.get_user(session, "li.clerk"), PASSWORD)
        session.execute(delete(LoginFailure))
    assert audit_count(sync_engine, "password_changed", "li.clerk") == 1


def test_failed_logins_are_rate_limited_per_user_then_per_address(people, sync_engine):
    try:
        for _ in range(passwords.MAX_FAILURES_PER_USER):
            assert login(people, "li.clerk", "guess").status_code == 401
        limited = login(people, "li.clerk", PASSWORD)  # even the right password waits out the window
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
        assert limited.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        assert audit_count(sync_engine, "login_refused", "li.clerk") == 1
        assert audit_count(sync_engine, "login_failed", "li.clerk") >= passwords.MAX_FAILURES_PER_USER
        with session_scope(sync_engine) as session:
            session.execute(delete(LoginFailure))
        for i in range(passwords.MAX_FAILURES_PER_ADDRESS):
            assert login(people, f"spray{i}", "guess").status_code == 401
        by_address = login(people, "li.clerk", PASSWORD)  # a username never tried, refused for the address
        assert by_address.status_code == 429
    finally:
        with session_scope(sync_engine) as session:
            session.execute(delete(LoginFailure))
    assert login(people, "li.clerk", PASSWORD).status_code == 200


def _at_once(people, attempts: list[tuple[str, str]]) -> list[int]:
    """Send every (username, password) login at once, each on its own connection; the status codes (an answer
    that is neither 401 nor 429 fails here, with its body)."""
    def send(attempt: tuple[str, str]) -> httpx.Response:
        return httpx.post(f"{people.url}/auth/login", json={"username": attempt[0], "password": attempt[1]},
                          timeout=60)

    with ThreadPoolExecutor(len(attempts)) as pool:
        answers = list(pool.map(send, attempts))
    assert [(r.status_code, r.text) for r in answers if r.status_code not in (401, 429)] == []
    return [r.status_code for r in answers]


def test_concurrent_wrong_passwords_are_evaluated_no_more_often_than_the_limit(people, sync_engine):
    """The count and the check are one step: attempts sent at once cannot all read the count before any of them
    is counted, so no more than the limit of them reach the password check."""
    try:
        with session_scope(sync_engine) as session:
            session.execute(delete(LoginFailure))
        before = audit_count(sync_engine, "login_failed", "li.clerk")
        codes = _at_once(people, [("li.clerk", f"guess number {i}") for i in range(20)])
        assert sorted(codes) == [401] * passwords.MAX_FAILURES_PER_USER + [429] * (20 - passwords.MAX_FAILURES_PER_USER), codes
        assert audit_count(sync_engine, "login_failed", "li.clerk") - before == passwords.MAX_FAILURES_PER_USER
        with session_scope(sync_engine) as session:
            assert session.scalar(select(func.count()).select_from(LoginFailure)) == passwords.MAX_FAILURES_PER_USER
            session.execute(delete(LoginFailure))
        # A password spray from one address: a different username each time, the address's limit holds.
        codes = _at_once(people, [(f"burst{i}", "guess") for i in range(passwords.MAX_FAILURES_PER_ADDRESS + 10)])
        assert codes.count(401) == passwords.MAX_FAILURES_PER_ADDRESS and codes.count(429) == 10
    finally:
        with session_scope(sync_engine) as session:
            session.execute(delete(LoginFailure))
    assert login(people, "li.clerk", PASSWORD).status_code == 200


def test_cli_sets_passwords_from_standard_input(people, db_url, tmp_path):
    from aidgraph.core.app.cli import app

    env = {"AIDGRAPH_DATABASE_URL": db_url, "AIDGRAPH_STATE_DIR": str(tmp_path)}
    runner = CliRunner()
    added = runner.invoke(app, ["users", "add", "wang.county", "--role", "county_officer", "--region", "440106",
                                "--password-stdin"], input="county-officer-pass\n", env=env)
    assert added.exit_code == 0, added.output
    assert login(people, "wang.county", "county-officer-pass").status_code == 200
    weak = runner.invoke(app, ["users", "add", "weak.one", "--role", "county_officer", "--region", "440106",
                               "--password-stdin"], input="abc\n", env=env)
    assert weak.exit_code == 1 and "at least" in weak.output
    reset = runner.invoke(app, ["users", "set-password", "wang.county", "--password-stdin"],
                          input="reset-by-admin-1\n", env=env)
    assert reset.exit_code == 0, reset.output
    assert login(people, "wang.county", "county-officer-pass").status_code == 401
    assert login(people, "wang.county", "reset-by-admin-1").status_code == 200
    unknown = runner.invoke(app, ["users", "set-password", "nobody", "--password-stdin"], input="whatever-123\n", env=env)
    assert unknown.exit_code == 1


def test_weak_user_was_not_created(people, sync_engine):
    with session_scope(sync_engine) as session:
        assert session.scalar(select(AppUser).where(AppUser.username == "weak.one")) is None
        stored = session.scalar(select(AppUser.password_hash).where(AppUser.username == "li.clerk"))
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_cors_only_for_the_configured_origins(db_url, monkeypatch):
    from aidgraph.core.app.server import default_components
    from tests.conftest import server_settings
    from tests.live import run_live_server

    allowed, other = "http://localhost:5173", "http://evil.example"
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}
    monkeypatch.setenv("AIDGRAPH_CORS_ORIGINS", f"{allowed}, https://console.example.gov.cn")
    with run_live_server(default_components(server_settings(db_url))) as live:
        ok = httpx.options(f"{live.url}/graphql", headers={"Origin": allowed, **preflight})
        assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == allowed
        refused = httpx.options(f"{live.url}/graphql", headers={"Origin": other, **preflight})
        assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers
        simple = httpx.post(f"{live.url}/graphql", json={"query": ME}, headers={"Origin": other})
        assert simple.status_code == 401 and "access-control-allow-origin" not in simple.headers
    monkeypatch.delenv("AIDGRAPH_CORS_ORIGINS")
    with run_live_server(default_components(server_settings(db_url))) as live:  # none configured: no CORS at all
        none = httpx.options(f"{live.url}/graphql", headers={"Origin": allowed, **preflight})
        assert "access-control-allow-origin" not in none.headers


def test_a_login_that_waits_out_the_database_lock_is_a_503_not_a_500(people, sync_engine, db_url):
    """SQLite: while another writer holds the database past the busy timeout, a login answers 503 with
    Retry-After (its attempt was not counted: the transaction rolled back), and succeeds once the lock is gone."""
    if not db_url.startswith("sqlite"):
        pytest.skip("PostgreSQL has row locks: a login waits for the rows it needs, never for the whole database")
    import sqlite3

    holder = sqlite3.connect(db_url.removeprefix("sqlite:///"), timeout=1)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        answer = login(people, "li.clerk", "not the password")
    finally:
        holder.rollback()
        holder.close()
    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"] == "1" and answer.json()["errors"][0]["extensions"]["code"] == "UNAVAILABLE"
    assert login(people, "li.clerk", PASSWORD).status_code == 200
