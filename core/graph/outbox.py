"""Outbox rows for the search indexer, added in the same transaction as the change they describe."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from aidgraph.core.storage.models import Outbox, OutboxEntity


def emit(session: Session | AsyncSession, entity: OutboxEntity, entity_id: int, version: int,
         deleted: bool = False) -> None:
    session.add(Outbox(entity=entity.value, entity_id=entity_id, version=version, deleted=deleted))
