"""Security and concurrency (issue 12): idempotency keys remember their request's fingerprint, and household
numbers come from a locked counter row per region.

``idempotency_record.request_hash`` (sha256 of the canonical payload) lets the same key sent with another
payload be refused (IDEMPOTENCY_KEY_REUSED) instead of replaying an unrelated answer; rows written before
this revision have none and are replayed as before. ``household_counter`` holds the last sequence number
per region; an upsert on it serialises concurrent registrations in one village on both engines. It starts
empty: the first registration under a region seeds it from the numbers already stored.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 19:10:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('idempotency_record') as batch:
        batch.add_column(sa.Column('request_hash', sa.String(length=64), nullable=True))
    op.create_table(
        'household_counter',
        sa.Column('region_code', sa.String(length=12), nullable=False),
        sa.Column('last_seq', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('region_code', name=op.f('pk_household_counter')),
    )


def downgrade() -> None:
    op.drop_table('household_counter')
    with op.batch_alter_table('idempotency_record') as batch:
        batch.drop_column('request_hash')
