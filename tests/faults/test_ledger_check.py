"""The fault tests' ledger check catches what it claims to (so a fault test that passes means something): a
household without a head, a registration written in part, and an acknowledged write that is not there."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from aidgraph.core.graph import outbox
from aidgraph.core.storage.db import make_sync_engine, session_scope
from aidgraph.core.storage.models import Household, Membership, OutboxEntity, Person
from aidgraph.schema.relay import to_global_id
from tests.faults.ledger import VILLAGE, Ledger, Write, check_database, register_input


def write_household(db_url: str, ledger: Ledger, members: list[dict], *, relation_override: str | None = None) -> int:
    engine = make_sync_engine(db_url)
    with session_scope(engine) as s:
        household = Household(household_number=f"T{uuid.uuid4().hex[:20]}", region_code=VILLAGE,
                              address=f"{ledger.marker} x", version=1)
        s.add(household)
        s.flush()
        for m in members:
            person = Person(id_number=m["idNumber"], name=m["name"], sex="MALE", birth_date=dt.date(1950, 1, 1),
                            hukou_region_code="440106", region_code=VILLAGE, version=1)
            s.add(person)
            s.flush()
            s.add(Membership(household_id=household.id, person_id=person.id,
                             relation_to_head=relation_override or m["relationToHead"], valid_from=dt.date(2024, 1, 1)))
        outbox.emit(s, OutboxEntity.HOUSEHOLD, household.id, 1)
        hid = household.id
    engine.dispose()
    return hid


def test_the_check_finds_half_written_and_missing_writes(db_url):
    ledger = Ledger(marker=f"检查{uuid.uuid4().hex[:8]}")
    whole = Write("RegisterHousehold", register_input(ledger.marker))
    ledger.add(whole)
    write_household(db_url, ledger, whole.input["members"])
    check_database(db_url, ledger)  # a whole household, not acknowledged: fine

    half = Write("RegisterHousehold", register_input(ledger.marker))
    ledger.add(half)
    write_household(db_url, ledger, half.input["members"][:1])  # only the head of a registration
    with pytest.raises(AssertionError, match="half-written"):
        check_database(db_url, ledger)
    ledger.writes.remove(half)

    headless = Write("RegisterHousehold", register_input(ledger.marker))
    ledger.add(headless)
    write_household(db_url, ledger, headless.input["members"], relation_override="OTHER")
    with pytest.raises(AssertionError, match="current heads"):
        check_database(db_url, ledger)


def test_the_check_finds_a_lost_acknowledged_write(db_url):
    ledger = Ledger(marker=f"丢失{uuid.uuid4().hex[:8]}")
    lost = Write("RegisterHousehold", register_input(ledger.marker),
                 answer={"household": {"id": to_global_id("Household", 987654321), "householdNumber": "H0",
                                       "members": []}})
    ledger.add(lost)
    with pytest.raises(AssertionError, match="missing"):
        check_database(db_url, ledger)
    unsent = Write("RegisterHousehold", register_input(ledger.marker))
    with pytest.raises(AssertionError, match="missing after the retry"):
        check_database(db_url, Ledger(marker=ledger.marker, writes=[unsent]), exactly_once=True)
