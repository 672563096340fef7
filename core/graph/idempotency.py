"""Idempotency keys for every mutation of the platform: one helper, after the IETF Idempotency-Key draft.

Why: a caseworker's app retries a mutation when the network drops its answer; the retry must not register a
household twice or pay aid twice. Every service that takes an ``idempotencyKey`` calls this module and
nothing else (no mutation keeps its own ``IdempotencyRecord`` logic).

The rules (draft-ietf-httpapi-idempotency-key-header):

* a key is scoped to the user and the operation (``actor``, ``operation``, ``key``);
* the same key with the same payload returns the first answer, whatever happened since;
* the same key with a different payload is refused: ``IDEMPOTENCY_KEY_REUSED``, nothing written;
* concurrent requests with one key: one executes, the others wait for its transaction and then return its
  answer (or, if it failed and wrote nothing, execute themselves);
* a request that failed (a DomainError, nothing written) leaves no record: the key may be retried.

How to use it, inside the mutation's one transaction (the boundary commits)::

    claim = await idempotency.claim(session, actor, "registerHousehold", key, payload)
    if claim.replay is not None:
        return claim.replay["householdId"]
    ...  # validate and write
    await claim.remember({"householdId": household.id})

``payload`` is the mutation's input as plain JSON values (the key itself excluded; dataclasses such as
strawberry inputs are taken field by field); it is fingerprinted canonically (sorted keys, dates as ISO text)
under a key of the deployment (:func:`aidgraph.core.storage.encrypted.request_hasher`), because inputs hold ID
numbers. Every mutation passes its input, so a retry that changes any field is ``IDEMPOTENCY_KEY_REUSED``, never
silently answered with the first request's result (a reserve fund replenished with 900 under the key of a
1,500 credit must not report success). ``payload=None`` claims by the key alone; rows stored before fingerprints
were keyed have none (migration 0020 cleared them) and are replayed by key. ``remember`` needs a
JSON-serialisable dict. Where the answer is a row's id, :meth:`Claim.replayed_row` gives the replay back as that
row (NOT_FOUND when it has gone since)::

    claim = await idempotency.claim(session, actor, "referCase", key, {"household_id": household_id, ...})
    if (replayed := await claim.replayed_row(Referral, "referral_id", "referral")) is not None:
        return replayed
    ...
    await claim.remember({"referral_id": referral.id})

Claiming takes the write lock on SQLite (``BEGIN IMMEDIATE``: the caller must not have written yet in
this transaction, which holds when the claim is the service's first write) and inserts the key row on
PostgreSQL, where a concurrent transaction with the same key waits on the unique index until the first
commits or rolls back.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Any, TypeVar

from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from aidgraph.core.access.actor import Actor
from aidgraph.core.storage.bulk import lock_for_writing
from aidgraph.core.storage.encrypted import request_hasher
from aidgraph.core.storage.errors import DomainError, ErrorCode, FieldError, not_found
from aidgraph.core.storage.models import Base, IdempotencyRecord

_Row = TypeVar("_Row", bound=Base)

MAX_KEY = 100
KEY_FIELD = "idempotencyKey"


def _plain(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if hasattr(value, "__dataclass_fields__"):
        return {k: _plain(getattr(value, k)) for k in value.__dataclass_fields__}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def fingerprint(payload: Any) -> str:
    """The payload's canonical JSON (sorted keys, compact, dates and decimals as text) under the deployment's
    request-hash key (:func:`aidgraph.core.storage.encrypted.request_hasher`): a payload may hold ID numbers, and
    an unkeyed hash of it could be inverted by trying them."""
    text = json.dumps(_plain(payload), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return request_hasher()(text)


@dataclass
class Claim:
    """The outcome of :func:`claim`: a replayed answer, or the right to execute (then :meth:`remember`)."""

    session: AsyncSession | None
    actor: str | None
    operation: str | None
    key: str | None
    replay: dict | None = None
    _owned: bool = field(default=False, repr=False)

    async def replayed_row(self, model: type[_Row], name: str, what: str, field_path: str = KEY_FIELD
                           ) -> _Row | None:
        """The row the first request answered with (its primary key under ``name`` in the stored answer), or
        ``None`` when this request is not a replay and executes.

        When that row no longer exists (deleted since), the first answer cannot be given again and executing
        again would write a second row under the same key: NOT_FOUND, naming ``what`` and ``field_path``.
        """
        if self.replay is None or self.session is None:
            return None
        found = await self.session.get(model, self.replay[name]) if name in self.replay else None
        if found is None:
            raise not_found(what, field_path)
        return found

    async def remember(self, result: dict) -> None:
        """Store the first answer (in the caller's transaction: committed with the change it describes)."""
        if not self._owned or self.session is None:
            return
        await self.session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.actor == self.actor, IdempotencyRecord.operation == self.operation,
                   IdempotencyRecord.key == self.key)
            .values(result=_plain(result)))


def check_key(key: str | None, field_path: str = KEY_FIELD) -> None:
    """A key is 1 to 100 printable characters (raises VALIDATION otherwise)."""
    if key is None:
        return
    if not key.strip() or len(key) > MAX_KEY or not key.isprintable():
        raise DomainError(FieldError(field_path, f"an idempotency key is 1 to {MAX_KEY} printable characters",
                                     ErrorCode.VALIDATION))


async def claim(session: AsyncSession, actor: Actor, operation: str, key: str | None, payload: Any,
                field_path: str = KEY_FIELD) -> Claim:
    """Claim ``key`` for this request, or return the first answer given to it (see the module docstring).

    Raises ``IDEMPOTENCY_KEY_REUSED`` when the key was used with another payload (never with ``payload=None``:
    the key alone identifies the request, and no request hash is stored).
    """
    if not key:
        return Claim(None, None, None, None)
    check_key(key, field_path)
    digest = None if payload is None else fingerprint(payload)
    username = actor.username
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        # Waits on the unique index while another transaction holds the same key, until it ends.
        inserted = (await session.execute(
            pg_insert(IdempotencyRecord)
            .values(actor=username, operation=operation, key=key, result={}, request_hash=digest,
                    created_at=dt.datetime.now(dt.timezone.utc).replace(tzinfo=None))
            .on_conflict_do_nothing(constraint="uq_idempotency_actor_operation_key")
            .returning(IdempotencyRecord.id))).first()
        if inserted is not None:
            return Claim(session, username, operation, key, _owned=True)
    else:
        # SQLite: one writer at a time; taking the write lock first makes the read below current.
        await session.run_sync(lambda s: lock_for_writing(s, [IdempotencyRecord.__tablename__]))
    row = (await session.execute(
        select(IdempotencyRecord.result, IdempotencyRecord.request_hash).where(
            IdempotencyRecord.actor == username, IdempotencyRecord.operation == operation,
            IdempotencyRecord.key == key))).first()
    if row is None:
        if dialect == "postgresql":  # the conflicting row was deleted meanwhile: claim again
            return await claim(session, actor, operation, key, payload, field_path)
        await session.execute(insert(IdempotencyRecord).values(
            actor=username, operation=operation, key=key, result={}, request_hash=digest,
            created_at=dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)))
        return Claim(session, username, operation, key, _owned=True)
    if digest is not None and row.request_hash is not None and row.request_hash != digest:
        raise DomainError(FieldError(field_path, "this idempotency key was already used with a different request; "
                                                 "use a new key for a new request", ErrorCode.IDEMPOTENCY_KEY_REUSED))
    return Claim(session, username, operation, key, replay=dict(row.result or {}))
