"""Feed row hashes become keyed (PIPL Art. 51): the stored hash no longer gives a resident's ID number back.

``feed_record.row_hash`` was the event month + the first 58 hex digits of the sha256 of the feed row, and the row
holds the resident's ID number: trying every ID number of a region (a small space: region, birth date, sequence)
against a stored hash recovers it. It becomes the event month + ``k`` + the first 57 hex digits of an HMAC-SHA256,
under a key derived from the deployment's index key for this use alone
(:func:`aidgraph.core.storage.encrypted.feed_row_hasher`), of those 58 digits: exactly what the import now
computes for the same row, so a file imported before this revision is still recognised when imported again.

Existing rows are rewritten here, :data:`BATCH` at a time in id order; a hash already keyed (its seventh
character is the mark ``k``, never a hex digit) is left as it is, so a run that stopped half-way, or rows a
newer import already wrote, are not hashed twice. The key, like the blind index's, does not change when
``aidgraph keys rotate`` adds a data key, so rotation has nothing to rehash.

Downgrade leaves the keyed hashes: the unkeyed digits cannot be recovered from them, so re-importing an old file
after a downgrade stores its rows again (as after revision 0003's).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 07:30:00
"""

import sqlalchemy as sa
from alembic import op

from aidgraph.core.storage.encrypted import feed_row_hasher

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

BATCH = 5000
MONTH = 6
MARK = 'k'
DIGITS = 57


def upgrade() -> None:
    bind = op.get_bind()
    keyed = feed_row_hasher()
    table = sa.table('feed_record', sa.column('id', sa.BigInteger()), sa.column('row_hash', sa.String()))
    unkeyed = sa.func.substr(table.c.row_hash, MONTH + 1, 1) != MARK
    last_id = 0
    while True:
        rows = bind.execute(sa.select(table.c.id, table.c.row_hash).where(table.c.id > last_id, unkeyed)
                            .order_by(table.c.id).limit(BATCH)).all()
        if not rows:
            return
        updates = [{'k': r.id, 'h': r.row_hash[:MONTH] + MARK + keyed(r.row_hash[MONTH:])[:DIGITS]} for r in rows]
        bind.execute(sa.update(table).where(table.c.id == sa.bindparam('k'))
                     .values(row_hash=sa.bindparam('h')), updates)
        last_id = rows[-1].id


def downgrade() -> None:
    # The unkeyed digits cannot be recovered: re-importing an old file after a downgrade stores it again.
    pass
