"""The contract operations Programs, Eligibility, EligibilityGaps, ApplyForAid, DecideEnrollment and
SettleMedicalAid against a live server (both engines), sent unchanged from tests/contract/operations.graphql."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text

from aidgraph.core.storage.db import make_sync_engine
from aidgraph.core.graph.economics import window_start
from aidgraph.core.graph.idnumber import make

TODAY = dt.date.today()
SHANTOU = "440507001001"
LANZHOU_VILLAGE = "620102001001"


def member(address: str, age: int, seq: int, relation: str = "SELF", **extra) -> dict:
    birth = dt.date(TODAY.year - age, 3, 1)
    return {"name": f"测试{seq}", "idNumber": make(address, birth, seq), "relationToHead": relation, **extra}


def register(live, region: str, members: list[dict], token=...) -> dict:
    data = live.data("RegisterHousehold", {"input": {"regionCode": region, "members": members}}, token=token)
    payload = data["registerHousehold"]
    assert payload["errors"] == [], payload["errors"]
    return payload["household"]


def wages(live, household_id: str, monthly: float, kind: str = "WAGE", token=...) -> None:
    data = live.data("RecordEconomicItem", {"input": {
        "householdId": household_id, "kind": kind, "source": "tax", "amount": monthly * 12,
        "periodStart": window_start(TODAY).isoformat(), "periodEnd": TODAY.isoformat()}}, token=token)
    assert data["recordEconomicItem"]["errors"] == []


@pytest.fixture(scope="module", autouse=True)
def gansu_token(db_url):
    """A Gansu administrator, created before the live server starts (so its policies are loaded at start)."""
    from aidgraph.core.app.demo import ensure_demo_user
    from tests.conftest import server_settings

    engine = make_sync_engine(db_url)
    token = ensure_demo_user(engine, server_settings(db_url), username="admin62", region_codes=("62",))
    engine.dispose()
    return token


def test_programs(live_server):
    programs = live_server.data("Programs", {"provinceCode": "44"})["programs"]
    keys = [p["key"] for p in programs]
    assert {"dibao", "tekun", "dibao_edge", "expenditure_hardship", "medical", "education", "housing", "employment",
            "temporary", "temporary_emergency", "disaster", "disability", "relapse_monitoring"} <= set(keys)
    assert all(p["provinceCode"] == "44" for p in programs)
    assert next(p for p in programs if p["key"] == "dibao")["domain"] == "basic_living"
    assert live_server.data("Programs", {"provinceCode": "99"})["programs"] == []


def test_eligibility_apply_decide_and_settle(live_server, db_url):
    household = register(live_server, SHANTOU, [member("440507", 45, 11, labourCapacity="FULL",
                                                       employmentStatus="UNEMPLOYED"),
                                                member("440507", 10, 13, "CHILD")])
    hid = household["id"]
    wages(live_server, hid, 500)
    # missing data is not zero income: with wages verified but no financial-asset record, dibao is not decided
    unverified = {r["program"]["key"]: r for r in live_server.data("Eligibility", {"householdId": hid})["eligibility"]}
    assert not unverified["dibao"]["eligible"] and unverified["dibao"]["monthlyAmount"] is None
    assert "not met: needs economic verification (家庭经济状况核对): missing financial assets" in unverified["dibao"]["reasons"]
    wages(live_server, hid, 0, kind="DEPOSIT")  # the bank check found no deposits: a verified 0
    results = {r["program"]["key"]: r for r in live_server.data("Eligibility", {"householdId": hid})["eligibility"]}
    dibao = results["dibao"]
    # 500 a month for 2 members: 250 per capita below the standard 1200; gap (1200 - 250) x 2
    assert dibao["eligible"] and dibao["monthlyAmount"] == pytest.approx(1900)
    assert any("1200.00" in r and "250.00" in r for r in dibao["reasons"])
    assert not results["tekun"]["eligible"] and results["employment"]["eligible"]

    gaps = live_server.data("EligibilityGaps", {"regionCode": "440507", "program": "dibao", "first": 10})
    assert hid in [e["node"]["household"]["id"] for e in gaps["eligibilityGaps"]["edges"]]
    assert all(e["node"]["program"]["key"] == "dibao" for e in gaps["eligibilityGaps"]["edges"])

    apply = live_server.data("ApplyForAid", {"input": {"householdId": hid, "programKey": "dibao",
                                                       "idempotencyKey": "apply-1"}})["applyForAid"]
    assert apply["errors"] == [] and apply["enrollment"]["status"] == "APPLIED"
    again = live_server.data("ApplyForAid", {"input": {"householdId": hid, "programKey": "dibao",
                                                       "idempotencyKey": "apply-1"}})["applyForAid"]
    assert again["enrollment"]["id"] == apply["enrollment"]["id"]
    eid = apply["enrollment"]["id"]
    # no longer a gap once applied
    gaps = live_server.data("EligibilityGaps", {"regionCode": "440507", "program": "dibao"})
    assert hid not in [e["node"]["household"]["id"] for e in gaps["eligibilityGaps"]["edges"]]

    def decide(action):
        return live_server.data("DecideEnrollment", {"input": {"enrollmentId": eid, "action": action}})["decideEnrollment"]

    wrong = decide("APPROVE")
    assert wrong["enrollment"] is None and wrong["errors"][0]["code"] == "INVALID_TRANSITION"
    for action, status in (("START_VERIFICATION", "VERIFYING"), ("REVIEW", "REVIEWED"), ("APPROVE", "APPROVED"),
                           ("ACTIVATE", "ACTIVE")):
        result = decide(action)
        assert result["errors"] == [] and result["enrollment"]["status"] == status
    assert result["enrollment"]["monthlyAmount"] == pytest.approx(1900)

    detail = live_server.data("HouseholdDetail", {"id": hid})["household"]
    assert "DIBAO" in detail["categories"]
    assert any(e["program"]["key"] == "dibao" and e["status"] == "ACTIVE" for e in detail["enrollments"])
    kinds = [edge["node"]["kind"] for edge in detail["aidChain"]["edges"]]
    assert {"APPLICATION", "DECISION", "PAYMENT", "REFERRAL"} <= set(kinds)

    head = detail["members"][0]["person"]["id"] if detail["members"][0]["relationToHead"] == "SELF" else \
        detail["members"][1]["person"]["id"]
    claim = live_server.data("SettleMedicalAid", {"input": {
        "personId": head, "admissionDate": TODAY.isoformat(), "compliantCost": 10000, "insurancePaid": 4000,
        "idempotencyKey": "claim-1"}})["settleMedicalAid"]
    assert claim["errors"] == []
    c = claim["claim"]
    # Guangdong (GD-2024): dibao recipients at least 80%, no deductible, no cap, no secondary aid configured
    assert c["category"] == "DIBAO" and c["aidAmount"] == pytest.approx(4800)
    assert c["secondaryAidAmount"] == 0 and c["outOfPocket"] == pytest.approx(1200)
    assert any("aid ratio 80%" in r for r in c["reasons"])

    # One settlement sent six times at once with one key (a client retrying while the first is still running):
    # settled and paid once, and every sender gets that settlement.
    engine = make_sync_engine(db_url)
    with engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM medical_claim")).scalar_one()

    def settle(_: int) -> dict:
        return live_server.data("SettleMedicalAid", {"input": {
            "personId": head, "admissionDate": TODAY.isoformat(), "compliantCost": 3000, "insurancePaid": 1000,
            "idempotencyKey": "claim-at-once"}})["settleMedicalAid"]

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(settle, range(6)))
    assert [a["errors"] for a in answers] == [[]] * 6 and len({str(a["claim"]) for a in answers}) == 1
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM medical_claim")).scalar_one() == before + 1
    engine.dispose()


def test_bad_input_errors(live_server):
    household = register(live_server, SHANTOU, [member("440507", 50, 21)])
    hid = household["id"]
    unknown = live_server.data("ApplyForAid", {"input": {"householdId": hid, "programKey": "nope"}})["applyForAid"]
    assert unknown["enrollment"] is None and unknown["errors"][0]["code"] == "VALIDATION"
    assert unknown["errors"][0]["field"] == "programKey"
    missing = live_server.data("ApplyForAid", {"input": {"householdId": "SG91c2Vob2xkOjk5OTk5OTk=",
                                                         "programKey": "dibao"}})["applyForAid"]
    assert missing["errors"][0]["code"] == "NOT_FOUND"
    person = household["members"][0]["person"]["id"]
    uncovered = live_server.data("SettleMedicalAid", {"input": {
        "personId": person, "admissionDate": TODAY.isoformat(), "compliantCost": 1000, "insurancePaid": 500}}
    )["settleMedicalAid"]
    assert uncovered["claim"] is None and uncovered["errors"][0]["code"] == "VALIDATION"
    assert live_server.data("Eligibility", {"householdId": "SG91c2Vob2xkOjk5OTk5OTk="})["eligibility"] is None
    too_many = live_server.op("EligibilityGaps", {"regionCode": "44", "first": 101})
    assert too_many["errors"][0]["extensions"]["code"] == "VALIDATION"


def test_gansu_illness_impoverished_settlement_and_scope(live_server, gansu_token):
    household = register(live_server, LANZHOU_VILLAGE, [member("620102", 50, 31)], token=gansu_token)
    hid = household["id"]
    person = household["members"][0]["person"]["id"]
    # the Guangdong administrator cannot see a Gansu household: null, as if it did not exist
    assert live_server.data("Eligibility", {"householdId": hid})["eligibility"] is None
    from sqlalchemy import update

    from aidgraph.core.storage.models import Person
    from aidgraph.schema.relay import db_id

    engine = make_sync_engine(live_server.components.settings.database_url)
    with engine.begin() as conn:  # the health department's major-disease record (a feed in production)
        conn.execute(update(Person).where(Person.id == db_id(person, "Person")).values(major_disease=True))
    engine.dispose()
    wages(live_server, hid, 900, token=gansu_token)
    results = {r["program"]["key"]: r for r in live_server.data("Eligibility", {"householdId": hid},
                                                                token=gansu_token)["eligibility"]}
    assert results["medical"]["eligible"] and any("因病致贫" in r for r in results["medical"]["reasons"])
    apply = live_server.data("ApplyForAid", {"input": {"householdId": hid, "programKey": "medical", "personId": person}},
                             token=gansu_token)["applyForAid"]
    eid = apply["enrollment"]["id"]
    for action in ("START_VERIFICATION", "REVIEW", "APPROVE", "ACTIVATE"):
        result = live_server.data("DecideEnrollment", {"input": {"enrollmentId": eid, "action": action}},
                                  token=gansu_token)["decideEnrollment"]
        assert result["errors"] == [], result["errors"]
    claim = live_server.data("SettleMedicalAid", {"input": {
        "personId": person, "admissionDate": TODAY.isoformat(), "compliantCost": 100000, "insurancePaid": 40000}},
        token=gansu_token)["settleMedicalAid"]
    c = claim["claim"]
    # GS-2024: deductible 5,000 and 70%; out of pocket above 6,000 gets 70% of the excess
    assert c["category"] == "ILLNESS_IMPOVERISHED"
    assert c["aidAmount"] == pytest.approx(38500) and c["secondaryAidAmount"] == pytest.approx(10850)
    assert c["outOfPocket"] == pytest.approx(10650)
    assert any("annual deductible 5000.00" in r for r in c["reasons"])


def test_gaps_over_http_equal_the_full_recomputation(live_server, db_url):
    """EligibilityGaps reads the kept decisions (aidgraph.core.policy.decisions): over HTTP, page after page, its
    answer equals the engine's full recomputation of the region for the caller's scope, also right after a
    mutation; a bad cursor and a page above 100 get the same errors as before."""
    import asyncio

    from aidgraph.core.access.scope import Scope
    from aidgraph.core.policy.engine import PolicyEngine
    from aidgraph.core.storage.db import async_session_factory, make_async_engine
    from aidgraph.schema.relay import db_id

    def recomputed(region: str) -> list[tuple[int, str, float | None, list[str]]]:
        async def work():
            engine = make_async_engine(db_url)
            try:
                async with async_session_factory(engine)() as session:
                    policy = PolicyEngine(live_server.components.settings)
                    _, page = await policy.gaps(session, region_code=region, scope=Scope.of(["44"]), on=dt.date.today())
                    return page
            finally:
                await engine.dispose()

        page = asyncio.run(work())
        return [(r["household_id"], r["program"], r["monthly_amount"], r["reasons"]) for r in page.iter_rows(named=True)]

    def served(region: str) -> list[tuple[int, str, float | None, list[str]]]:
        rows, after = [], None
        while True:
            data = live_server.data("EligibilityGaps", {"regionCode": region, "first": 7, "after": after})["eligibilityGaps"]
            rows += [(db_id(e["node"]["household"]["id"], "Household"), e["node"]["program"]["key"],
                      e["node"]["monthlyAmount"], e["node"]["reasons"]) for e in data["edges"]]
            if not data["pageInfo"]["hasNextPage"]:
                assert data["totalCount"] == len(rows)
                return rows
            after = data["pageInfo"]["endCursor"]

    household = register(live_server, SHANTOU, [member("440507", 70, 61, labourCapacity="NONE")])
    wages(live_server, household["id"], 100)
    hid = db_id(household["id"], "Household")
    before = served("4405")
    assert before == recomputed("4405")
    wages(live_server, household["id"], 5000)  # a mutation: the next read sees it
    after = served("4405")
    assert after == recomputed("4405")
    assert [r for r in before if r[0] == hid] != [r for r in after if r[0] == hid]  # the mutation mattered
    bad = live_server.op("EligibilityGaps", {"regionCode": "4405", "after": "not-a-cursor"})
    assert bad["errors"][0]["extensions"]["code"] == "VALIDATION"
    too_many = live_server.op("EligibilityGaps", {"regionCode": "4405", "first": 101})
    assert too_many["errors"][0]["extensions"]["code"] == "VALIDATION"
