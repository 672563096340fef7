"""The income and asset feeds' rows are stored once, as the economic items they are, with their provenance.

Why: an income row (税务/社保/民政: a person's income of one month from one source) was stored twice, as a
``feed_record`` (its payload the row's kind, amount, source and month as JSON, its keyed ``row_hash``, file and
line) and as the ``economic_item`` the graph reads. The feed record of an income or asset row is read by
nothing but the next import's duplicate check; the item holds every value of its payload. The income file is
the month's largest (a province's earners, 3.2 million rows for 5 million persons), so the month paid for a
second table with four B-trees and a foreign key for rows that say nothing the items do not (issue 15 item 5:
the monthly cycle of 5,000,000 persons).

What changes:

- ``economic_item`` gains the provenance of a fed item: ``row_hash`` (the feed row's keyed hash, the same value
  ``feed_record.row_hash`` holds for the other feeds: :func:`aidgraph.core.monitoring.feeds._row_hash_expr`),
  ``source_file`` and ``line_number``. All three are null for items entered in the console or seeded.
- ``uq_economic_item_row_hash``: unique (``row_hash``, ``period_start``) over the fed items only (a partial
  index: the other items pay nothing). A row's hash covers its month (income) or valuation date (assets), which
  is the item's ``period_start``, so this is "one item per feed row"; ``period_start`` is in the key because
  PostgreSQL requires a partitioned table's unique indexes to hold the partition key (revision 0024).
- The feed import writes income and asset rows to ``economic_item`` only (:mod:`aidgraph.core.monitoring.feeds`).
  The other feeds (hospitalisation, disease, ...) keep their ``feed_record`` rows: their payloads are facts no
  other table holds.

Rows imported before this revision are left where they are: their feed records stay, and the import's
duplicate check still finds a row among them (it looks in ``feed_record`` for the item feeds' kinds only when
records of that kind exist in the batch's dates, one index probe), so re-importing an old file stores nothing
twice. Nothing is moved: a legacy record and the item made from it are not linked by any key, and guessing the
pairs could attach a feed row's hash to an item a caseworker entered by hand.

Downgrade gives every fed item its feed record back (kind ``income`` or ``assets`` from the item's kind, the
payload the import would have written, its hash, file and line, ``imported_at`` = ``recorded_at``), so that an
older import still finds them, then drops the index and the columns. Items whose person was deleted (person_id
set null) get none: the older layout would have deleted their record with the person.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-04 04:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None

INDEX = "uq_economic_item_row_hash"
FED = "row_hash IS NOT NULL"

ASSET_KINDS = ("DEPOSIT", "SECURITIES", "REAL_ESTATE", "VEHICLE", "HOUSING_PROVIDENT_FUND", "COMMERCIAL_INSURANCE",
               "INTERNET_FINANCE")
"""The asset kinds as this revision knows them (the asset feed's kinds; every other fed kind is an income or
expenditure flow of the income feed). A copy, not an import: a migration states what it did when it was
written."""


def upgrade() -> None:
    op.add_column("economic_item", sa.Column("row_hash", sa.String(length=64), nullable=True))
    op.add_column("economic_item", sa.Column("source_file", sa.String(length=255), nullable=True))
    op.add_column("economic_item", sa.Column("line_number", sa.Integer(), nullable=True))
    op.create_index(INDEX, "economic_item", ["row_hash", "period_start"], unique=True,
                    sqlite_where=sa.text(FED), postgresql_where=sa.text(FED))


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    kinds = ", ".join(f"'{k}'" for k in ASSET_KINDS)
    feed = f"CASE WHEN kind IN ({kinds}) THEN 'assets' ELSE 'income' END"
    date_key = f"CASE WHEN kind IN ({kinds}) THEN 'as_of' ELSE 'period' END"
    if postgres:
        payload = (f"json_build_object('kind', kind, 'amount', amount::float8, {date_key}, "
                   f"to_char(period_start, 'YYYY-MM-DD'), 'source', source)")
    else:
        payload = f"json_object('kind', kind, 'amount', CAST(amount AS REAL), {date_key}, period_start, 'source', source)"
    op.execute(f"INSERT INTO feed_record (kind, person_id, event_date, payload, row_hash, source_file, line_number, "
               f"imported_at) SELECT {feed}, person_id, period_start, {payload}, row_hash, coalesce(source_file, ''), "
               f"coalesce(line_number, 0), recorded_at FROM economic_item WHERE {FED} AND person_id IS NOT NULL "
               f"ORDER BY id")
    op.drop_index(INDEX, table_name="economic_item")
    for column in ("line_number", "source_file", "row_hash"):
        op.drop_column("economic_item", column)
