"""Personal data (PIPL Art. 51): ID numbers and phones encrypted at rest, a blind index for lookup and uniqueness.

- ``person.id_number`` and ``person.phone`` hold ``v1:<key id>:<cipher>:<base64>`` values (authenticated cipher,
  aidgraph.core.storage.crypto) and are widened to hold them; ``lead.id_number`` likewise.
- ``person.id_number_index`` (HMAC-SHA256 under the deployment's index key) replaces the unique constraint on the
  number: exact lookup, duplicate detection and the feed import compare it.
- Existing rows are encrypted here, in batches of :data:`BATCH` in id order; a value already in the encrypted
  format is left as it is, so a run that stopped half-way (a killed process on an engine whose DDL is not
  transactional, or rows a newer writer already sealed) continues where it stopped.

On SQLite, changing a column copies the table (Alembic's batch mode), and dropping the old table drops its
triggers (the decision-staleness triggers of revision 0011 on ``person``): they are read from ``sqlite_master``
before and created again after, unchanged. The rewrite of every row fires those triggers where a decision
snapshot exists, so decisions are recomputed once at their next read (key rotation does the same).

The keys come from the deployment (``AIDGRAPH_DATA_KEY`` / ``AIDGRAPH_DATA_KEY_FILE``, or the development key in
the state directory): the same keyring the application then reads with. Downgrade decrypts back into the old
columns and restores the unique constraint on the number.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 05:00:00
"""

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

from aidgraph.core.storage.encrypted import ID_NUMBER, LEAD_ID_NUMBER, PHONE, keyring

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

BATCH = 5000
ENCRYPTED = 160
SEALED_PREFIX = 'v1:'


def _convert(table: sa.TableClause, columns: dict[str, str], change: Callable[[str, str], str],
             pending: Callable[[sa.ColumnElement[str]], sa.ColumnElement[bool]],
             index: Callable[[str], str] | None = None) -> None:
    """Rewrite ``columns`` (name -> associated data) of every pending row, BATCH rows at a time by id."""
    bind = op.get_bind()
    first = next(iter(columns))
    last_id = 0
    while True:
        rows = bind.execute(sa.select(table.c.id, *(table.c[c] for c in columns))
                            .where(table.c.id > last_id, pending(table.c[first]))
                            .order_by(table.c.id).limit(BATCH)).all()
        if not rows:
            return
        updates = []
        for row in rows:
            stored = row._mapping
            values = {c: (None if stored[c] is None else change(stored[c], aad)) for c, aad in columns.items()}
            if index is not None:
                values['id_number_index'] = index(stored[first])
            updates.append({'k': row.id, **{f'v_{c}': v for c, v in values.items()}})
        names = list(columns) + (['id_number_index'] if index is not None else [])
        bind.execute(sa.update(table).where(table.c.id == sa.bindparam('k'))
                     .values({c: sa.bindparam(f'v_{c}') for c in names}), updates)
        last_id = rows[-1].id


def _triggers() -> list[str]:
    """The SQL of the triggers on the tables this revision copies (SQLite only; PostgreSQL alters in place)."""
    bind = op.get_bind()
    if bind.dialect.name != 'sqlite':
        return []
    return [sql for (sql,) in bind.execute(sa.text(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN ('person', 'lead') ORDER BY name"))]


def _restore(triggers: list[str]) -> None:
    bind = op.get_bind()
    for sql in triggers:
        name = bind.execute(sa.text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND sql = :s"),
                            {"s": sql}).first()
        if name is None:
            op.execute(sql)


def _person(with_index: bool) -> sa.TableClause:
    columns: list[sa.ColumnClause[object]] = [sa.column('id', sa.BigInteger()), sa.column('id_number', sa.String()),
                                              sa.column('phone', sa.String())]
    if with_index:
        columns.append(sa.column('id_number_index', sa.String()))
    return sa.table('person', *columns)


def _lead() -> sa.TableClause:
    return sa.table('lead', sa.column('id', sa.BigInteger()), sa.column('id_number', sa.String()))


def upgrade() -> None:
    triggers = _triggers()
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.drop_constraint('uq_person_id_number', type_='unique')
        batch_op.alter_column('id_number', existing_type=sa.String(length=18), type_=sa.String(length=ENCRYPTED),
                              existing_nullable=False)
        batch_op.alter_column('phone', existing_type=sa.String(length=20), type_=sa.String(length=ENCRYPTED),
                              existing_nullable=True)
        batch_op.add_column(sa.Column('id_number_index', sa.String(length=64), nullable=True))
    with op.batch_alter_table('lead', schema=None) as batch_op:
        batch_op.alter_column('id_number', existing_type=sa.String(length=18), type_=sa.String(length=ENCRYPTED),
                              existing_nullable=True)

    ring = keyring()
    encrypt = ring.encrypt
    clear: Callable[[sa.ColumnElement[str]], sa.ColumnElement[bool]] = lambda c: ~c.startswith(SEALED_PREFIX)
    _convert(_person(True), {'id_number': ID_NUMBER, 'phone': PHONE}, encrypt, clear,
             index=ring.blind_indexer(ID_NUMBER))
    _convert(_lead(), {'id_number': LEAD_ID_NUMBER}, encrypt, lambda c: c.is_not(None) & ~c.startswith(SEALED_PREFIX))

    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.alter_column('id_number_index', existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint('uq_person_id_number_index', ['id_number_index'])
    _restore(triggers)


def downgrade() -> None:
    triggers = _triggers()
    ring = keyring()
    decrypt = ring.decrypt
    sealed: Callable[[sa.ColumnElement[str]], sa.ColumnElement[bool]] = lambda c: c.startswith(SEALED_PREFIX)
    _convert(_person(False), {'id_number': ID_NUMBER, 'phone': PHONE}, decrypt, sealed)
    _convert(_lead(), {'id_number': LEAD_ID_NUMBER}, decrypt, sealed)
    with op.batch_alter_table('lead', schema=None) as batch_op:
        batch_op.alter_column('id_number', existing_type=sa.String(length=ENCRYPTED), type_=sa.String(length=18),
                              existing_nullable=True)
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.drop_constraint('uq_person_id_number_index', type_='unique')
        batch_op.drop_column('id_number_index')
        batch_op.alter_column('phone', existing_type=sa.String(length=ENCRYPTED), type_=sa.String(length=20),
                              existing_nullable=True)
        batch_op.alter_column('id_number', existing_type=sa.String(length=ENCRYPTED), type_=sa.String(length=18),
                              existing_nullable=False)
        batch_op.create_unique_constraint('uq_person_id_number', ['id_number'])
    _restore(triggers)
