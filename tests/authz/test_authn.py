"""Tokens and the request boundary: signing secret, expiry, tampering, inactive and deleted users, the CLI."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import os
import stat

import jwt
import pytest
from starlette.requests import Request
from typer.testing import CliRunner

from aidgraph.core.policy.host import casbin_objects
from aidgraph.core.access import authn
from aidgraph.core.access import authz
from aidgraph.core.access import users
from aidgraph.core.access.actor import RoleGrant
from aidgraph.core.storage.db import async_session_factory, make_async_engine, session_scope
from aidgraph.core.storage.models import AppUser
from tests.authz.conftest import CONFIGS, auth_settings


def request_with(authorization: str | None) -> Request:
    headers = [(b"authorization", authorization.encode())] if authorization is not None else []
    return Request({"type": "http", "method": "POST", "path": "/graphql", "headers": headers,
                    "client": ("10.1.2.3", 5555), "query_string": b""})


def resolve(settings, authorization: str | None):
    async def go():
        engine = make_async_engine(settings.database_url)
        try:
            return await authn.actor_for_request(request_with(authorization), settings,
                                                 async_session_factory(engine))
        finally:
            await engine.dispose()

    return asyncio.run(go())


@pytest.fixture(scope="module")
def settings(db_url, tmp_path_factory, policies):
    s = auth_settings(db_url, tmp_path_factory.mktemp("authn"))
    authz.forget_authorizers()
    return s


@pytest.fixture(scope="module")
def clerk(sync_engine, settings):
    with session_scope(sync_engine) as session:
        user = users.add_user(session, "clerk", [RoleGrant("township_caseworker", "440106011"),
                                                 RoleGrant("auditor", "3501")], "王办事员")
    return user


def token_for(sync_engine, settings, username, **kw) -> str:
    with session_scope(sync_engine) as session:
        return authn.issue_token(settings, users.get_user(session, username), **kw)


def test_a_valid_token_gives_the_user_and_grants(sync_engine, settings, clerk):
    actor = resolve(settings, f"Bearer {token_for(sync_engine, settings, 'clerk')}")
    assert (actor.username, actor.display_name, actor.remote_addr) == ("clerk", "王办事员", "10.1.2.3")
    assert set(actor.grants) == {RoleGrant("township_caseworker", "440106011"), RoleGrant("auditor", "3501")}
    assert not actor.system
    assert actor.scope("read", "household").prefixes == ("3501", "440106011")
    assert actor.scope("read_sensitive", "person").prefixes == ("440106011",)


@pytest.mark.parametrize("header, reason", [
    (None, "authentication required"),
    ("", "authentication required"),
    ("Basic Y2xlcms6cGFzcw==", "malformed Authorization header"),
    ("Bearer", "malformed Authorization header"),
    ("Bearer not-a-jwt", "invalid token"),
])
def test_missing_or_malformed_credentials(settings, clerk, header, reason):
    with pytest.raises(authn.Unauthenticated, match=reason):
        resolve(settings, header)


def test_tampered_forged_and_expired_tokens_are_refused(sync_engine, settings, clerk):
    good = token_for(sync_engine, settings, "clerk")
    head, payload, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "province_boss"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    tampered = f"{head}.{forged_payload}.{signature}"
    other_key = jwt.encode({**claims, "sub": "clerk"}, "a" * 64, algorithm="HS256")
    unsigned = jwt.encode({**claims, "sub": "clerk"}, None, algorithm="none")
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)
    expired = token_for(sync_engine, settings, "clerk", ttl="1h", now=past)
    for token, reason in [(tampered, "invalid token"), (other_key, "invalid token"), (unsigned, "invalid token"),
                          (expired, "token expired")]:
        with pytest.raises(authn.Unauthenticated, match=reason):
            resolve(settings, f"Bearer {token}")


def test_inactive_deleted_and_recreated_users_are_refused(sync_engine, settings, policies):
    with session_scope(sync_engine) as session:
        users.add_user(session, "leaver", [RoleGrant("village_assistant", "440106011004")])
    token = token_for(sync_engine, settings, "leaver")
    assert resolve(settings, f"Bearer {token}").username == "leaver"
    with session_scope(sync_engine) as session:
        users.set_active(session, "leaver", False)
    with pytest.raises(authn.Unauthenticated, match="unknown or inactive user"):
        resolve(settings, f"Bearer {token}")
    with session_scope(sync_engine) as session:
        users.delete_user(session, "leaver")
    with pytest.raises(authn.Unauthenticated, match="unknown or inactive user"):
        resolve(settings, f"Bearer {token}")
    # Same name, new account: the old token names the old account's id and stays refused.
    with session_scope(sync_engine) as session:
        users.add_user(session, "leaver", [RoleGrant("province_admin", "44")])
    with pytest.raises(authn.Unauthenticated, match="unknown or inactive user"):
        resolve(settings, f"Bearer {token}")


def test_a_revoked_grant_takes_effect_on_the_next_request(sync_engine, settings, policies):
    with session_scope(sync_engine) as session:
        users.add_user(session, "mover", [RoleGrant("county_officer", "440106"), RoleGrant("county_officer", "440105")])
    token = f"Bearer {token_for(sync_engine, settings, 'mover')}"
    assert resolve(settings, token).scope().prefixes == ("440105", "440106")
    with session_scope(sync_engine) as session:
        users.revoke(session, "mover", [RoleGrant("county_officer", "440105")])
    assert resolve(settings, token).scope().prefixes == ("440106",)


def test_development_secret_is_generated_once_outside_the_repository_with_mode_0600(tmp_path):
    settings = auth_settings("sqlite://", tmp_path)
    first = authn.signing_secret(settings)
    path = tmp_path / "state" / authn.SECRET_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert authn.signing_secret(settings) == first and len(first) >= 32
    assert not str(path).startswith(str(CONFIGS.parent))


def test_production_requires_a_strong_configured_secret(tmp_path):
    with pytest.raises(authn.ConfigurationError, match="AIDGRAPH_SECRET_KEY"):
        authn.check_configuration(auth_settings("sqlite://", tmp_path, env="production"))
    with pytest.raises(authn.ConfigurationError, match="at least 32 bytes"):
        authn.check_configuration(auth_settings("sqlite://", tmp_path, env="production", secret_key="short"))
    assert not (tmp_path / "state").exists()
    authn.check_configuration(auth_settings("sqlite://", tmp_path, env="production", secret_key="k" * 40))


@pytest.mark.parametrize("text, expected", [("90", dt.timedelta(seconds=90)), ("30m", dt.timedelta(minutes=30)),
                                            ("8h", dt.timedelta(hours=8)), ("7d", dt.timedelta(days=7))])
def test_ttl_parsing(text, expected):
    assert authn.parse_ttl(text) == expected


@pytest.mark.parametrize("text", ["0", "-5m", "1y", "31d", "soon"])
def test_bad_ttl(text):
    with pytest.raises(ValueError, match="--ttl"):
        authn.parse_ttl(text)


def test_inactive_users_get_no_token(settings):
    with pytest.raises(ValueError, match="inactive"):
        authn.issue_token(settings, AppUser(id=1, username="x", display_name="x", active=False))


def test_cli_users_and_tokens(sqlite_url, tmp_path):
    from aidgraph.core.app.cli import app

    env = {"AIDGRAPH_DATABASE_URL": sqlite_url, "AIDGRAPH_STATE_DIR": str(tmp_path / "state"),
           "AIDGRAPH_PROVINCE_CONFIGS": str(CONFIGS), "AIDGRAPH_ENV": "development"}
    runner = CliRunner()

    def run(*args):
        return runner.invoke(app, list(args), env=env)

    assert run("policy", "load").exit_code == 0
    r = run("users", "add", "zhang", "--role", "county_officer", "--region", "440106", "--region", "440105",
            "--display-name", "张科长")
    assert r.exit_code == 0, r.output
    r = run("users", "add", "li", "--role", "county_officer", "--region", "449999")
    assert r.exit_code == 1 and "region 449999 does not exist" in r.output
    r = run("users", "add", "li", "--role", "mayor", "--region", "44")
    assert r.exit_code == 1 and "unknown role 'mayor'" in r.output
    listing = run("users", "list").output
    assert "zhang" in listing and "county_officer@440105" in listing and "li" not in listing.split()
    r = run("token", "zhang", "--ttl", "30m")
    assert r.exit_code == 0
    claims = jwt.decode(r.output.strip(), authn.signing_secret(auth_settings(sqlite_url, tmp_path)),
                        algorithms=["HS256"], issuer="aidgraph")
    assert claims["sub"] == "zhang" and claims["exp"] - claims["iat"] == 1800
    assert run("users", "deactivate", "zhang").exit_code == 0
    r = run("token", "zhang")
    assert r.exit_code == 1 and "inactive" in r.output
    r = run("token", "nobody")
    assert r.exit_code == 1 and "no user 'nobody'" in r.output
    bad = tmp_path / "configs" / "62"
    bad.mkdir(parents=True)
    (bad / "policy.csv").write_text("# header\np, auditor, household, read\np, auditor, household\n")
    r = runner.invoke(app, ["policy", "load"], env={**env, "AIDGRAPH_PROVINCE_CONFIGS": str(tmp_path / "configs")})
    assert r.exit_code == 1 and "line 3" in r.output and "policy.csv" in r.output


def test_a_policy_reloaded_by_another_process_applies_without_restart(sync_engine, settings, policies, tmp_path,
                                                                      monkeypatch):
    with session_scope(sync_engine) as session:
        users.add_user(session, "assistant", [RoleGrant("village_assistant", "440106011004")])
    token = f"Bearer {token_for(sync_engine, settings, 'assistant')}"
    assert resolve(settings, token).scope("read", "alert").prefixes == ("440106011004",)
    # Another process loads a Guangdong policy without the assistant's alert reads.
    import shutil

    shutil.copytree(CONFIGS / "44", tmp_path / "44")
    path = tmp_path / "44" / "policy.csv"
    path.write_text("".join(line for line in path.read_text(encoding="utf-8").splitlines(keepends=True)
                            if line.strip() != "p, village_assistant, alert, read"), encoding="utf-8")
    with session_scope(sync_engine) as session:
        authz.load_policies(session, tmp_path, ["44"], objects=authz.known_objects(casbin_objects()))
    monkeypatch.setattr(authz, "POLICY_RECHECK_SECONDS", 0.0)
    try:
        actor = resolve(settings, token)
        assert actor.scope("read", "alert").empty
        assert actor.scope("read", "household").prefixes == ("440106011004",)
    finally:
        with session_scope(sync_engine) as session:
            authz.load_policies(session, CONFIGS, ["44"], objects=authz.known_objects(casbin_objects()))
        resolve(settings, token)
