"""ConductReview exactly as the contract writes it, against a live server on SQLite and PostgreSQL, with the
rules of GD-2021 (广东省改革完善社会救助制度的实施方案, seeds/003):

* item 24: "对特困人员、短期内经济状况变化不大的低保家庭，每年核查一次；对收入来源不固定、家庭成员有劳动能力的低保
  家庭，每半年核查一次。复核期内救助对象家庭经济状况没有明显变化的，不再调整救助标准。"
* item 11: "对已就业的低保对象，在核算其家庭收入时扣减必要的就业成本，并在其家庭成员人均收入超过当地低保标准后给予
  6个月渐退期。"

Households live in Guangzhou (urban standard ``dibao.urban_standard`` for 4401); their dibao is activated on
2025-06-01 through the workflow services, and reviewed on 2026-06-02 over the facts of the 12 months before.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from aidgraph.core.policy.engine import PolicyEngine
from aidgraph.core.storage.config import Settings
from aidgraph.core.storage.db import session_scope
from aidgraph.core.storage.models import (
    AidChainEvent,
    AuditLog,
    Enrollment,
    EnrollmentStep,
    Household,
    Outbox,
    Person,
)
from aidgraph.schema.relay import to_global_id
from tests.live import OPERATION_TEXT
from tests.workflow.builders import (
    FUZHOU,
    GUANGZHOU,
    SHENZHEN,
    activate,
    add_deposit,
    add_household,
    add_income,
    counts,
    run,
)

STARTED = dt.date(2025, 6, 1)
REVIEWED = dt.date(2026, 6, 2)
EMPLOYED = {"age": 40, "employment_status": "EMPLOYED", "labour_capacity": "FULL"}
CHILD = {"age": 10, "relation_to_head": "CHILD"}
eid_ = lambda i: to_global_id("Enrollment", i)


@pytest.fixture(scope="module")
def policy():
    return PolicyEngine(Settings())


def running(sync_engine, db_url, policy, wage: float, members=(EMPLOYED, CHILD), region=GUANGZHOU,
            pension: float = 0.0) -> tuple[int, int, list[int]]:
    """A household receiving dibao since STARTED, on ``wage`` (and ``pension``) a month; (enrolment, household,
    persons)."""
    hid, pids = add_household(sync_engine, region, list(members))
    if wage:
        add_income(sync_engine, hid, pids[0], "WAGE", wage, STARTED)
    if pension:
        add_income(sync_engine, hid, pids[0], "PENSION", pension, STARTED)
    add_deposit(sync_engine, hid, 2000, STARTED - dt.timedelta(days=10))
    return activate(db_url, policy, hid, "dibao", STARTED), hid, pids


def review(live_server, enrollment_id: int, day: dt.date | str | None = REVIEWED, **extra) -> dict:
    given = {"enrollmentId": eid_(enrollment_id), **extra}
    if day is not None:
        given["reviewDate"] = str(day)
    return live_server.data("ConductReview", {"input": given})["conductReview"]


def computed(db_url, policy, hid: int, on: dt.date) -> dict:
    """The rules' own answer for the household on ``on`` (the same engine the review runs)."""
    result = run(db_url, lambda s: policy.evaluate(s, on=on, household_ids=[hid], programs=["dibao"]))
    return result.row(0, named=True)


def amount_of(sync_engine, eid: int) -> Decimal:
    with session_scope(sync_engine) as s:
        return s.get(Enrollment, eid).monthly_amount


def test_significance_is_a_dated_illustrative_province_parameter(policy):
    for code in ("44", "35", "62"):
        params = policy.province(code).params
        assert params.value("workflow.review_significant_change_percent", REVIEWED) == 10
        assert params.cite("workflow.review_significant_change_percent").endswith("[illustrative]")


