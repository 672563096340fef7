"""The rule inputs recorded through the API against a live server (both engines): recordStudentStatus,
recordEmergency / explainEmergency, recordHousingNeed, recordEmploymentSupport. Each writes the record, its
audit row, the aid-chain entry and the outbox row in one transaction; bad input (a stage or an emergency kind
the province does not know, a tier outside the configured tiers, a future date, a level below 1) is a
VALIDATION error naming the field, with nothing written; an idempotency key replays the first answer."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from aidgraph.core.storage.db import make_sync_engine
from aidgraph.core.storage.models import AidChainEvent, AuditLog, EmergencyEvent, Household, Outbox, Person
from aidgraph.schema.relay import db_id
from tests.plugins.test_api_programs import member, register

TODAY = dt.date.today()
SHANTOU = "440507001001"
LANZHOU = "620102001001"

STUDENT = """mutation S($input: StudentStatusInput!) { recordStudentStatus(input: $input) {
  student { stage schoolYear hardshipTier veteranStudent } errors { field message code } } }"""
EMERGENCY = """mutation E($input: EmergencyInput!) { recordEmergency(input: $input) {
  event { id kind regionCode occurredOn explanationDue explainedOn } errors { field message code } } }"""
EXPLAIN = """mutation X($input: EmergencyExplanationInput!) { explainEmergency(input: $input) {
  event { id explainedOn } errors { field message code } } }"""
HOUSING = """mutation H($input: HousingNeedInput!) { recordHousingNeed(input: $input) {
  housingNeed errors { field message code } } }"""
EMPLOYMENT = """mutation M($input: EmploymentSupportInput!) { recordEmploymentSupport(input: $input) {
  employment { difficultyLevel businessRegisteredOn } errors { field message code } } }"""


def send(live, query, variables, token=...):
    body = live.post(query, {"input": variables}, token=token).json()
    assert "errors" not in body, body
    return next(iter(body["data"].values()))


def counts(live, *models) -> tuple[int, ...]:
    engine = make_sync_engine(live.components.settings.database_url)
    try:
        with engine.connect() as conn:
            return tuple(conn.execute(select(func.count()).select_from(m)).scalar_one() for m in models)
    finally:
        engine.dispose()


def reasons(live, household_id, program, token=...) -> list[str]:
    results = live.data("Eligibility", {"householdId": household_id}, token=token)["eligibility"]
    return next(r for r in results if r["program"]["key"] == program)["reasons"]


def test_student_status_recorded_and_read_by_the_grants(live_server):
    household = register(live_server, SHANTOU, [member("440507", 45, 41), member("440507", 19, 43, "CHILD")])
    student = next(m for m in household["members"] if m["relationToHead"] == "CHILD")["person"]["id"]
    before = counts(live_server, AuditLog, Outbox, AidChainEvent)
    ok = send(live_server, STUDENT, {"personId": student, "stage": "UNDERGRADUATE", "schoolYear": 1,
                                     "hardshipTier": 1, "idempotencyKey": "student-1"})
    assert ok["errors"] == [] and ok["student"] == {"stage": "UNDERGRADUATE", "schoolYear": 1, "hardshipTier": 1,
                                                    "veteranStudent": False}
    assert counts(live_server, AuditLog, Outbox, AidChainEvent) == tuple(n + 1 for n in before)
    # the same key replays the answer and writes nothing more
    assert send(live_server, STUDENT, {"personId": student, "stage": "UNDERGRADUATE", "schoolYear": 1,
                                       "hardshipTier": 1, "idempotencyKey": "student-1"})["student"] == ok["student"]
    assert counts(live_server, AuditLog, Outbox, AidChainEvent) == tuple(n + 1 for n in before)
    assert any("1 student(s) with the school's hardship recognition" in r
               for r in reasons(live_server, household["id"], "education"))
    settled = counts(live_server, AuditLog, Outbox, AidChainEvent)  # reads may be audited too
    # bad input: a stage nobody knows, a tier beyond Guangdong's single undergraduate tier, a year of 9
    for bad, field in (({"stage": "KINDERGARTEN"}, "stage"), ({"stage": "POSTGRADUATE", "hardshipTier": 2}, "hardshipTier"),
                       ({"stage": "UNDERGRADUATE", "schoolYear": 9}, "schoolYear")):
        result = send(live_server, STUDENT, {"personId": student, **bad})
        assert result["student"] is None and result["errors"][0]["field"] == field
        assert result["errors"][0]["code"] == "VALIDATION"
    assert counts(live_server, AuditLog, Outbox, AidChainEvent) == settled
    engine = make_sync_engine(live_server.components.settings.database_url)
    with engine.connect() as conn:
        row = conn.execute(select(Person.student_stage, Person.school_year, Person.school_hardship_tier)
                           .where(Person.id == db_id(student, "Person"))).one()
    engine.dispose()
    assert tuple(row) == ("UNDERGRADUATE", 1, 1)  # nothing of the refused requests was written


def test_emergency_recorded_where_it_happened_and_explained_after(live_server):
    household = register(live_server, SHANTOU, [member("620102", 30, 51)])  # a Gansu-hukou resident in Shantou
    hid = household["id"]
    assert not next(r for r in live_server.data("Eligibility", {"householdId": hid})["eligibility"]
                    if r["program"]["key"] == "temporary_emergency")["eligible"]
    before = counts(live_server, EmergencyEvent, AuditLog)
    for bad, field in (({"kind": "ALIENS"}, "kind"), ({"occurredOn": (TODAY + dt.timedelta(days=1)).isoformat()},
                                                       "occurredOn"), ({"regionCode": "449999999999"}, "regionCode")):
        result = send(live_server, EMERGENCY, {"householdId": hid, "kind": "ACCIDENT", "regionCode": SHANTOU,
                                               "occurredOn": TODAY.isoformat(), **bad})
        assert result["event"] is None and result["errors"][0] == {**result["errors"][0], "field": field,
                                                                   "code": "VALIDATION"}
    assert counts(live_server, EmergencyEvent, AuditLog) == before
    ok = send(live_server, EMERGENCY, {"householdId": hid, "kind": "ACCIDENT", "regionCode": SHANTOU,
                                       "occurredOn": TODAY.isoformat(), "idempotencyKey": "emergency-1"})
    assert ok["errors"] == [] and ok["event"]["explanationDue"] == (TODAY + dt.timedelta(days=30)).isoformat()
    again = send(live_server, EMERGENCY, {"householdId": hid, "kind": "ACCIDENT", "regionCode": SHANTOU,
                                          "occurredOn": TODAY.isoformat(), "idempotencyKey": "emergency-1"})
    assert again["event"]["id"] == ok["event"]["id"]
    assert counts(live_server, EmergencyEvent, AuditLog) == (before[0] + 1, before[1] + 1)
    emergency = next(r for r in live_server.data("Eligibility", {"householdId": hid})["eligibility"]
                     if r["program"]["key"] == "temporary_emergency")
    assert emergency["eligible"] and any(f"ACCIDENT at {SHANTOU} on {TODAY}" in r for r in emergency["reasons"])
    explained = send(live_server, EXPLAIN, {"eventId": ok["event"]["id"], "explanation": "车祸住院，已补交材料"})
    assert explained["errors"] == [] and explained["event"]["explainedOn"] == TODAY.isoformat()
    empty = send(live_server, EXPLAIN, {"eventId": ok["event"]["id"], "explanation": "  "})
    assert empty["errors"][0]["field"] == "explanation"


def test_housing_need_recorded(live_server):
    household = register(live_server, SHANTOU, [member("440507", 60, 61)])
    result = send(live_server, HOUSING, {"householdId": household["id"], "housingNeed": True})
    assert result == {"housingNeed": True, "errors": []}
    assert any("housing difficulty recorded for the household" in r and r.startswith("met")
               for r in reasons(live_server, household["id"], "housing"))
    engine = make_sync_engine(live_server.components.settings.database_url)
    with engine.connect() as conn:
        assert conn.execute(select(Household.housing_need).where(
            Household.id == db_id(household["id"], "Household"))).scalar_one() is True
    engine.dispose()


def test_employment_support_recorded(live_server):
    household = register(live_server, SHANTOU, [member("440507", 40, 71, employmentStatus="EMPLOYED")])
    person = household["members"][0]["person"]["id"]
    before = counts(live_server, AuditLog)
    for bad, field in (({"difficultyLevel": 0}, "difficultyLevel"),
                       ({"businessRegisteredOn": (TODAY + dt.timedelta(days=3)).isoformat()}, "businessRegisteredOn")):
        result = send(live_server, EMPLOYMENT, {"personId": person, **bad})
        assert result["employment"] is None and result["errors"][0]["field"] == field
    assert counts(live_server, AuditLog) == before
    ok = send(live_server, EMPLOYMENT, {"personId": person, "difficultyLevel": 2})
    assert ok["errors"] == [] and ok["employment"]["difficultyLevel"] == 2
    employment = next(r for r in live_server.data("Eligibility", {"householdId": household["id"]})["eligibility"]
                      if r["program"]["key"] == "employment")
    assert employment["eligible"] and any("1 at level 2 or above: public-benefit jobs" in r for r in employment["reasons"])


CATEGORY = """mutation C($input: PersonCategoryInput!) { recordPersonCategory(input: $input) {
  category errors { field message code } } }"""


def test_orphan_recorded_and_settled_at_100_percent(live_server):
    # GD-2024 特困人员、孤儿、事实无人抚养儿童的救助比例为100%: a de-facto-unattended child living with a grandparent
    household = register(live_server, SHANTOU, [member("440507", 70, 81), member("440507", 9, 83, "GRANDCHILD")])
    child = next(m for m in household["members"] if m["relationToHead"] == "GRANDCHILD")["person"]["id"]
    before = counts(live_server, AuditLog)
    for bad in ("ALIEN", "STABLY_LIFTED"):  # unknown anywhere; a Gansu category Guangdong does not have
        result = send(live_server, CATEGORY, {"personId": child, "category": bad})
        assert result["category"] is None and result["errors"][0]["field"] == "category"
        assert result["errors"][0]["code"] == "VALIDATION"
    assert counts(live_server, AuditLog) == before
    ok = send(live_server, CATEGORY, {"personId": child, "category": "UNATTENDED_CHILD"})
    assert ok == {"category": "UNATTENDED_CHILD", "errors": []}
    claim = live_server.data("SettleMedicalAid", {"input": {
        "personId": child, "admissionDate": TODAY.isoformat(), "compliantCost": 8000, "insurancePaid": 5000}}
    )["settleMedicalAid"]
    assert claim["errors"] == [] and claim["claim"]["category"] == "UNATTENDED_CHILD"
    assert claim["claim"]["aidAmount"] == pytest.approx(3000) and claim["claim"]["outOfPocket"] == 0
