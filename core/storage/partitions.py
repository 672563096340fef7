"""Monthly partitions of the history tables on PostgreSQL (按月分区): the monthly jobs cost the same in year five.

Why: the monitoring run and the monthly import touch one month (and a short baseline window) of
``economic_item`` and ``feed_record``, tables that otherwise grow by a province's month every month. On
PostgreSQL (migration ``0024_monthly_partitions``) both are declaratively partitioned by range of month, on the
column the monthly work filters by: ``economic_item.period_start`` (the monitoring run's flow read,
``IndicatorContext.economic_flows``, ranges over it; income items start on the first of their month) and
``feed_record.event_date`` (the month's records of a kind; a feed row's ``row_hash`` starts with that month). A
month's rows live in their own table ``<table>_pYYYYMM`` with its own small indexes, so the month's import
writes into indexes the size of one month and the month's read is pruned to that month's partitions, however
many years lie beside them. A ``DEFAULT`` partition (``<table>_default``) takes any row whose month has no
partition yet: no insert ever fails for want of one.

This module creates the months ahead of their rows (:func:`ensure_month_partitions`), called by the feed import
and the seeder for the months they are about to write (each in a short transaction of its own, before the
rows), and by ``aidgraph partitions ensure`` (a maintenance command, e.g. monthly from cron) for the months
ahead and for months whose rows already landed in the default partition. Creating a month whose rows sit in
the default partition (PostgreSQL refuses to create a partition while the default holds rows of its range)
moves them in the same transaction: delete from the default into a temporary table, create the partition,
insert them into it. Two callers at once serialise on an advisory lock per table, and the second finds the
partition made (``CREATE TABLE IF NOT EXISTS`` besides).

Rows older than :data:`HISTORY_MONTHS` or later than :data:`FUTURE_MONTHS` from today get no partition of their
own from the import (a disability certified in 2003 would otherwise make a partition of 2003): they stay in the
default partition, which the monthly reads do not need to visit in full (it is pruned too when the month's
partition exists).

Row-level security (migration 0018) binds queries through the partitioned parent, where the policies are; a
partition named directly would not be bound, so every partition's privileges are revoked from all but the
owner (the application role reaches the rows only through the parent).

A month written all at once (the monthly income file: three million items) is written into a table of its own
without indexes, which are built afterwards in one sorted pass each, and the table then takes the place of the
month's empty partition (:func:`load_month`): PostgreSQL's documented way to bulk-load a partition. Inserted
through the parent, every row would cost a search of five indexes (one of them keyed by a random hash) and
two foreign-key lookups.

SQLite keeps its plain tables: every function here returns at once there.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, text

from aidgraph.core.storage.models import DIALECT_INDEXES
from aidgraph.core.storage.rls import POLICY_COLUMNS

PARTITIONED: dict[str, str] = {"economic_item": "period_start", "feed_record": "event_date"}
"""The partitioned tables (PostgreSQL) and the date column each is partitioned by, one month per partition."""

HISTORY_MONTHS = 60
"""How many months back the import and the maintenance command give a month its own partition: five years of
monthly history (an engineering setting, not a policy figure); older rows stay in the default partition."""
FUTURE_MONTHS = 12
"""How many months ahead of today a written row's month gets its own partition (later dates are data errors
or asset valuations far ahead, kept in the default partition)."""
MONTHS_AHEAD = 3
"""Months after the current one created ahead by the migration and by ``aidgraph partitions ensure``."""

_LOCK_KEY = 0x616964_70617274  # "aid" "part": the advisory-lock namespace; the table's position is added
_PARTITION_NAME = re.compile(r"^(?P<table>[a-z_]+)_(?:p(?P<month>\d{6})|default)$")


class PartitionError(RuntimeError):
    """A partition cannot be created as asked (unknown table, reversed months)."""


def month_of(day: dt.date) -> dt.date:
    """The first day of ``day``'s month."""
    return day.replace(day=1)


