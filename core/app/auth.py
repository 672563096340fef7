"""Login for people over HTTP (``/auth/*``), the session cookie, CSRF and CORS: how a browser reaches the API.

Why it exists: the console (and any frontend) needs people to sign in with a username and a password, not a
token minted on the server's command line. ``POST /auth/login`` answers ``{"token", "expiresAt"}`` (the same
signed bearer token ``aidgraph token`` prints) and sets two cookies:

- ``aidgraph_session``: the token, HttpOnly, SameSite=Strict, Path=/ (Secure in production or over HTTPS);
- ``aidgraph_csrf``: an HMAC of the token's id under the signing secret, readable by the page's script.

``/graphql`` accepts the bearer token as before, or the session cookie; a request authenticated by the cookie
must carry the CSRF value in ``X-CSRF-Token`` (double submit, bound to the session so a planted cookie does not
help), else HTTP 403 with a JSON error and nothing runs. The header is demanded of every cookie-authenticated
POST, queries included: simpler than parsing the document first, and the console sends it always.

Failed logins are rate limited per username and per address (:mod:`aidgraph.core.access.passwords`; an attempt is
counted before its password is checked, atomically, so a burst of attempts cannot outrun the limit), and every
login, failure, refusal, logout and password change is written to the audit log. A wrong password, an unknown
user and a deactivated user all get the same 401 answer. ``POST /auth/logout`` revokes the token's id (so the
token stops working before its expiry) and clears the cookies; ``POST /auth/password`` lets a signed-in user
change their own password given the current one. CORS is off unless ``AIDGRAPH_CORS_ORIGINS`` names origins.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import os
from collections.abc import Mapping
from typing import Any

import anyio
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from aidgraph.core.access import passwords
from aidgraph.core.access.actor import Actor
from aidgraph.core.access.authz import grants_query
from aidgraph.core.access.authn import (Unauthenticated, actor_for_request, bearer_token, decode_token,
                                        issue_token, signing_secret)
from aidgraph.core.graph import audit
from aidgraph.core.app.sessions import identity_sessions, system_sessions
from aidgraph.core.storage.db import read_session
from aidgraph.core.storage.models import AppUser

log = logging.getLogger("aidgraph.auth")

SESSION_COOKIE = "aidgraph_session"
CSRF_COOKIE = "aidgraph_csrf"
CSRF_HEADER = "x-csrf-token"
SESSION_TTL = dt.timedelta(hours=8)
BAD_CREDENTIALS = "wrong username or password"


class Forbidden(Exception):
    """Credentials present but the request may not proceed (a missing or wrong CSRF token): HTTP 403."""


def _error(status: int, message: str, code: str, headers: dict | None = None, field: str | None = None) -> JSONResponse:
    error: dict[str, Any] = {"message": message, "extensions": {"code": code}}
    if field:
        error["extensions"]["field"] = field
    return JSONResponse({"errors": [error]}, status_code=status, headers=headers)


def _busy_is_503(handler):
    """A login that waited out the database's lock (SQLite's busy timeout when many logins and writes arrive at
    once) answers 503 with Retry-After, never a 500 with a traceback: nothing was decided for it (its
    transaction rolled back), and the client may send it again."""

    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except OperationalError as exc:
            if "locked" not in str(exc.orig).lower() and "busy" not in str(exc.orig).lower():
                raise
            log.warning("login: the database stayed locked; answered 503")
            return _error(503, "the database is busy: try again in a moment", "UNAVAILABLE",
                          headers={"Retry-After": "1"})

    return guarded


def csrf_for(settings, claims: dict) -> str:
    """The CSRF value of one session: HMAC-SHA256 of the token id under the signing secret."""
    key = signing_secret(settings).encode()
    return hmac.new(key, f"csrf:{claims.get('jti', '')}".encode(), hashlib.sha256).hexdigest()


def _address(request: Request) -> str:
    return (request.client.host if request.client else None) or "unknown"


async def _home_region(session, username: str) -> str | None:
    """The region an account's audit rows are filed under (so the auditors of that region see its logins): the
    common division of the user's grants; ``None`` for an unknown username (the CLI's ``aidgraph audit`` shows
    those)."""
    codes = [region for _role, region in (await session.execute(grants_query(username))).all()]
    common = os.path.commonprefix(codes) if codes else ""
    for length in (12, 9, 6, 4, 2):
        if len(common) >= length:
            return common[:length]
    return None


def _actor(user_or_name: AppUser | str, request: Request) -> Actor:
    if isinstance(user_or_name, AppUser):
        return Actor(username=user_or_name.username, display_name=user_or_name.display_name,
                     remote_addr=_address(request))
    return Actor(username=str(user_or_name)[:64] or "-", display_name="", remote_addr=_address(request))


async def _json_body(request: Request) -> dict:
    try:
        body = await request.json()
    except Exception:
        return {}
    return body if isinstance(body, dict) else {}


def _secure(request: Request, settings) -> bool:
    return settings.production or request.url.scheme == "https"


def _set_session_cookies(response: Response, request: Request, settings, token: str, claims: dict) -> None:
    max_age = max(int(claims["exp"] - dt.datetime.now(dt.timezone.utc).timestamp()), 1)
    secure = _secure(request, settings)
    response.set_cookie(SESSION_COOKIE, token, max_age=max_age, path="/", httponly=True, samesite="strict",
                        secure=secure)
    response.set_cookie(CSRF_COOKIE, csrf_for(settings, claims), max_age=max_age, path="/", httponly=False,
                        samesite="strict", secure=secure)


def _clear_session_cookies(response: Response, request: Request, settings) -> None:
    secure = _secure(request, settings)
    for name, httponly in ((SESSION_COOKIE, True), (CSRF_COOKIE, False)):
        response.delete_cookie(name, path="/", httponly=httponly, samesite="strict", secure=secure)


# --- credentials of a request -------------------------------------------------------------------------------


def request_token(request: Request, settings) -> tuple[str, dict, bool]:
    """The token of a request (bearer header first, else the session cookie), its verified claims, and whether
    it came from the cookie. A cookie-authenticated POST must carry the session's CSRF value."""
    authorization = request.headers.get("authorization")
    if authorization:
        token = bearer_token(authorization)
        return token, decode_token(settings, token), False
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise Unauthenticated("authentication required: log in at /auth/login or send Authorization: Bearer <token>")
    token = cookie
    claims = decode_token(settings, token)
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not hmac.compare_digest(sent, csrf_for(settings, claims)):
            raise Forbidden("CSRF token missing or wrong: send the aidgraph_csrf cookie's value in X-CSRF-Token")
    return token, claims, True


