"""Gap rows of ``eligibility_decision`` keep their reasons, so that a page of 政策找人 is read, not re-explained.

Explaining a page at read time (the page's household frame from the database, then the rules' reason text built
by the engine) was about 200 ms of a 210 ms request; the reasons are now computed with the decision, in the
refresh's batches, and stored as a JSON list on gap rows. Existing decisions have none, so their snapshots are
dropped: each province's next read (or ``aidgraph decisions refresh``) recomputes it in full.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 08:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("eligibility_decision") as batch:
        batch.add_column(sa.Column("reasons", sa.Text(), nullable=True))
    op.execute("DELETE FROM decision_snapshot")


def downgrade() -> None:
    with op.batch_alter_table("eligibility_decision") as batch:
        batch.drop_column("reasons")
