"""Monthly partitions of ``economic_item`` and ``feed_record`` on PostgreSQL: history that does not slow the month.

Why: the monthly import and the monitoring run touch one month of tables that grow by a province's month every
month; partitioned by month, their cost stays that of one month (see :mod:`aidgraph.core.storage.partitions`).

The partition keys are the columns the monthly work filters by:

- ``economic_item``: RANGE (``period_start``). The monitoring run's flow read
  (``IndicatorContext.economic_flows``) ranges over ``period_start`` (the month and its baseline window), the
  income feed writes items starting on the first of their month, the seeder the twelve months before its date.
  The household-level reads (``economics_for``, the policy engine's ``_flows``) bound ``period_start <= as_of``
  only, so they visit every partition up to the date, through each partition's household index.
- ``feed_record``: RANGE (``event_date``): the month's records of a kind.

PostgreSQL requires every primary key and unique constraint of a partitioned table to hold the partition key:

- ``pk_economic_item`` becomes (``id``, ``period_start``) and ``pk_feed_record`` (``id``, ``event_date``). The ids
  still come from the one sequence each table had (kept, with its current value), so an id is still unique
  alone; nothing references either table's id (no foreign key points at them), and the ORM keeps ``id`` as
  its identity.
- ``uq_feed_record_row_hash`` becomes unique (``row_hash``, ``event_date``). It means the same as before: the
  row hash is a keyed hash of every normalised value of the row, its event date among them, behind the event
  month (``aidgraph.core.monitoring.feeds._row_hash_expr``), so two rows with one hash have one event date, and
  re-importing a row still finds it (the import looks its hashes up under the import's write lock, within the
  batch's event dates so that only those months' partitions are probed) and still cannot store it twice.

Everything else keeps its meaning and name: the check constraints (copied with the columns), the foreign keys to
``household`` and ``person``, the indexes (``ix_economic_item_period_flows``, ``ix_feed_record_kind_event_date``,
the household and person indexes; created on the parent, so on every partition), the decision-stale statement
triggers of 0011 (on the parent: a COPY into it still marks its households in one statement), the row-level
security policies and grants of 0018 (on the parent, which is what queries name; each partition's own
privileges are revoked from the application role so that it cannot bypass them by naming a partition). They are
read from the catalog before the table is rebuilt and re-created on the new one, so this revision copies
whatever an earlier one left there.

Partitions made here: a DEFAULT partition (no insert ever fails for want of a month), one per month of the
existing rows within the import's window (five years back, a year ahead), and the current month with
:data:`~aidgraph.core.storage.partitions.MONTHS_AHEAD` after it. The rows are moved by one INSERT ... SELECT per
table, in this transaction.

Downgrade rebuilds the plain tables (primary key ``id``, unique ``row_hash``) with the same rows and the same
constraints, indexes, triggers, policies and grants. SQLite: nothing (its tables stay as they are).

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-03 13:00:00
"""

import datetime as dt
from dataclasses import dataclass

from alembic import op
from sqlalchemy import Connection, text

from aidgraph.core.storage.partitions import (
    MONTHS_AHEAD,
    PARTITIONED,
    add_months,
    default_name,
    ensure_months,
    month_of,
    months_of,
    revoke_direct_access,
)

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None

PRIMARY = {"economic_item": "pk_economic_item", "feed_record": "pk_feed_record"}
UNIQUE = {"feed_record": ("uq_feed_record_row_hash", "row_hash")}
COMMANDS = {"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE", "*": "ALL"}


@dataclass
class Dependents:
    """What hangs on a table besides its columns and check constraints, as SQL that re-creates it."""

    indexes: list[str]
    foreign_keys: list[tuple[str, str]]
    triggers: list[str]
    row_security: bool
    policies: list[str]
    grants: list[str]
    sequence: str | None


