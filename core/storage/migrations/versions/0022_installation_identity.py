"""The database's identity (``installation``): one row with a random id, made here for new and existing databases.

The search index is stamped with it (``_meta.aidgraph_database``) when it is built, and ``aidgraph index
--verify`` / ``reindex`` refuse an index stamped by another database: a verify run from another directory once
"repaired" another server's index into its own, empty, image.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03 10:50:00
"""

import datetime as dt
import uuid

import sqlalchemy as sa
from alembic import op

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    installation = op.create_table(
        'installation',
        sa.Column('database_id', sa.String(length=36), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('database_id'),
    )
    op.bulk_insert(installation, [{"database_id": str(uuid.uuid4()),
                                   "created_at": dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)}])


def downgrade() -> None:
    op.drop_table('installation')
