"""Encrypted columns: the one place where stored ID numbers and phones (身份证号码, 电话) are sealed and opened.

PIPL Art. 51 asks for encryption of sensitive personal data at rest. :mod:`aidgraph.core.storage.crypto` has the
cipher and the keyring; this module wires them to the tables:

- :class:`EncryptedString` is the column type of ``person.id_number``, ``person.phone``, ``lead.id_number`` and
  ``volunteer.phone``:
  the ORM writes ``v1:<key>:<cipher>:<base64>`` and reads back the clear value, so every ORM read decrypts here.
  Comparing such a column in SQL is an error (a fresh nonce per value: equality could never match); exact
  lookup goes through the blind index.
- ``person.id_number_index`` is the keyed blind index (HMAC) of the ID number: unique, and what lookups,
  duplicate detection at registration, the feed import and the search index's exact ID search compare.
- ``feed_record.row_hash`` (a feed row's fingerprint, whose row holds an ID number) is keyed too
  (:func:`feed_row_hasher`), under a key of its own derived from the same index key.
- The batch paths that bypass the ORM's value processing (the seed's ``COPY``, the feed import, the synthetic
  feeds, the migration and key rotation) seal and open whole columns with :func:`seal_values` /
  :func:`open_values`, which call the same keyring.

The keyring is the deployment's (``AIDGRAPH_DATA_KEY`` / ``AIDGRAPH_DATA_KEY_FILE``, or in development a key
file generated in the state directory), loaded once per process and reloaded when those settings change.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import BigInteger, ColumnElement, Engine, String, and_, bindparam, column, func, or_, select, table, \
    update
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import operators
from sqlalchemy.sql.expression import TableClause
from sqlalchemy.types import TypeDecorator

from aidgraph.core.storage.config import load_settings
from aidgraph.core.storage.crypto import FORMAT, DataKeyError, Keyring, load_keyring

ID_NUMBER = "person.id_number"
"""The associated data of a person's ID number, and the blind index's column name."""
PHONE = "person.phone"
LEAD_ID_NUMBER = "lead.id_number"
VOLUNTEER_PHONE = "volunteer.phone"
ENCRYPTED_LENGTH = 160
"""Room for ``v1:<key id>:<cipher>:`` and the base64 of nonce, a 20-character value and the tag (about 90)."""
INDEX_LENGTH = 64
"""A blind index: HMAC-SHA256 in hex."""
FEED_ROW_HASH = "feed_record.row_hash"
"""The label of the key that ``feed_record.row_hash`` is computed under (:func:`feed_row_hasher`)."""
REQUEST_HASH = "idempotency_record.request_hash"
"""The label of the key that an idempotency key's request fingerprint is computed under (:func:`request_hasher`)."""

_ENV = ("AIDGRAPH_DATA_KEY", "AIDGRAPH_DATA_KEY_FILE", "AIDGRAPH_DATA_CIPHER", "AIDGRAPH_ENV", "AIDGRAPH_STATE_DIR",
        "XDG_STATE_HOME")
_cached: tuple[tuple[str | None, ...], Keyring] | None = None


def _state_dir() -> Path:
    return Path(load_settings().state_dir)


def keyring() -> Keyring:
    """The deployment's keyring, from the environment (see :func:`aidgraph.core.storage.crypto.load_keyring`).

    Cached per process while the key settings stay the same; :func:`forget_keyring` after changing a key file.
    Production without a key raises :class:`aidgraph.core.storage.crypto.DataKeyError`.
    """
    global _cached
    signature = tuple(os.environ.get(name) for name in _ENV)
    cached = _cached
    if cached is not None and cached[0] == signature:
        return cached[1]
    production = (os.environ.get("AIDGRAPH_ENV") or "").strip().lower() == "production"
    ring = load_keyring(os.environ, production=production, state_dir=_state_dir())
    _cached = (signature, ring)
    return ring


def forget_keyring() -> None:
    """Read the key settings again at the next use (after a key was added to the key file)."""
    global _cached
    _cached = None


def require_keyring(production: bool, state_dir: Path) -> Keyring:
    """The start-up check of the server and the command line: production without a usable key (absent, short,
    malformed) raises :class:`aidgraph.core.storage.crypto.DataKeyError` here, before any request or batch,
    instead of at the first person read or written. Development creates its key in ``state_dir`` if needed."""
    return load_keyring(os.environ, production=production, state_dir=state_dir)


# --- the blind index -----------------------------------------------------------------------------------------


