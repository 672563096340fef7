"""Feed row hashes start with the event month.

``feed_record.row_hash`` becomes YYYYMM + the first 58 hex digits of the row's sha256 (aidgraph.core.monitoring.feeds), so the
unique index keeps each month's rows together and a monthly import writes into one region of it. Existing
hashes are rewritten the same way, so a file imported before this revision is still recognised when it is
imported again.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 08:00:00
"""
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Runs once (Alembic records it): every stored hash is still the 64-digit sha256 of its row.
    month = ("to_char(event_date, 'YYYYMM')" if op.get_bind().dialect.name == 'postgresql'
             else "strftime('%Y%m', event_date)")
    op.execute(f"UPDATE feed_record SET row_hash = {month} || substr(row_hash, 1, 58)")


def downgrade() -> None:
    # The dropped hash digits cannot be recovered: re-importing an old file after a downgrade stores it again.
    pass
