"""Temporary aid as the sources run it, against a live server on SQLite and PostgreSQL (Fujian: approval of
temporary aid delegated to townships, FJ-2021): graded approval by amount, county case conference (一事一议),
the township reserve fund (备用金) that aid-first payments draw on, approve once with stages and follow-up aid
never above the approved total, and concurrent draws that cannot overspend the fund."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from aidgraph.core.storage.models import (
    EmergencyEvent,
    Enrollment,
    Payment,
    Person,
    ReserveFund,
    ReserveFundEntry,
    TemporaryAidApproval,
    TemporaryAidStage,
)
from aidgraph.schema.relay import to_global_id
from tests.casework.conftest import count, seed_township, token_for

TODAY = dt.date.today()
LATER, LATEST = TODAY + dt.timedelta(days=32), TODAY + dt.timedelta(days=64)

CASE = "case { approvedTotal level scheduledTotal paidTotal stages { id kind dueDate amount status fromReserve } }"
APPROVE = f"mutation A($input: ApproveTemporaryAidInput!) {{ approveTemporaryAid(input: $input) {{ {CASE} errors {{ code field message }} }} }}"
FOLLOW = f"mutation F($input: ScheduleFollowUpAidInput!) {{ scheduleFollowUpAid(input: $input) {{ {CASE} errors {{ code field message }} }} }}"
PAY = f"mutation P($input: PayTemporaryAidStageInput!) {{ payTemporaryAidStage(input: $input) {{ {CASE} errors {{ code field message }} }} }}"
REPLENISH = """mutation R($input: ReplenishReserveFundInput!) { replenishReserveFund(input: $input) {
    reserveFund { townshipCode balance entries { kind amount balanceAfter } } errors { code field } } }"""


@pytest.fixture(scope="module")
def fujian(sync_engine, db_url):
    """Six Fujian households in villages of one township; a member of each hospitalised, with the emergency
    event recorded, except the fourth's (急难: eligible for temporary_emergency)."""
    world = seed_township(sync_engine, "35", households=6)
    households = list(world.households)
    with Session(sync_engine) as s, s.begin():
        heads = [p.id for p in world.persons][::3]
        s.execute(update(Person).where(Person.id.in_(heads[:3] + heads[4:])).values(hospitalised=True))
        # 急难 is an event with a kind, place and date (issue 11), not the hospitalised flag
        s.add_all([EmergencyEvent(household_id=h, kind="MAJOR_ILLNESS", region_code=world.households[h],
                                  occurred_on=dt.date.today()) for i, h in enumerate(households) if i != 3])
    return world, households


def post(live, query, variables, token=...):
    body = live.post(query, variables, token=token).json()
    assert "errors" not in body, body
    return next(iter(body["data"].values()))


def apply(live, household_id, token=...):
    result = live.data("ApplyForAid", {"input": {"householdId": to_global_id("Household", household_id),
                                                 "programKey": "temporary_emergency"}}, token=token)["applyForAid"]
    assert result["errors"] == [], result
    return result["enrollment"]["id"]