def test_no_significant_change_keeps_the_benefit(live_server, sync_engine, db_url, policy):
    """复核期内救助对象家庭经济状况没有明显变化的，不再调整救助标准 (GD-2021)."""
    eid, hid, pids = running(sync_engine, db_url, policy, wage=1000)
    before = amount_of(sync_engine, eid)
    add_income(sync_engine, hid, pids[0], "WAGE", 1050, REVIEWED)  # a small rise
    now = computed(db_url, policy, hid, REVIEWED)
    assert now["eligible"]
    change = abs(Decimal(str(now["monthly_amount"])) - before) / before * 100
    assert 0 < change < 10  # the rules price it differently, but by less than the 10% threshold
    out = review(live_server, eid)
    assert out["errors"] == []
    assert out["changed"] is False
    assert out["enrollment"]["status"] == "ACTIVE"
    assert Decimal(str(out["enrollment"]["monthlyAmount"])) == before
    # 收入来源不固定、家庭成员有劳动能力的低保家庭，每半年核查一次: an employed member of working age
    assert out["enrollment"]["nextReviewDate"] == "2026-12-02"
    assert out["enrollment"]["gradualExitUntil"] is None
    assert any("below the 10%" in r and "不再调整救助标准" in r and str(before) in r for r in out["reasons"])


def test_significant_change_reprices(live_server, sync_engine, db_url, policy):
    eid, hid, pids = running(sync_engine, db_url, policy, wage=1000)
    before = amount_of(sync_engine, eid)
    add_income(sync_engine, hid, pids[0], "WAGE", 1500, REVIEWED)
    now = computed(db_url, policy, hid, REVIEWED)
    expected = Decimal(str(now["monthly_amount"])).quantize(Decimal("0.01"))
    assert now["eligible"] and abs(expected - before) / before * 100 >= 10
    out = review(live_server, eid)
    assert out["errors"] == [] and out["changed"] is True
    assert out["enrollment"]["status"] == "ACTIVE"
    assert Decimal(str(out["enrollment"]["monthlyAmount"])) == expected
    assert any("re-priced" in r and str(expected) in r and str(before) in r for r in out["reasons"])
    with session_scope(sync_engine) as s:
        step = s.execute(select(EnrollmentStep).where(EnrollmentStep.enrollment_id == eid).order_by(
            EnrollmentStep.id.desc())).scalars().first()
        assert (step.action, step.from_status, step.to_status, step.actor) == (
            "PERIODIC_REVIEW", "ACTIVE", "ACTIVE", "admin44")
        chain = s.execute(select(AidChainEvent.summary).where(AidChainEvent.ref_id == eid, AidChainEvent.ref_type ==
                                                              "enrollment").order_by(AidChainEvent.id.desc())
                          ).scalars().first()
        assert chain.startswith("复核 review on 2026-06-02: still eligible") and str(expected) in chain
        assert s.execute(select(Outbox.version).where(Outbox.entity == "ENROLLMENT", Outbox.entity_id == eid)
                         .order_by(Outbox.id.desc())).scalars().first() == s.get(Enrollment, eid).version
        actions = s.execute(select(AuditLog.action).where(AuditLog.object_type == "enrollment",
                                                          AuditLog.object_id == str(eid))).scalars().all()
        assert actions.count("periodic_review") == 1
        assert "read_sensitive" in actions  # the reasons name incomes: their disclosure is audited


def test_earnings_lift_the_household_over_the_standard_six_months_gradual_exit(live_server, sync_engine, db_url,
                                                                               policy):
    """对已就业的低保对象……在其家庭成员人均收入超过当地低保标准后给予6个月渐退期 (GD-2021)."""
    eid, hid, pids = running(sync_engine, db_url, policy, wage=1000)
    before = amount_of(sync_engine, eid)
    add_income(sync_engine, hid, pids[0], "WAGE", 4000, REVIEWED)  # a job: per-capita income over the standard
    assert not computed(db_url, policy, hid, REVIEWED)["eligible"]
    out = review(live_server, eid)
    assert out["errors"] == [] and out["changed"] is True
    e = out["enrollment"]
    assert e["status"] == "GRADUAL_EXIT"
    assert e["gradualExitUntil"] == "2026-12-02"  # six months from the review
    assert Decimal(str(e["monthlyAmount"])) == before  # the benefit continues during the exit
    assert e["nextReviewDate"] is None
    assert any("渐退期" in r and "1000.00" in r and "4000.00" in r and "6 months" in r for r in out["reasons"])


