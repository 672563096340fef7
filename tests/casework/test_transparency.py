"""公示, 双随机 and 追回 against a live server on SQLite and PostgreSQL: the village notice masks names and shows
no ID number or income, a village outside the caller's scope is an error, exports are audited; the inspection
sample is reproducible from its seed; recovery orders never claim more than was paid."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from aidgraph.core.storage.models import AuditLog, Enrollment, Household, Payment, Person
from aidgraph.schema.relay import from_global_id, to_global_id
from tests.casework.conftest import seed_township, token_for

DISCLOSURE = """query D($v: String!) { publicDisclosure(villageCode: $v) { villageCode villageName publishedOn until
    lines { maskedName householdSize programKey monthlyAmount since } } }"""
NOTICE = "mutation N($v: String!) { exportDisclosureNotice(villageCode: $v) { notice errors { code field } } }"
SAMPLE = """mutation S($c: String!, $n: Int, $s: String) { drawInspectionSample(countyCode: $c, size: $n, seed: $s) {
    sample { seed enrollments { id } } errors { code field } } }"""
ISSUE = """mutation I($input: IssueRecoveryOrderInput!) { issueRecoveryOrder(input: $input) {
    order { id amount recovered status } errors { code field message } } }"""
RECOVER = """mutation R($input: RecordRecoveryInput!) { recordRecovery(input: $input) {
    order { id amount recovered status } errors { code field message } } }"""


@pytest.fixture(scope="module")
def village(sync_engine):
    """Six households of one township; the first two moved into one village; receiving cases written directly."""
    world = seed_township(sync_engine, "44", households=6, start=5)
    households = list(world.households)
    code = world.households[households[0]]
    with Session(sync_engine) as s, s.begin():
        s.execute(update(Household).where(Household.id == households[1]).values(region_code=code))
        s.execute(update(Person).where(Person.id.in_([p.id for p in world.persons
                                                      if p.household_id == households[1]])).values(region_code=code))
        cases = []
        for h, key, status, amount in ((households[0], "dibao", "ACTIVE", 500), (households[1], "tekun", "ACTIVE", 800),
                                       (households[0], "temporary", "ACTIVE", None),
                                       (households[2], "dibao", "ACTIVE", 600), (households[3], "dibao", "ENDED", 400),
                                       (households[4], "tekun", "GRADUAL_EXIT", 700),
                                       (households[5], "dibao", "ACTIVE", 450)):
            region = code if h in households[:2] else world.households[h]
            cases.append(s.execute(insert(Enrollment).returning(Enrollment.id), {
                "household_id": h, "program_key": key, "province_code": "44", "region_code": region, "status": status,
                "monthly_amount": Decimal(amount) if amount else None, "start_date": dt.date(2025, 1, 1)}).scalar_one())
        for period in ("2025-01", "2025-02"):
            s.execute(insert(Payment), {"enrollment_id": cases[0], "household_id": households[0],
                                        "amount": Decimal(500), "period": period})
    return world, households, code, cases


def test_public_disclosure_masks_and_is_scoped_and_audited(live_server, village, sync_engine, db_url):
    world, households, code, _ = village
    data = live_server.post(DISCLOSURE, {"v": code}).json()["data"]["publicDisclosure"]
    assert data["until"] == (dt.date.fromisoformat(data["publishedOn"]) + dt.timedelta(days=7)).isoformat()
    lines = sorted(data["lines"], key=lambda x: x["programKey"])
    assert [(x["programKey"], x["monthlyAmount"], x["householdSize"]) for x in lines] == [("dibao", 500, 3),
                                                                                          ("tekun", 800, 3)]
    heads = {p.household_id: p.name for p in world.persons[::3]}
    for line, h in zip(lines, households[:2]):
        assert line["maskedName"] == heads[h][0] + "*" * (len(heads[h]) - 1)
    body = live_server.post(NOTICE, {"v": code}).json()["data"]["exportDisclosureNotice"]
    notice = body["notice"]
    assert body["errors"] == [] and "公示期" in notice and "共 2 户" in notice
    for p in world.persons:
        assert p.id_number not in notice and p.name not in notice
    with Session(sync_engine) as s:
        row = s.scalars(select(AuditLog).where(AuditLog.object_type == "disclosure", AuditLog.object_id == code)).one()
        assert row.action == "export" and row.detail["lines"] == 2
    other = token_for(db_url, sync_engine, "cw_disclose", "township_caseworker", "440106001")
    outside = live_server.post(DISCLOSURE, {"v": code}, token=other).json()
    assert outside["data"] is None and outside["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    refused = live_server.post(NOTICE, {"v": code}, token=other).json()["data"]["exportDisclosureNotice"]
    assert refused["notice"] is None and refused["errors"][0]["code"] == "FORBIDDEN"
    county = live_server.post(DISCLOSURE, {"v": code[:6]}).json()
    assert county["errors"][0]["extensions"]["code"] == "VALIDATION"


def test_inspection_sample_is_reproducible_from_its_seed(live_server, village, sync_engine, db_url):
    world, households, code, cases = village
    officer = token_for(db_url, sync_engine, "county_sample", "county_officer", code[:6])
    first = live_server.post(SAMPLE, {"c": code[:6], "n": 4, "s": "2025-06 抽查"}, token=officer).json()
    drawn = first["data"]["drawInspectionSample"]["sample"]
    again = live_server.post(SAMPLE, {"c": code[:6], "n": 4, "s": "2025-06 抽查"}, token=officer).json()
    assert again["data"]["drawInspectionSample"]["sample"] == drawn and len(drawn["enrollments"]) == 4
    receiving = {to_global_id("Enrollment", i) for i, status in zip(cases, ["A", "A", "A", "A", "E", "G", "A"])
                 if status != "E"}
    assert {e["id"] for e in drawn["enrollments"]} <= receiving
    whole = live_server.post(SAMPLE, {"c": code[:6], "n": 100, "s": "x"}, token=officer).json()
    everyone = {e["id"] for e in whole["data"]["drawInspectionSample"]["sample"]["enrollments"]}
    with Session(sync_engine) as s:
        direct = set(s.scalars(select(Enrollment.id).where(Enrollment.region_code.startswith(code[:6]),
                                                           Enrollment.status.in_(["ACTIVE", "GRADUAL_EXIT"]))))
        audits = s.scalars(select(AuditLog).where(AuditLog.action == "inspection_sample")).all()
    assert everyone == {to_global_id("Enrollment", i) for i in direct}
    assert audits[0].detail["seed"] == "2025-06 抽查" and len(audits[0].detail["cases"]) == 4
    bad = live_server.post(SAMPLE, {"c": code[:6], "n": 0}, token=officer).json()["data"]["drawInspectionSample"]
    assert bad["errors"][0]["field"] == "size"
    other = token_for(db_url, sync_engine, "county_other", "county_officer", "440106")
    if not code.startswith("440106"):
        outside = live_server.post(SAMPLE, {"c": code[:6]}, token=other).json()["data"]["drawInspectionSample"]
        assert outside["errors"][0]["code"] == "FORBIDDEN"


DRAW = """mutation S($c: String!, $n: Int, $s: String, $k: Int) {
  drawInspectionSample(countyCode: $c, size: $n, seed: $s, inspectorsPerCase: $k) {
    sample { seed assignments { enrollment { id } inspectors } } errors { code field message } } }"""


def test_inspectors_are_drawn_from_the_countys_roster_reproducibly(live_server, village, sync_engine, db_url):
    """双随机 (GD-2021 健全"双随机、一公开"监督机制): the cases and, for each, inspectors drawn at random from the users
    who may review the whole county's cases; a caseworker of one of its townships is not on the roster."""
    world, households, code, cases = village
    officer = token_for(db_url, sync_engine, "county_draw", "county_officer", code[:6])
    token_for(db_url, sync_engine, "county_draw_2", "county_officer", code[:6])
    token_for(db_url, sync_engine, "township_in_county", "township_caseworker", code[:9])
    token_for(db_url, sync_engine, "county_elsewhere", "county_officer", "440106" if code[:6] != "440106" else "440105")
    variables = {"c": code[:6], "n": 4, "s": "2025-06 抽查", "k": 2}
    first = live_server.post(DRAW, variables, token=officer).json()["data"]["drawInspectionSample"]
    assert first["errors"] == []
    again = live_server.post(DRAW, variables, token=officer).json()["data"]["drawInspectionSample"]
    assert again == first  # the same seed draws the same cases and the same inspectors
    assignments = first["sample"]["assignments"]
    assert len(assignments) == 4
    named = {name for a in assignments for name in a["inspectors"]}
    assert all(len(set(a["inspectors"])) == 2 for a in assignments)
    assert {"county_draw", "county_draw_2"} & named
    assert "township_in_county" not in named and "county_elsewhere" not in named
    with Session(sync_engine) as s:
        audit = s.scalars(select(AuditLog).where(AuditLog.action == "inspection_sample")
                          .order_by(AuditLog.id.desc())).first()
    assert audit.detail["inspectors"] == {str(from_global_id(a["enrollment"]["id"])[1]): a["inspectors"]
                                          for a in assignments}
    too_many = live_server.post(DRAW, {**variables, "k": 500}, token=officer).json()["data"]["drawInspectionSample"]
    assert too_many["sample"] is None and too_many["errors"][0]["field"] == "inspectorsPerCase"