def test_graded_approval_reserve_fund_stages_and_follow_up(live_server, fujian, sync_engine, db_url):
    world, households = fujian
    home = world.households[households[0]]
    town, county = home[:9], home[:6]
    caseworker = token_for(db_url, sync_engine, "cw35", "township_caseworker", town)
    officer = token_for(db_url, sync_engine, "county35", "county_officer", county)

    assert post(live_server, REPLENISH, {"input": {"townshipCode": town, "amount": 2000}},
                token=caseworker)["errors"][0]["code"] == "FORBIDDEN"
    assert post(live_server, REPLENISH, {"input": {"townshipCode": county, "amount": 2000}},
                token=officer)["errors"][0]["field"] == "townshipCode"
    filled = post(live_server, REPLENISH, {"input": {"townshipCode": town, "amount": 2000, "note": "县财政拨付"}},
                  token=officer)
    assert filled["errors"] == [] and filled["reserveFund"]["balance"] == 2000

    case_id = apply(live_server, households[0], token=caseworker)
    # 分级审批: above the township's limit (3000, illustrative) the county approves.
    too_much = post(live_server, APPROVE, {"input": {"enrollmentId": case_id, "total": 3500}}, token=caseworker)
    assert too_much["case"] is None and too_much["errors"][0]["code"] == "FORBIDDEN"
    assert "3000" in too_much["errors"][0]["message"]
    over_schedule = post(live_server, APPROVE, {"input": {"enrollmentId": case_id, "total": 2500, "stages": [
        {"dueDate": TODAY.isoformat(), "amount": 1500}, {"dueDate": LATER.isoformat(), "amount": 1500}]}},
        token=caseworker)
    assert over_schedule["errors"][0]["code"] == "VALIDATION" and over_schedule["errors"][0]["field"] == "stages"
    assert count(sync_engine, TemporaryAidApproval) == 0

    approved = post(live_server, APPROVE, {"input": {
        "enrollmentId": case_id, "total": 3000, "payFirstFromReserve": True,
        "stages": [{"dueDate": TODAY.isoformat(), "amount": 1500}, {"dueDate": LATER.isoformat(), "amount": 1000}]}},
        token=caseworker)
    assert approved["errors"] == [], approved
    case = approved["case"]
    assert case["level"] == "TOWNSHIP" and case["approvedTotal"] == 3000 and case["scheduledTotal"] == 2500
    assert [s["status"] for s in case["stages"]] == ["PAID", "SCHEDULED"] and case["paidTotal"] == 1500
    assert case["stages"][0]["fromReserve"]

    # 跟进救助: follow-up aid up to the approved total, never above.
    above = post(live_server, FOLLOW, {"input": {"enrollmentId": case_id, "stages": [
        {"dueDate": LATEST.isoformat(), "amount": 600}]}}, token=caseworker)
    assert above["errors"][0]["code"] == "VALIDATION" and "3000" in above["errors"][0]["message"]
    follow = post(live_server, FOLLOW, {"input": {"enrollmentId": case_id, "stages": [
        {"dueDate": LATEST.isoformat(), "amount": 500}]}}, token=caseworker)
    assert follow["errors"] == [] and follow["case"]["scheduledTotal"] == 3000
    assert [s["kind"] for s in follow["case"]["stages"]] == ["STAGE", "STAGE", "FOLLOW_UP"]
    early = post(live_server, PAY, {"input": {"stageId": follow["case"]["stages"][1]["id"], "fromReserve": True}},
                 token=caseworker)
    assert early["errors"][0]["code"] == "VALIDATION"

    # A second case: a payment above the reserve balance (500 left) is refused and the approval with it.
    second = apply(live_server, households[1], token=caseworker)
    refused = post(live_server, APPROVE, {"input": {"enrollmentId": second, "total": 800, "payFirstFromReserve": True}},
                   token=caseworker)
    assert refused["case"] is None and refused["errors"][0]["field"] == "fromReserve"
    assert "500" in refused["errors"][0]["message"]
    with Session(sync_engine) as s:
        assert s.get(ReserveFund, town).balance == Decimal("500.00")
        assert count(sync_engine, TemporaryAidApproval) == 1
        entries = s.scalars(select(ReserveFundEntry).where(ReserveFundEntry.township_code == town)
                            .order_by(ReserveFundEntry.id)).all()
        assert [(e.kind, e.amount, e.balance_after) for e in entries] == [
            ("REPLENISH", Decimal("2000.00"), Decimal("2000.00")), ("DRAW", Decimal("1500.00"), Decimal("500.00"))]
        paid = s.scalars(select(Payment).where(Payment.household_id == households[0])).all()
        assert [p.amount for p in paid] == [Decimal("1500.00")]
        assert s.scalar(select(Enrollment.status).where(Enrollment.household_id == households[0])) == "ACTIVE"
    fund = live_server.post("query($t: String!) { reserveFund(townshipCode: $t) { balance entries { kind } } }",
                            {"t": town}, token=caseworker).json()["data"]["reserveFund"]
    assert fund["balance"] == 500 and [e["kind"] for e in fund["entries"]] == ["DRAW", "REPLENISH"]


