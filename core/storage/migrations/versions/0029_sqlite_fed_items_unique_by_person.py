"""On SQLite, a fed economic item is kept one per feed row by (month, person, hash) instead of (hash, month).

Why: the monthly cycle of 5,000,000 persons (issue 15 item 5). A month's income file (3.2 million rows) is
written in batches in household and person order, and each new item enters every index of ``economic_item``.
The household, person and flows indexes take their new entries at the end of the month's part, a few pages at a
time. ``uq_economic_item_row_hash`` (``row_hash``, ``period_start``) took them at random places among the
month's keyed hashes (random by design: :func:`aidgraph.core.monitoring.feeds._row_hash_expr`), so each batch
rewrote most of that part of the index, and SQLite's write-ahead log wrote every page it touched at each commit.
Measured on a copy of the 5,000,000-person benchmark province (3,329,230 income items in 14 committed batches
of 250,000, the import's ``INSERT ... ON CONFLICT DO NOTHING``, the ``sqlite3`` shell, 256 MB cache): 50 s
with the hash first, 26 s and 26 s with this key.

What changes, on SQLite only: ``uq_economic_item_person_row_hash``, unique (``period_start``, ``person_id``,
``row_hash``) over the fed items, takes the place of ``uq_economic_item_row_hash``. It means the same: a row's
hash covers its ID number, so one hash is one person's, and its month or valuation date, the item's
``period_start``. The new index cannot refuse what the old one held (two rows equal in it are equal in the old
one), so building it cannot fail. One difference: an item whose person was deleted (``person_id`` set null)
leaves the index, as the feed record of its row used to be deleted with the person (before revision 0027).
PostgreSQL keeps (``row_hash``, ``period_start``): its import looks hashes up before a COPY and builds a new
month's indexes by sorting (:data:`aidgraph.core.storage.models.FED_ITEM_KEYS`).

Downgrade builds the old index again. If a row was imported again for a new person after its first person was
deleted, two items now share its hash and month; the deleted person's item (``person_id`` null) then loses its
hash, keeping its amount, file and line, so the old index can hold the rest.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-05 02:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None

OLD = "uq_economic_item_row_hash"
NEW = "uq_economic_item_person_row_hash"
FED = "row_hash IS NOT NULL"


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.create_index(NEW, "economic_item", ["period_start", "person_id", "row_hash"], unique=True,
                    sqlite_where=sa.text(FED))
    op.drop_index(OLD, table_name="economic_item")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("UPDATE economic_item SET row_hash = NULL WHERE person_id IS NULL AND row_hash IS NOT NULL "
               "AND EXISTS (SELECT 1 FROM economic_item AS other WHERE other.row_hash = economic_item.row_hash "
               "AND other.period_start = economic_item.period_start AND other.id <> economic_item.id)")
    op.create_index(OLD, "economic_item", ["row_hash", "period_start"], unique=True, sqlite_where=sa.text(FED))
    op.drop_index(NEW, table_name="economic_item")