async def _revoked(session_factory, claims: dict) -> bool:
    jti = claims.get("jti")
    if not jti:
        return False
    async with read_session(session_factory) as session:
        return (await session.scalar(passwords.revoked_query(jti))) is not None


async def authenticate_request(request: Request, components) -> Actor:
    """The actor of a ``/graphql`` request from the bearer token or the session cookie (+ CSRF); raises
    :class:`Unauthenticated` (401) or :class:`Forbidden` (403)."""
    settings = components.settings
    token, claims, from_cookie = request_token(request, settings)
    if await _revoked(identity_sessions(components), claims):
        raise Unauthenticated("session ended: log in again")
    if from_cookie:
        # The access floor reads the bearer header; hand it the cookie's token the same way.
        scope = dict(request.scope)
        scope["headers"] = [(k, v) for k, v in request.scope["headers"] if k != b"authorization"] + [
            (b"authorization", b"Bearer " + token.encode())]
        request = Request(scope, request.receive)
    return await actor_for_request(request, components.settings, identity_sessions(components))


# --- the /auth routes ----------------------------------------------------------------------------------------


def auth_routes(components) -> list[Route]:
    settings = components.settings

    async def login(request: Request) -> Response:
        body = await _json_body(request)
        username, password = body.get("username"), body.get("password")
        if not isinstance(username, str) or not isinstance(password, str) or not username or not password:
            return _error(400, "send JSON {\"username\": ..., \"password\": ...}", "VALIDATION")
        username = username.strip()[:64]
        address = _address(request)
        async with system_sessions(components, "login")() as session:
            # The attempt is counted first, in a short transaction of its own (passwords.reserve_attempt): attempts
            # sent at once cannot all pass the check before any of them is counted.
            async with session.begin():
                attempt = await session.run_sync(lambda s: passwords.reserve_attempt(s, username, address))
                if isinstance(attempt, passwords.Limit):
                    audit.record(session, _actor(username, request), "login_refused", "app_user", None,
                                 await _home_region(session, username),
                                 detail={"username": username, "rate_limited_by": attempt.by})
                    return _error(429, "too many failed logins: try again later", "RATE_LIMITED",
                                  headers={"Retry-After": str(attempt.retry_after)})
            async with session.begin():
                user = await session.scalar(select(AppUser).where(AppUser.username == username))
                ok = await anyio.to_thread.run_sync(passwords.verify, user, password)
                if not ok or user is None or not user.active:
                    # the attempt's row stays: it is this failure
                    reason = "unknown user" if user is None else ("inactive" if ok else "wrong password")
                    audit.record(session, _actor(username, request), "login_failed", "app_user",
                                 user.id if user else None, await _home_region(session, username),
                                 detail={"username": username, "reason": reason})
                    failed = True
                else:
                    failed = False
                    if passwords.needs_rehash(user):
                        user.password_hash = await anyio.to_thread.run_sync(passwords.hash_password, password)
                    await session.run_sync(lambda s: passwords.clear_failures(s, username))
                    token = issue_token(settings, user, SESSION_TTL)
                    claims = decode_token(settings, token)
                    audit.record(session, _actor(user, request), "login", "app_user", user.id,
                                 await _home_region(session, user.username), detail={"jti": claims["jti"]})
        if failed:
            return _error(401, BAD_CREDENTIALS, "UNAUTHENTICATED", headers={"WWW-Authenticate": "Bearer"})
        assert user is not None  # (not failed: the user was found and active)
        expires = dt.datetime.fromtimestamp(claims["exp"], dt.timezone.utc)
        response = JSONResponse({"token": token, "expiresAt": expires.isoformat().replace("+00:00", "Z"),
                                 "csrfToken": csrf_for(settings, claims), "username": user.username,
                                 "displayName": user.display_name},
                                headers={"Cache-Control": "no-store"})
        _set_session_cookies(response, request, settings, token, claims)
        return response

    async def logout(request: Request) -> Response:
        response = JSONResponse({"ok": True}, headers={"Cache-Control": "no-store"})
        try:
            token = bearer_token(request.headers["authorization"]) if request.headers.get("authorization") \
                else request.cookies.get(SESSION_COOKIE)
            claims = decode_token(settings, token) if token else None
        except Unauthenticated:
            claims = None
        if claims and claims.get("jti"):
            expires = dt.datetime.fromtimestamp(claims["exp"], dt.timezone.utc).replace(tzinfo=None)
            async with system_sessions(components, "logout")() as session:
                async with session.begin():
                    await session.run_sync(lambda s: passwords.revoke_token(s, claims["jti"], expires))
                    audit.record(session, _actor(claims["sub"], request), "logout", "app_user", claims.get("uid"),
                                 await _home_region(session, claims["sub"]), detail={"jti": claims["jti"]})
        _clear_session_cookies(response, request, settings)
        return response

    async def change_password(request: Request) -> Response:
        try:
            _token, claims, _ = request_token(request, settings)
            if await _revoked(identity_sessions(components), claims):
                raise Unauthenticated("session ended: log in again")
        except Unauthenticated as exc:
            return _error(401, str(exc), "UNAUTHENTICATED", headers={"WWW-Authenticate": "Bearer"})
        except Forbidden as exc:
            return _error(403, str(exc), "CSRF")
        body = await _json_body(request)
        current, new = body.get("currentPassword"), body.get("newPassword")
        if not isinstance(current, str) or not isinstance(new, str):
            return _error(400, "send JSON {\"currentPassword\": ..., \"newPassword\": ...}", "VALIDATION")
        address = _address(request)
        async with system_sessions(components, "password change")() as session:
            async with session.begin():  # the attempt is counted before the check, as a login attempt is
                username = str(claims["sub"])
                attempt = await session.run_sync(lambda s: passwords.reserve_attempt(s, username, address))
                if isinstance(attempt, passwords.Limit):
                    return _error(429, "too many failed attempts: try again later", "RATE_LIMITED",
                                  headers={"Retry-After": str(attempt.retry_after)})
                attempt_id = attempt
            async with session.begin():
                user = await session.scalar(select(AppUser).where(AppUser.username == username))
                if user is None or user.id != claims.get("uid") or not user.active:
                    await session.run_sync(lambda s: passwords.forget_attempt(s, attempt_id))
                    return _error(401, "unknown or inactive user", "UNAUTHENTICATED")
                ok = await anyio.to_thread.run_sync(passwords.verify, user, current)
                if not ok:  # the attempt's row stays: it is this failure
                    audit.record(session, _actor(user, request), "password_change_failed", "app_user", user.id,
                                 await _home_region(session, user.username))
                    error = _error(400, "the current password is wrong", "VALIDATION", field="currentPassword")
                else:
                    await session.run_sync(lambda s: passwords.forget_attempt(s, attempt_id))
                    try:
                        passwords.check_strength(new, user.username)
                    except passwords.PasswordError as exc:
                        return _error(400, str(exc), "VALIDATION", field="newPassword")
                    user.password_hash = await anyio.to_thread.run_sync(passwords.hash_password, new)
                    user.password_changed_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
                    audit.record(session, _actor(user, request), "password_changed", "app_user", user.id,
                                 await _home_region(session, user.username))
                    error = None
        return error or JSONResponse({"ok": True}, headers={"Cache-Control": "no-store"})

    async def methods(request: Request) -> Response:
        """How people may sign in here (the console's login screen asks): always a password; OpenID Connect at
        the province's identity provider when one is configured."""
        return JSONResponse({"password": True, "oidc": bool(settings.oidc_issuer)},
                            headers={"Cache-Control": "no-store"})

    return [Route("/auth/methods", methods, methods=["GET"]),
            Route("/auth/login", _busy_is_503(login), methods=["POST"]), Route("/auth/logout", logout, methods=["POST"]),
            Route("/auth/password", change_password, methods=["POST"])]


def cors_middleware(environ: Mapping[str, str] | None = None) -> list[Middleware]:
    """CORS for the origins in ``AIDGRAPH_CORS_ORIGINS`` (comma-separated) only; none configured: no CORS."""
    env: Mapping[str, str] = os.environ if environ is None else environ
    origins = [o.strip().rstrip("/") for o in env.get("AIDGRAPH_CORS_ORIGINS", "").split(",") if o.strip()]
    if not origins:
        return []
    return [Middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST"],
                       allow_headers=["Authorization", "Content-Type", "X-CSRF-Token"], allow_credentials=True,
                       max_age=600)]
