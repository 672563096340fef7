"""Service-type assistance and charity against a live server on SQLite and PostgreSQL: a service the province does
not enable is an error, orders move through visits to DONE, charity money is drawn down and never below zero,
every step in the aid chain and the audit log, scope as everywhere."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from aidgraph.core.storage.models import AidChainEvent, AuditLog, CharityMatch, ServiceOrder
from aidgraph.schema.relay import to_global_id
from tests.casework.conftest import count, token_for

PROVIDER = """mutation P($input: ServiceProviderInput!) { addServiceProvider(input: $input) {
    provider { id name kind } errors { code field message } } }"""
ORDER = """mutation O($input: OrderServiceInput!) { orderService(input: $input) {
    order { id service status visits } errors { code field message } } }"""
VISIT = """mutation V($o: ID!, $n: String!) { recordServiceVisit(orderId: $o, note: $n) {
    order { status visits lastVisitOn } errors { code field } } }"""
CLOSE = """mutation C($o: ID!, $s: String!) { closeServiceOrder(orderId: $o, status: $s) {
    order { status } errors { code field } } }"""
CHARITY = """mutation R($input: CharityResourceInput!) { addCharityResource(input: $input) {
    resource { id kind amount remaining } errors { code field } } }"""
MATCH = """mutation M($input: MatchCharityInput!) { matchCharity(input: $input) {
    resource { id remaining } errors { code field message } } }"""


def run(live, query, variables, token=...):
    body = live.post(query, variables, token=token).json()
    assert "errors" not in body, body
    return next(iter(body["data"].values()))


def test_service_orders_and_charity(live_server, world, sync_engine, db_url):
    person = world.persons[24]
    household = to_global_id("Household", person.household_id)
    county = person.region_code[:6]
    caseworker = token_for(db_url, sync_engine, "cw_service", "township_caseworker", person.region_code[:9])
    provider = run(live_server, PROVIDER, {"input": {"regionCode": county, "name": "阳光社工服务中心",
                                                     "kind": "PURCHASED_PROJECT", "budget": 200000,
                                                     "periodStart": "2024-01-01", "periodEnd": "2030-12-31"}})
    assert provider["errors"] == []
    pid = provider["provider"]["id"]
    assert run(live_server, PROVIDER, {"input": {"regionCode": county, "name": "x", "kind": "FRIENDS"}}
               )["errors"][0]["field"] == "kind"
    before = count(sync_engine, ServiceOrder)
    unknown = run(live_server, ORDER, {"input": {"householdId": household, "service": "spa_treatment",
                                                 "providerId": pid}}, token=caseworker)
    assert unknown["errors"][0]["code"] == "VALIDATION" and unknown["errors"][0]["field"] == "service"
    assert count(sync_engine, ServiceOrder) == before
    ordered = run(live_server, ORDER, {"input": {"householdId": household, "service": "counselling", "providerId": pid,
                                                 "personId": to_global_id("Person", person.id)}}, token=caseworker)
    assert ordered["errors"] == [] and ordered["order"]["status"] == "OPEN"
    oid = ordered["order"]["id"]
    assert run(live_server, CLOSE, {"o": oid, "s": "DONE"}, token=caseworker)["errors"][0]["code"] == \
        "INVALID_TRANSITION"
    first = run(live_server, VISIT, {"o": oid, "n": "首次心理疏导"}, token=caseworker)
    assert first["order"]["status"] == "IN_PROGRESS" and first["order"]["visits"] == 1
    run(live_server, VISIT, {"o": oid, "n": "第二次"}, token=caseworker)
    done = run(live_server, CLOSE, {"o": oid, "s": "DONE"}, token=caseworker)
    assert done["order"]["status"] == "DONE"
    other = token_for(db_url, sync_engine, "cw_service_other", "township_caseworker", "440106001")
    if not person.region_code.startswith("440106001"):
        assert run(live_server, VISIT, {"o": oid, "n": "x"}, token=other)["errors"][0]["code"] == "NOT_FOUND"
    listed = live_server.post("query($r: String!) { serviceOrders(regionCode: $r) { totalCount edges { node { id } } } }",
                              {"r": person.region_code[:9]}, token=caseworker).json()["data"]["serviceOrders"]
    assert oid in {e["node"]["id"] for e in listed["edges"]}

    resource = run(live_server, CHARITY, {"input": {"regionCode": county, "organisation": "某慈善会",
                                                    "project": "大病帮扶", "kind": "MONEY", "amount": 1000}})
    rid = resource["resource"]["id"]
    assert resource["resource"]["remaining"] == 1000
    assert run(live_server, CHARITY, {"input": {"regionCode": county, "organisation": "x", "project": "y",
                                                "kind": "MONEY"}})["errors"][0]["field"] == "amount"
    matched = run(live_server, MATCH, {"input": {"resourceId": rid, "householdId": household, "amount": 700}},
                  token=caseworker)
    assert matched["errors"] == [] and matched["resource"]["remaining"] == 300
    over = run(live_server, MATCH, {"input": {"resourceId": rid, "householdId": household, "amount": 400}},
               token=caseworker)
    assert over["errors"][0]["field"] == "amount" and "300" in over["errors"][0]["message"]
    assert count(sync_engine, CharityMatch, CharityMatch.household_id == person.household_id) == 1
    with Session(sync_engine) as s:
        chain = s.scalars(select(AidChainEvent.summary).where(AidChainEvent.household_id == person.household_id,
                                                               AidChainEvent.ref_type.in_(["service_order",
                                                                                           "charity_match"]))).all()
        assert len(chain) == 5 and any("慈善帮扶" in c for c in chain)
        actions = set(s.scalars(select(AuditLog.action).where(AuditLog.object_type.in_(["service", "charity"]))))
        assert {"add_provider", "order_service", "service_visit", "close_service", "add_charity",
                "match_charity"} <= actions


CANDIDATES = """query C($r: String!, $first: Int, $after: String) { charityCandidates(regionCode: $r, first: $first,
  after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { node { household { id } monthlyIncome
  monthlyAid monthlyRigidExpenditure monthlyShortfall receiving charityMatches } } } }"""


def test_charity_candidates_are_the_households_aid_leaves_short(live_server, world, sync_engine, db_url):
    """GD-2021 §18 政府救助与慈善救助衔接 / GD-2022 救助服务供给信息与困难群众需求有效对接: medical costs of 60,000 yuan
    in the 12-month window (5,000 a month) against wages of 12,000 (1,000 a month) and dibao of 500 a month leave
    3,500 a month short; a household without such costs is no candidate."""
    import datetime as dt
    from decimal import Decimal

    from sqlalchemy import insert

    from aidgraph.core.storage.models import EconomicItem, Enrollment

    today = dt.date.today()
    short, covered = world.persons[27], world.persons[21]  # two households (three members each)
    with Session(sync_engine) as s, s.begin():
        for person, kind, amount, days in ((short, "EXPENDITURE_MEDICAL", 60000, 30), (short, "WAGE", 12000, 360),
                                           (covered, "WAGE", 12000, 360), (covered, "EXPENDITURE_MEDICAL", 6000, 30)):
            s.execute(insert(EconomicItem), {"household_id": person.household_id, "person_id": person.id,
                                             "kind": kind, "source": "test", "amount": Decimal(amount),
                                             "period_start": today - dt.timedelta(days=days),
                                             "period_end": today - dt.timedelta(days=1)})
        s.execute(insert(Enrollment), {"household_id": short.household_id, "program_key": "dibao",
                                       "province_code": "44", "region_code": short.region_code, "status": "ACTIVE",
                                       "monthly_amount": Decimal(500), "start_date": today - dt.timedelta(days=90)})
    county = short.region_code[:6]
    officer = token_for(db_url, sync_engine, "county_charity", "county_officer", county)
    data = live_server.post(CANDIDATES, {"r": county}, token=officer).json()["data"]["charityCandidates"]
    mine = [e["node"] for e in data["edges"] if e["node"]["household"]["id"] == to_global_id("Household",
                                                                                          short.household_id)]
    assert mine == [{"household": {"id": to_global_id("Household", short.household_id)}, "monthlyIncome": 1000.0,
                     "monthlyAid": 500.0, "monthlyRigidExpenditure": 5000.0, "monthlyShortfall": 3500.0,
                     "receiving": ["dibao"], "charityMatches": 0}]
    ids = [e["node"]["household"]["id"] for e in data["edges"]]
    assert to_global_id("Household", covered.household_id) not in ids and data["totalCount"] == len(ids)
    shortfalls = [e["node"]["monthlyShortfall"] for e in data["edges"]]
    assert shortfalls == sorted(shortfalls, reverse=True)
    # paging follows the cursor
    first = live_server.post(CANDIDATES, {"r": county, "first": 1}, token=officer).json()["data"]["charityCandidates"]
    assert [e["node"]["household"]["id"] for e in first["edges"]] == ids[:1]
    # a province is refused (a county or smaller), and so is a role without the income right
    broad = live_server.post(CANDIDATES, {"r": county[:2]}, token=officer).json()
    assert broad["errors"][0]["extensions"] == {"code": "VALIDATION", "field": "regionCode"}
    assistant = token_for(db_url, sync_engine, "va_charity", "village_assistant", short.region_code)
    refused = live_server.post(CANDIDATES, {"r": short.region_code}, token=assistant).json()
    assert refused["data"] is None and refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