def id_number_index(number: str) -> str:
    """The blind index of a (normalised) resident ID number: what ``person.id_number_index`` holds."""
    return keyring().blind_index(number, ID_NUMBER)


def id_number_indexer() -> Callable[[str], str]:
    """:func:`id_number_index` as a function with its key derived once, for the batch paths."""
    return keyring().blind_indexer(ID_NUMBER)


def id_number_index_expr(numbers: pl.Expr) -> pl.Expr:
    """:func:`id_number_index` over a column of ID numbers, computed by polars (the feed import, the seed)."""
    return keyring().blind_index_expr(numbers, ID_NUMBER)


def feed_row_hasher() -> Callable[[str], str]:
    """The keyed hash (HMAC-SHA256, hex) behind ``feed_record.row_hash``, its key derived once.

    A feed row holds the resident's ID number, and the ID numbers of a region are few enough to try them all: an
    unkeyed hash of the row would give the number back. The key is derived from the index key under its own
    label, so it is neither the blind index's key nor the data key, and a data-key rotation leaves it (and so
    every stored row hash and the re-import's duplicate detection) unchanged, as it leaves the blind index.
    """
    return keyring().keyed_hasher(FEED_ROW_HASH)


def feed_row_hash_expr(values: pl.Expr) -> pl.Expr:
    """:func:`feed_row_hasher` over a text column, computed by polars (the feed import's rows, whole files)."""
    return keyring().keyed_hash_expr(values, FEED_ROW_HASH)


def request_hasher() -> Callable[[str], str]:
    """The keyed hash behind ``idempotency_record.request_hash``: a mutation's input (a registration's members
    with their ID numbers, a lead's ID number) fingerprinted so that a reused key with another input is refused.
    Unkeyed, the stored fingerprint of a registration could be inverted by trying a region's ID numbers, as a
    feed row's could; keyed like :func:`feed_row_hasher`, under its own label."""
    return keyring().keyed_hasher(REQUEST_HASH)


# --- whole columns (batch paths) -------------------------------------------------------------------------------


def seal_values(values: Iterable[str | None], column: str) -> list[str | None]:
    """Encrypt a column's values (``None`` stays ``None``)."""
    ring = keyring()
    encrypt = ring.encrypt
    return [None if v is None else encrypt(v, column) for v in values]


def _current_ring_for(stored: str) -> Keyring:
    """The keyring, read again once if ``stored`` names a key it lacks: a rotation beside this process (``keys
    rotate`` appending to the key file) writes values under a key this process loaded before it existed."""
    ring = keyring()
    if ring.key_id_of(stored) not in ring.keys:
        forget_keyring()
        ring = keyring()
    return ring


def decrypt(stored: str, column: str) -> str:
    """Open one stored value (see :func:`_current_ring_for` for a key added since this process loaded its keys)."""
    try:
        return keyring().decrypt(stored, column)
    except DataKeyError:
        return _current_ring_for(stored).decrypt(stored, column)


def open_values(values: Iterable[str | None], column: str) -> list[str | None]:
    """Decrypt a column's stored values (``None`` stays ``None``)."""
    ring = keyring()
    opened: list[str | None] = []
    for v in values:
        if v is None:
            opened.append(None)
            continue
        try:
            opened.append(ring.decrypt(v, column))
        except DataKeyError:
            ring = _current_ring_for(v)
            opened.append(ring.decrypt(v, column))
    return opened


def is_sealed(value: str) -> bool:
    """Does a stored value have the encrypted format (and not a clear value written before migration 0012)?"""
    return value.startswith("v1:")


# --- the column type -------------------------------------------------------------------------------------------


class EncryptedString(TypeDecorator[str]):
    """A text column stored encrypted under the deployment's keyring, bound to its column by the associated data.

    Equality and ``IN`` are refused in SQL: the ciphertext of a value differs at every write.
    """

    impl = String
    cache_ok = True

    class Comparator(TypeDecorator.Comparator[str]):
        def operate(self, op: Any, *other: Any, **kwargs: Any) -> Any:
            # IS [NOT] NULL is meaningful; so is comparing the column with a column (SQLAlchemy itself does when it
            # matches result columns); a value never equals its stored ciphertext
            if op in (operators.is_, operators.is_not) or all(isinstance(o, ColumnElement) for o in other):
                return super().operate(op, *other, **kwargs)
            raise TypeError("an encrypted column cannot be compared in SQL (a fresh nonce per value): compare "
                            "the blind index instead (person.id_number_index for ID numbers)")

    comparator_factory = Comparator

    def __init__(self, column: str, length: int = ENCRYPTED_LENGTH):
        super().__init__(length)
        self.column = column

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return keyring().encrypt(value, self.column)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return decrypt(value, self.column)


