"""The contract's core operations against a live server over HTTP, on SQLite and PostgreSQL.

Operations come unchanged from tests/contract/operations.graphql (a copy of the frontends' document).
"""

from __future__ import annotations

import datetime as dt

import pytest

from aidgraph.core.graph.idnumber import make
from tests.live import OPERATIONS

VILLAGE = "440106011004"  # 棠德南社区居委会  # a real village under Tianhe district, Guangzhou (NBS 2023)
TOWNSHIP = VILLAGE[:9]


def member(name: str, number: str, relation: str = "SELF", **extra) -> dict:
    return {"name": name, "idNumber": number, "relationToHead": relation, **extra}


@pytest.fixture(scope="module")
def village(sync_engine):
    from sqlalchemy import text

    with sync_engine.connect() as conn:
        name = conn.execute(text("SELECT name FROM region WHERE code = :c"), {"c": VILLAGE}).scalar()
    assert name, "expected the village in the NBS data"
    return VILLAGE


@pytest.fixture(scope="module")
def family(live_server, village):
    head = make("440106", dt.date(1970, 5, 17), 11)
    spouse = make("440106", dt.date(1972, 3, 2), 22)
    child = make("440106", dt.date(2012, 9, 30), 31)
    data = live_server.data("RegisterHousehold", {"input": {
        "regionCode": village, "address": "天河区某街 1 号",
        "members": [member("张伟", head, employmentStatus="EMPLOYED", labourCapacity="FULL", phone="13812341234"),
                    member("李娜", spouse, "SPOUSE", chronicDisease=True, disabilityLevel=2),
                    member("张小明", child, "CHILD", employmentStatus="STUDENT")],
    }})["registerHousehold"]
    assert data["errors"] == []
    return {"id": data["household"]["id"], "head": head, "spouse": spouse, "child": child,
            "number": data["household"]["householdNumber"], "payload": data}


def test_every_contract_operation_validates_against_the_schema(live_server):
    from graphql import DocumentNode, parse, validate

    schema = live_server.components.schema._schema
    document = parse(OPERATIONS)
    problems = {}
    for definition in document.definitions:
        errors = validate(schema, DocumentNode(definitions=(definition,)))
        if errors:
            problems[definition.name.value] = [e.message for e in errors]
    assert problems == {}


def test_register_household(family):
    members = family["payload"]["household"]["members"]
    assert [m["relationToHead"] for m in members] == ["SELF", "SPOUSE", "CHILD"]
    assert members[0]["person"]["idNumber"] == family["head"]  # the development user may read in full
    assert family["number"].startswith("H" + VILLAGE)


def test_me(live_server):
    me = live_server.data("Me")["me"]
    assert me["username"]
    assert isinstance(me["roles"], list)


def test_region_overview(live_server, family):
    region = live_server.data("RegionOverview", {"code": TOWNSHIP})["region"]
    assert region["level"] == "TOWNSHIP"
    assert region["parent"]["code"] == "440106"
    assert VILLAGE in [c["code"] for c in region["children"]]
    assert all(c["level"] == "VILLAGE" for c in region["children"])
    assert region["stats"]["households"] >= 1
    assert region["stats"]["persons"] >= 3
    assert live_server.data("RegionOverview", {"code": "999999"})["region"] is None


def test_household_detail(live_server, family):
    h = live_server.data("HouseholdDetail", {"id": family["id"]})["household"]
    assert h["householdNumber"] == family["number"]
    assert h["region"] == {"code": VILLAGE, "name": h["region"]["name"], "level": "VILLAGE"}
    persons = {m["person"]["idNumber"]: m for m in h["members"]}
    spouse = persons[family["spouse"]]["person"]
    assert spouse["sex"] == "FEMALE" and spouse["birthDate"] == "1972-03-02"
    assert spouse["chronicDisease"] is True and spouse["disabilityLevel"] == 2
    assert persons[family["head"]]["person"]["sex"] == "MALE"
    assert h["categories"] == [] and h["warningLevel"] is None and h["alerts"] == []
    kinds = [e["node"]["kind"] for e in h["aidChain"]["edges"]]
    assert "MEMBERSHIP" in kinds


