"""Personal data (PIPL): the audit log hash-chained and append-only, storage-only records for retention.

- ``audit_log`` gains ``seq``, ``prev_hash`` and ``row_hash`` (filled when the writing transaction commits, see
  aidgraph.core.graph.audit) and a partial index on the rows not yet sealed; existing rows are sealed here, in id
  order, so the chain starts whole.
- ``audit_chain`` holds the chain's head (and is its lock) and where the chain starts after retention pruned it.
- Triggers make the audit log append-only on both engines: a sealed row cannot be updated, and a row can be
  deleted only up to ``audit_chain.prune_through`` (set by retention in the same transaction). An attacker who
  can drop triggers can still change rows; ``aidgraph audit verify`` then names them.
- ``retained_record`` keeps records past their keeping period while a statutory period runs (storage only).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 19:10:00
"""

import hashlib
import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

GENESIS = "0" * 64

PG_TRIGGERS = [
    """CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    IF OLD.seq IS NOT NULL THEN
      RAISE EXCEPTION 'audit_log is append-only: sealed row % cannot be changed', OLD.id;
    END IF;
    RETURN NEW;
  END IF;
  IF OLD.seq IS NULL OR OLD.seq > COALESCE((SELECT prune_through FROM audit_chain WHERE name = 'audit'), 0) THEN
    RAISE EXCEPTION 'audit_log is append-only: row % cannot be deleted', OLD.id;
  END IF;
  RETURN OLD;
END $$ LANGUAGE plpgsql""",
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
]

SQLITE_TRIGGERS = [
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log WHEN OLD.seq IS NOT NULL "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: a sealed row cannot be changed'); END",
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log WHEN OLD.seq IS NULL OR OLD.seq > "
    "COALESCE((SELECT prune_through FROM audit_chain WHERE name = 'audit'), 0) "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: a row cannot be deleted'); END",
]


def _row_hash(prev: str, seq: int, row: Any) -> str:
    # The same canonical form as aidgraph.core.graph.audit.row_hash (kept here so the migration never changes).
    at = row.at.isoformat(timespec="microseconds") if row.at is not None else None
    detail = row.detail
    if isinstance(detail, str):
        detail = json.loads(detail)
    body = json.dumps([seq, at, row.actor, row.action, row.object_type, row.object_id, row.region_code,
                       row.remote_addr, detail], ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256((prev + "\n" + body).encode("utf-8")).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seq', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('prev_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('row_hash', sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_audit_log_seq'), ['seq'])
        batch_op.create_index('ix_audit_log_unsealed', ['id'], unique=False,
                              sqlite_where=sa.text('seq IS NULL'), postgresql_where=sa.text('seq IS NULL'))
    op.create_table('audit_chain',
                    sa.Column('name', sa.String(length=24), nullable=False),
                    sa.Column('seq', sa.BigInteger(), nullable=False),
                    sa.Column('head_hash', sa.String(length=64), nullable=False),
                    sa.Column('base_seq', sa.BigInteger(), nullable=False),
                    sa.Column('base_prev_hash', sa.String(length=64), nullable=False),
                    sa.Column('prune_through', sa.BigInteger(), nullable=False),
                    sa.PrimaryKeyConstraint('name', name=op.f('pk_audit_chain')))
    op.create_table('retained_record',
                    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
                    sa.Column('record_class', sa.String(length=32), nullable=False),
                    sa.Column('object_type', sa.String(length=24), nullable=False),
                    sa.Column('object_id', sa.BigInteger(), nullable=False),
                    sa.Column('region_code', sa.String(length=12), nullable=True),
                    sa.Column('ended_on', sa.Date(), nullable=False),
                    sa.Column('hold_until', sa.Date(), nullable=False),
                    sa.Column('payload', sa.JSON(), nullable=False),
                    sa.Column('moved_at', sa.DateTime(), nullable=False),
                    sa.PrimaryKeyConstraint('id', name=op.f('pk_retained_record')),
                    sa.UniqueConstraint('object_type', 'object_id', name='uq_retained_record_object'))
    with op.batch_alter_table('retained_record', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_retained_record_hold_until'), ['hold_until'], unique=False)

    # Seal the rows written before this revision, in id order.
    bind = op.get_bind()
    log = sa.table('audit_log', sa.column('id'), sa.column('at', sa.DateTime()), sa.column('actor'),
                   sa.column('action'), sa.column('object_type'), sa.column('object_id'), sa.column('region_code'),
                   sa.column('remote_addr'), sa.column('detail', sa.JSON()), sa.column('seq'),
                   sa.column('prev_hash'), sa.column('row_hash'))
    prev, seq = GENESIS, 0
    updates = []
    for row in bind.execute(sa.select(log).order_by(log.c.id)):
        seq += 1
        h = _row_hash(prev, seq, row)
        updates.append({"k": row.id, "s": seq, "p": prev, "h": h})
        prev = h
    if updates:
        bind.execute(sa.update(log).where(log.c.id == sa.bindparam("k"))
                     .values(seq=sa.bindparam("s"), prev_hash=sa.bindparam("p"), row_hash=sa.bindparam("h")), updates)
    bind.execute(sa.text("INSERT INTO audit_chain (name, seq, head_hash, base_seq, base_prev_hash, prune_through) "
                         "VALUES ('audit', :seq, :head, 1, :genesis, 0)"),
                 {"seq": seq, "head": prev, "genesis": GENESIS})
    for statement in (PG_TRIGGERS if bind.dialect.name == 'postgresql' else SQLITE_TRIGGERS):
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    with op.batch_alter_table('retained_record', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_retained_record_hold_until'))
    op.drop_table('retained_record')
    op.drop_table('audit_chain')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_log_unsealed', sqlite_where=sa.text('seq IS NULL'),
                            postgresql_where=sa.text('seq IS NULL'))
        batch_op.drop_constraint(batch_op.f('uq_audit_log_seq'), type_='unique')
        batch_op.drop_column('row_hash')
        batch_op.drop_column('prev_hash')
        batch_op.drop_column('seq')
