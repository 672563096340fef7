"""Writing test households straight into a database (SQLite or the embedded PostgreSQL) with the ORM."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from aidgraph.core.graph.economics import window_start
from aidgraph.core.graph.idnumber import make
from aidgraph.core.storage.models import (
    EconomicItem,
    EmergencyEvent,
    Enrollment,
    Household,
    Membership,
    Person,
    Relationship,
)

_sequence = itertools.count(1)


@dataclass
class Built:
    household_id: int
    person_ids: list[int] = field(default_factory=list)


def add_household(session: Session, region: str, members: list[dict], *, hukou: str | None = None,
                  wages: float = 0.0, expenditure: float = 0.0, deposits: float = 0.0,
                  on: dt.date = dt.date(2025, 6, 1), receiving: list[str] = (), enrolled: list[str] = (),
                  verified: bool = True, emergencies: list[tuple[str, dt.date]] = ()) -> Built:
    """A household with members (dicts of Person fields plus ``age``), 12 months of wages of the head,
    medical expenditure and a deposit, and enrolments (ACTIVE for ``receiving``, APPLIED for ``enrolled``).

    ``verified``: the economic verification ran (家庭经济状况核对): where it found no wages or no deposits it
    records that as an item of amount 0 (missing data is not zero income: without them the household is
    "needs economic verification")."""
    n = next(_sequence)
    household = Household(household_number=f"T{region[:6]}{n:08d}", region_code=region, address="test")
    session.add(household)
    session.flush()
    built = Built(household.id)
    for i, m in enumerate(members):
        m = dict(m)
        age = m.pop("age", 40)
        birth = dt.date(on.year - age, 1, 15) if on >= dt.date(on.year, 1, 15) else dt.date(on.year - age - 1, 1, 15)
        relation = m.pop("relation_to_head", "SELF" if i == 0 else "CHILD")
        seq = (next(_sequence) * 2 + 1) % 1000
        person = Person(id_number=make(hukou or region[:6], birth, seq), name=f"测试{n}{i}",
                        sex="MALE", birth_date=birth, hukou_region_code=(hukou or region[:6]), region_code=region, **m)
        session.add(person)
        session.flush()
        session.add(Membership(household_id=household.id, person_id=person.id, relation_to_head=relation,
                               valid_from=dt.date(2020, 1, 1)))
        built.person_ids.append(person.id)
    start = window_start(on)  # exactly the 12-month assessment window of aidgraph.core.graph.economics
    if wages or verified:
        session.add(EconomicItem(household_id=household.id, person_id=built.person_ids[0], kind="WAGE", source="tax",
                                 amount=wages * 12, period_start=start, period_end=on))
    if expenditure:
        session.add(EconomicItem(household_id=household.id, kind="EXPENDITURE_MEDICAL", source="medical insurance",
                                 amount=expenditure * 12, period_start=start, period_end=on))
    if deposits or verified:
        session.add(EconomicItem(household_id=household.id, kind="DEPOSIT", source="bank", amount=deposits,
                                 period_start=on - dt.timedelta(days=30), period_end=on - dt.timedelta(days=1)))
    for kind, occurred_on in emergencies:  # 急难 events where the household lives
        session.add(EmergencyEvent(household_id=household.id, kind=kind, region_code=region, occurred_on=occurred_on))
    for key in receiving:
        session.add(Enrollment(household_id=household.id, program_key=key, province_code=region[:2], region_code=region,
                               status="ACTIVE", start_date=dt.date(2024, 1, 1)))
    for key in enrolled:
        session.add(Enrollment(household_id=household.id, program_key=key, province_code=region[:2], region_code=region,
                               status="APPLIED"))
    session.flush()
    return built


def relate(session: Session, from_person: int, to_person: int, kind: str) -> None:
    session.add(Relationship(from_person_id=from_person, to_person_id=to_person, kind=kind,
                             valid_from=dt.date(2000, 1, 1)))
    session.flush()
