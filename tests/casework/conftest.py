"""Fixtures of the casework tests: a small seeded province and users with roles, over a live server on both
engines (the module-scoped ``live_server`` of tests/conftest.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aidgraph.core.app.demo import ensure_demo_user
from tests.conftest import server_settings
from tests.monitoring.conftest import seed_world


@pytest.fixture(scope="module")
def world(sync_engine):
    return seed_world(sync_engine, "44", households=10, start=31)


def token_for(db_url, sync_engine, username, role, region):
    return ensure_demo_user(sync_engine, server_settings(db_url), username=username, role=role, region_code=region)


def count(engine, model, *where) -> int:
    with Session(engine) as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def seed_township(engine, province: str, households: int, start: int = 0):
    """``households`` households of three persons in villages of one township of ``province`` (plain inserts),
    as a World (tests.monitoring.conftest)."""
    import datetime as dt

    from sqlalchemy import insert

    from aidgraph.core.graph.idnumber import make
    from aidgraph.core.storage.models import Household, Membership, Person, Region
    from tests.monitoring.conftest import World, SeededPerson

    with engine.begin() as conn:
        townships = conn.execute(
            select(Region.parent_code).where(Region.level == "VILLAGE", Region.province_code == province)
            .group_by(Region.parent_code).having(func.count() >= households).order_by(Region.parent_code)
            .offset(start).limit(1)).scalars().all()
        villages = conn.scalars(select(Region.code).where(Region.parent_code == townships[0])
                                .order_by(Region.code).limit(households)).all()
        rows, people = [], []
        for h, village in enumerate(villages):
            rows.append({"household_number": f"C{province}{start:03d}{h:06d}", "region_code": village,
                         "address": f"{village} 测试巷{h}号"})
            for m in range(3):
                birth = dt.date(1960 + h * 3 + m * 11, 1 + m, 1 + h)
                people.append({"id_number": make(village[:6], birth, 500 + start * 30 + h * 3 + m),
                               "name": "林陈黄"[m] + "阿" + "一二三四五六七八"[h], "sex": "MALE" if m % 2 == 0 else "FEMALE",
                               "birth_date": birth, "hukou_region_code": village[:6], "region_code": village,
                               "_h": h, "_rel": "SELF" if m == 0 else "CHILD"})
        ids = conn.execute(insert(Household).returning(Household.id, Household.region_code,
                                                       sort_by_parameter_order=True), rows).all()
        pids = conn.execute(insert(Person).returning(Person.id, sort_by_parameter_order=True),
                            [{k: v for k, v in p.items() if not k.startswith("_")} for p in people]).scalars().all()
        conn.execute(insert(Membership), [{"household_id": ids[p["_h"]][0], "person_id": pid,
                                           "relation_to_head": p["_rel"], "valid_from": dt.date(2020, 1, 1)}
                                          for p, pid in zip(people, pids)])
    persons = [SeededPerson(pid, p["id_number"], p["name"], ids[p["_h"]][0], p["region_code"])
               for p, pid in zip(people, pids)]
    return World(persons, {i: r for i, r in ids}, province)