def add_months(month: dt.date, count: int) -> dt.date:
    """The first day of the month ``count`` months after ``month``'s (negative: before)."""
    index = month.year * 12 + month.month - 1 + count
    return dt.date(index // 12, index % 12 + 1, 1)


def partition_name(table: str, month: dt.date) -> str:
    """``<table>_pYYYYMM``: the partition holding ``month``'s rows."""
    return f"{table}_p{month:%Y%m}"


def default_name(table: str) -> str:
    """``<table>_default``: the partition holding the rows of months without one."""
    return f"{table}_default"


def is_partition_name(name: str) -> bool:
    """``name`` is a partition of one of :data:`PARTITIONED` (for schema comparison, which knows only the parents)."""
    found = _PARTITION_NAME.match(name)
    return found is not None and found["table"] in PARTITIONED


def _check_table(table: str) -> str:
    if table not in PARTITIONED:
        raise PartitionError(f"table {table!r} is not partitioned by month; partitioned tables: "
                             f"{', '.join(PARTITIONED)}")
    return PARTITIONED[table]


def is_partitioned(conn: Connection, table: str) -> bool:
    """``table`` is a partitioned table in this database (PostgreSQL after migration 0024)."""
    if conn.dialect.name != "postgresql":
        return False
    return bool(conn.execute(text("SELECT EXISTS (SELECT 1 FROM pg_partitioned_table p JOIN pg_class c "
                                  "ON c.oid = p.partrelid WHERE c.oid = to_regclass(:t))"), {"t": table}).scalar())


def _columns(conn: Connection, table: str) -> list[str]:
    return list(conn.execute(text(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(:t) AND attnum > 0 AND NOT attisdropped "
        "ORDER BY attnum"), {"t": table}).scalars())


def revoke_direct_access(conn: Connection, relation: str) -> None:
    """Take every privilege on partition ``relation`` from every role but its owner: the rows are reached
    through the parent, whose row-level security policies a direct query of the partition would bypass."""
    grantees = conn.execute(text(
        "SELECT DISTINCT coalesce(r.rolname, 'PUBLIC') FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a "
        "LEFT JOIN pg_roles r ON r.oid = a.grantee WHERE c.oid = to_regclass(:t) AND a.grantee <> c.relowner"),
        {"t": relation}).scalars().all()
    for grantee in grantees:
        role = "PUBLIC" if grantee == "PUBLIC" else f'"{grantee}"'
        conn.exec_driver_sql(f"REVOKE ALL ON {relation} FROM {role}")


def lock_partitions(conn: Connection, table: str) -> None:
    """Hold ``table``'s partition-maintenance lock until the transaction ends (two imports wait in turn)."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY + list(PARTITIONED).index(table)})


def _create_month(conn: Connection, table: str, column: str, month: dt.date) -> int:
    """Create ``month``'s partition, moving its rows out of the default partition first; returns rows moved."""
    name, default = partition_name(table, month), default_name(table)
    bounds = {"start": month, "end": add_months(month, 1)}
    moved = 0
    stranded = conn.execute(text(f"SELECT EXISTS (SELECT 1 FROM {default} WHERE {column} >= :start "
                                 f"AND {column} < :end)"), bounds).scalar()
    if stranded:
        columns = ", ".join(_columns(conn, table))
        conn.exec_driver_sql(f"CREATE TEMPORARY TABLE _moving_{table} (LIKE {table}) ON COMMIT DROP")
        moved = conn.execute(text(
            f"WITH gone AS (DELETE FROM {default} WHERE {column} >= :start AND {column} < :end "
            f"RETURNING {columns}) INSERT INTO _moving_{table} ({columns}) SELECT {columns} FROM gone"),
            bounds).rowcount
    conn.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {table} "
                         f"FOR VALUES FROM ('{bounds['start']:%Y-%m-%d}') TO ('{bounds['end']:%Y-%m-%d}')")
    revoke_direct_access(conn, name)
    if stranded:
        # Straight into the partition: moving rows is no change of fact, so the parent's statement triggers
        # (decision_stale, migration 0011) are not fired.
        conn.exec_driver_sql(f"INSERT INTO {name} ({columns}) SELECT {columns} FROM _moving_{table}")
        conn.exec_driver_sql(f"DROP TABLE _moving_{table}")
    return moved