def test_a_pension_rise_ends_without_gradual_exit(live_server, sync_engine, db_url, policy):
    """The 渐退期 is for 已就业的低保对象 whose earnings lift the household; a pension rise is not that."""
    eid, hid, pids = running(sync_engine, db_url, policy, wage=1000)
    add_income(sync_engine, hid, pids[0], "WAGE", 1100, REVIEWED)        # the wage rose a little
    add_income(sync_engine, hid, pids[0], "PENSION", 3000, REVIEWED)     # the pension takes it over
    assert not computed(db_url, policy, hid, REVIEWED)["eligible"]
    out = review(live_server, eid)
    assert out["errors"] == [] and out["changed"] is True
    assert out["enrollment"]["status"] == "ENDED"
    assert out["enrollment"]["gradualExitUntil"] is None
    assert any("no 渐退期" in r and "1000.00" in r for r in out["reasons"])


def test_unemployed_income_rise_ends_without_gradual_exit(live_server, sync_engine, db_url, policy):
    eid, hid, pids = running(sync_engine, db_url, policy, wage=0, pension=400,
                             members=({"age": 66, "employment_status": "RETIRED"},))
    add_income(sync_engine, hid, pids[0], "PENSION", 2500, REVIEWED)
    out = review(live_server, eid)
    assert out["enrollment"]["status"] == "ENDED" and out["enrollment"]["gradualExitUntil"] is None
    assert any("did not rise" in r for r in out["reasons"])


def test_death_ends_the_enrolment(live_server, sync_engine, db_url, policy):
    eid, _, pids = running(sync_engine, db_url, policy, wage=0, pension=300,
                             members=({"age": 80, "employment_status": "RETIRED"},))
    with session_scope(sync_engine) as s:
        s.execute(update(Person).where(Person.id == pids[0]).values(death_date=dt.date(2026, 5, 1)))
    out = review(live_server, eid)
    assert out["errors"] == [] and out["changed"] is True
    assert out["enrollment"]["status"] == "ENDED" and out["enrollment"]["gradualExitUntil"] is None
    assert out["reasons"] and out["reasons"][0].startswith("死亡")


def test_a_member_who_died_is_named_in_the_reasons(live_server, sync_engine, db_url, policy):
    """A death in a larger household does not end its dibao; the review says the facts still count the dead
    member until the household change is recorded (the engine's household frame counts recorded members)."""
    eid, hid, pids = running(sync_engine, db_url, policy, wage=1000,
                             members=(EMPLOYED, {"age": 82, "relation_to_head": "PARENT"}))
    add_income(sync_engine, hid, pids[0], "WAGE", 1000, REVIEWED)
    with session_scope(sync_engine) as s:
        s.execute(update(Person).where(Person.id == pids[1]).values(death_date=dt.date(2026, 3, 9)))
    out = review(live_server, eid)
    assert out["errors"] == [] and out["enrollment"]["status"] == "ACTIVE"
    assert any(r.startswith(f"死亡: member {pids[1]} died on 2026-03-09") for r in out["reasons"])


def test_moving_away_ends_the_enrolment(live_server, sync_engine, db_url, policy):
    eid, hid, pids = running(sync_engine, db_url, policy, wage=1000)
    add_income(sync_engine, hid, pids[0], "WAGE", 1000, REVIEWED)
    with session_scope(sync_engine) as s:
        s.execute(update(Household).where(Household.id == hid).values(region_code=SHENZHEN))
    out = review(live_server, eid)
    assert out["enrollment"]["status"] == "ENDED"
    assert out["reasons"][0].startswith("迁出") and SHENZHEN in out["reasons"][0]


