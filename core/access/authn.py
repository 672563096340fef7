"""Authentication: who is behind an HTTP request, from a signed JWT bearer token (HS256, with expiry).

Tokens name the user (``sub``) and the account (row id ``uid`` and creation time ``uct``, so a token outlives
neither a deleted user nor a user re-created under the same name), are signed with the deployment's secret and expire. Every request
reads the user and the user's grants afresh: a deactivated user or a revoked grant takes effect at once.

The signing secret comes from ``AIDGRAPH_SECRET_KEY``; production refuses to run without one. In
development and tests a random secret is generated on first use and kept in the state directory (outside the
repository, file mode 0600), never a constant in the code.

There is no anonymous access, in development either: no token, a malformed or tampered token, an expired
token, an inactive or deleted user all answer HTTP 401 (the server maps :class:`Unauthenticated`). The demo
prints a token for a demo administrator instead (:func:`aidgraph.core.app.demo.ensure_demo_user`).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import time
import uuid
from pathlib import Path

import jwt
from sqlalchemy import select
from starlette.requests import Request

from aidgraph.core.access.actor import Actor, RoleGrant
from aidgraph.core.access import authz
from aidgraph.core.access.authz import authorizer_for, grants_query, policy_version_query
from aidgraph.core.storage.db import read_session
from aidgraph.core.storage.config import Settings
from aidgraph.core.storage.encrypted import require_keyring
from aidgraph.core.storage.models import AppUser

ALGORITHM = "HS256"
ISSUER = "aidgraph"
DEFAULT_TTL = dt.timedelta(hours=8)
MAX_TTL = dt.timedelta(days=30)
SECRET_FILE = "secret_key"
MIN_SECRET_BYTES = 32
DEMO_USERNAME = "demo-admin"


class Unauthenticated(Exception):
    """No valid credentials: the server answers HTTP 401 with a JSON error and no data."""


class ConfigurationError(RuntimeError):
    """The deployment is not configured to authenticate (production without ``AIDGRAPH_SECRET_KEY``)."""


# --- the signing secret ---------------------------------------------------------------------------------


def signing_secret(settings: Settings) -> str:
    """The HS256 key: configured, or (outside production) generated once and kept in the state directory."""
    if settings.secret_key:
        if settings.production and len(settings.secret_key.encode()) < MIN_SECRET_BYTES:
            raise ConfigurationError(f"AIDGRAPH_SECRET_KEY must be at least {MIN_SECRET_BYTES} bytes in production")
        return settings.secret_key
    if settings.production:
        raise ConfigurationError("production requires AIDGRAPH_SECRET_KEY (a random string of 32 bytes or more)")
    return _state_secret(Path(settings.state_dir))


def _state_secret(state_dir: Path) -> str:
    path = state_dir / SECRET_FILE
    if not path.exists():
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            # O_EXCL: two processes starting at once must not each write their own secret.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48))
    secret = path.read_text().strip()
    if len(secret) < MIN_SECRET_BYTES:
        raise ConfigurationError(f"the secret in {path} is too short; delete the file to generate a new one")
    return secret


def check_configuration(settings: Settings) -> None:
    """Fail at startup rather than on the first request when tokens cannot be signed or checked, or when ID
    numbers and phones cannot be decrypted (production without ``AIDGRAPH_DATA_KEY`` or a key file)."""
    signing_secret(settings)
    require_keyring(settings.production, Path(settings.state_dir))


# --- tokens ------------------------------------------------------------------------------------------------

_TTL = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")


def parse_ttl(text: str | int | dt.timedelta | None) -> dt.timedelta:
    """``90`` (seconds), ``30m``, ``8h``, ``7d``; at most :data:`MAX_TTL`."""
    if text is None:
        return DEFAULT_TTL
    if isinstance(text, dt.timedelta):
        ttl = text
    elif isinstance(text, int):
        ttl = dt.timedelta(seconds=text)
    else:
        m = _TTL.match(text)
        if not m:
            raise ValueError(f"--ttl {text!r}: use seconds or a number with s, m, h or d (e.g. 8h)")
        n, unit = int(m.group(1)), m.group(2) or "s"
        ttl = dt.timedelta(**{{"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[unit]: n})
    if ttl <= dt.timedelta(0):
        raise ValueError("--ttl must be positive")
    if ttl > MAX_TTL:
        raise ValueError(f"--ttl may not exceed {MAX_TTL.days} days")
    return ttl


def issue_token(settings: Settings, user: AppUser, ttl: dt.timedelta | str | int | None = None,
                now: dt.datetime | None = None) -> str:
    """A signed token for ``user`` (an active ``app_user`` row)."""
    if not user.active:
        raise ValueError(f"user {user.username!r} is inactive")
    now = now or dt.datetime.now(dt.timezone.utc)
    claims = {
        "sub": user.username,
        "uid": user.id,
        "uct": _created(user),
        "iss": ISSUER,
        "iat": int(now.timestamp()),
        "exp": int((now + parse_ttl(ttl)).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, signing_secret(settings), algorithm=ALGORITHM)


def _created(user: AppUser) -> str | None:
    """The account's creation time: with the id, it tells a re-created account from the deleted one
    (SQLite may hand a deleted row's id to the next insert)."""
    return user.created_at.replace(tzinfo=None).isoformat() if user.created_at else None


def decode_token(settings: Settings, token: str) -> dict:
    """The verified claims, or :class:`Unauthenticated` saying (without detail an attacker could use) why not."""
    try:
        claims = jwt.decode(token, signing_secret(settings), algorithms=[ALGORITHM], issuer=ISSUER,
                            options={"require": ["sub", "uid", "iss", "iat", "exp"]})
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("token expired") from None
    except jwt.InvalidTokenError:
        raise Unauthenticated("invalid token") from None
    if not isinstance(claims.get("sub"), str) or not isinstance(claims.get("uid"), int):
        raise Unauthenticated("invalid token")
    return claims


def bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise Unauthenticated("authentication required: send Authorization: Bearer <token>")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("malformed Authorization header: expected Bearer <token>")
    return token.strip()


# --- the request boundary -----------------------------------------------------------------------------------


async def actor_for_request(request: Request, settings: Settings, session_factory) -> Actor:
    """The authenticated actor of an HTTP request, its scopes decided by Casbin on first use.

    Two small statements per request (the user, the grants), whatever the query asks for afterwards.
    """
    claims = decode_token(settings, bearer_token(request.headers.get("authorization")))
    authorizer = authorizer_for(settings.database_url)
    async with read_session(session_factory) as session:
        user = await session.scalar(select(AppUser).where(AppUser.username == claims["sub"]))
        if user is None or user.id != claims["uid"] or _created(user) != claims.get("uct") or not user.active:
            raise Unauthenticated("unknown or inactive user")
        grants = tuple(RoleGrant(role, region) for role, region in (await session.execute(grants_query(user.username))))
        if time.monotonic() - authorizer.checked_at > authz.POLICY_RECHECK_SECONDS or authorizer.policy_version is None:
            version = tuple((await session.execute(policy_version_query())).one())
            if authorizer.policy_version is not None and version != authorizer.policy_version:
                authorizer.reload()
            authorizer.policy_version = version
            authorizer.checked_at = time.monotonic()
    actor = Actor(username=user.username, display_name=user.display_name, grants=grants,
                  remote_addr=request.client.host if request.client else None)
    return authorizer.bind(actor)

