"""Indexes for the monthly monitoring cycle at province scale.

feed_record: one (kind, event_date) index replaces the two single-column ones (the run reads one kind's
records of one month; every imported row paid for both). economic_item: a covering index by period, so the
run reads the few months of flows it scores from the index instead of scanning years of items.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 07:00:00
"""
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain CREATE/DROP INDEX (no batch mode): SQLite must not copy these tables, they are the largest.
    op.drop_index('ix_feed_record_event_date', table_name='feed_record')
    op.drop_index('ix_feed_record_kind', table_name='feed_record')
    op.create_index('ix_feed_record_kind_event_date', 'feed_record', ['kind', 'event_date'])
    op.create_index('ix_economic_item_period_flows', 'economic_item',
                    ['period_start', 'period_end', 'kind', 'household_id', 'source', 'amount'])


def downgrade() -> None:
    op.drop_index('ix_economic_item_period_flows', table_name='economic_item')
    op.drop_index('ix_feed_record_kind_event_date', table_name='feed_record')
    op.create_index('ix_feed_record_kind', 'feed_record', ['kind'])
    op.create_index('ix_feed_record_event_date', 'feed_record', ['event_date'])
