"""Eligibility decisions kept current (政策找人 in under a second): ``eligibility_decision``, ``decision_count``,
``decision_snapshot`` and ``decision_stale``, and the triggers that mark a household stale when any fact its decisions read changes.

The triggers are the write path's guarantee: whatever writes (a mutation, the feed import's COPY, a monitoring
run, a migration, an administrator's SQL), the households it touched are marked, so the next read recomputes
them. They mark only while some province has a snapshot (before the first one there is nothing to keep
current, and a seed or first import pays nothing). What each table's change touches:

- ``household``, ``membership``, ``economic_item``, ``enrollment``, ``emergency_event``: the row's household;
- ``person``: every household the person is (or was) a member of, and the households of the persons related to
  them (a relative's death or labour capacity changes who has able support obligors);
- ``relationship``: the households of both persons;
- ``region`` (a renamed division may become rural or urban): the households registered there.

SQLite: row triggers. PostgreSQL: statement triggers over transition tables (one INSERT ... SELECT per
statement, so a COPY of a million items marks its households in one statement).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 05:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

GUARD = "EXISTS (SELECT 1 FROM decision_snapshot)"

# table -> SQL selecting the household ids a changed row touches, written over a relation named {rows}
# (SQLite: the NEW/OLD row as a one-row SELECT; PostgreSQL: a transition table).
DIRECT = {"household": "id", "membership": "household_id", "economic_item": "household_id",
          "enrollment": "household_id", "emergency_event": "household_id"}


def _person_households(persons: str) -> str:
    """Households of the persons in ``persons`` (a SELECT of person ids) and of everyone related to them."""
    return (f"SELECT m.household_id AS x FROM membership m WHERE m.person_id IN ({persons}) "
            f"UNION SELECT m.household_id FROM membership m JOIN relationship r ON r.to_person_id = m.person_id "
            f"WHERE r.from_person_id IN ({persons}) "
            f"UNION SELECT m.household_id FROM membership m JOIN relationship r ON r.from_person_id = m.person_id "
            f"WHERE r.to_person_id IN ({persons})")


def _touched(table: str, rows: list[str]) -> str:
    """SELECT of the household ids (column ``x``) touched by ``rows`` (transition tables or SQLite rows)."""
    if table in DIRECT:
        return " UNION ".join(f"SELECT {DIRECT[table]} AS x FROM {r}" for r in rows)
    if table == "person":
        return _person_households(" UNION ".join(f"SELECT id FROM {r}" for r in rows))
    if table == "relationship":
        persons = " UNION ".join(f"SELECT from_person_id FROM {r} UNION SELECT to_person_id FROM {r}" for r in rows)
        return f"SELECT m.household_id AS x FROM membership m WHERE m.person_id IN ({persons})"
    if table == "region":
        return f"SELECT h.id AS x FROM household h WHERE h.region_code IN (" + " UNION ".join(
            f"SELECT code FROM {r}" for r in rows) + ")"
    raise ValueError(table)


TABLES = [*DIRECT, "person", "relationship", "region"]
EVENTS = {"INSERT": ["new_rows"], "UPDATE": ["old_rows", "new_rows"], "DELETE": ["old_rows"]}


def _skip(table: str, event: str) -> bool:
    # A new person has no membership or relationship yet; a new region has no households.
    return (table, event) in {("person", "INSERT"), ("region", "INSERT"), ("region", "DELETE")}


def _sqlite_row(alias: str, table: str) -> str:
    """A one-row SELECT of the trigger's NEW or OLD row with the columns _touched reads."""
    row = "NEW" if alias == "new_rows" else "OLD"
    columns = {"person": ["id"], "relationship": ["from_person_id", "to_person_id"], "region": ["code"]}.get(
        table, [DIRECT.get(table, "household_id")])
    return "(SELECT " + ", ".join(f"{row}.{c} AS {c}" for c in columns) + ")"


def _names(table: str, event: str) -> tuple[str, str]:
    return f"decision_stale_{table}_{event.lower()}", f"decision_stale_{table}_{event.lower()}_fn"


