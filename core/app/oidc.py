"""OpenID Connect login against a province's identity provider (issue 14: optional, configured).

Why: provinces run their own identity providers for their staff; with ``AIDGRAPH_OIDC_ISSUER`` (and the client id
and secret the provider issued) a caseworker signs in there instead of with an aidgraph password, and gets the same
session as a password login (the ``aidgraph_session`` cookie and its CSRF value, core/app/auth.py).

The flow is the authorization code flow with PKCE (RFC 7636) and a nonce:

* ``GET /auth/oidc/login[?next=/console#/...]``: reads the provider's discovery document, draws ``state``, ``nonce``
  and a PKCE verifier, keeps them in a short-lived cookie signed with the server's secret (HttpOnly, SameSite=Lax:
  the provider's redirect back is a top-level navigation from another site), and redirects to the provider.
* ``GET /auth/oidc/callback?code&state``: the state must match the cookie's; the code is exchanged at the token
  endpoint (client_secret_basic, with the PKCE verifier); the ID token's signature is verified against the
  provider's JWKS with an asymmetric algorithm the provider announces (never ``none`` or an HMAC), its ``iss`` is
  the configured issuer, its ``aud`` holds the client id (``azp`` too when there are several audiences), it is
  not expired, and its ``nonce`` is the one sent. The claim ``AIDGRAPH_OIDC_USERNAME_CLAIM`` (default
  ``preferred_username``) names the aidgraph user: it must exist and be active. No user is ever created here
  (auto-provisioning is not implemented): roles and regions come from ``aidgraph users`` as for every user.
  Success sets the session cookies and redirects to ``next`` within the console; every success and refusal is
  audited like a password login.

Token verification is PyJWT's (``jwt.PyJWKClient`` for the key set), the library the server's own tokens already
use; discovery and the token request go over HTTP with the standard library in a worker thread.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

import anyio
import jwt
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from aidgraph.core.access.authn import decode_token, issue_token, signing_secret
from aidgraph.core.app.sessions import system_sessions
from aidgraph.core.app.auth import SESSION_TTL, _actor, _error, _home_region, _secure, _set_session_cookies
from aidgraph.core.graph import audit
from aidgraph.core.storage.models import AppUser

FLOW_COOKIE = "aidgraph_oidc"
FLOW_SECONDS = 600
"""How long a started login may take at the provider."""
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
"""Asymmetric signatures only: an HMAC keyed with the client secret or ``none`` is never accepted."""
LEEWAY = 60
DISCOVERY_SECONDS = 3600
HTTP_TIMEOUT = 10


class OidcError(Exception):
    def __init__(self, status: int, message: str, code: str, reason: str):
        super().__init__(message)
        self.status, self.message, self.code, self.reason = status, message, code, reason


@dataclass
class _Provider:
    discovery: dict[str, Any]
    jwks: jwt.PyJWKClient
    fetched: float


_providers: dict[str, _Provider] = {}


def _http_json(url: str, data: dict[str, str] | None = None, auth: tuple[str, str] | None = None) -> dict[str, Any]:
    headers = {"Accept": "application/json"}
    body = None
    if data is not None:
        body = urllib.parse.urlencode(data).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    if auth is not None:  # client_secret_basic (RFC 6749 §2.3.1): form-encoded id and secret
        pair = f"{urllib.parse.quote(auth[0], safe='')}:{urllib.parse.quote(auth[1], safe='')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    request = urllib.request.Request(url, data=body, headers=headers, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:  # noqa: S310 (configured URL)
            return json.loads(response.read().decode())
    except urllib.error.HTTPError as e:
        detail = e.read().decode(errors="replace")[:200]
        raise OidcError(502, f"the identity provider answered HTTP {e.code}: {detail}", "OIDC_PROVIDER",
                        f"http {e.code}") from None
    except (urllib.error.URLError, TimeoutError, ValueError) as e:
        raise OidcError(502, f"the identity provider cannot be reached or answered nonsense ({e})", "OIDC_PROVIDER",
                        "unreachable") from None


def _provider(issuer: str) -> _Provider:
    """The provider's discovery document and key set client, fetched once an hour (in a worker thread)."""
    cached = _providers.get(issuer)
    if cached is not None and time.monotonic() - cached.fetched < DISCOVERY_SECONDS:
        return cached
    discovery = _http_json(issuer.rstrip("/") + "/.well-known/openid-configuration")
    if discovery.get("issuer") != issuer:  # OpenID Connect Discovery §4.3
        raise OidcError(502, f"the discovery document names issuer {discovery.get('issuer')!r}, not {issuer!r}",
                        "OIDC_PROVIDER", "issuer mismatch in discovery")
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(discovery.get(key), str):
            raise OidcError(502, f"the discovery document has no {key}", "OIDC_PROVIDER", f"no {key}")
    provider = _Provider(discovery, jwt.PyJWKClient(discovery["jwks_uri"], cache_keys=True, timeout=HTTP_TIMEOUT),
                         time.monotonic())
    _providers[issuer] = provider
    return provider


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _seal(settings, payload: dict[str, Any]) -> str:
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    mac = hmac.new(signing_secret(settings).encode(), f"oidc-flow:{body}".encode(), hashlib.sha256).hexdigest()
    return f"{body}.{mac}"