def test_county_case_conference_beyond_the_rules(live_server, fujian, sync_engine, db_url):
    world, households = fujian
    home = world.households[households[3]]
    caseworker = token_for(db_url, sync_engine, "cw35b", "township_caseworker", home[:9])
    officer = token_for(db_url, sync_engine, "county35b", "county_officer", home[:6])
    case_id = apply(live_server, households[3], token=caseworker)
    # Not eligible by the rules (nobody hospitalised): only a county case conference (一事一议) may decide.
    plain = post(live_server, APPROVE, {"input": {"enrollmentId": case_id, "total": 1000}}, token=officer)
    assert plain["errors"][0]["code"] == "VALIDATION" and "一事一议" in plain["errors"][0]["message"]
    by_town = post(live_server, APPROVE, {"input": {"enrollmentId": case_id, "total": 1000, "caseConference": True,
                                                    "basis": "x"}}, token=caseworker)
    assert by_town["errors"][0]["code"] == "FORBIDDEN"
    no_basis = post(live_server, APPROVE, {"input": {"enrollmentId": case_id, "total": 1000, "caseConference": True}},
                    token=officer)
    assert no_basis["errors"][0]["field"] == "basis"
    decided = post(live_server, APPROVE, {"input": {"enrollmentId": case_id, "total": 12000, "caseConference": True,
                                                    "basis": "县困难群众基本生活保障工作协调机制会商：火灾致房屋全毁"}},
                   token=officer)
    assert decided["errors"] == [] and decided["case"]["level"] == "CASE_CONFERENCE"
    again = post(live_server, APPROVE, {"input": {"enrollmentId": case_id, "total": 100}}, token=officer)
    assert again["errors"][0]["code"] == "INVALID_TRANSITION"


def test_concurrent_aid_first_payments_cannot_overspend_the_reserve(live_server, fujian, sync_engine, db_url):
    world, households = fujian
    home = world.households[households[2]]
    town = home[:9]
    officer = token_for(db_url, sync_engine, "county35c", "county_officer", home[:6])
    caseworker = token_for(db_url, sync_engine, "cw35c", "township_caseworker", town)
    cases = []
    for h in households[4:6]:
        case_id = apply(live_server, h, token=caseworker)
        approved = post(live_server, APPROVE, {"input": {"enrollmentId": case_id, "total": 1000}}, token=caseworker)
        assert approved["errors"] == [], approved
        cases.append(approved["case"]["stages"][0]["id"])
    with Session(sync_engine) as s:
        balance = s.get(ReserveFund, town).balance if s.get(ReserveFund, town) else Decimal("0")
    top_up = Decimal("1500.00") - balance  # room for exactly one draw of 1000
    if top_up > 0:
        assert post(live_server, REPLENISH, {"input": {"townshipCode": town, "amount": float(top_up)}},
                    token=officer)["errors"] == []
    results: list[dict] = []

    def pay(stage_id):
        results.append(post(live_server, PAY, {"input": {"stageId": stage_id, "fromReserve": True}}, token=caseworker))

    threads = [threading.Thread(target=pay, args=(stage,)) for stage in cases]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(len(r["errors"]) for r in results) == [0, 1]
    with Session(sync_engine) as s:
        assert s.get(ReserveFund, town).balance == Decimal("500.00")
        paid = s.scalars(select(TemporaryAidStage).where(TemporaryAidStage.enrollment_id.in_(
            select(Enrollment.id).where(Enrollment.household_id.in_(households[4:6]))),
            TemporaryAidStage.status == "PAID")).all()
        assert len(paid) == 1 and paid[0].from_reserve
        draws = s.scalars(select(ReserveFundEntry).where(ReserveFundEntry.township_code == town,
                                                         ReserveFundEntry.kind == "DRAW")).all()
        assert sum(d.amount for d in draws) + Decimal("500.00") == sum(
            e.amount for e in s.scalars(select(ReserveFundEntry).where(ReserveFundEntry.township_code == town,
                                                                       ReserveFundEntry.kind == "REPLENISH")))


def test_graded_approval_also_binds_the_state_machine_approve(live_server, fujian, sync_engine, db_url):
    """DecideEnrollment APPROVE of temporary aid above the township's limit needs the county (分级审批)."""
    world, households = fujian
    home = world.households[households[2]]
    caseworker = token_for(db_url, sync_engine, "cw35d", "township_caseworker", home[:9])
    officer = token_for(db_url, sync_engine, "county35d", "county_officer", home[:6])
    case_id = apply(live_server, households[2], token=caseworker)

    def decide(token):
        return live_server.data("DecideEnrollment", {"input": {"enrollmentId": case_id, "action": "APPROVE"}},
                                token=token)["decideEnrollment"]

    refused = decide(caseworker)
    assert refused["errors"][0]["code"] == "FORBIDDEN" and "分级审批" in refused["errors"][0]["message"]
    with Session(sync_engine) as s:
        assert s.scalar(select(Enrollment.status).where(Enrollment.household_id == households[2])) == "APPLIED"
    approved = decide(officer)
    assert approved["errors"] == [] and approved["enrollment"]["status"] == "APPROVED"
