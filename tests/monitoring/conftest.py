"""A small seeded province for the monitoring tests: households in real villages, persons with valid IDs.

Seeded with plain bulk inserts (no services under test are involved), once per test module and engine.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from sqlalchemy import insert, select

from aidgraph.core.graph.idnumber import make
from aidgraph.core.storage.models import Household, Membership, Person, Region

SURNAMES = "王李张刘陈杨黄赵吴周"
GIVEN = "伟芳娜敏静丽强磊军洋"


@dataclass
class SeededPerson:
    id: int
    id_number: str
    name: str
    household_id: int
    region_code: str


@dataclass
class World:
    persons: list[SeededPerson]
    households: dict[int, str]  # id -> region code
    province: str

    def person(self, index: int) -> SeededPerson:
        return self.persons[index]


def seed_world(engine, province: str = "44", households: int = 12, members: int = 3, start: int = 0,
               since: dt.date = dt.date(2020, 1, 1)) -> World:
    """``households`` households of ``members`` persons each in distinct villages of ``province``."""
    with engine.begin() as conn:
        villages = conn.scalars(
            select(Region.code).where(Region.level == "VILLAGE", Region.province_code == province)
            .order_by(Region.code).offset(start * 7).limit(households * 7)
        ).all()[::7][:households]
        person_rows, household_rows = [], []
        for h, village in enumerate(villages):
            household_rows.append({"household_number": f"T{province}{start:04d}{h:06d}", "region_code": village,
                                   "address": f"{village} 测试路{h}号"})
            for m in range(members):
                seq = (start * 1000 + h * members + m) % 998 + 1
                birth = dt.date(1950 + (h * 7 + m * 13) % 50, 1 + (h + m) % 12, 1 + (h * 3 + m) % 28)
                number = make(village[:6], birth, seq)
                person_rows.append({
                    "id_number": number, "name": SURNAMES[h % 10] + GIVEN[(h + m) % 10] + GIVEN[m % 10],
                    "sex": "MALE" if seq % 2 else "FEMALE", "birth_date": birth, "hukou_region_code": village[:6],
                    "region_code": village, "_household": h, "_relation": "SELF" if m == 0 else "CHILD",
                })
        ids = conn.execute(insert(Household).returning(Household.id, Household.region_code,
                                                        sort_by_parameter_order=True), household_rows).all()
        household_ids = [i for i, _ in ids]
        inserted = conn.execute(
            insert(Person).returning(Person.id, sort_by_parameter_order=True),
            [{k: v for k, v in p.items() if not k.startswith("_")} for p in person_rows],
        ).scalars().all()
        conn.execute(insert(Membership), [
            {"household_id": household_ids[p["_household"]], "person_id": pid, "relation_to_head": p["_relation"],
             "valid_from": since} for p, pid in zip(person_rows, inserted)])
    persons = [SeededPerson(pid, p["id_number"], p["name"], household_ids[p["_household"]], p["region_code"])
               for p, pid in zip(person_rows, inserted)]
    return World(persons, {i: r for i, r in ids}, province)


@pytest.fixture(scope="module")
def world(sync_engine) -> World:
    return seed_world(sync_engine)