def _dependents(conn: Connection, table: str) -> Dependents:
    oid = {"t": table}
    indexes = [d.replace(" ON ONLY ", " ON ") for d in conn.execute(text(
        "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indrelid = to_regclass(:t) AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) ORDER BY 1"), oid).scalars()]
    foreign_keys = [(r[0], r[1]) for r in conn.execute(text(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = to_regclass(:t) "
        "AND contype = 'f' ORDER BY conname"), oid)]
    triggers = list(conn.execute(text(
        "SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = to_regclass(:t) AND NOT tgisinternal "
        "ORDER BY tgname"), oid).scalars())
    row_security = bool(conn.execute(text("SELECT relrowsecurity FROM pg_class WHERE oid = to_regclass(:t)"),
                                     oid).scalar())
    policies = []
    for name, command, permissive, roles, using, check in conn.execute(text(
            "SELECT polname, polcmd, polpermissive, ARRAY(SELECT CASE WHEN r = 0 THEN 'PUBLIC' ELSE "
            "quote_ident(pg_get_userbyid(r)) END FROM unnest(polroles) AS r), pg_get_expr(polqual, polrelid), "
            "pg_get_expr(polwithcheck, polrelid) FROM pg_policy WHERE polrelid = to_regclass(:t) ORDER BY polname"),
            oid):
        policies.append(f"CREATE POLICY {name} ON {table} AS {'PERMISSIVE' if permissive else 'RESTRICTIVE'} "
                        f"FOR {COMMANDS[command]} TO {', '.join(roles)}"
                        + (f" USING ({using})" if using else "") + (f" WITH CHECK ({check})" if check else ""))
    grants = [f"GRANT {r[1]} ON {table} TO {r[0]}" for r in conn.execute(text(
        "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END, "
        "a.privilege_type FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a "
        "WHERE c.oid = to_regclass(:t) AND a.grantee <> c.relowner ORDER BY 1, 2"), oid)]
    sequence = conn.execute(text("SELECT pg_get_serial_sequence(:t, 'id')"), oid).scalar()
    return Dependents(indexes, foreign_keys, triggers, row_security, policies, grants, sequence)


def _rebuild(conn: Connection, table: str, partitioned: bool) -> None:
    """Re-create ``table`` partitioned by month (or plain again), with its rows and everything on it."""
    column = PARTITIONED[table]
    kept = _dependents(conn, table)
    old = f"{table}_before_0024" if partitioned else f"{table}_partitioned"
    if kept.sequence:
        conn.exec_driver_sql(f"ALTER SEQUENCE {kept.sequence} OWNED BY NONE")
    conn.exec_driver_sql(f"ALTER TABLE {table} RENAME TO {old}")
    conn.exec_driver_sql(f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
                         + (f" PARTITION BY RANGE ({column})" if partitioned else ""))
    if partitioned:
        conn.exec_driver_sql(f"CREATE TABLE {default_name(table)} PARTITION OF {table} DEFAULT")
        today = dt.date.today()
        present = conn.execute(text(f"SELECT DISTINCT date_trunc('month', {column})::date FROM {old}")).scalars()
        ahead = [add_months(month_of(today), n) for n in range(MONTHS_AHEAD + 1)]
        ensure_months(conn, table, [*months_of(present, today), *ahead])
    columns = ", ".join(conn.execute(text(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(:t) AND attnum > 0 AND NOT attisdropped "
        "ORDER BY attnum"), {"t": table}).scalars())
    conn.exec_driver_sql(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {old}")
    conn.exec_driver_sql(f"DROP TABLE {old}")  # with its partitions, indexes, triggers and policies
    if kept.sequence:
        conn.exec_driver_sql(f"ALTER SEQUENCE {kept.sequence} OWNED BY {table}.id")
    key = f"id, {column}" if partitioned else "id"
    conn.exec_driver_sql(f"ALTER TABLE {table} ADD CONSTRAINT {PRIMARY[table]} PRIMARY KEY ({key})")
    if table in UNIQUE:
        name, unique = UNIQUE[table]
        unique_key = f"{unique}, {column}" if partitioned else unique
        conn.exec_driver_sql(f"ALTER TABLE {table} ADD CONSTRAINT {name} UNIQUE ({unique_key})")
    for statement in kept.indexes + kept.triggers:
        conn.exec_driver_sql(statement)
    for name, definition in kept.foreign_keys:
        conn.exec_driver_sql(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
    if kept.row_security:
        conn.exec_driver_sql(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    for statement in kept.policies + kept.grants:
        conn.exec_driver_sql(statement)
    if partitioned:
        for partition in conn.execute(text("SELECT inhrelid::regclass::text FROM pg_inherits "
                                           "WHERE inhparent = to_regclass(:t)"), {"t": table}).scalars():
            revoke_direct_access(conn, partition)
    conn.exec_driver_sql(f"ANALYZE {table}")


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    for table in PARTITIONED:
        _rebuild(conn, table, partitioned=True)


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    for table in PARTITIONED:
        _rebuild(conn, table, partitioned=False)
