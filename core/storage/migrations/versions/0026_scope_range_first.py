"""Row-level policies test a one-prefix scope as a byte range before the prefix list (PostgreSQL): cheaper rows.

Why: every policy of 0018 admits a row whose region code starts with one of the scope's prefixes,
``code::text ^@ ANY (prefixes)``. PostgreSQL evaluates that on every row a statement reads, and it is the
dearest part of the check: ``starts_with`` copies the code's head for each comparison and the array is taken
apart again for each row. The list page's total count reads every household of the region it lists (2,125 for
a city of the 20,000-household benchmark), so that check was most of what row-level security added to the
list page (issue 12 item 15: the count took 0.21 ms as the owner and 0.62 ms under the policies, its page
statement 0.82 and 1.20 ms; psycopg's prepared statements, generic plans, medians of 550).

What changes: almost every caller's scope is one prefix (a caseworker's township, an officer's county, a
province). For that case the policies first ask whether the code lies in ``[prefix, successor(prefix))`` in
byte order (``COLLATE "C"``: two ``memcmp``), which for digit codes is exactly "starts with the prefix". The
prefix test of 0018 stays behind it, unchanged, for scopes of several prefixes (the bounds are then null, so
the range admits nothing and the prefix test decides), and so do the unrestricted scope and the emergency
alternatives. No row is admitted that was not admitted before, and none refused: tests/rls compares the
policies with :meth:`aidgraph.core.access.scope.Scope.contains` on codes at every level and beside them.

``aidgraph_scope_low()`` / ``aidgraph_scope_high()`` read the setting as the other functions do; each is one
``SELECT`` of an expression, so the planner inlines it into the InitPlan that evaluates it once per statement.
``aidgraph_scope_prefixes()`` is rewritten in that form as well (its ``FROM`` subquery kept it from being
inlined: each policy's InitPlan called it as a function). The policies themselves are rewritten where they
stand, whatever migration made them (0018, 0023, 0024's partitioned parents, 0025): every occurrence of the
prefix test in a policy's ``USING`` or ``WITH CHECK`` gets the range in front of it. The downgrade takes it out.

Measured (the same prepared statements): the count 0.44 ms and the page statement 1.01 ms under the policies,
against 0.21 / 0.81 ms as the owner; bench/README.md has the figures over HTTP.

SQLite has no row-level security: this revision does nothing there.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-03 23:30:00
"""

import re
from collections.abc import Callable

from alembic import op
from sqlalchemy import text

revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None

PREFIX_TEST = re.compile(r"\(\((?P<code>[\w.]+)\)::text \^@ ANY \(\(\s*SELECT aidgraph_scope_prefixes\(\) "
                         r"AS aidgraph_scope_prefixes\s*\)::text\[\]\)\)")
"""0018's prefix test as PostgreSQL prints a policy's expression (``pg_get_expr``)."""
RANGED = re.compile(r"\(\(\(\((?P<code>[\w.]+)\)::text COLLATE \"C\"\) >= \(\s*SELECT aidgraph_scope_low\(\) "
                    r"AS aidgraph_scope_low\s*\)\) AND \(\(\((?P=code)\)::text COLLATE \"C\"\) < \(\s*SELECT "
                    r"aidgraph_scope_high\(\) AS aidgraph_scope_high\s*\)\)\) OR ")
"""The range and its ``OR`` as PostgreSQL prints a policy after this revision (it flattens the ``OR``s): what the
downgrade takes out."""

ONE_PREFIX = "current_setting('aidgraph.scope', true) ~ '^[0-9]+$'"
FUNCTIONS = {
    "aidgraph_scope_low() RETURNS text":
        f"SELECT CASE WHEN {ONE_PREFIX} THEN current_setting('aidgraph.scope', true) END",
    "aidgraph_scope_high() RETURNS text":
        f"SELECT CASE WHEN {ONE_PREFIX} THEN left(current_setting('aidgraph.scope', true), -1) "
        "|| chr(ascii(right(current_setting('aidgraph.scope', true), 1)) + 1) END",
}
"""The scope's one prefix and its successor (the last digit raised by one: ``4401`` -> ``4402``, ``449`` ->
``44:``, which sorts after every code starting ``449``); null for a scope of several prefixes, the unrestricted
scope and the empty one."""
PREFIXES_INLINED = ("SELECT CASE WHEN coalesce(current_setting('aidgraph.scope', true), '') IN ('', '*') "
                    "THEN '{}'::text[] ELSE string_to_array(current_setting('aidgraph.scope', true), ',') END")
PREFIXES_BEFORE = ("SELECT CASE WHEN s IS NULL OR s = '' OR s = '*' THEN '{}'::text[] ELSE string_to_array(s, ',') "
                   "END FROM (SELECT current_setting('aidgraph.scope', true) AS s) AS setting")


def _ranged(match: re.Match[str]) -> str:
    code = f"({match['code']})::text COLLATE \"C\""
    return (f"(({code} >= (SELECT aidgraph_scope_low()) AND {code} < (SELECT aidgraph_scope_high())) "
            f"OR {match.group(0)})")


def _rewrite(change: re.Pattern[str], into: Callable[[re.Match[str]], str]) -> None:
    """Rewrite every policy whose ``USING`` or ``WITH CHECK`` holds ``change``; the others stay as they are."""
    conn = op.get_bind()
    rows = conn.execute(text(
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), quote_ident(p.polname), "
        "pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid) FROM pg_policy p "
        "JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() ORDER BY 1, 2")).all()
    for table, name, using, check in rows:
        parts = []
        if using and change.search(using):
            parts.append(f"USING ({change.sub(into, using)})")
        if check and change.search(check):
            parts.append(f"WITH CHECK ({change.sub(into, check)})")
        if parts:
            conn.exec_driver_sql(f"ALTER POLICY {name} ON {table} " + " ".join(parts))


def _prefixes(body: str) -> None:
    op.execute("CREATE OR REPLACE FUNCTION aidgraph_scope_prefixes() RETURNS text[] LANGUAGE sql STABLE "
               f"PARALLEL SAFE AS $$ {body} $$")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for signature, body in FUNCTIONS.items():
        op.execute(f"CREATE FUNCTION {signature} LANGUAGE sql STABLE PARALLEL SAFE AS $$ {body} $$")
    _prefixes(PREFIXES_INLINED)
    _rewrite(PREFIX_TEST, _ranged)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _rewrite(RANGED, lambda m: "")
    _prefixes(PREFIXES_BEFORE)
    for signature in FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {signature.split(' RETURNS ')[0]}")
