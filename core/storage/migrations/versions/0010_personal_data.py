"""Reserved revision 0010 (personal data: audit chain, retention, exports): a link of the one migration chain,
filled in by the change that needs it.

An empty revision is harmless: it records that the chain passed here.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 19:10:00
"""

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