# --- key rotation ------------------------------------------------------------------------------------------------

ENCRYPTED_COLUMNS: dict[str, tuple[str, ...]] = {"person": ("id_number", "phone"), "lead": ("id_number",),
                                                 "volunteer": ("phone",)}
"""Every encrypted column, by table; a column's associated data is ``<table>.<column>``."""


def _stale(column: ColumnElement[str], ring: Keyring) -> ColumnElement[bool]:
    """Values written under another key or cipher than the current ones (key ids are alphanumeric and the cipher
    names have no LIKE wildcard)."""
    return and_(column.is_not(None), column.not_like(f"{FORMAT}:{ring.current}:{ring.cipher}:%"))


def _table(name: str) -> TableClause:
    return table(name, column("id", BigInteger()), *(column(c, String()) for c in ENCRYPTED_COLUMNS[name]))


def stale_values(engine: Engine) -> dict[str, int]:
    """Rows per table with a value not yet under the current key (what a rotation still has to do)."""
    ring = keyring()
    counts = {}
    with engine.connect() as conn:
        for name, columns in ENCRYPTED_COLUMNS.items():
            t = _table(name)
            counts[name] = conn.execute(select(func.count()).select_from(t).where(
                or_(*(_stale(t.c[c], ring) for c in columns)))).scalar_one()
    return counts


def values_by_key(engine: Engine) -> dict[str, dict[str, int]]:
    """Per ``table.column``, how many values each key id encrypted (``aidgraph keys status``)."""
    out: dict[str, dict[str, int]] = {}
    with engine.connect() as conn:
        for name, columns in ENCRYPTED_COLUMNS.items():
            t = _table(name)
            for c in columns:
                # "v1:<key id>:...": the key id is the text between the first and the second colon
                key_id = func.substr(t.c[c], 4, func.instr(func.substr(t.c[c], 4), ":") - 1) \
                    if engine.dialect.name == "sqlite" else func.split_part(t.c[c], ":", 2)
                rows = conn.execute(select(key_id, func.count()).where(t.c[c].is_not(None)).group_by(key_id)).all()
                out[f"{name}.{c}"] = {str(k): int(n) for k, n in rows}
    return out


def reencrypt(engine: Engine, batch_size: int = 2000, progress: Callable[[int], None] | None = None,
              max_batches: int | None = None) -> int:
    """Re-encrypt every value not under the current key, ``batch_size`` rows per transaction, in id order.

    Resumable: a batch commits on its own, and the next run finds the rows still stale, so a run that stopped
    (or was stopped after ``max_batches``) continues where it was; a value is never left unreadable, because the
    old key stays in the key file. A row changed by the application between read and write is left alone (the
    update compares the value it read; the application wrote that row under the current key anyway).
    Returns the number of rows rewritten; ``progress`` gets each batch's row count.
    """
    ring = keyring()
    done = batches = 0
    for name, columns in ENCRYPTED_COLUMNS.items():
        t = _table(name)
        last_id = 0
        while max_batches is None or batches < max_batches:
            with engine.begin() as conn:
                rows = conn.execute(select(t.c.id, *(t.c[c] for c in columns))
                                    .where(t.c.id > last_id, or_(*(_stale(t.c[c], ring) for c in columns)))
                                    .order_by(t.c.id).limit(batch_size)).all()
                if not rows:
                    break
                updates = []
                for row in rows:
                    stored = row._mapping
                    values = {f"v_{c}": None if stored[c] is None else ring.reencrypt(stored[c], f"{name}.{c}")
                              for c in columns}
                    updates.append({"k": row.id, **values, **{f"o_{c}": stored[c] for c in columns}})
                unchanged = [or_(t.c[c] == bindparam(f"o_{c}", type_=String()),
                                 and_(t.c[c].is_(None), bindparam(f"o_{c}", type_=String()).is_(None)))
                             for c in columns]
                conn.execute(update(t).where(t.c.id == bindparam("k"), *unchanged)
                             .values({c: bindparam(f"v_{c}", type_=String()) for c in columns}), updates)
                last_id = rows[-1].id
            done += len(rows)
            batches += 1
            if progress is not None:
                progress(len(rows))
    return done