def _unseal(settings, value: str | None) -> dict[str, Any]:
    if not value or "." not in value:
        raise OidcError(400, "no login in progress (the login cookie is missing): start again at /auth/oidc/login",
                        "OIDC_STATE", "no flow cookie")
    body, mac = value.rsplit(".", 1)
    expected = hmac.new(signing_secret(settings).encode(), f"oidc-flow:{body}".encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(mac, expected):
        raise OidcError(400, "the login cookie was altered: start again", "OIDC_STATE", "flow cookie altered")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    if time.time() - payload.get("at", 0) > FLOW_SECONDS:
        raise OidcError(400, "the login took too long: start again", "OIDC_STATE", "flow expired")
    return payload


def _next(value: str | None) -> str:
    """Where to go after the login: a path of the console only (never another site)."""
    if value and value.startswith("/console") and "//" not in value and "\\" not in value:
        return value
    return "/console#/dashboard"


def _redirect_uri(request: Request, settings) -> str:
    return settings.oidc_redirect_uri or str(request.url_for("oidc_callback"))


def _verify(settings, provider: _Provider, id_token: str, nonce: str) -> dict[str, Any]:
    """The ID token's claims once its signature, issuer, audience, expiry and nonce hold (OIDC Core §3.1.3.7)."""
    announced = provider.discovery.get("id_token_signing_alg_values_supported") or ["RS256"]
    algorithms = [a for a in announced if a in ALGORITHMS]
    if not algorithms:
        raise OidcError(502, f"the provider announces no asymmetric ID token algorithm ({announced})",
                        "OIDC_PROVIDER", "no usable algorithm")
    try:
        key = provider.jwks.get_signing_key_from_jwt(id_token)
        claims = jwt.decode(id_token, key.key, algorithms=algorithms, audience=settings.oidc_client_id,
                            issuer=settings.oidc_issuer, leeway=LEEWAY,
                            options={"require": ["iss", "aud", "exp", "iat", "sub", "nonce"]})
    except jwt.PyJWKClientError as e:
        raise OidcError(401, f"the ID token's key is not in the provider's key set ({e})", "OIDC_TOKEN",
                        "unknown signing key") from None
    except jwt.InvalidTokenError as e:
        raise OidcError(401, f"the ID token was refused: {e}", "OIDC_TOKEN", type(e).__name__) from None
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != settings.oidc_client_id:
        raise OidcError(401, "the ID token has several audiences and another authorized party", "OIDC_TOKEN",
                        "azp mismatch")
    if not hmac.compare_digest(str(claims["nonce"]), nonce):
        raise OidcError(401, "the ID token's nonce is not this login's (a replayed or injected token)",
                        "OIDC_TOKEN", "nonce mismatch")
    return claims


def oidc_routes(components) -> list[Route]:
    """``/auth/oidc/login`` and ``/auth/oidc/callback``; none when no issuer is configured."""
    settings = components.settings
    if not settings.oidc_issuer:
        return []

    async def login(request: Request) -> Response:
        try:
            provider = await anyio.to_thread.run_sync(_provider, settings.oidc_issuer)
        except OidcError as e:
            return _error(e.status, e.message, e.code)
        state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(48)
        challenge = _b64(hashlib.sha256(verifier.encode()).digest())
        query = urllib.parse.urlencode({
            "response_type": "code", "client_id": settings.oidc_client_id, "redirect_uri": _redirect_uri(request, settings),
            "scope": "openid profile", "state": state, "nonce": nonce, "code_challenge": challenge,
            "code_challenge_method": "S256"})
        endpoint = provider.discovery["authorization_endpoint"]
        response = RedirectResponse(f"{endpoint}{'&' if '?' in endpoint else '?'}{query}", status_code=302,
                                    headers={"Cache-Control": "no-store"})
        response.set_cookie(FLOW_COOKIE, _seal(settings, {"state": state, "nonce": nonce, "verifier": verifier,
                                                          "next": _next(request.query_params.get("next")),
                                                          "at": int(time.time())}),
                            max_age=FLOW_SECONDS, path="/auth/oidc", httponly=True, samesite="lax",
                            secure=_secure(request, settings))
        return response

    async def refuse(request: Request, e: OidcError, username: str | None = None,
                     user: AppUser | None = None) -> Response:
        async with system_sessions(components, "oidc login")() as session:
            async with session.begin():
                audit.record(session, _actor(username or "oidc", request), "login_failed", "app_user",
                             user.id if user else None, await _home_region(session, username) if username else None,
                             detail={"method": "oidc", "username": username, "reason": e.reason})
        response = _error(e.status, e.message, e.code)
        response.delete_cookie(FLOW_COOKIE, path="/auth/oidc")
        return response

    async def callback(request: Request) -> Response:
        params = request.query_params
        try:
            flow = _unseal(settings, request.cookies.get(FLOW_COOKIE))
            if not hmac.compare_digest(params.get("state") or "", flow["state"]):
                raise OidcError(400, "the state does not match this browser's login: start again", "OIDC_STATE",
                                "state mismatch")
            if params.get("error"):
                raise OidcError(401, f"the identity provider refused the login: {params.get('error')}",
                                "OIDC_DENIED", f"provider: {params.get('error')}"[:80])
            if not params.get("code"):
                raise OidcError(400, "the provider sent no code", "OIDC_STATE", "no code")
            provider = await anyio.to_thread.run_sync(_provider, settings.oidc_issuer)
            answer = await anyio.to_thread.run_sync(lambda: _http_json(
                provider.discovery["token_endpoint"],
                {"grant_type": "authorization_code", "code": params["code"],
                 "redirect_uri": _redirect_uri(request, settings), "code_verifier": flow["verifier"]},
                auth=(settings.oidc_client_id, settings.oidc_client_secret)))
            id_token = answer.get("id_token")
            if not isinstance(id_token, str):
                raise OidcError(502, "the token endpoint sent no ID token", "OIDC_PROVIDER", "no id_token")
            claims = await anyio.to_thread.run_sync(_verify, settings, provider, id_token, flow["nonce"])
        except OidcError as e:
            return await refuse(request, e)
        username = claims.get(settings.oidc_username_claim)
        if not isinstance(username, str) or not username:
            return await refuse(request, OidcError(403, f"the ID token has no {settings.oidc_username_claim!r} claim "
                                                        "naming an aidgraph user", "FORBIDDEN", "no username claim"))
        async with system_sessions(components, "oidc login")() as session:
            async with session.begin():
                user = await session.scalar(select(AppUser).where(AppUser.username == username))
                if user is not None and user.active:
                    token = issue_token(settings, user, SESSION_TTL)
                    token_claims = decode_token(settings, token)
                    audit.record(session, _actor(user, request), "login", "app_user", user.id,
                                 await _home_region(session, user.username),
                                 detail={"jti": token_claims["jti"], "method": "oidc", "issuer": claims["iss"],
                                         "subject": claims["sub"]})
        if user is None or not user.active:
            # the same answer for an unknown and a deactivated user, as for a password login
            return await refuse(request, OidcError(403, "no active aidgraph user for this identity: an administrator "
                                                        "adds it with `aidgraph users add`", "FORBIDDEN",
                                                   "unknown user" if user is None else "inactive"),
                                username, user)
        response = RedirectResponse(flow["next"], status_code=303, headers={"Cache-Control": "no-store"})
        _set_session_cookies(response, request, settings, token, token_claims)
        response.delete_cookie(FLOW_COOKIE, path="/auth/oidc")
        return response

    return [Route("/auth/oidc/login", login, methods=["GET"], name="oidc_login"),
            Route("/auth/oidc/callback", callback, methods=["GET"], name="oidc_callback")]