def test_node_lookup(live_server, family):
    node = live_server.data("NodeLookup", {"id": family["id"]})["node"]
    assert node["householdNumber"] == family["number"] and node["region"]["code"] == VILLAGE
    assert live_server.data("NodeLookup", {"id": "bm9uc2Vuc2U="})["node"] is None
    assert live_server.data("NodeLookup", {"id": "SG91c2Vob2xkOjk5OTk5OTk="})["node"] is None  # Household:9999999


def test_person_by_id_number_with_lower_case_x(live_server, village):
    number = make("440106", dt.date(1950, 1, 1), 13)
    if not number.endswith("X"):
        seq = next(s for s in range(13, 999, 2) if make("440106", dt.date(1950, 1, 1), s).endswith("X"))
        number = make("440106", dt.date(1950, 1, 1), seq)
    live_server.data("RegisterHousehold", {"input": {"regionCode": village, "members": [member("王芳", number)]}})
    person = live_server.data("PersonByIdNumber", {"idNumber": number.lower()})["personByIdNumber"]
    assert person["idNumber"] == number and person["name"] == "王芳"
    assert person["households"][0]["householdNumber"].startswith("H")
    assert live_server.data("PersonByIdNumber", {"idNumber": make("110101", dt.date(1990, 1, 1), 1)})[
        "personByIdNumber"] is None


def test_household_list_pages(live_server, family, village):
    # a second household of its own, so the test does not rely on another test having registered one
    live_server.data("RegisterHousehold", {"input": {"regionCode": village, "members": [
        member("陈静", make("440106", dt.date(1981, 4, 4), 41))]}})
    first = live_server.data("HouseholdList", {"regionCode": "4401", "first": 1})["households"]
    assert first["totalCount"] >= 2 and first["pageInfo"]["hasNextPage"] is True
    second = live_server.data("HouseholdList", {"regionCode": "4401", "first": 1,
                                                "after": first["pageInfo"]["endCursor"]})["households"]
    assert second["edges"][0]["node"]["id"] != first["edges"][0]["node"]["id"]
    named = live_server.data("HouseholdList", {"regionCode": "44", "filter": {"nameContains": "小明"}})["households"]
    assert [e["node"]["id"] for e in named["edges"]] == [family["id"]]
    node = named["edges"][0]["node"]
    assert node["memberCount"] == 3 and node["head"]["name"] == "张伟" and node["region"]["code"] == VILLAGE
    too_many = live_server.op("HouseholdList", {"regionCode": "44", "first": 101})
    assert too_many["errors"][0]["extensions"]["code"] == "VALIDATION"


def test_add_member_and_errors(live_server, family):
    grandma = make("440106", dt.date(1940, 2, 29), 42)
    ok = live_server.data("AddHouseholdMember", {"input": {"householdId": family["id"],
                                                           "member": member("陈秀英", grandma, "GRANDPARENT")}})
    assert ok["addHouseholdMember"] == {"household": {"id": family["id"], "memberCount": 4}, "errors": []}
    again = live_server.data("AddHouseholdMember", {"input": {"householdId": family["id"],
                                                              "member": member("陈秀英", grandma, "GRANDPARENT")}})
    assert again["addHouseholdMember"]["errors"][0]["code"] == "DUPLICATE_PERSON"
    second_head = live_server.data("AddHouseholdMember", {"input": {
        "householdId": family["id"], "member": member("赵六", make("440106", dt.date(1980, 1, 1), 51))}})
    assert second_head["addHouseholdMember"]["errors"][0]["field"] == "member.relationToHead"
    missing = live_server.data("AddHouseholdMember", {"input": {
        "householdId": "SG91c2Vob2xkOjk5OTk5OTk=", "member": member("赵六", make("440106", dt.date(1980, 1, 1), 51),
                                                                    "OTHER")}})
    assert missing["addHouseholdMember"]["errors"][0]["code"] == "NOT_FOUND"


