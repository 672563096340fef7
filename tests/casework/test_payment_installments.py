"""Temporary aid in stages within one month (issue 13; GD-2021 §15 一次审批、分阶段救助 / 跟进救助), against a live
server on SQLite and PostgreSQL: two stages due in the same month are both paid, a follow-up stage of that month
too; re-paying a stage is refused; the monthly payments run still pays each receiving enrolment once a period;
monthly statistics and recovery orders count every installment."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, insert, inspect, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aidgraph.core.access.scope import Scope
from aidgraph.core.app.commands.workflow import run_payments
from aidgraph.core.storage.db import make_sync_engine
from aidgraph.core.storage.migrate import current_revision, downgrade, head_revision, upgrade
from aidgraph.core.storage.models import EmergencyEvent, Enrollment, Payment, Person, TemporaryAidStage
from aidgraph.schema.relay import to_global_id
from tests.casework.conftest import seed_township, token_for
from tests.conftest import ENGINES, make_database
from tests.casework.test_temporary_aid import APPROVE, FOLLOW, PAY, apply, post

TODAY = dt.date.today()
MONTH = f"{TODAY:%Y-%m}"
STATS = """query S($r: String!, $m: String!, $p: String) { monthlyStatistics(regionCode: $r, month: $m, programKey: $p) {
    programs { regionCode programKey recipientHouseholds recipientPersons amount } } }"""
ISSUE = """mutation I($input: IssueRecoveryOrderInput!) { issueRecoveryOrder(input: $input) {
    order { id amount status } errors { code field message } } }"""


@pytest.fixture(scope="module")
def township(sync_engine):
    """Three Fujian households of one township: the first two in an emergency (急难: a hospitalised head and the
    event recorded), the third receiving dibao (written directly, 500 yuan a month)."""
    world = seed_township(sync_engine, "35", households=3, start=2)
    households = list(world.households)
    with Session(sync_engine) as s, s.begin():
        heads = [p.id for p in world.persons][::3]
        s.execute(update(Person).where(Person.id.in_(heads[:2])).values(hospitalised=True))
        s.add_all([EmergencyEvent(household_id=h, kind="MAJOR_ILLNESS", region_code=world.households[h],
                                  occurred_on=TODAY) for h in households[:2]])
        dibao = s.execute(insert(Enrollment).returning(Enrollment.id), {
            "household_id": households[2], "program_key": "dibao", "province_code": "35",
            "region_code": world.households[households[2]], "status": "ACTIVE", "monthly_amount": Decimal(500),
            "start_date": dt.date(2025, 1, 1)}).scalar_one()
    return world, households, dibao


def _payments(engine, enrollment_id: int) -> list[tuple[str, str, Decimal]]:
    with Session(engine) as s:
        return [tuple(r) for r in s.execute(select(Payment.period, Payment.installment, Payment.amount).where(
            Payment.enrollment_id == enrollment_id).order_by(Payment.id))]


def test_two_stages_and_a_follow_up_due_in_one_month_are_all_paid_once(live_server, township, sync_engine, db_url):
    world, households, dibao = township
    home = world.households[households[0]]
    caseworker = token_for(db_url, sync_engine, "cw35i", "township_caseworker", home[:9])
    officer = token_for(db_url, sync_engine, "county35i", "county_officer", home[:6])
    case_id = apply(live_server, households[0], token=caseworker)
    approved = post(live_server, APPROVE, {"input": {"enrollmentId": case_id, "total": 2000, "stages": [
        {"dueDate": TODAY.isoformat(), "amount": 800}, {"dueDate": TODAY.isoformat(), "amount": 700}]}},
        token=caseworker)
    assert approved["errors"] == [], approved  # before: "one payment per case per month: put each stage in its own month"
    first, second = (s["id"] for s in approved["case"]["stages"])
    assert post(live_server, PAY, {"input": {"stageId": first}}, token=officer)["errors"] == []
    paid = post(live_server, PAY, {"input": {"stageId": second}}, token=officer)
    assert paid["errors"] == [], paid
    assert [s["status"] for s in paid["case"]["stages"]] == ["PAID", "PAID"] and paid["case"]["paidTotal"] == 1500

    again = post(live_server, PAY, {"input": {"stageId": first}}, token=officer)
    assert again["case"] is None and again["errors"][0]["code"] == "INVALID_TRANSITION"
    assert again["errors"][0]["field"] == "stageId"

    # 跟进救助 in the same month: a third payment of the month, still within the approved total
    follow = post(live_server, FOLLOW, {"input": {"enrollmentId": case_id, "stages": [
        {"dueDate": TODAY.isoformat(), "amount": 300}]}}, token=caseworker)
    assert follow["errors"] == [], follow
    third = follow["case"]["stages"][2]["id"]
    assert post(live_server, PAY, {"input": {"stageId": third}}, token=officer)["case"]["paidTotal"] == 1800

    with Session(sync_engine) as s:
        enrollment_id = s.scalar(select(Enrollment.id).where(Enrollment.household_id == households[0],
                                                             Enrollment.program_key == "temporary_emergency"))
        stage_ids = s.scalars(select(TemporaryAidStage.id).where(TemporaryAidStage.enrollment_id == enrollment_id)
                              .order_by(TemporaryAidStage.id)).all()
    assert _payments(sync_engine, enrollment_id) == [(MONTH, f"STAGE-{i}", Decimal(a))
                                                     for i, a in zip(stage_ids, (800, 700, 300))]

    # The database is the second line: the same stage's installment twice in a month is refused.
    with pytest.raises(IntegrityError), Session(sync_engine) as s, s.begin():
        s.add(Payment(enrollment_id=enrollment_id, household_id=households[0], amount=Decimal(1), period=MONTH,
                      installment=f"STAGE-{stage_ids[0]}"))

    # Statistics: one recipient household, the month's three installments summed.
    province_admin = token_for(db_url, sync_engine, "admin35i", "province_admin", "35")
    stats = live_server.post(STATS, {"r": home[:9], "m": MONTH, "p": "temporary_emergency"},
                             token=province_admin).json()["data"]["monthlyStatistics"]["programs"]
    assert [(r["recipientHouseholds"], r["recipientPersons"], r["amount"]) for r in stats] == [(1, 3, 1800.0)]

    # A recovery order may claim every installment paid, and no more.
    gid = to_global_id("Enrollment", enrollment_id)
    too_much = live_server.post(ISSUE, {"input": {"enrollmentId": gid, "amount": 1800.01, "reason": "隐瞒收入"}},
                                token=province_admin).json()["data"]["issueRecoveryOrder"]
    assert too_much["errors"][0]["field"] == "amount" and "1800" in too_much["errors"][0]["message"]
    order = live_server.post(ISSUE, {"input": {"enrollmentId": gid, "amount": 1800, "reason": "隐瞒收入骗取临时救助"}},
                             token=province_admin).json()["data"]["issueRecoveryOrder"]
    assert order["errors"] == [] and order["order"]["amount"] == 1800


def test_the_monthly_run_still_pays_once_a_period(live_server, township, sync_engine, db_url):
    world, households, dibao = township
    scope = Scope.of(["35"])
    before = _payments(sync_engine, dibao)
    assert asyncio.run(run_payments(db_url, scope, MONTH)) >= 1
    assert asyncio.run(run_payments(db_url, scope, MONTH)) == 0  # re-running pays nothing twice
    assert _payments(sync_engine, dibao) == before + [(MONTH, "REGULAR", Decimal("500.00"))]
    with pytest.raises(IntegrityError), Session(sync_engine) as s, s.begin():
        s.add(Payment(enrollment_id=dibao, household_id=households[2], amount=Decimal(500), period=MONTH))
    with Session(sync_engine) as s:
        regular = s.scalar(select(func.count()).select_from(Payment).where(
            Payment.period == MONTH, Payment.installment == "REGULAR",
            Payment.enrollment_id.in_(select(Enrollment.id).where(Enrollment.province_code == "35"))))
        active = s.scalar(select(func.count()).select_from(Enrollment).where(
            Enrollment.province_code == "35", Enrollment.status == "ACTIVE", Enrollment.monthly_amount.is_not(None)))
    assert regular == active


@pytest.fixture(params=ENGINES)
def fresh_engine(request, tmp_path_factory):
    engine = make_sync_engine(make_database(request.param, request, tmp_path_factory))
    yield engine
    engine.dispose()


def test_migration_0016_keeps_every_payment_and_refuses_a_downgrade_that_would_lose_one(fresh_engine):
    world = seed_township(fresh_engine, "44", households=2, start=7)
    households = list(world.households)
    downgrade(fresh_engine, "0015")
    with fresh_engine.begin() as conn:  # the old schema, without the column
        assert "installment" not in {c["name"] for c in inspect(conn).get_columns("payment")}
        case = conn.execute(insert(Enrollment).returning(Enrollment.id), {
            "household_id": households[0], "program_key": "dibao", "province_code": "44",
            "region_code": world.households[households[0]], "status": "ACTIVE", "monthly_amount": Decimal(500),
            "start_date": dt.date(2025, 1, 1)}).scalar_one()
        conn.execute(text("INSERT INTO payment (enrollment_id, household_id, amount, period, paid_at) VALUES "
                          "(:e, :h, 500, '2025-01', :t), (:e, :h, 500, '2025-02', :t)"),
                     {"e": case, "h": households[0], "t": dt.datetime(2025, 2, 1)})
    old = _raw_payments(fresh_engine)
    upgrade(fresh_engine)
    assert current_revision(fresh_engine) == head_revision()
    with Session(fresh_engine) as s:
        assert [(p.period, p.installment, p.amount) for p in s.scalars(select(Payment).order_by(Payment.id))] == [
            ("2025-01", "REGULAR", Decimal("500.00")), ("2025-02", "REGULAR", Decimal("500.00"))]
    assert [row[:5] for row in _raw_payments(fresh_engine)] == [row[:5] for row in old]

    # A second installment of February: the older schema cannot hold it, so the downgrade refuses, changing nothing.
    with Session(fresh_engine) as s, s.begin():
        s.add(Payment(enrollment_id=case, household_id=households[0], amount=Decimal(300), period="2025-02",
                      installment="STAGE-1"))
    with pytest.raises(RuntimeError, match="more than one payment"):
        downgrade(fresh_engine, "0015")
    assert current_revision(fresh_engine) == head_revision() and len(_raw_payments(fresh_engine)) == 3
    with fresh_engine.begin() as conn:
        conn.execute(text("DELETE FROM payment WHERE installment = 'STAGE-1'"))
    downgrade(fresh_engine, "0015")
    assert current_revision(fresh_engine) == "0015"
    assert [row[:5] for row in _raw_payments(fresh_engine)] == [row[:5] for row in old]
    with pytest.raises(IntegrityError), fresh_engine.begin() as conn:  # the old constraint is back
        conn.execute(text("INSERT INTO payment (enrollment_id, household_id, amount, period, paid_at) VALUES "
                          "(:e, :h, 1, '2025-02', :t)"), {"e": case, "h": households[0], "t": dt.datetime(2025, 3, 1)})
    upgrade(fresh_engine)


def _raw_payments(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT id, enrollment_id, household_id, amount, period FROM payment ORDER BY id"))]
