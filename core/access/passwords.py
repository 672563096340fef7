"""Passwords for people (口令登录): argon2id hashes on ``app_user``, checks, and the failed-login rate limit.

Why here: the console needs people to log in with a name and a password instead of a token only the server's CLI
can mint. Hashing uses argon2-cffi's :class:`~argon2.PasswordHasher` (argon2id, its RFC 9106 low-memory
defaults); a hash made with older parameters is rehashed on the next successful login.

:func:`authenticate` gives the same answer (``None``) for an unknown user, a wrong password, a user without a
password and a deactivated user, and spends the same hashing time on each, so neither the answer nor its
timing tells which usernames exist. Failed attempts are rows of ``login_failure``; :func:`rate_limited` counts
them per username and per address over a sliding window (the limits below are security settings of this
deployment, not policy numbers).

An attempt is counted before its password is looked at (:func:`reserve_attempt`): counting and recording it are
one step under a lock on the username and the address, so attempts sent at once cannot all read the count
before any of them is recorded, and no more than the limit of them ever reach the password check. The row
recorded is the failure if the password is wrong; a successful login deletes it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from aidgraph.core.storage.bulk import lock_for_writing
from aidgraph.core.storage.models import AppUser, LoginFailure, RevokedToken, utcnow

MIN_LENGTH = 10
MAX_LENGTH = 256
WINDOW = dt.timedelta(minutes=15)
MAX_FAILURES_PER_USER = 5
"""Failed logins for one username within :data:`WINDOW` after which that username is refused for the window."""
MAX_FAILURES_PER_ADDRESS = 20
"""Failed logins from one address within :data:`WINDOW` after which that address is refused for the window."""

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("aidgraph-timing-equaliser")


class PasswordError(ValueError):
    """A password that may not be set; the message says why."""


def check_strength(password: str, username: str | None = None) -> str:
    """Length and the obvious; the message names the rule broken."""
    if not isinstance(password, str) or len(password) < MIN_LENGTH:
        raise PasswordError(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise PasswordError(f"a password may not exceed {MAX_LENGTH} characters")
    if username and password.strip().lower() == username.lower():
        raise PasswordError("the password may not be the username")
    if len(set(password)) < 4:
        raise PasswordError("the password repeats too few different characters")
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def set_password(session: Session, user: AppUser, password: str) -> None:
    """Store a new hash for ``user`` (in the caller's transaction)."""
    check_strength(password, user.username)
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()


def verify(user: AppUser | None, password: str) -> bool:
    """True when ``password`` matches; the same argon2 work is done when there is no user or no hash."""
    stored = user.password_hash if user is not None and user.password_hash else None
    try:
        _hasher.verify(stored or _DUMMY_HASH, password or "")
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return stored is not None


def needs_rehash(user: AppUser) -> bool:
    """A hash made with older argon2 parameters than today's: rehash it at the next successful login."""
    return bool(user.password_hash) and _hasher.check_needs_rehash(user.password_hash or "")


def authenticate(session: Session, username: str, password: str) -> AppUser | None:
    """The active user whose password this is, or ``None`` (the same for every kind of failure)."""
    user = session.scalar(select(AppUser).where(AppUser.username == username)) if username else None
    ok = verify(user, password)
    if not ok or user is None or not user.active:
        return None
    if needs_rehash(user):
        user.password_hash = hash_password(password)
    return user


@dataclass(frozen=True)
class Limit:
    """Why a login is refused before the password is looked at, and for how long."""

    by: str  # "username" or "address"
    retry_after: int  # seconds


def rate_limited(session: Session, username: str, address: str, now: dt.datetime | None = None) -> Limit | None:
    """A :class:`Limit` when this username or this address has failed too often within :data:`WINDOW`."""
    now = now or utcnow()
    since = now - WINDOW
    for by, column, value, most in (("username", LoginFailure.username, username, MAX_FAILURES_PER_USER),
                                    ("address", LoginFailure.address, address, MAX_FAILURES_PER_ADDRESS)):
        count, oldest = session.execute(
            select(func.count(), func.min(LoginFailure.at)).where(column == value, LoginFailure.at > since)).one()
        if count >= most:
            retry = int(((oldest + WINDOW) - now).total_seconds()) + 1
            return Limit(by, max(retry, 1))
    return None


LOCK_USERNAME, LOCK_ADDRESS = 0x6C6F6775, 0x6C6F6761
"""PostgreSQL advisory-lock classes (the first key of the two-key form) of a login's username and address."""


def _lock_attempts(session: Session, username: str, address: str) -> None:
    """Serialise the attempts on this username and this address until the caller's transaction ends.

    PostgreSQL: transaction-scoped advisory locks on the username, then the address (always in that order, so two
    attempts never wait on each other in a circle); attempts on other usernames and addresses do not wait.
    SQLite: the write lock (``BEGIN IMMEDIATE``), one writer at a time anyway.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(LOCK_USERNAME, func.hashtext(username))))
        session.execute(select(func.pg_advisory_xact_lock(LOCK_ADDRESS, func.hashtext(address))))
    else:
        lock_for_writing(session, [LoginFailure.__tablename__])


def reserve_attempt(session: Session, username: str, address: str, now: dt.datetime | None = None) -> int | Limit:
    """Count this attempt before its password is checked: the :class:`Limit` when the username or the address
    has failed too often, else the id of the ``login_failure`` row now recorded for the attempt.

    The check and the record are atomic (:func:`_lock_attempts`, taken first: call it at the start of its own
    short transaction and commit before checking the password, so the lock is not held during the hashing).
    A wrong password keeps the row as its failure; a right one deletes it (:func:`clear_failures`,
    :func:`forget_attempt`).
    """
    now = now or utcnow()
    username, address = username[:64], address[:64]
    _lock_attempts(session, username, address)
    limit = rate_limited(session, username, address, now)
    if limit is not None:
        return limit
    row = LoginFailure(username=username, address=address, at=now)
    session.add(row)
    session.flush()
    return row.id


def forget_attempt(session: Session, attempt_id: int) -> None:
    """The attempt succeeded: it is not a failure."""
    session.execute(delete(LoginFailure).where(LoginFailure.id == attempt_id))


def clear_failures(session: Session, username: str) -> None:
    """A successful login forgets that username's failures (the address's stay counted)."""
    session.execute(delete(LoginFailure).where(LoginFailure.username == username))


def revoke_token(session: Session, jti: str, expires_at: dt.datetime) -> None:
    """End a token before its expiry (logout); expired entries are swept at the same time."""
    now = utcnow()
    session.execute(delete(RevokedToken).where(RevokedToken.expires_at < now))
    if session.get(RevokedToken, jti) is None:
        session.add(RevokedToken(jti=jti, expires_at=expires_at))


def revoked_query(jti: str):
    """One statement: whether a token id was revoked (the request boundary runs it on every request)."""
    return select(RevokedToken.jti).where(RevokedToken.jti == jti)
