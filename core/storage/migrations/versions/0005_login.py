"""Reserved revision 0005 (login): a link of the one migration chain, filled in by the change that needs it.

An empty revision is harmless: it records that the chain passed here.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 19:10:00
"""

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
