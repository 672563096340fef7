"""Household writes under attack and load (issue 12, items 2, 9 and 10), on both engines.

- No existence oracle: whether an ID number is known is said only for a request otherwise valid, and a person
  known outside the caller's scope (or known without a household) is answered with one neutral
  TRANSFER_REQUIRED, the same text wherever they live, never pulled in silently.
- 20 concurrent registrations in one village all succeed with distinct household numbers.
- Idempotency keys: a repeat returns the first answer (also 10 at once: one household written), a key reused
  with another payload is IDEMPOTENCY_KEY_REUSED and writes nothing.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from aidgraph.core.graph import households as hh
from aidgraph.core.graph.idnumber import make
from aidgraph.core.storage.db import session_scope
from aidgraph.core.storage.encrypted import id_number_index
from aidgraph.core.storage.errors import ErrorCode
from aidgraph.core.storage.models import AuditLog, Household, Membership, Person
from tests.security.conftest import actor_for, run_all, run_one

VILLAGE = "440106011004"        # a village of 天河区 (Guangzhou)
OTHER_VILLAGE = "440303001001"  # a village of 罗湖区 (Shenzhen): another county
TOWNSHIP = VILLAGE[:9]


def member(seq: int, relation: str = "SELF", birth=dt.date(1975, 3, 9), county="440106", name="张三") -> hh.MemberData:
    return hh.MemberData(name=name, id_number=make(county, birth, seq), relation_to_head=relation)


def count(engine, model, *where) -> int:
    with session_scope(engine) as s:
        return s.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


@pytest.fixture(scope="module")
def actors(db_url, policies):
    return {
        "caseworker": actor_for(db_url, "cw-tianhe", ("township_caseworker", TOWNSHIP)),
        "other": actor_for(db_url, "cw-luohu", ("township_caseworker", OTHER_VILLAGE[:9])),
    }


def register(actor, members, region=VILLAGE, key=None, address=None):
    return lambda s: hh.register_household(s, actor, region_code=region, address=address, members=members,
                                           idempotency_key=key)


def codes(error) -> list[str]:
    return [e.code.value for e in error.errors]


def test_known_person_is_not_revealed_by_an_invalid_request(db_url, actors, sync_engine):
    known = member(101, county="440303")
    hid, err = run_one(db_url, register(actors["other"], [known], region=OTHER_VILLAGE))
    assert err is None and hid
    # An invalid request (no SELF) with the known number: only the validation problem is reported.
    probe = hh.MemberData(name="x", id_number=known.id_number, relation_to_head="SPOUSE")
    unknown = hh.MemberData(name="x", id_number=make("440303", dt.date(1975, 3, 9), 977), relation_to_head="SPOUSE")
    _, e1 = run_one(db_url, register(actors["caseworker"], [probe]))
    _, e2 = run_one(db_url, register(actors["caseworker"], [unknown]))
    assert codes(e1) == codes(e2) == ["VALIDATION"]
    assert [x.message for x in e1.errors] == [x.message for x in e2.errors]


def test_person_in_another_region_gets_the_neutral_transfer_answer(db_url, actors, sync_engine):
    elsewhere = member(102, county="440303")
    _, err = run_one(db_url, register(actors["other"], [elsewhere], region=OTHER_VILLAGE))
    assert err is None
    before = count(sync_engine, Household)
    _, e = run_one(db_url, register(actors["caseworker"], [hh.MemberData("李四", elsewhere.id_number, "SELF")]))
    assert codes(e) == [ErrorCode.TRANSFER_REQUIRED.value]
    assert "DUPLICATE" not in e.errors[0].message and OTHER_VILLAGE not in e.errors[0].message
    assert e.errors[0].message == hh.TRANSFER_MESSAGE
    assert count(sync_engine, Household) == before
    # The same caller adding the person to a household of their own: the same neutral answer.
    own, err = run_one(db_url, register(actors["caseworker"], [member(103)]))
    assert err is None
    _, e = run_one(db_url, lambda s: hh.add_household_member(
        s, actors["caseworker"], household_id=own, member=hh.MemberData("李四", elsewhere.id_number, "SPOUSE")))
    assert codes(e) == [ErrorCode.TRANSFER_REQUIRED.value]


def test_person_without_household_elsewhere_is_not_pulled_in(db_url, actors, sync_engine):
    number = make("440303", dt.date(1960, 5, 5), 104)
    with session_scope(sync_engine) as s:  # known to the platform, no current household, last seen in Luohu
        s.add(Person(id_number=number, name="王五", sex="MALE", birth_date=dt.date(1960, 5, 5),
                     hukou_region_code="440303", region_code=OTHER_VILLAGE))
    _, e = run_one(db_url, register(actors["caseworker"], [hh.MemberData("王五", number, "SELF")]))
    assert codes(e) == [ErrorCode.TRANSFER_REQUIRED.value]
    with session_scope(sync_engine) as s:
        assert s.execute(select(Person.region_code).where(
            Person.id_number_index == id_number_index(number))).scalar_one() == OTHER_VILLAGE
        assert s.execute(select(func.count()).select_from(Membership).join(Person).where(
            Person.id_number_index == id_number_index(number))).scalar_one() == 0
    # Within the caller's own scope the person rejoins (nothing leaks: the caller can read them anyway).
    hid, err = run_one(db_url, register(actors["other"], [hh.MemberData("王五", number, "SELF")], region=OTHER_VILLAGE))
    assert err is None and hid


def test_duplicate_in_scope_is_still_named(db_url, actors):
    mine = member(105)
    _, err = run_one(db_url, register(actors["caseworker"], [mine]))
    assert err is None
    _, e = run_one(db_url, register(actors["caseworker"], [mine]))
    assert codes(e) == [ErrorCode.DUPLICATE_PERSON.value]


def test_twenty_concurrent_registrations_in_one_village(db_url, actors, sync_engine):
    before = count(sync_engine, Household, Household.region_code == VILLAGE)
    works = [register(actors["caseworker"], [member(200 + i, birth=dt.date(1980, 1, 1) + dt.timedelta(days=i))])
             for i in range(20)]
    results = run_all(db_url, works)
    assert [e for _, e in results] == [None] * 20
    ids = [hid for hid, _ in results]
    assert len(set(ids)) == 20
    with session_scope(sync_engine) as s:
        numbers = s.execute(select(Household.household_number).where(Household.id.in_(ids))).scalars().all()
    assert len(set(numbers)) == 20 and all(n.startswith("H" + VILLAGE) for n in numbers)
    assert count(sync_engine, Household, Household.region_code == VILLAGE) == before + 20


def test_same_key_same_payload_replays(db_url, actors, sync_engine):
    payload = [member(301)]
    first, err = run_one(db_url, register(actors["caseworker"], payload, key="k-replay"))
    again, err2 = run_one(db_url, register(actors["caseworker"], payload, key="k-replay"))
    assert err is None and err2 is None and first == again
    assert count(sync_engine, Membership, Membership.household_id == first) == 1


def test_same_key_other_payload_is_refused_and_writes_nothing(db_url, actors, sync_engine):
    first, err = run_one(db_url, register(actors["caseworker"], [member(302)], key="k-reuse"))
    assert err is None
    households = count(sync_engine, Household)
    persons = count(sync_engine, Person)
    audits = count(sync_engine, AuditLog)
    _, e = run_one(db_url, register(actors["caseworker"], [member(303)], key="k-reuse"))
    assert codes(e) == [ErrorCode.IDEMPOTENCY_KEY_REUSED.value]
    assert (count(sync_engine, Household), count(sync_engine, Person), count(sync_engine, AuditLog)) == \
        (households, persons, audits)
    # Another user may use the same key text: keys are per user.
    hid, err = run_one(db_url, register(actors["other"], [member(304, county="440303")], region=OTHER_VILLAGE,
                                        key="k-reuse"))
    assert err is None and hid != first


def test_ten_concurrent_repeats_execute_once(db_url, actors, sync_engine):
    payload = [member(305)]
    results = run_all(db_url, [register(actors["caseworker"], payload, key="k-burst") for _ in range(10)])
    assert [e for _, e in results] == [None] * 10
    assert len({hid for hid, _ in results}) == 1
    with session_scope(sync_engine) as s:
        n = s.execute(select(func.count()).select_from(Membership).join(Person).where(
            Person.id_number_index == id_number_index(payload[0].id_number))).scalar_one()
    assert n == 1


def test_add_member_is_idempotent(db_url, actors, sync_engine):
    hid, err = run_one(db_url, register(actors["caseworker"], [member(306)]))
    add = lambda s: hh.add_household_member(s, actors["caseworker"], household_id=hid,  # noqa: E731
                                            member=member(307, relation="SPOUSE"), idempotency_key="k-add")
    results = run_all(db_url, [add, add, add])
    assert [e for _, e in results] == [None] * 3
    assert count(sync_engine, Membership, Membership.household_id == hid) == 2
