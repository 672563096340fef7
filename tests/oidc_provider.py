"""A small OpenID Connect provider for the login tests, run as its own process (``uvicorn tests.oidc_provider:app``).

It speaks the authorization code flow over HTTP as a province's identity provider would: discovery, a JWKS with
its RSA key, ``/authorize`` (the user configured by the test "signs in" and is sent back with a code) and
``/token`` (client_secret_basic, single-use codes bound to the redirect URI and the PKCE challenge; an RS256 ID
token carrying the nonce). ``POST /test/setup`` tells it who signs in next, which redirect URI is registered and how
to misbehave: ``forged`` signs with a key not in its JWKS (same key id), ``wrong_aud``, ``wrong_nonce``,
``wrong_iss`` and ``expired`` alter that claim, ``deny`` answers the authorization request with access_denied.
Configured by ``OIDC_TEST_ISSUER``, ``OIDC_TEST_CLIENT_ID`` and ``OIDC_TEST_CLIENT_SECRET``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
import urllib.parse

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

ISSUER = os.environ.get("OIDC_TEST_ISSUER", "http://127.0.0.1:0")
CLIENT_ID = os.environ.get("OIDC_TEST_CLIENT_ID", "aidgraph")
CLIENT_SECRET = os.environ.get("OIDC_TEST_CLIENT_SECRET", "secret")
KID = "k1"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
FORGED = rsa.generate_private_key(public_exponent=65537, key_size=2048)
STATE: dict = {"redirect_uri": None, "user": None, "mode": "ok", "codes": {}}


def _error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


async def discovery(_request: Request) -> Response:
    return JSONResponse({
        "issuer": ISSUER, "authorization_endpoint": f"{ISSUER}/authorize", "token_endpoint": f"{ISSUER}/token",
        "jwks_uri": f"{ISSUER}/jwks", "response_types_supported": ["code"], "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"], "scopes_supported": ["openid", "profile"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"], "code_challenge_methods_supported": ["S256"]})


async def jwks(_request: Request) -> Response:
    key = jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key(), as_dict=True)
    return JSONResponse({"keys": [{**key, "kid": KID, "use": "sig", "alg": "RS256"}]})


async def setup(request: Request) -> Response:
    body = await request.json()
    STATE.update({k: body[k] for k in ("redirect_uri", "user", "mode") if k in body})
    return JSONResponse({"ok": True})


async def authorize(request: Request) -> Response:
    q = request.query_params
    if q.get("client_id") != CLIENT_ID:
        return _error(400, "unauthorized_client", "unknown client")
    if q.get("redirect_uri") != STATE["redirect_uri"]:
        return _error(400, "invalid_request", f"redirect_uri {q.get('redirect_uri')!r} is not registered")
    if q.get("response_type") != "code" or "openid" not in (q.get("scope") or "").split():
        return _error(400, "invalid_request", "response_type code with scope openid only")
    if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
        return _error(400, "invalid_request", "PKCE S256 is required")
    back = {"state": q.get("state", "")}
    if STATE["mode"] == "deny":
        back["error"] = "access_denied"
    else:
        code = secrets.token_urlsafe(24)
        STATE["codes"][code] = {"redirect_uri": q["redirect_uri"], "nonce": q.get("nonce"),
                                "challenge": q["code_challenge"], "user": STATE["user"], "at": time.time()}
        back["code"] = code
    return RedirectResponse(f"{q['redirect_uri']}?{urllib.parse.urlencode(back)}", status_code=302)


async def token(request: Request) -> Response:
    header = request.headers.get("authorization", "")
    try:
        client_id, secret = (urllib.parse.unquote(p) for p in
                             base64.b64decode(header.removeprefix("Basic ")).decode().split(":", 1))
    except ValueError:
        return _error(401, "invalid_client", "client_secret_basic required")
    if client_id != CLIENT_ID or not hmac.compare_digest(secret, CLIENT_SECRET):
        return _error(401, "invalid_client", "wrong client credentials")
    form = {k: v[0] for k, v in urllib.parse.parse_qs((await request.body()).decode()).items()}
    grant = STATE["codes"].pop(form.get("code"), None)  # single use
    if form.get("grant_type") != "authorization_code" or grant is None or time.time() - grant["at"] > 60:
        return _error(400, "invalid_grant", "unknown, used or expired code")
    if form.get("redirect_uri") != grant["redirect_uri"]:
        return _error(400, "invalid_grant", "redirect_uri differs from the authorization request's")
    verifier = str(form.get("code_verifier") or "")
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    if not hmac.compare_digest(challenge, grant["challenge"]):
        return _error(400, "invalid_grant", "PKCE verifier does not match")
    now, mode = int(time.time()), STATE["mode"]
    claims = {"iss": ISSUER, "sub": grant["user"]["sub"], "aud": CLIENT_ID, "iat": now, "exp": now + 300,
              "nonce": grant["nonce"], "auth_time": now, **{k: v for k, v in grant["user"].items() if k != "sub"}}
    if mode == "wrong_aud":
        claims["aud"] = "another-client"
    elif mode == "wrong_nonce":
        claims["nonce"] = "not-the-nonce-sent"
    elif mode == "wrong_iss":
        claims["iss"] = "http://impostor.example"
    elif mode == "expired":
        claims["iat"], claims["exp"] = now - 7200, now - 3600
    key = FORGED if mode == "forged" else KEY
    id_token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": KID})
    return JSONResponse({"access_token": secrets.token_urlsafe(24), "token_type": "Bearer", "expires_in": 300,
                         "id_token": id_token}, headers={"Cache-Control": "no-store"})


app = Starlette(routes=[Route("/.well-known/openid-configuration", discovery), Route("/jwks", jwks),
                        Route("/authorize", authorize), Route("/token", token, methods=["POST"]),
                        Route("/test/setup", setup, methods=["POST"])])