@dataclass
class Ensured:
    """What :func:`ensure_month_partitions` did: the partitions it created and the rows it moved into them."""

    created: list[str]
    moved: int = 0


def ensure_month_partitions(conn: Connection, table: str, first_month: dt.date, last_month: dt.date) -> Ensured:
    """Create the monthly partitions of ``table`` from ``first_month`` to ``last_month`` (inclusive) that do not
    exist yet, in the caller's transaction, moving rows of those months out of the default partition.

    Idempotent, and safe with two callers at once: the transaction holds an advisory lock per table from here
    to its end, and a partition made meanwhile is found. Commit soon: creating a partition locks the parent
    against readers until the transaction ends. Nothing happens on SQLite or on a plain (unmigrated) table.
    """
    column = _check_table(table)
    first, last = month_of(first_month), month_of(last_month)
    if last < first:
        raise PartitionError(f"last month {last:%Y-%m} is before first month {first:%Y-%m}")
    if not is_partitioned(conn, table):
        return Ensured([])
    lock_partitions(conn, table)
    existing = set(conn.execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass(:t)"), {"t": table}).scalars())
    result = Ensured([])
    month = first
    while month <= last:
        name = partition_name(table, month)
        if name not in existing:
            result.moved += _create_month(conn, table, column, month)
            result.created.append(name)
        month = add_months(month, 1)
    return result


def months_of(days: Iterable[dt.date | None], today: dt.date) -> list[dt.date]:
    """The distinct months of ``days`` that get a partition of their own (within :data:`HISTORY_MONTHS` back and
    :data:`FUTURE_MONTHS` ahead of ``today``), in order."""
    earliest, latest = add_months(month_of(today), -HISTORY_MONTHS), add_months(month_of(today), FUTURE_MONTHS)
    return sorted({month_of(d) for d in days if d is not None and earliest <= month_of(d) <= latest})


def ensure_months(conn: Connection, table: str, months: Iterable[dt.date]) -> Ensured:
    """:func:`ensure_month_partitions` for each run of consecutive months in ``months`` (the months a writer is
    about to write: not the gaps between them)."""
    result = Ensured([])
    ordered = sorted({month_of(m) for m in months})
    start = 0
    for i, month in enumerate(ordered):
        if i + 1 == len(ordered) or add_months(month, 1) != ordered[i + 1]:
            done = ensure_month_partitions(conn, table, ordered[start], month)
            result.created += done.created
            result.moved += done.moved
            start = i + 1
    return result


def stranded_months(conn: Connection, table: str) -> list[dt.date]:
    """The months of the rows in ``table``'s default partition (written for a month without a partition)."""
    column = _check_table(table)
    if not is_partitioned(conn, table):
        return []
    return list(conn.execute(text(f"SELECT DISTINCT date_trunc('month', {column})::date FROM {default_name(table)} "
                                  "ORDER BY 1")).scalars())


def keep_ahead(conn: Connection, table: str, today: dt.date, months_ahead: int = MONTHS_AHEAD) -> Ensured:
    """What ``aidgraph partitions ensure`` and the server's partition keeper do for ``table``, in the caller's
    transaction: the current month and ``months_ahead`` after it, and every month whose rows wait in the default
    partition (within the window), each get their own partition."""
    wanted = [add_months(month_of(today), n) for n in range(months_ahead + 1)]
    wanted += months_of(stranded_months(conn, table), today)
    return ensure_months(conn, table, wanted)


@dataclass(frozen=True)
class PartitionInfo:
    """One partition: its name, its month (``None`` for the default partition), rows and size on disk."""

    name: str
    month: dt.date | None
    rows: int
    bytes: int


def list_partitions(conn: Connection, table: str, exact: bool = False) -> list[PartitionInfo]:
    """``table``'s partitions in month order, the default partition last. Rows are the planner's estimate
    (``reltuples``, kept by ANALYZE and autovacuum) unless ``exact`` (a count of each partition)."""
    _check_table(table)
    if not is_partitioned(conn, table):
        return []
    found = conn.execute(text(
        "SELECT c.relname, greatest(c.reltuples, 0)::bigint, pg_total_relation_size(c.oid) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(:t) ORDER BY c.relname"),
        {"t": table}).all()
    result = []
    for name, rows, size in found:
        match = _PARTITION_NAME.match(name)
        month = dt.datetime.strptime(match["month"], "%Y%m").date() if match and match["month"] else None
        if exact:
            rows = conn.exec_driver_sql(f"SELECT count(*) FROM {name}").scalar()
        result.append(PartitionInfo(name, month, int(rows), int(size)))
    return sorted(result, key=lambda p: (p.month is None, p.month or dt.date.min))


def month_is_empty(conn: Connection, table: str, month: dt.date) -> bool:
    """``month``'s own partition of ``table`` exists and holds no row (then the default partition holds none of
    that month either: PostgreSQL keeps a month's rows out of the default while the month has a partition)."""
    _check_table(table)
    name = partition_name(table, month_of(month))
    if not is_partitioned(conn, table) or not _is_partition_of(conn, table, name):
        return False
    return not conn.exec_driver_sql(f"SELECT EXISTS (SELECT 1 FROM {name})").scalar()


def _is_partition_of(conn: Connection, table: str, name: str) -> bool:
    return bool(conn.execute(text("SELECT EXISTS (SELECT 1 FROM pg_inherits WHERE inhparent = to_regclass(:t) "
                                  "AND inhrelid = to_regclass(:p))"), {"t": table, "p": name}).scalar())


@dataclass
class MonthLoad:
    """What :func:`load_month` did: rows written, rows found in the month's partition at the swap (written there
    meanwhile by others, kept), and the seconds of each step."""

    rows: int
    moved: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


_TABLE = "<table>"
_INDEX_HEAD = re.compile(r"^CREATE (?P<unique>UNIQUE )?INDEX \S+ ON (?:ONLY )?\S+ ")


def _parent_indexes(conn: Connection, table: str) -> list[str]:
    """Statements that give a table (written ``<table>``) ``table``'s indexes: ``CREATE INDEX`` without the index's
    name, or, for an index that holds a primary key or unique constraint, the constraint (named as PostgreSQL
    names a partition's: ``<table>_pkey``, ``<table>_<columns>_key``), which attaching requires of the partition."""
    found = conn.execute(text(
        "SELECT pg_get_indexdef(i.indexrelid), c.contype, pg_get_constraintdef(c.oid), "
        "(SELECT string_agg(a.attname, '_' ORDER BY k.n) FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, n) "
        " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum) "
        "FROM pg_index i LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid "
        "AND c.contype IN ('p', 'u', 'x') WHERE i.indrelid = to_regclass(:t) ORDER BY i.indexrelid"),
        {"t": table}).all()
    statements = []
    for definition, kind, constraint, columns in found:
        if kind is None:
            statements.append(_INDEX_HEAD.sub(lambda m: f"CREATE {m['unique'] or ''}INDEX ON {_TABLE} ", definition))
        else:
            suffix = {"p": "pkey", "u": f"{columns}_key", "x": f"{columns}_excl"}[kind]
            statements.append(f"ALTER TABLE {_TABLE} ADD CONSTRAINT {_TABLE}_{suffix} {constraint}")
    return statements


def unhandled_triggers(conn: Connection, table: str, handled: Collection[str]) -> list[str]:
    """The triggers on ``table`` (its own, not the system's foreign-key triggers) not named in ``handled``."""
    triggers = conn.execute(text("SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass(:t) AND NOT tgisinternal"),
                            {"t": table}).scalars()
    return sorted(set(triggers) - set(handled))


def _object_name(table: str, columns: str | None, label: str) -> str:
    """The name PostgreSQL gives an index it names itself (``makeObjectName``): ``table_columns_label``, the
    longer of table and columns shortened a character at a time until the whole fits in 63 bytes."""
    room = 63 - len(label) - 1 - (1 if columns else 0)
    first, second = len(table), len(columns or "")
    while first + second > room:
        if first > second:
            first -= 1
        else:
            second -= 1
    return "_".join(part for part in (table[:first], (columns or "")[:second], label) if part)


def load_month(conn: Connection, table: str, month: dt.date, write: Callable[[str], int], *,
               handled_triggers: Collection[str] = (), before_swap: Callable[[str], None] | None = None
               ) -> MonthLoad:
    """Write a whole month of ``table`` in the caller's transaction into a new table that then replaces the
    month's (empty) partition: the bulk load PostgreSQL's manual describes for partitions.

    ``write(name)`` writes the month's rows into the table ``name`` (``LIKE`` the parent: its columns, defaults
    and check constraints, no index) and returns how many; every row must fall in ``month``. Then, in order:
    a check constraint of the month's bounds (so attaching needs no scan), the parent's indexes built in one
    sorted pass each, the parent's foreign keys (validated in one join each; attaching then finds them and
    validates nothing), ``ANALYZE`` (the monthly reads come next), ``before_swap(name)`` (the caller's share of
    what the parent's triggers would have done for rows inserted through it), and the swap: the parent locked
    ``ACCESS EXCLUSIVE``, any rows the month's partition got meanwhile copied over, the old partition detached
    and dropped, the new table renamed and attached. Readers of ``table`` wait only for the swap (catalogue
    work); writers of the tables the foreign keys reference wait from the keys' validation to commit.

    The month's partition must exist (:func:`ensure_month_partitions`); check it is empty first
    (:func:`month_is_empty`), since a month with rows is better written through the parent. Rows loaded this way
    fire none of the parent's triggers: every trigger on ``table`` must be named in ``handled_triggers`` (the
    caller does their work, or they have none for new rows), else :class:`PartitionError` before anything is
    written.
    """
    column = _check_table(table)
    month = month_of(month)
    name, staging = partition_name(table, month), f"{partition_name(table, month)}_load"
    if unhandled := unhandled_triggers(conn, table, handled_triggers):
        raise PartitionError(f"{table} has triggers {', '.join(unhandled)} that rows loaded into a new partition "
                             "would not fire; name them in handled_triggers once the caller does their work")
    if not _is_partition_of(conn, table, name):
        raise PartitionError(f"{name} does not exist: create the month's partition first")
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[step] = now - clock
        clock = now

    conn.exec_driver_sql(f"CREATE TABLE {staging} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    rows = write(staging)
    lap("write")
    start, end = month, add_months(month, 1)
    bound = f"{staging}_bound"
    conn.exec_driver_sql(f"ALTER TABLE {staging} ADD CONSTRAINT {bound} CHECK ({column} IS NOT NULL AND "
                         f"{column} >= '{start:%Y-%m-%d}' AND {column} < '{end:%Y-%m-%d}')")
    for statement in _parent_indexes(conn, table):
        conn.exec_driver_sql(statement.replace(_TABLE, staging))
    lap("index")
    for constraint, definition in conn.execute(text(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = to_regclass(:t) "
            "AND contype = 'f' ORDER BY conname"), {"t": table}).all():
        conn.exec_driver_sql(f"ALTER TABLE {staging} ADD CONSTRAINT {constraint} {definition}")
    lap("foreign keys")
    conn.exec_driver_sql(f"ANALYZE {staging}")
    lap("analyze")
    if before_swap is not None:
        before_swap(staging)
        lap("before swap")
    conn.exec_driver_sql(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    listed = ", ".join(_columns(conn, table))
    moved = conn.exec_driver_sql(f"INSERT INTO {staging} ({listed}) SELECT {listed} FROM {name}").rowcount
    conn.exec_driver_sql(f"ALTER TABLE {table} DETACH PARTITION {name}")
    conn.exec_driver_sql(f"DROP TABLE {name}")
    conn.exec_driver_sql(f"ALTER TABLE {staging} RENAME TO {name}")
    for index, columns, label in conn.execute(text(
            "SELECT c.relname, (SELECT string_agg(a.attname, '_' ORDER BY k.n) FROM unnest(i.indkey) "
            " WITH ORDINALITY AS k(attnum, n) JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
            " WHERE k.n <= i.indnkeyatts), "
            "CASE WHEN i.indisprimary THEN 'pkey' ELSE coalesce((SELECT CASE contype WHEN 'u' THEN 'key' "
            " ELSE 'excl' END FROM pg_constraint WHERE conindid = i.indexrelid AND contype IN ('u', 'x')), 'idx') END "
            "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = to_regclass(:t)"),
            {"t": name}).all():
        renamed = _object_name(name, None if label == "pkey" else columns, label)
        conn.exec_driver_sql(f'ALTER INDEX "{index}" RENAME TO "{renamed}"')
    conn.exec_driver_sql(f"ALTER TABLE {table} ATTACH PARTITION {name} "
                         f"FOR VALUES FROM ('{start:%Y-%m-%d}') TO ('{end:%Y-%m-%d}')")
    conn.exec_driver_sql(f"ALTER TABLE {name} DROP CONSTRAINT {bound}")
    revoke_direct_access(conn, name)
    lap("swap")
    return MonthLoad(rows, moved, seconds)


PARTITION_KEY_UNIQUE = {"uq_feed_record_row_hash": ["row_hash", "event_date"]}
"""Unique constraints that hold the partition key on PostgreSQL beside the model's columns (migration 0024)."""


IncludeObject = Callable[[Any, "str | None", str, bool, Any], bool]
"""Alembic's ``include_object`` hook: (object, name, type, reflected, the object compared to) -> compare it?"""


def comparison_filter(dialect: str) -> IncludeObject:
    """Alembic ``include_object`` hook for a database of engine ``dialect`` (autogenerate and the
    models-match-migrations test): :func:`include_in_comparison`, and an index the models declare for another
    engine only (:data:`aidgraph.core.storage.models.DIALECT_INDEXES`) is not looked for in this one."""
    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        if type_ == "index" and name is not None and DIALECT_INDEXES.get(name, dialect) != dialect:
            return False
        return include_in_comparison(obj, name, type_, reflected, compare_to)
    return include


def include_in_comparison(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Alembic ``include_object`` hook, on either engine: the partitions are
    not model tables, a unique constraint widened by the partition key (:data:`PARTITION_KEY_UNIQUE`) is the
    model's, whose meaning it keeps, and the columns the row-level policies alone use are not the models'
    (:data:`aidgraph.core.storage.rls.POLICY_COLUMNS`)."""
    if type_ == "table" and name is not None and is_partition_name(name):
        return False
    if type_ == "column" and reflected and compare_to is None and (obj.table.name, name) in POLICY_COLUMNS:
        return False  # kept by the database for row-level security only (migration 0025)
    if type_ == "unique_constraint" and name in PARTITION_KEY_UNIQUE:
        widened = PARTITION_KEY_UNIQUE[name]
        return not any([c.name for c in o.columns] == widened for o in (obj, compare_to) if o is not None)
    return True
