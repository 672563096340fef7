"""Reserved revision 0009 (rules inputs): a link of the one migration chain, filled in by the change that needs it.

An empty revision is harmless: it records that the chain passed here.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 19:10:00
"""

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
