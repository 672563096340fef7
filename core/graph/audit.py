"""The append-only audit log: written in the same session (so the same transaction) as what it records."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from aidgraph.core.access.actor import Actor
from aidgraph.core.storage.models import AuditLog


def record(session: Session | AsyncSession, actor: Actor, action: str, object_type: str,
           object_id: object | None = None, region_code: str | None = None, detail: dict | None = None) -> None:
    session.add(AuditLog(actor=actor.username, action=action, object_type=object_type,
                         object_id=None if object_id is None else str(object_id), region_code=region_code,
                         remote_addr=actor.remote_addr, detail=detail))
