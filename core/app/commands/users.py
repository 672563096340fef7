"""``aidgraph users ...``, ``aidgraph token`` and ``aidgraph policy load``: who may sign in, and what they may do.

Each command is one transaction: a bad role or region writes nothing and exits with status 1 and a message
that names what is wrong.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn, Optional

import typer
from rich.table import Table

from aidgraph.core.access import authz
from aidgraph.core.policy.host import casbin_objects
from aidgraph.core.access import passwords, users
from aidgraph.core.access.actor import RoleGrant
from aidgraph.core.access.authn import ConfigurationError, issue_token, parse_ttl
from aidgraph.core.storage.config import load_settings
from aidgraph.core.storage.db import make_sync_engine, session_scope
from aidgraph.core.storage.migrate import upgrade
from aidgraph.core.app.terminal import console, err

users_app = typer.Typer(help="Platform users and their role grants (Casbin g lines).", no_args_is_help=True)
policy_app = typer.Typer(help="Casbin policies from province_configs/<code>/policy.csv.", no_args_is_help=True)


def _fail(message: str) -> NoReturn:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(1)


def _engine():
    settings = load_settings()
    engine = make_sync_engine(settings.database_url)
    upgrade(engine)
    return settings, engine


def _grants(roles: list[str], regions: list[str]) -> list[RoleGrant]:
    """``--role`` and ``--region`` pair up in order; one role with several regions means that role in each."""
    if not roles or not regions:
        _fail("give at least one --role and one --region")
    if len(roles) == 1:
        roles = roles * len(regions)
    if len(roles) != len(regions):
        _fail(f"{len(roles)} --role for {len(regions)} --region: give one role, or one role per region")
    return [RoleGrant(r.strip(), c.strip()) for r, c in zip(roles, regions)]


def add(username: str = typer.Argument(..., help="login name"),
        role: list[str] = typer.Option(..., "--role", help=f"one of {', '.join(authz.ROLES)}"),
        region: list[str] = typer.Option(..., "--region", help="region code where the role applies (and below)"),
        display_name: Optional[str] = typer.Option(None, "--display-name"),
        password_stdin: bool = typer.Option(False, "--password-stdin",
                                            help="read the user's password from the first line of standard input")) -> None:
    """Create a user holding ROLE in each REGION (with a password for the console, given --password-stdin)."""
    password = _read_password() if password_stdin else None
    _, engine = _engine()
    try:
        with session_scope(engine) as session:
            user = users.add_user(session, username, _grants(role, region), display_name)
            if password is not None:
                passwords.set_password(session, user, password)
    except (users.UserError, passwords.PasswordError) as exc:
        _fail(str(exc))
    console.print(f"[green]user {username} added[/green]", highlight=False)


def _read_password() -> str:
    """The first line of standard input, without its line end (never echoed, never an argument in ``ps``)."""
    line = sys.stdin.readline()
    password = line.rstrip("\r\n")
    if not password:
        _fail("no password on standard input (pipe it in: printf '%s\\n' \"$PASSWORD\" | aidgraph users ...)")
    return password


def set_password(username: str = typer.Argument(..., help="login name"),
                 password_stdin: bool = typer.Option(False, "--password-stdin",
                                                     help="read the new password from standard input")) -> None:
    """Set (an administrator's reset) the password of USERNAME; the user's failed-login count starts afresh."""
    if not password_stdin:
        _fail("give --password-stdin and the password on standard input (passwords are never arguments)")
    password = _read_password()
    _, engine = _engine()
    try:
        with session_scope(engine) as session:
            user = users.get_user(session, username)
            if user is None:
                raise users.UserError(f"no user {username!r}")
            passwords.set_password(session, user, password)
            passwords.clear_failures(session, username)
    except (users.UserError, passwords.PasswordError) as exc:
        _fail(str(exc))
    console.print(f"password of {username} set", highlight=False)


def grant(username: str, role: list[str] = typer.Option(..., "--role"),
          region: list[str] = typer.Option(..., "--region")) -> None:
    """Give an existing user more roles or regions."""
    _, engine = _engine()
    try:
        with session_scope(engine) as session:
            added = users.grant(session, username, _grants(role, region))
    except users.UserError as exc:
        _fail(str(exc))
    console.print(f"{len(added)} grant(s) added to {username}", highlight=False)


def revoke(username: str, role: list[str] = typer.Option(..., "--role"),
           region: list[str] = typer.Option(..., "--region")) -> None:
    """Take roles away from a user (effective on the user's next request)."""
    _, engine = _engine()
    try:
        with session_scope(engine) as session:
            n = users.revoke(session, username, _grants(role, region))
    except users.UserError as exc:
        _fail(str(exc))
    console.print(f"{n} grant(s) revoked from {username}", highlight=False)


def list_() -> None:
    """Every user, active or not, with roles and regions."""
    _, engine = _engine()
    with session_scope(engine) as session:
        views = users.list_users(session)
    table = Table("username", "display name", "active", "grants")
    for v in views:
        table.add_row(v.username, v.display_name, "yes" if v.active else "no",
                      ", ".join(f"{g.role}@{g.region_code}" for g in v.grants))
    console.print(table)


def deactivate(username: str) -> None:
    """Stop a user from signing in; existing tokens are refused from the next request."""
    _, engine = _engine()
    try:
        with session_scope(engine) as session:
            users.set_active(session, username, False)
    except users.UserError as exc:
        _fail(str(exc))
    console.print(f"user {username} deactivated", highlight=False)


def activate(username: str) -> None:
    """Let a deactivated user sign in again."""
    _, engine = _engine()
    try:
        with session_scope(engine) as session:
            users.set_active(session, username, True)
    except users.UserError as exc:
        _fail(str(exc))
    console.print(f"user {username} activated", highlight=False)


def delete(username: str) -> None:
    """Delete a user and its grants; its tokens stop working."""
    _, engine = _engine()
    try:
        with session_scope(engine) as session:
            users.delete_user(session, username)
    except users.UserError as exc:
        _fail(str(exc))
    console.print(f"user {username} deleted", highlight=False)


def token(username: str, ttl: str = typer.Option("8h", "--ttl", help="lifetime: seconds, or 30m, 8h, 7d")) -> None:
    """Print a signed bearer token for USERNAME (send it as ``Authorization: Bearer <token>``)."""
    settings, engine = _engine()
    try:
        lifetime = parse_ttl(ttl)
        with session_scope(engine) as session:
            user = users.get_user(session, username)
            if user is None:
                _fail(f"no user {username!r}")
            if not user.active:
                _fail(f"user {username!r} is inactive")
            value = issue_token(settings, user, lifetime)
    except (ValueError, ConfigurationError) as exc:
        _fail(str(exc))
    # Plain print: the token must be copyable without rich's wrapping.
    print(value)


def policy_load(province: list[str] = typer.Option(None, "--province", help="province code (default: all)")) -> None:
    """Load province_configs/<code>/policy.csv into casbin_rule, replacing that province's lines (re-runnable)."""
    settings, engine = _engine()
    try:
        with session_scope(engine) as session:
            counts = authz.load_policies(session, settings.province_configs_dir, province or None,
                                          authz.known_objects(casbin_objects()))
    except authz.PolicyError as exc:
        _fail(str(exc))
    for code, n in counts.items():
        console.print(f"province {code}: {n} policy lines loaded", highlight=False)


def policy_check(path: str = typer.Argument(..., help="a policy.csv file inside a province folder")) -> None:
    """Validate a policy file without loading it."""

    p = Path(path)
    try:
        lines = authz.parse_policy_file(p, p.parent.name, authz.known_objects(casbin_objects()))
    except (authz.PolicyError, OSError) as exc:
        _fail(str(exc))
    console.print(f"{p}: {len(lines)} policy lines, all valid", highlight=False)


def register(app: typer.Typer) -> None:
    users_app.command("add")(add)
    users_app.command("grant")(grant)
    users_app.command("set-password")(set_password)
    users_app.command("revoke")(revoke)
    users_app.command("list")(list_)
    users_app.command("deactivate")(deactivate)
    users_app.command("activate")(activate)
    users_app.command("delete")(delete)
    policy_app.command("load")(policy_load)
    policy_app.command("check")(policy_check)
    app.add_typer(users_app, name="users")
    app.add_typer(policy_app, name="policy")
    app.command("token")(token)
