"""Reserved revision 0006 (casework): a link of the one migration chain, filled in by the change that needs it.

An empty revision is harmless: it records that the chain passed here.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 19:10:00
"""

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