@pytest.mark.parametrize("case", ["not active", "unknown", "future", "before the start", "bad id", "out of scope"])
def test_bad_input_is_refused_with_nothing_written(live_server, sync_engine, db_url, policy, case):
    eid, _, _ = running(sync_engine, db_url, policy, wage=1000,
                        region=FUZHOU if case == "out of scope" else GUANGZHOU)
    if case == "not active":
        with session_scope(sync_engine) as s:
            s.execute(update(Enrollment).where(Enrollment.id == eid).values(status="ENDED"))
    given = {
        "not active": ({"enrollmentId": eid_(eid), "reviewDate": str(REVIEWED)}, ("enrollmentId", "INVALID_TRANSITION")),
        "unknown": ({"enrollmentId": eid_(987654)}, ("enrollmentId", "NOT_FOUND")),
        "future": ({"enrollmentId": eid_(eid), "reviewDate": str(dt.date.today() + dt.timedelta(days=1))},
                   ("reviewDate", "VALIDATION")),
        "before the start": ({"enrollmentId": eid_(eid), "reviewDate": "2025-05-31"}, ("reviewDate", "VALIDATION")),
        "bad id": ({"enrollmentId": "nope"}, ("enrollmentId", "NOT_FOUND")),
        "out of scope": ({"enrollmentId": eid_(eid), "reviewDate": str(REVIEWED)}, ("enrollmentId", "NOT_FOUND")),
    }
    inputs, expected = given[case]
    before = counts(sync_engine)
    out = live_server.data("ConductReview", {"input": {**inputs, "idempotencyKey": f"bad-{case}"}})["conductReview"]
    assert out["enrollment"] is None and out["changed"] is None and out["reasons"] == []
    assert [(e["field"], e["code"]) for e in out["errors"]] == [expected], out["errors"]
    assert counts(sync_engine) == before


def test_idempotent_and_racing_reviews_write_one_review(live_server, sync_engine, db_url, policy):
    eid, hid, pids = running(sync_engine, db_url, policy, wage=1000)
    add_income(sync_engine, hid, pids[0], "WAGE", 1500, REVIEWED)
    first = review(live_server, eid, idempotencyKey="review-once")
    again = review(live_server, eid, idempotencyKey="review-once")
    assert first["errors"] == [] and again == first
    reused = review(live_server, eid, day="2026-06-03", idempotencyKey="review-once")
    assert [e["code"] for e in reused["errors"]] == ["IDEMPOTENCY_KEY_REUSED"]
    # a second household reviewed by four requests at once: one review, the others find it not due any more
    eid2, hid2, pids2 = running(sync_engine, db_url, policy, wage=1000)
    add_income(sync_engine, hid2, pids2[0], "WAGE", 4000, REVIEWED)
    steps = lambda: run(db_url, lambda s: _reviews_of(s, eid2))

    def send(_):
        r = live_server.post(OPERATION_TEXT["ConductReview"], {"input": {"enrollmentId": eid_(eid2),
                                                                          "reviewDate": str(REVIEWED)}},
                             "ConductReview")
        assert r.status_code == 200, r.text
        return r.json()["data"]["conductReview"]

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(send, range(4)))
    assert sum(1 for a in answers if a["errors"] == []) == 1, answers
    assert all(a["errors"][0]["code"] == "INVALID_TRANSITION" for a in answers if a["errors"])
    assert steps() == 1


async def _reviews_of(session, eid: int) -> int:
    from sqlalchemy import func

    return (await session.execute(select(func.count()).select_from(EnrollmentStep).where(
        EnrollmentStep.enrollment_id == eid, EnrollmentStep.action == "PERIODIC_REVIEW"))).scalar_one()


DUE = """query Due($regionCode: String!, $asOf: Date) {
  dueReviews(regionCode: $regionCode, asOf: $asOf, first: 100) { totalCount edges { node { id nextReviewDate } } }
}"""


def test_due_reviews_listed_in_scope(live_server, sync_engine, db_url, policy):
    eid, _, _ = running(sync_engine, db_url, policy, wage=1000)
    fujian, _, _ = running(sync_engine, db_url, policy, wage=1000, region=FUZHOU)
    with session_scope(sync_engine) as s:
        due_on = s.get(Enrollment, eid).next_review_date
        assert s.get(Enrollment, fujian).next_review_date is not None
    assert due_on == dt.date(2025, 12, 1)  # six months after activation: an employed member of working age

    def listed(region, as_of):
        body = live_server.post(DUE, {"regionCode": region, "asOf": as_of}).json()
        assert "errors" not in body, body
        return body["data"]["dueReviews"]

    ids = [e["node"]["id"] for e in listed("4401", "2025-12-01")["edges"]]
    assert eid_(eid) in ids
    assert eid_(eid) not in [e["node"]["id"] for e in listed("4401", "2025-11-30")["edges"]]
    assert listed("35", "2026-06-01") == {"totalCount": 0, "edges": []}  # Fujian: outside admin44's scope
    dates = [e["node"]["nextReviewDate"] for e in listed("44", "2026-06-01")["edges"]]
    assert dates == sorted(dates)