def test_recovery_orders_never_claim_more_than_was_paid(live_server, village, sync_engine, db_url):
    world, households, code, cases = village
    case = to_global_id("Enrollment", cases[0])  # 2 x 500 paid
    too_much = live_server.post(ISSUE, {"input": {"enrollmentId": case, "amount": 1200, "reason": "隐瞒收入"}}).json()
    assert too_much["data"]["issueRecoveryOrder"]["errors"][0]["field"] == "amount"
    caseworker = token_for(db_url, sync_engine, "cw_recover", "township_caseworker", code[:9])
    assert live_server.post(ISSUE, {"input": {"enrollmentId": case, "amount": 100, "reason": "隐瞒收入"}},
                            token=caseworker).json()["data"]["issueRecoveryOrder"]["errors"][0]["code"] == "FORBIDDEN"
    issued = live_server.post(ISSUE, {"input": {"enrollmentId": case, "amount": 600,
                                                "reason": "隐瞒务工收入骗取低保"}}).json()["data"]["issueRecoveryOrder"]
    assert issued["errors"] == [] and issued["order"]["status"] == "ISSUED"
    second = live_server.post(ISSUE, {"input": {"enrollmentId": case, "amount": 500, "reason": "x"}}).json()
    assert "400" in second["data"]["issueRecoveryOrder"]["errors"][0]["message"]
    order = issued["order"]["id"]
    part = live_server.post(RECOVER, {"input": {"orderId": order, "amount": 200}}).json()["data"]["recordRecovery"]
    assert part["order"]["status"] == "PARTIAL" and part["order"]["recovered"] == 200
    over = live_server.post(RECOVER, {"input": {"orderId": order, "amount": 500}}).json()["data"]["recordRecovery"]
    assert over["errors"][0]["code"] == "VALIDATION"
    done = live_server.post(RECOVER, {"input": {"orderId": order, "amount": 400}}).json()["data"]["recordRecovery"]
    assert done["order"]["status"] == "RECOVERED"
    closed = live_server.post(RECOVER, {"input": {"orderId": order, "amount": 1}}).json()["data"]["recordRecovery"]
    assert closed["errors"][0]["code"] == "INVALID_TRANSITION"


