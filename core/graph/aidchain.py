"""The household's aid chain (一户一条救助链): one time-ordered record of everything done for a household.

Every service that applies, decides, pays, alerts, refers, verifies or changes membership appends an entry
here in its own transaction, so the chain can never disagree with the records it summarises.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from aidgraph.core.storage.models import AidChainEvent, AidChainKind


def append(session: Session | AsyncSession, household_id: int, kind: AidChainKind, summary: str, *,
           program_key: str | None = None, ref_type: str | None = None, ref_id: int | None = None,
           actor: str | None = None) -> None:
    session.add(AidChainEvent(household_id=household_id, kind=kind.value, summary=summary, program_key=program_key,
                              ref_type=ref_type, ref_id=ref_id, actor=actor))