def test_register_rejects_bad_input_and_writes_nothing(live_server, village):
    before = live_server.data("HouseholdList", {"regionCode": village})["households"]["totalCount"]
    good = make("440106", dt.date(1985, 6, 1), 71)
    bad_check = good[:-1] + ("0" if good[-1] != "0" else "1")
    cases = {
        "check": [member("甲", bad_check)],
        "length": [member("甲", good[:-1])],
        "date": [member("甲", "44010619850230" + "0712")],
        "two heads": [member("甲", good), member("乙", make("440106", dt.date(1986, 1, 1), 72))],
        "no head": [member("甲", good, "SPOUSE")],
        "oversized name": [member("甲" * 51, good)],
        "disability": [member("甲", good, disabilityLevel=7)],
    }
    for label, members in cases.items():
        result = live_server.data("RegisterHousehold", {"input": {"regionCode": village, "members": members}})
        assert result["registerHousehold"]["household"] is None, label
        assert result["registerHousehold"]["errors"], label
    codes = {e["code"] for e in live_server.data("RegisterHousehold", {"input": {
        "regionCode": village, "members": [member("甲", bad_check)]}})["registerHousehold"]["errors"]}
    assert codes == {"INVALID_ID_NUMBER"}
    nowhere = live_server.data("RegisterHousehold", {"input": {"regionCode": "440106999999",
                                                               "members": [member("甲", good)]}})
    assert nowhere["registerHousehold"]["errors"][0] == {"field": "regionCode", "code": "NOT_FOUND",
                                                         "message": "region '440106999999' not found"}
    county = live_server.data("RegisterHousehold", {"input": {"regionCode": "440106", "members": [member("甲", good)]}})
    assert county["registerHousehold"]["errors"][0]["code"] == "VALIDATION"
    unknown_enum = live_server.op("RegisterHousehold", {"input": {"regionCode": village, "members": [
        member("甲", good, "COUSIN")]}})
    assert "errors" in unknown_enum and unknown_enum.get("data") is None
    after = live_server.data("HouseholdList", {"regionCode": village})["households"]["totalCount"]
    assert after == before
    assert live_server.data("PersonByIdNumber", {"idNumber": good})["personByIdNumber"] is None


def test_idempotency_key_replays_first_result(live_server, village):
    number = make("440106", dt.date(1991, 7, 7), 81)
    variables = {"input": {"regionCode": village, "members": [member("周杰", number)], "idempotencyKey": "k-81"}}
    first = live_server.data("RegisterHousehold", variables)["registerHousehold"]
    second = live_server.data("RegisterHousehold", variables)["registerHousehold"]
    assert first["errors"] == [] and second == first


def test_record_economic_item(live_server, family):
    today = dt.date.today()
    start = dt.date(today.year - 1, today.month, 1)
    end = dt.date(today.year, today.month, 1) - dt.timedelta(days=1)
    result = live_server.data("RecordEconomicItem", {"input": {
        "householdId": family["id"], "kind": "WAGE", "source": "tax", "amount": 48000.0,
        "periodStart": start.isoformat(), "periodEnd": end.isoformat()}})["recordEconomicItem"]
    assert result["errors"] == []
    detail = live_server.post("query($id: ID!) { household(id: $id) { memberCount economics { monthlyIncome "
                              "monthlyIncomeDeduction perCapitaMonthlyIncome } } }", {"id": family["id"]}).json()
    h = detail["data"]["household"]
    gross = 48000 * _overlap(start, end, today) / 12
    assert h["economics"]["monthlyIncome"] == pytest.approx(gross, abs=0.02)
    # Guangdong deducts necessary employment costs (GD-2021) for the employed head: a configured parameter
    assert h["economics"]["monthlyIncomeDeduction"] > 0
    income = result["household"]["economics"]["perCapitaMonthlyIncome"]
    assert income == h["economics"]["perCapitaMonthlyIncome"]
    assert income == pytest.approx((gross - h["economics"]["monthlyIncomeDeduction"]) / h["memberCount"], abs=0.02)
    deposit = live_server.data("RecordEconomicItem", {"input": {
        "householdId": family["id"], "kind": "DEPOSIT", "source": "bank", "amount": 12345.5,
        "periodStart": start.isoformat(), "periodEnd": end.isoformat()}})["recordEconomicItem"]
    assert deposit["household"]["economics"]["totalFinancialAssets"] == 12345.5
    negative = live_server.data("RecordEconomicItem", {"input": {
        "householdId": family["id"], "kind": "WAGE", "source": "tax", "amount": -1.0,
        "periodStart": start.isoformat(), "periodEnd": end.isoformat()}})["recordEconomicItem"]
    assert negative["errors"][0]["field"] == "amount" and negative["errors"][0]["code"] == "VALIDATION"
    reversed_period = live_server.data("RecordEconomicItem", {"input": {
        "householdId": family["id"], "kind": "WAGE", "source": "tax", "amount": 1.0,
        "periodStart": end.isoformat(), "periodEnd": start.isoformat()}})["recordEconomicItem"]
    assert reversed_period["errors"][0]["field"] == "periodEnd"


