"""Platform users (平台用户) and their role grants: the write side behind ``aidgraph users``.

A user is an ``app_user`` row (username, display name, active flag); what the user may do and where is a set
of Casbin grant lines ``g, username, role, region`` in ``casbin_rule``. Both are written in the caller's
transaction, so adding a user with a bad grant writes nothing. Deactivating or deleting a user takes effect on
the next request: every request reads the user and the grants afresh.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from typing import Any

from sqlalchemy import CursorResult, delete, insert, select
from sqlalchemy.orm import Session

from aidgraph.core.access.actor import RoleGrant
from aidgraph.core.access.authz import PolicyError, grant_rows, grants_query, validate_grants
from aidgraph.core.storage.models import AppUser, CasbinRule

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


class UserError(ValueError):
    """A user command that cannot be carried out; the message says why."""


@dataclass(frozen=True)
class UserView:
    username: str
    display_name: str
    active: bool
    grants: tuple[RoleGrant, ...]


def _check_username(username: str) -> str:
    if not USERNAME.match(username or ""):
        raise UserError(f"username {username!r} must be 1-64 letters, digits or . _ @ - (starting with a letter or digit)")
    return username


def get_user(session: Session, username: str) -> AppUser | None:
    return session.scalar(select(AppUser).where(AppUser.username == username))


def grants_of(session: Session, username: str) -> tuple[RoleGrant, ...]:
    return tuple(RoleGrant(role, region) for role, region in session.execute(grants_query(username)))


def add_user(session: Session, username: str, grants: list[RoleGrant], display_name: str | None = None) -> AppUser:
    """Create a user with at least one grant; every grant is checked before anything is written."""
    _check_username(username)
    if not grants:
        raise UserError("a user needs at least one --role and --region")
    if get_user(session, username) is not None:
        raise UserError(f"user {username!r} already exists (use `aidgraph users grant` to add a role)")
    try:
        validate_grants(session, grants)
    except PolicyError as exc:
        raise UserError(str(exc)) from None
    user = AppUser(username=username, display_name=(display_name or username).strip()[:100] or username, active=True)
    session.add(user)
    session.flush()
    session.execute(insert(CasbinRule), grant_rows(username, dict.fromkeys(grants)))
    return user


def grant(session: Session, username: str, grants: list[RoleGrant]) -> list[RoleGrant]:
    """Add grants to an existing user; grants already held are skipped. Returns those added."""
    if get_user(session, username) is None:
        raise UserError(f"no user {username!r}")
    try:
        validate_grants(session, grants)
    except PolicyError as exc:
        raise UserError(str(exc)) from None
    held = set(grants_of(session, username))
    new = [g for g in dict.fromkeys(grants) if g not in held]
    if new:
        session.execute(insert(CasbinRule), grant_rows(username, new))
    return new


def revoke(session: Session, username: str, grants: list[RoleGrant]) -> int:
    if get_user(session, username) is None:
        raise UserError(f"no user {username!r}")
    removed = 0
    for g in grants:
        deleted: CursorResult[Any] = session.execute(delete(CasbinRule).where(  # type: ignore[assignment]
            CasbinRule.ptype == "g", CasbinRule.v0 == username, CasbinRule.v1 == g.role,
            CasbinRule.v2 == g.region_code))  # a DELETE's result is a CursorResult (rowcount)
        removed += deleted.rowcount or 0
    return removed


def set_active(session: Session, username: str, active: bool) -> AppUser:
    user = get_user(session, username)
    if user is None:
        raise UserError(f"no user {username!r}")
    user.active = active
    return user


def delete_user(session: Session, username: str) -> None:
    """Remove the user and its grants; its tokens stop working (they name the user's id too)."""
    if get_user(session, username) is None:
        raise UserError(f"no user {username!r}")
    session.execute(delete(CasbinRule).where(CasbinRule.ptype == "g", CasbinRule.v0 == username))
    session.execute(delete(AppUser).where(AppUser.username == username))


def list_users(session: Session) -> list[UserView]:
    """Every user with its grants (two statements, whatever the number of users)."""
    users = session.scalars(select(AppUser).order_by(AppUser.username)).all()
    by_user: dict[str, list[RoleGrant]] = {}
    for user, role, region in session.execute(
            select(CasbinRule.v0, CasbinRule.v1, CasbinRule.v2).where(CasbinRule.ptype == "g")
            .order_by(CasbinRule.v0, CasbinRule.v2, CasbinRule.v1)):
        if user is not None and role is not None and region is not None:  # a "g" rule always has all three
            by_user.setdefault(user, []).append(RoleGrant(role, region))
    return [UserView(u.username, u.display_name, u.active, tuple(by_user.get(u.username, ()))) for u in users]
