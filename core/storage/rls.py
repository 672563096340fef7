"""PostgreSQL row-level security (行级安全): the second line behind the application's scope predicate.

The first line is the scope predicate compiled once per request (:mod:`aidgraph.core.access.scope`) and applied
by the data layer to every query. This module is the second: should a query forget or mis-build that
predicate, PostgreSQL itself still returns no person-bearing row outside the caller's regions.

How it is wired (migration ``0018_row_level_security`` creates the database side):

- **The application role.** ``aidgraph_app`` (NOLOGIN) holds SELECT/INSERT/UPDATE/DELETE on the tables and
  owns none of them, so the policies bind it (a table's owner and superusers bypass them; they are not FORCEd:
  the owner is the system, see below). The server's pooled connections ``SET ROLE aidgraph_app`` when they
  are made (:func:`install_app_role`), so every session of the server's engine runs as that role, whatever
  code opens it. A deployment may instead log the server in as a LOGIN role that is a member of
  ``aidgraph_app`` only; ``SET ROLE`` is then a no-op.
- **The scope setting.** Each transaction of a request runs with ``aidgraph.scope`` set to the value the
  request's session carries in ``Session.info`` (:data:`SCOPE_KEY`), put in place by a session
  ``after_begin`` listener. On the server's connections (:func:`install_app_role`) the setting is kept at
  session level and sent only when a transaction needs a value other than the one the pooled connection
  already holds (see *Kept per connection* below); elsewhere it is set transaction-local (``SET LOCAL``). The value is the request's *region envelope*: the region codes of the caller's grants,
  the same grants Casbin decides every scope from (``Authorizer.decide`` only ever returns a subset of them),
  comma-separated; ``*`` is the unrestricted system scope. There is no second source of who sees what.
- **Fail closed.** A transaction that set nothing sees an empty setting and the policies admit no row; a
  caller without grants gets the empty envelope, which admits none either. On the server's connections a
  transaction that no scoped session began (a session without a scope, or a Core ``engine.connect()``) is
  given the empty setting before its first statement, so it never inherits the previous caller's scope.
- **Kept per connection.** ``set_config(..., false)`` made inside a transaction is undone by its rollback, so
  the value a connection is known to hold is recorded (in the pool record's ``info``) only when the
  transaction that set it commits; a rollback, a reset by the pool or any error forgets the pending value
  (an error forgets the known one too), and the next transaction sets it again. A transaction that widens
  (:func:`widened`, :func:`system_transaction`) does so transaction-locally on top, which its end undoes.
- **Policies** (``aidgraph_scope_prefixes()`` / ``aidgraph_scope_unrestricted()`` read the setting once per
  statement, as InitPlans): a table with a region column admits a row whose code starts with one of the
  prefixes (``region_code ^@ ANY(...)``), tested first, for a scope of one prefix (almost every caller's), as
  the byte range ``[prefix, successor)`` (``aidgraph_scope_low()`` / ``aidgraph_scope_high()``, migration
  0026: two ``memcmp`` a row instead of a ``starts_with`` over the prefix array); tables without one admit a
  row whose household (or person, or enrolment) is admitted, by an ``EXISTS`` on the parent's primary key. A
  person's ``region_code`` is its current household's region (kept by every membership write), so persons need
  no join; a membership row
  carries its household's region in ``rls_region_code``, a copy the database keeps by trigger (migration 0025:
  a list page reads two membership rows or more per household, and the ``EXISTS`` probe of each was the largest
  part of what the policies cost it).
- **System work** (migrations, ``aidgraph`` CLI commands, the seeder, the monitoring run, the search indexer's
  own engine) connects as the owner and is not bound by the policies: it is not a request and has no caller.
  The login routes write their audit rows with a named system scope (``core/app/sessions.system_sessions``).
  Inside a request, work that reaches beyond the caller's regions by design widens the transaction's scope with
  :func:`widened`, which names its reason in the setting ``aidgraph.scope_reason``, flushes and restores the
  request's scope afterwards. Two places do: the duplicate check of an ID number (unique everywhere; the answer
  is given neutrally, see ``households._placement_errors``) and the one-window acceptance (一门受理, 异地受理:
  any township office accepts an application for a household of the province and routes it home).

Cost: one more statement for a transaction whose caller differs from the connection's last one (the
``set_config``; none when the same caller's requests follow each other on a connection: the server
authenticates on a small pool of its own, ``AppComponents.identity_engine``, so that the authentication
lookups, which have no caller, do not switch a request connection to the empty scope and back) and the policies'
checks on the rows a statement reads; the policies' own conditions use only leakproof operators, but a query whose join condition
holds a subquery cannot be pushed below them and may change plan (the list page's head lookup had to be
rewritten for that reason). Most of a short statement's added cost is *planning* the policies' conditions, so
request transactions that wrote nothing end with COMMIT (:func:`aidgraph.core.storage.db.close_session`): the
driver then keeps the statements it prepared on a pooled connection, which are not planned again; the policies
read the scope when a plan runs, so a plan made for one caller serves the next with the next caller's scope
(tests/rls checks this). Figures: bench/README.md.

What it does not do: the region envelope is coarser than the per-object, per-action scopes (a department
analyst granted ``enrollment:medical`` in a city is bounded to that city's rows, not to medical cases; sensitive
field classes are masked by the application). The setting is an ordinary configuration parameter: SQL injected
into the application's own connection could change it; it guards against the application's mistakes, not
against code execution inside the server. SQLite has no row-level security: there the application's predicate
is the only line.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

APP_ROLE = "aidgraph_app"
"""The role request transactions run as (created by migration 0018; owns nothing)."""
SCOPE_SETTING = "aidgraph.scope"
"""The transaction-local setting the policies read: comma-separated region-code prefixes, or ``*``."""
REASON_SETTING = "aidgraph.scope_reason"
"""Who or what set the scope (the request's username, or the reason for a widened scope): for the logs."""
UNRESTRICTED = "*"
SCOPE_KEY = "aidgraph.scope"
"""``Session.info`` key holding the scope setting a session's transactions start with."""
REASON_KEY = "aidgraph.scope_reason"
POLICY_COLUMNS = frozenset({("membership", "rls_region_code")})
"""(table, column) kept by the database for the policies alone (migration 0025), not mapped by the models."""

_SET_SCOPE = text("SELECT set_config('aidgraph.scope', :scope, true), set_config('aidgraph.scope_reason', :reason, true)")
_SET_SESSION_SCOPE = ("SELECT set_config('aidgraph.scope', %(scope)s, false), "
                      "set_config('aidgraph.scope_reason', %(reason)s, false)")

# Keys of a pooled connection's ``info`` (its pool record's: it lives as long as the database connection).
_MANAGED = "aidgraph.rls.managed"
"""The connection is the server's (made by an engine given :func:`install_app_role`): its scope is kept."""
_HELD = "aidgraph.rls.held"
"""(scope, reason) the connection holds at session level, known because the transaction that set it committed."""
_PENDING = "aidgraph.rls.pending"
"""(scope, reason) set at session level in the open transaction: held only once that transaction commits."""
_IN_PLACE = "aidgraph.rls.in_place"
"""The open transaction's scope has been put in place (False from its begin until then)."""


def scope_setting(prefixes: Iterable[str] | None) -> str:
    """The setting's value for region-code ``prefixes`` (digits only); ``None`` means unrestricted."""
    if prefixes is None:
        return UNRESTRICTED
    values = sorted(set(prefixes))
    for p in values:
        if not p.isdigit():
            raise ValueError(f"scope prefix {p!r} is not a region code")
    return ",".join(values)


def session_info(setting: str, reason: str) -> dict[str, Any]:
    """The ``Session.info`` that makes a session's transactions start with scope ``setting``."""
    return {SCOPE_KEY: setting, REASON_KEY: reason}


def _postgres(connection: Any) -> bool:
    return bool(connection.dialect.name == "postgresql")


@event.listens_for(Session, "after_begin")
def _set_scope_on_begin(session: Session, _transaction: Any, connection: Any) -> None:
    """Every transaction of a session that carries a scope starts with it in place; on the server's
    connections a session without one gets the empty (fail-closed) setting."""
    setting = session.info.get(SCOPE_KEY)
    if connection.info.get(_MANAGED):
        if setting is None:
            _hold(connection, "", "")
        else:
            _hold(connection, setting, session.info.get(REASON_KEY, ""))
    elif setting is not None and _postgres(connection):
        connection.execute(_SET_SCOPE, {"scope": setting, "reason": session.info.get(REASON_KEY, "")})


def _hold(connection: Any, setting: str, reason: str) -> None:
    """Make the open transaction of a server connection run with (setting, reason), sending it only if the
    connection does not hold that value already."""
    info = connection.info
    info[_IN_PLACE] = True
    wanted = (setting, reason)
    if info.get(_PENDING, info.get(_HELD)) == wanted:
        return
    connection.exec_driver_sql(_SET_SESSION_SCOPE, {"scope": setting, "reason": reason})
    info[_PENDING] = wanted


def _on_begin(connection: Any) -> None:
    connection.info[_IN_PLACE] = False


def _before_execute(connection: Any, _cursor: Any, _statement: str, _parameters: Any, _context: Any,
                    _executemany: bool) -> None:
    """A transaction no scoped session began (a Core connection, a session without a scope) runs with the
    empty setting: the first statement puts it in place, so it cannot inherit a previous caller's scope."""
    if connection.info.get(_IN_PLACE) is False:
        _hold(connection, "", "")


def _on_commit(connection: Any) -> None:
    info = connection.info
    info[_IN_PLACE] = None
    pending = info.pop(_PENDING, None)
    if pending is not None:
        info[_HELD] = pending


def _on_rollback(connection: Any) -> None:
    info = connection.info
    info[_IN_PLACE] = None
    info.pop(_PENDING, None)


def _on_error(context: Any) -> None:
    """Any error (a failed COMMIT included) leaves what the connection holds unknown: set it again next time."""
    connection = context.connection
    # an invalidated connection gets a new database connection, with an empty info, before it is used again
    if connection is not None and not connection.closed and not connection.invalidated:
        connection.info.pop(_PENDING, None)
        connection.info.pop(_HELD, None)


def _on_reset(_dbapi_connection: Any, record: Any, _reset_state: Any) -> None:
    """The pool rolls back a connection given back inside a transaction: what it set there is undone."""
    record.info.pop(_PENDING, None)
    record.info[_IN_PLACE] = None


def _set_app_role(dbapi_connection: Any, record: Any) -> None:
    record.info[_MANAGED] = True
    cursor = dbapi_connection.cursor()
    try:
        # Only where migration 0018 ran in this database (the role is cluster-wide, its grants and policies are
        # per database): an older database answers "not migrated" through /readyz instead of failing every query.
        cursor.execute("SELECT set_config('role', %s, false) FROM pg_roles WHERE rolname = %s "
                       "AND to_regprocedure('aidgraph_scope_prefixes()') IS NOT NULL", (APP_ROLE, APP_ROLE))
    finally:
        cursor.close()
    dbapi_connection.commit()


def install_app_role(engine: Engine) -> bool:
    """Make every new connection of ``engine`` (PostgreSQL) run as :data:`APP_ROLE`, with the scope kept per
    connection and every transaction's scope in place before its first statement; False on SQLite."""
    if engine.dialect.name != "postgresql":
        return False
    event.listen(engine, "connect", _set_app_role)
    event.listen(engine, "begin", _on_begin)
    event.listen(engine, "before_cursor_execute", _before_execute)
    event.listen(engine, "commit", _on_commit)
    event.listen(engine, "rollback", _on_rollback)
    event.listen(engine, "handle_error", _on_error)
    event.listen(engine.pool, "reset", _on_reset)
    return True


async def system_transaction(session: AsyncSession, reason: str) -> None:
    """Run the rest of the session's current transaction with the unrestricted system scope, named ``reason``.

    For a transaction of its own that does system work on behalf of whichever request set it off: the kept
    decisions' refresh (政策找人) recomputes a whole province when any caller's read finds it out of date, and
    consumes the stale marks of every household it recomputed; under the caller's scope it would see (and keep)
    only the caller's households. The setting is transaction-local: it ends with the transaction.
    """
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        await session.execute(_SET_SCOPE, {"scope": UNRESTRICTED, "reason": "system:" + reason})


@asynccontextmanager
async def widened(session: AsyncSession, reason: str) -> AsyncIterator[None]:
    """Run the enclosed statements of the current transaction with the unrestricted system scope.

    For lookups that are global by their nature (an ID number is unique everywhere); the caller must not
    show what they find beyond what the application's own rules allow. ``reason`` is set beside the scope.
    Pending ORM changes are flushed before the request's scope is restored (also on error, without the flush).
    """
    if session.bind is None or session.bind.dialect.name != "postgresql":
        yield
        return
    before = (await session.execute(text("SELECT current_setting('aidgraph.scope', true), "
                                         "current_setting('aidgraph.scope_reason', true)"))).one()
    await session.execute(_SET_SCOPE, {"scope": UNRESTRICTED, "reason": reason})
    restore = {"scope": before[0] or "", "reason": before[1] or ""}
    try:
        yield
    except BaseException:
        try:  # an aborted transaction refuses this too; its rollback resets the setting anyway
            await session.execute(_SET_SCOPE, restore)
        except DBAPIError:
            pass
        raise
    await session.flush()  # what the block added is written under the scope it was made in
    await session.execute(_SET_SCOPE, restore)
