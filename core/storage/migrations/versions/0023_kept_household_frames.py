"""Kept household frames (家庭信息快照) for policy simulation: ``household_frame_set`` and ``household_frame_chunk``.

A simulation over a province used to read every household's facts from the tables (about 1,000 households a
second on SQLite: half an hour for the 1,880,000-household benchmark province). The facts of a province for one
date are now kept as compressed Arrow IPC chunks (aidgraph.core.policy.frames), rewritten chunk by chunk by
the kept decisions' refresh from the stale marks of migration 0011, so that a cold simulation reads them in
seconds.

On PostgreSQL the chunks hold personal data of a whole province: row-level security (0018) admits a chunk to a
request whose region scope lies in its province (the application narrows the frame to the caller's regions
before anything is computed; the second line is coarser here, a province, not a village). Writing chunks is
system work (the refresh runs with the system scope).

The staleness triggers of 0011 marked households only once a province had kept decisions (``decision_snapshot``);
they now also mark them while any frame is kept: the guard of each trigger (SQLite) and trigger function
(PostgreSQL) is rewritten in place, the rest of its text unchanged.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-03 13:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

ROLE = "aidgraph_app"
CHUNK_POLICY = ("((SELECT aidgraph_scope_unrestricted()) OR EXISTS (SELECT 1 FROM "
                "unnest((SELECT aidgraph_scope_prefixes())::text[]) AS p(prefix) WHERE p.prefix ^@ province_code::text))")


OLD_GUARD = "EXISTS (SELECT 1 FROM decision_snapshot)"
NEW_GUARD = "(EXISTS (SELECT 1 FROM decision_snapshot) OR EXISTS (SELECT 1 FROM household_frame_set))"


def _rewrite_guards(old: str, new: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        rows = bind.execute(sa.text(
            "SELECT pg_get_functiondef(p.oid) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = current_schema() AND p.proname LIKE 'decision\\_stale\\_%\\_fn'")).scalars().all()
        for definition in rows:
            if old in definition:
                op.execute(definition.replace(old, new))  # CREATE OR REPLACE FUNCTION ...
        return
    rows = bind.execute(sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                                "AND name LIKE 'decision\\_stale\\_%' ESCAPE '\\'")).all()
    for name, sql in rows:
        if old in sql:
            op.execute(f"DROP TRIGGER {name}")
            op.execute(sql.replace(old, new))


def upgrade() -> None:
    op.create_table(
        'household_frame_set',
        sa.Column('province_code', sa.String(length=2), nullable=False),
        sa.Column('as_of', sa.Date(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('format', sa.String(length=80), nullable=False),
        sa.Column('households', sa.Integer(), nullable=False),
        sa.Column('built_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.Column('seconds', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('province_code', 'as_of', name='pk_household_frame_set'),
    )
    op.create_table(
        'household_frame_chunk',
        sa.Column('province_code', sa.String(length=2), nullable=False),
        sa.Column('as_of', sa.Date(), nullable=False),
        sa.Column('first_household_id', sa.BigInteger(), nullable=False),
        sa.Column('households', sa.Integer(), nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(['province_code', 'as_of'],
                                ['household_frame_set.province_code', 'household_frame_set.as_of'],
                                name='fk_household_frame_chunk_province_code_household_frame_set',
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('province_code', 'as_of', 'first_household_id', name='pk_household_frame_chunk'),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON household_frame_set, household_frame_chunk TO {ROLE}")
        op.execute("ALTER TABLE household_frame_chunk ENABLE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY aidgraph_scope ON household_frame_chunk TO {ROLE} USING {CHUNK_POLICY} "
                   f"WITH CHECK {CHUNK_POLICY}")
    _rewrite_guards(OLD_GUARD, NEW_GUARD)


def downgrade() -> None:
    _rewrite_guards(NEW_GUARD, OLD_GUARD)
    op.drop_table('household_frame_chunk')
    op.drop_table('household_frame_set')
