"""``person`` keeps a tenth of each page free (PostgreSQL ``fillfactor`` 90), so a feed's update stays on its page.

Why: every month the department feeds set facts on persons (住院 hospitalised, 慢病/大病 disease, 就业 employment
status, 残疾 disability, 学籍 student stage, 死亡 death date; :func:`aidgraph.core.monitoring.feeds.apply_effects`),
about 3% of a province's persons for the hospitalisation file alone (152,000 of the 5,000,000-person benchmark
province). None of those columns is indexed, so PostgreSQL could write each new row version into the same page
and leave the indexes alone (a heap-only tuple, HOT), but only when the page has room. A table filled to the
brim (the default fillfactor of 100, what a seed or an import of persons leaves) has none: each update then
writes the new version on another page and a new entry in each of ``person``'s three indexes, one of them
(``id_number_index``, the blind index) keyed by a random hash, so its entries land on random pages of a
province-sized index.

Measured by hand (the 200,000-household benchmark province, 533,626 persons; 3% of them updated as the
hospitalisation file updates them, rolled back; after a CHECKPOINT): 876 ms with 29% of the updates HOT, and
220 ms with 97% HOT once the table was rewritten with fillfactor 90. The price is a table a tenth larger for
the reads that scan it.

What changes: ``ALTER TABLE person SET (fillfactor = 90)``. PostgreSQL applies it to pages written from then on
(a new installation, persons imported after); an existing installation's pages fill up as they are until the
table is rewritten (``VACUUM FULL person`` or ``CLUSTER`` in a maintenance window: both hold an exclusive lock
for as long as they take, so the migration does not do it). SQLite has no such setting: nothing changes there.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-04 17:10:00
"""

from alembic import op

revision = '0028'
down_revision = '0027'
branch_labels = None
depends_on = None

PERSON_FILLFACTOR = 90
"""The share of each ``person`` page PostgreSQL fills on insert (percent); the rest is kept for updated rows."""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE person SET (fillfactor = {PERSON_FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE person RESET (fillfactor)")
