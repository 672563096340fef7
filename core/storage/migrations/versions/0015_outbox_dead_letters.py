"""Search-outbox dead letters: a row whose document the search engine refuses again and again stops being retried.

``attempts`` counts the passes that were refused (a mapping error, HTTP 400: never an unreachable engine, which
leaves every row pending without counting), ``last_error`` keeps the engine's reason, and ``dead_at`` marks the
row a dead letter once ``outbox_max_attempts`` is reached: no longer pending, listed by
``aidgraph index --dead-letters`` and in the metrics, never purged, queued again by ``--retry-dead-letters``.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 09:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")))
        batch.add_column(sa.Column("last_error", sa.Text(), nullable=True))
        batch.add_column(sa.Column("dead_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("dead_at")
        batch.drop_column("last_error")
        batch.drop_column("attempts")