PAYMENTS = "query P($e: ID!) { payments(enrollmentId: $e) { period installment amount } }"
ORDERS = """query O($r: String!, $s: RecoveryStatus) { recoveryOrders(regionCode: $r, status: $s) { totalCount
    edges { node { id amount recovered status reason enrollment { id } household { id } } } } }"""
CANCEL = """mutation C($input: CancelRecoveryOrderInput!) { cancelRecoveryOrder(input: $input) {
    order { id status } errors { code field message } } }"""


def test_recovery_orders_are_listed_by_region_and_withdrawn_while_nothing_is_recovered(live_server, village,
                                                                                       sync_engine, db_url):
    world, households, code, cases = village
    case = to_global_id("Enrollment", cases[3])
    gansu = token_for(db_url, sync_engine, "admin62_recover", "province_admin", "62")
    with Session(sync_engine) as s, s.begin():
        for period in ("2025-03", "2025-04"):
            s.execute(insert(Payment), {"enrollment_id": cases[3], "household_id": households[2],
                                        "amount": Decimal(600), "period": period})
    paid = live_server.post(PAYMENTS, {"e": case}).json()["data"]["payments"]
    assert paid == [{"period": "2025-04", "installment": "REGULAR", "amount": 600.0},
                    {"period": "2025-03", "installment": "REGULAR", "amount": 600.0}]
    assert live_server.post(PAYMENTS, {"e": case}, token=gansu).json()["data"]["payments"] == []

    issued = live_server.post(ISSUE, {"input": {"enrollmentId": case, "amount": 700, "reason": "隐瞒经营收入"}}).json()
    order = issued["data"]["issueRecoveryOrder"]["order"]["id"]
    town = world.households[households[2]][:9]
    listed = live_server.post(ORDERS, {"r": town, "s": "ISSUED"}).json()["data"]["recoveryOrders"]
    node = next(e["node"] for e in listed["edges"] if e["node"]["id"] == order)
    assert node["enrollment"]["id"] == case and node["household"]["id"] == to_global_id("Household", households[2])
    assert live_server.post(ORDERS, {"r": "62"}, token=gansu).json()["data"]["recoveryOrders"]["totalCount"] == 0

    caseworker = token_for(db_url, sync_engine, "cw_cancel", "township_caseworker", town)
    refused = live_server.post(CANCEL, {"input": {"orderId": order, "reason": "复核认定无骗取"}},
                               token=caseworker).json()["data"]["cancelRecoveryOrder"]
    assert refused["errors"][0]["code"] == "FORBIDDEN"
    no_reason = live_server.post(CANCEL, {"input": {"orderId": order, "reason": " "}}).json()["data"]["cancelRecoveryOrder"]
    assert no_reason["errors"][0]["field"] == "reason"
    cancelled = live_server.post(CANCEL, {"input": {"orderId": order, "reason": "复核认定无骗取"}}).json()
    assert cancelled["data"]["cancelRecoveryOrder"]["order"]["status"] == "CANCELLED"
    again = live_server.post(CANCEL, {"input": {"orderId": order, "reason": "x"}}).json()["data"]["cancelRecoveryOrder"]
    assert again["errors"][0]["code"] == "INVALID_TRANSITION"
    # withdrawn, its amount may be claimed again: the whole 1200 paid
    full = live_server.post(ISSUE, {"input": {"enrollmentId": case, "amount": 1200, "reason": "隐瞒经营收入"}}).json()
    second = full["data"]["issueRecoveryOrder"]["order"]["id"]
    live_server.post(RECOVER, {"input": {"orderId": second, "amount": 100}})
    partial = live_server.post(CANCEL, {"input": {"orderId": second, "reason": "x"}}).json()["data"]["cancelRecoveryOrder"]
    assert partial["errors"][0]["code"] == "INVALID_TRANSITION"  # something was recovered under it already
    statuses = {e["node"]["id"]: e["node"]["status"] for e in live_server.post(ORDERS, {"r": town}).json()[
        "data"]["recoveryOrders"]["edges"]}
    assert statuses[order] == "CANCELLED" and statuses[second] == "PARTIAL"
    with Session(sync_engine) as s:
        assert s.scalars(select(AuditLog.action).where(AuditLog.action == "cancel_recovery")).all() == ["cancel_recovery"]