def upgrade() -> None:
    op.create_table(
        'eligibility_decision',
        sa.Column('household_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('program', sa.String(length=40), nullable=False),
        sa.Column('region_code', sa.String(length=12), nullable=False),
        sa.Column('eligible', sa.Boolean(), nullable=False),
        sa.Column('enrolled', sa.Boolean(), nullable=False),
        sa.Column('gap', sa.Boolean(), nullable=False),
        sa.Column('monthly_amount', sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column('one_off_amount', sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column('benefit_label', sa.String(length=80), nullable=True),
        sa.PrimaryKeyConstraint('household_id', 'program', name=op.f('pk_eligibility_decision')),
    )
    op.create_index(op.f('ix_eligibility_decision_region_code'), 'eligibility_decision', ['region_code'])
    op.create_index('ix_eligibility_decision_gap_order', 'eligibility_decision', ['household_id', 'program'],
                    sqlite_where=sa.text('gap'), postgresql_where=sa.text('gap'))
    op.create_index('ix_eligibility_decision_gap_region', 'eligibility_decision',
                    ['region_code', 'household_id', 'program'],
                    sqlite_where=sa.text('gap'), postgresql_where=sa.text('gap'))
    op.create_table(
        'decision_count',
        sa.Column('region_code', sa.String(length=12), nullable=False),
        sa.Column('program', sa.String(length=40), nullable=False),
        sa.Column('gaps', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('region_code', 'program', name=op.f('pk_decision_count')),
    )
    op.create_table(
        'decision_snapshot',
        sa.Column('province_code', sa.String(length=2), nullable=False),
        sa.Column('as_of', sa.Date(), nullable=False),
        sa.Column('policy_version', sa.String(length=64), nullable=False),
        sa.Column('computed_at', sa.DateTime(), nullable=False),
        sa.Column('households', sa.Integer(), nullable=False),
        sa.Column('decisions', sa.Integer(), nullable=False),
        sa.Column('seconds', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('province_code', name=op.f('pk_decision_snapshot')),
    )
    op.create_table(
        'decision_stale',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('household_id', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_decision_stale')),
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in TABLES:
        for event, rows in EVENTS.items():
            if _skip(table, event):
                continue
            trigger, function = _names(table, event)
            if postgres:
                touched = _touched(table, rows)
                op.execute(f"""CREATE FUNCTION {function}() RETURNS trigger AS $$
BEGIN
  IF {GUARD} THEN
    INSERT INTO decision_stale (household_id) SELECT DISTINCT t.x FROM ({touched}) AS t WHERE t.x IS NOT NULL;
  END IF;
  RETURN NULL;
END $$ LANGUAGE plpgsql""")
                referencing = " ".join(f"{'NEW' if r == 'new_rows' else 'OLD'} TABLE AS {r}" for r in rows)
                op.execute(f"CREATE TRIGGER {trigger} AFTER {event} ON {table} REFERENCING {referencing} "
                           f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()")
            elif table in DIRECT and event != "UPDATE":
                # the monthly import inserts millions of items: one plain row insert each, nothing more
                row = "NEW" if event == "INSERT" else "OLD"
                op.execute(f"CREATE TRIGGER {trigger} AFTER {event} ON {table} WHEN {GUARD} BEGIN "
                           f"INSERT INTO decision_stale (household_id) VALUES ({row}.{DIRECT[table]}); END")
            else:
                touched = _touched(table, [_sqlite_row(r, table) for r in rows])
                op.execute(f"CREATE TRIGGER {trigger} AFTER {event} ON {table} WHEN {GUARD} BEGIN "
                           f"INSERT INTO decision_stale (household_id) SELECT DISTINCT t.x FROM ({touched}) AS t "
                           f"WHERE t.x IS NOT NULL; END")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in TABLES:
        for event in EVENTS:
            if _skip(table, event):
                continue
            trigger, function = _names(table, event)
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}" + (f" ON {table}" if postgres else ""))
            if postgres:
                op.execute(f"DROP FUNCTION IF EXISTS {function}()")
    op.drop_table('decision_stale')
    op.drop_table('decision_snapshot')
    op.drop_table('decision_count')
    op.drop_index('ix_eligibility_decision_gap_region', table_name='eligibility_decision')
    op.drop_index('ix_eligibility_decision_gap_order', table_name='eligibility_decision')
    op.drop_index(op.f('ix_eligibility_decision_region_code'), table_name='eligibility_decision')
    op.drop_table('eligibility_decision')