def _overlap(start: dt.date, end: dt.date, today: dt.date) -> float:
    from aidgraph.core.graph.economics import window_start

    ws = window_start(today)
    lo, hi = max(start, ws), min(end, today)
    return ((hi - lo).days + 1) / ((end - start).days + 1)


def test_mutation_over_get_is_refused(live_server):
    r = live_server.client.get(f"{live_server.url}/graphql",
                               params={"query": "mutation { registerHousehold(input: {regionCode: \"x\", members: []}) { errors { code } } }"})
    assert r.status_code == 405 and r.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"


def test_graphiql_in_development_only(live_server):
    r = live_server.client.get(f"{live_server.url}/graphql", headers={"Accept": "text/html"})
    assert r.status_code == 200 and "graphiql" in r.text.lower()


def test_read_only_role_gets_forbidden_not_not_found(live_server, family, db_url):
    from aidgraph.core.app.demo import ensure_demo_user
    from aidgraph.core.storage.db import make_sync_engine

    engine = make_sync_engine(db_url)
    token = ensure_demo_user(engine, live_server.components.settings, username="auditor44", region_codes=("44",),
                             role="auditor")
    engine.dispose()
    seen = live_server.data("HouseholdDetail", {"id": family["id"]}, token=token)["household"]
    assert seen["id"] == family["id"]
    attempt = live_server.data("AddHouseholdMember", {"input": {"householdId": family["id"], "member": member(
        "钱七", make("440106", dt.date(1999, 9, 9), 91), "OTHER")}}, token=token)["addHouseholdMember"]
    assert attempt["household"] is None
    assert [e["code"] for e in attempt["errors"]] == ["FORBIDDEN"]
    missing = live_server.data("AddHouseholdMember", {"input": {"householdId": "SG91c2Vob2xkOjk5OTk5OTk=",
                                                                "member": member("钱七", make("440106", dt.date(1999, 9, 9), 91), "OTHER")}},
                               token=token)["addHouseholdMember"]
    assert [e["code"] for e in missing["errors"]] == ["NOT_FOUND"]


def test_department_analyst_sees_only_its_domain_enrollments(live_server, family, db_url):
    from aidgraph.core.app.demo import ensure_demo_user
    from aidgraph.core.storage.db import make_sync_engine

    ids = {}
    for key in ("medical", "dibao"):
        applied = live_server.data("ApplyForAid", {"input": {"householdId": family["id"], "programKey": key}})
        assert applied["applyForAid"]["errors"] == [], applied
        ids[key] = applied["applyForAid"]["enrollment"]["id"]
    engine = make_sync_engine(db_url)
    token = ensure_demo_user(engine, live_server.components.settings, username="medical44", region_codes=("44",),
                             role="department_analyst")
    engine.dispose()
    medical = live_server.data("NodeLookup", {"id": ids["medical"]}, token=token)["node"]
    assert medical["enrollmentStatus"] == "APPLIED" and medical["program"]["key"] == "medical"
    assert live_server.data("NodeLookup", {"id": ids["dibao"]}, token=token)["node"] is None
    assert live_server.data("HouseholdDetail", {"id": family["id"]}, token=token)["household"] is None
