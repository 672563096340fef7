"""Households, incomes and running enrolments for the workflow tests, written with the ORM (SQLite or the
embedded PostgreSQL) and taken to ACTIVE through the real workflow services."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools

from sqlalchemy import func, select

from aidgraph.core.access.actor import system_actor
from aidgraph.core.graph.economics import window_start
from aidgraph.core.graph.idnumber import make
from aidgraph.core.storage.db import (
    async_session_factory,
    make_async_engine,
    session_scope,
)
from aidgraph.core.storage.models import EconomicItem, Household, Membership, Person
from aidgraph.core.workflow import enrollment as wf

GUANGZHOU = "440106011004"  # 棠德南社区居委会, Tianhe district, Guangzhou (urban; NBS 2023)
SHENZHEN = "440303001001"   # Luohu district, Shenzhen: another county
FUZHOU = "350102001001"     # Fujian: outside a Guangdong officer's scope
SYSTEM = system_actor("workflow-tests")

_sequence = itertools.count(101)


def add_household(sync_engine, region: str, members: list[dict], since: dt.date = dt.date(2020, 1, 1)
                  ) -> tuple[int, list[int]]:
    """A household with members (Person fields plus ``age`` on 2025-06-01); returns (household id, person ids)."""
    with session_scope(sync_engine) as s:
        n = next(_sequence)
        household = Household(household_number=f"W{region[:6]}{n:08d}", region_code=region, address="test")
        s.add(household)
        s.flush()
        ids = []
        for i, m in enumerate(members):
            m = dict(m)
            birth = dt.date(2025 - m.pop("age", 40), 1, 15)
            relation = m.pop("relation_to_head", "SELF" if i == 0 else "CHILD")
            person = Person(id_number=make(region[:6], birth, next(_sequence) % 1000), name=f"测试{n}{i}",
                            sex="MALE", birth_date=birth, hukou_region_code=region[:6], region_code=region, **m)
            s.add(person)
            s.flush()
            s.add(Membership(household_id=household.id, person_id=person.id, relation_to_head=relation,
                             valid_from=since))
            ids.append(person.id)
        return household.id, ids


def add_income(sync_engine, household_id: int, person_id: int | None, kind: str, monthly: float, on: dt.date) -> None:
    """``monthly`` yuan a month of ``kind`` over exactly the 12-month assessment window ending ``on``."""
    with session_scope(sync_engine) as s:
        s.add(EconomicItem(household_id=household_id, person_id=person_id, kind=kind, source="test",
                           amount=round(monthly * 12, 2), period_start=window_start(on), period_end=on))


def add_deposit(sync_engine, household_id: int, amount: float, day: dt.date) -> None:
    with session_scope(sync_engine) as s:
        s.add(EconomicItem(household_id=household_id, kind="DEPOSIT", source="bank", amount=amount,
                           period_start=day - dt.timedelta(days=30), period_end=day))


def run(db_url: str, work):
    """``work(session)`` in one transaction on a fresh async engine."""
    async def main():
        engine = make_async_engine(db_url)
        try:
            async with async_session_factory(engine)() as session:
                try:
                    result = await work(session)
                    await session.commit()
                    return result
                except BaseException:
                    await session.rollback()
                    raise
        finally:
            await engine.dispose()

    return asyncio.run(main())


def activate(db_url: str, policy, household_id: int, program: str, on: dt.date) -> int:
    """Apply, verify, review, approve and activate ``program`` on ``on`` through the workflow services."""
    enrollment = run(db_url, lambda s: wf.apply_for_aid(s, SYSTEM, policy, household_id=household_id,
                                                        program_key=program, on=on))
    for action in ("START_VERIFICATION", "REVIEW", "APPROVE", "ACTIVATE"):
        run(db_url, lambda s, a=action: wf.decide_enrollment(s, SYSTEM, policy, enrollment_id=enrollment.id,
                                                             action=a, on=on))
    return enrollment.id


def count(sync_engine, model, *where) -> int:
    with session_scope(sync_engine) as s:
        return s.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def counts(sync_engine) -> dict[str, int]:
    """Rows of every table a workflow write touches: compared before and after a refused request."""
    from aidgraph.core.storage.models import (
        AidChainEvent,
        AuditLog,
        Enrollment,
        EnrollmentStep,
        IdempotencyRecord,
        Outbox,
        Payment,
        Relationship,
    )

    return {m.__tablename__: count(sync_engine, m) for m in
            (AidChainEvent, AuditLog, Enrollment, EnrollmentStep, IdempotencyRecord, Outbox, Payment, Relationship)}
