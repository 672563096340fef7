"""Relationships across households and reviews (复核) of running enrolments.

relationship: one *current* edge of a kind between two persons (a partial unique index on the edges whose
``valid_to`` is null), so RecordRelationship cannot store a duplicate even when two requests race; duplicate
current edges already stored are first ended on their own start date (kept, never valid: the lowest id stays
current). enrollment: an index by (status, next_review_date) for the due-review list and ``aidgraph reviews run``.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 19:10:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

CURRENT = 'valid_to IS NULL'


def upgrade() -> None:
    op.execute(
        "UPDATE relationship SET valid_to = valid_from WHERE valid_to IS NULL AND EXISTS ("
        "SELECT 1 FROM relationship r2 WHERE r2.from_person_id = relationship.from_person_id "
        "AND r2.to_person_id = relationship.to_person_id AND r2.kind = relationship.kind "
        "AND r2.valid_to IS NULL AND r2.id < relationship.id)")
    # Plain CREATE INDEX (no batch mode): SQLite need not copy the tables.
    op.create_index('uq_relationship_current_edge', 'relationship', ['from_person_id', 'to_person_id', 'kind'],
                    unique=True, sqlite_where=sa.text(CURRENT), postgresql_where=sa.text(CURRENT))
    op.create_index('ix_enrollment_review_due', 'enrollment', ['status', 'next_review_date'])


def downgrade() -> None:
    op.drop_index('ix_enrollment_review_due', table_name='enrollment')
    op.drop_index('uq_relationship_current_edge', table_name='relationship', sqlite_where=sa.text(CURRENT),
                  postgresql_where=sa.text(CURRENT))
