"""The compiled contract operations (schema/compiled.py) answer exactly as the general GraphQL executor does.

Over a live server on SQLite and PostgreSQL, for each compiled operation (HouseholdList, HouseholdDetail) and
several roles (province administrator, township caseworker, auditor and village assistant with masked
values, a department analyst who sees health but not identities), the same request is sent twice: once as
frontends send it (the compiled plan answers: the ``aidgraph_graphql_compiled_total`` counter shows it) and
once with ``X-Aidgraph-Execution: general`` (strawberry resolves every field). The two response bodies must
be identical byte for byte, and so must the disclosure audit rows each request wrote. Bad input (a page size
above 100, malformed cursors, a region outside the caller's scope or not a region code, ids of the wrong
kind) gets the same answer, errors included, from both.
"""

from __future__ import annotations

import base64
import datetime as dt
from decimal import Decimal

import pytest
from graphql import parse, print_ast
from prometheus_client import REGISTRY
from sqlalchemy import select, text

from aidgraph.core.app.demo import ensure_demo_user
from aidgraph.core.graph.idnumber import make
from aidgraph.core.storage.db import session_scope
from aidgraph.core.storage.models import AidChainEvent, Alert, AuditLog, Enrollment, Household, Membership, Person
from aidgraph.schema.compiled import COMPILED, GENERAL_PATH_HEADER
from aidgraph.schema.relay import to_global_id
from tests.live import OPERATION_TEXT

VILLAGE = "440106011004"
TOWNSHIP = VILLAGE[:9]
ROLES = {  # username: (role, region)
    "cw-compiled": ("township_caseworker", TOWNSHIP),
    "aud-compiled": ("auditor", "44"),
    "va-compiled": ("village_assistant", VILLAGE),
    "da-compiled": ("department_analyst", "44"),
}


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


@pytest.fixture(scope="module")
def tokens(live_server, sync_engine):
    settings = live_server.components.settings
    found = {"admin": live_server.token}
    for name, (role, region) in ROLES.items():
        found[name] = ensure_demo_user(sync_engine, settings, username=name, role=role, region_code=region)
    return found


@pytest.fixture(scope="module")
def other_village(sync_engine):
    """A real village of another district of Guangzhou (outside the caseworker's township)."""
    with sync_engine.connect() as conn:
        code = conn.execute(text("SELECT min(code) FROM region WHERE code >= '440105' AND code < '440106' "
                                 "AND level = 'VILLAGE'")).scalar()
    assert code
    return code


@pytest.fixture(scope="module")
def households(live_server, sync_engine, other_village):
    """Households in two villages with members of every sensitive kind, income, enrolments (one medical),
    open alerts naming health and income, and aid-chain entries with ID numbers and health terms."""
    made = []
    for i, village in enumerate([VILLAGE, VILLAGE, VILLAGE, other_village]):
        head = make(village[:6], dt.date(1960 + i, 3, 4), 10 + i)
        spouse = make(village[:6], dt.date(1962 + i, 7, 8), 20 + i)
        data = live_server.data("RegisterHousehold", {"input": {
            "regionCode": village, "address": f"某路 {i} 号", "members": [
                {"name": f"户主{i}", "idNumber": head, "relationToHead": "SELF", "phone": f"1390000{i:04d}",
                 "employmentStatus": "UNEMPLOYED", "labourCapacity": "PARTIAL", "disabilityLevel": 2},
                {"name": f"配偶{i}", "idNumber": spouse, "relationToHead": "SPOUSE", "chronicDisease": True}]}}
        )["registerHousehold"]
        assert data["errors"] == []
        hid = data["household"]["id"]
        item = live_server.data("RecordEconomicItem", {"input": {
            "householdId": hid, "kind": "WAGE", "source": "tax", "amount": 12000.5 + i,
            "periodStart": (dt.date.today() - dt.timedelta(days=90)).isoformat(),
            "periodEnd": (dt.date.today() - dt.timedelta(days=30)).isoformat()}})["recordEconomicItem"]
        assert item["errors"] == []
        made.append({"id": hid, "db": int(base64.b64decode(hid).decode().split(":")[1]), "village": village,
                     "head": head})
    programs = live_server.components.programs.programs
    medical = next((k for k, p in programs.items() if p.domain == "medical"), None)
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    with session_scope(sync_engine) as s:
        for n, h in enumerate(made):
            s.add(Enrollment(household_id=h["db"], program_key="dibao", province_code="44", region_code=h["village"],
                             status="ACTIVE", monthly_amount=Decimal("512.30"), start_date=dt.date(2026, 1, 1),
                             applied_at=now - dt.timedelta(days=30)))
            if medical:
                s.add(Enrollment(household_id=h["db"], program_key=medical, province_code="44",
                                 region_code=h["village"], status="APPLIED", applied_at=now - dt.timedelta(days=2)))
            s.add(Alert(household_id=h["db"], region_code=h["village"], township_code=h["village"][:9],
                        level=["ORANGE", "RED", "BLUE", "YELLOW"][n], score=Decimal("71.50"), status="OPEN",
                        indicators=["hospitalisation", "income_drop", "job_loss"], month="2026-11",
                        raised_at=now - dt.timedelta(hours=n + 1)))
            if n == 0:  # more severe closed alerts: the level is the open one's
                for level, status in (("RED", "DISMISSED"), ("RED", "RESOLVED")):
                    s.add(Alert(household_id=h["db"], region_code=h["village"], township_code=h["village"][:9],
                                level=level, score=Decimal("40"), status=status, indicators=["job_loss"],
                                month="2026-10", raised_at=now - dt.timedelta(days=20)))
            s.add(AidChainEvent(household_id=h["db"], at=now - dt.timedelta(hours=3), kind="VERIFICATION",
                                summary=f"核对 户主身份证 {h['head']}"))
            s.add(AidChainEvent(household_id=h["db"], at=now - dt.timedelta(hours=2), kind="APPLICATION",
                                summary="住院 申请医疗救助", program_key=medical))
            s.add(AidChainEvent(household_id=h["db"], at=now - dt.timedelta(hours=1), kind="PAYMENT",
                                summary="发放 512.30 元", program_key="dibao"))
        # a member who died stays listed (with the death date) but no longer counts in memberCount
        spouse = s.execute(select(Membership.person_id).where(Membership.household_id == made[1]["db"],
                                                               Membership.relation_to_head == "SPOUSE")).scalar()
        s.get(Person, spouse).death_date = dt.date.today() - dt.timedelta(days=3)
    return made


def compiled_count(name: str) -> float:
    return REGISTRY.get_sample_value("aidgraph_graphql_compiled_total", {"operation": name}) or 0.0


def audit_rows_after(sync_engine, last_id: int) -> list[tuple]:
    with sync_engine.connect() as c:
        rows = c.execute(select(AuditLog).where(AuditLog.id > last_id, AuditLog.action == "read_sensitive")
                         .order_by(AuditLog.id)).all()
    return [(r.actor, r.action, r.object_type, r.object_id, r.region_code, r.remote_addr, r.detail) for r in rows]


def last_audit_id(sync_engine) -> int:
    with sync_engine.connect() as c:
        return c.execute(select(AuditLog.id).order_by(AuditLog.id.desc()).limit(1)).scalar() or 0


def both(live_server, sync_engine, token: str, name: str, variables: dict, compiled: bool | None = True):
    """(body, audit rows) of the request as sent by frontends and forced through the general path; asserts
    they are identical, that an error answer never came from the compiled plan and, when ``compiled`` is not
    None, whether the compiled plan answered the first."""
    before, mark = compiled_count(name), last_audit_id(sync_engine)
    fast = live_server.post(OPERATION_TEXT[name], variables, name, token=token)
    fast_audit = audit_rows_after(sync_engine, mark)
    used = compiled_count(name) - before
    mark = last_audit_id(sync_engine)
    general = live_server.post(OPERATION_TEXT[name], variables, name, token=token,
                               headers={GENERAL_PATH_HEADER: "general"})
    general_audit = audit_rows_after(sync_engine, mark)
    assert compiled_count(name) - before == used, "the general path must not use the compiled plan"
    assert (fast.status_code, general.status_code) == (200, 200)
    assert fast.content == general.content, (name, variables)
    assert fast_audit == general_audit, (name, variables)
    body = fast.json()
    if "errors" in body:
        assert used == 0, f"the compiled plan answered an error for {name} {variables}"
    if compiled is not None:
        assert used == (1 if compiled else 0), f"compiled plan used {used} times for {name} {variables}"
    return body, fast_audit


def test_compiled_documents_are_the_contract_operations():
    for op in COMPILED:
        assert print_ast(parse(op.text)) == print_ast(parse(OPERATION_TEXT[op.name])), op.name


USERS = ["admin", *ROLES]


@pytest.mark.parametrize("user", USERS)
def test_household_list_pages_match_the_general_path(live_server, sync_engine, tokens, households, user):
    seen_ids = 0
    for region in ("44", "4401", "440106", TOWNSHIP, VILLAGE):
        after = None
        while True:
            body, audit = both(live_server, sync_engine, tokens[user], "HouseholdList",
                               {"regionCode": region, "first": 2, "after": after})
            page = body["data"]["households"]
            seen_ids += len(page["edges"])
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
    assert (seen_ids > 0) == (user != "da-compiled")  # an analyst of medical aid reads no household
    body, audit = both(live_server, sync_engine, tokens[user], "HouseholdList", {"regionCode": "44"})
    if user == "admin":
        nodes = {e["node"]["id"]: e["node"] for e in body["data"]["households"]["edges"]}
        assert [nodes[h["id"]]["memberCount"] for h in households] == [2, 1, 2, 2]
        assert [nodes[h["id"]]["warningLevel"] for h in households] == ["ORANGE", "RED", "BLUE", "YELLOW"]
    if user in ("admin", "cw-compiled"):  # full ID numbers of the heads: one audit row per head shown
        assert len(audit) == len(body["data"]["households"]["edges"]) > 0
    else:
        assert audit == [] and all("*" in e["node"]["head"]["idNumber"] for e in body["data"]["households"]["edges"])


@pytest.mark.parametrize("variables", [
    {"filter": {"category": "DIBAO"}}, {"filter": {"warningLevel": "RED"}}, {"filter": {"programKey": "dibao"}},
    {"filter": {"nameContains": "户主"}}, {"filter": {}}, {"filter": None}, {"first": 0}, {"first": None},
    {"first": 100},
])
def test_household_list_filters_match_the_general_path(live_server, sync_engine, tokens, households, variables):
    for user in ("admin", "aud-compiled"):
        both(live_server, sync_engine, tokens[user], "HouseholdList", {"regionCode": "4401", **variables})


@pytest.mark.parametrize("user", USERS)
def test_household_detail_matches_the_general_path(live_server, sync_engine, tokens, households, user):
    for h in households:
        body, audit = both(live_server, sync_engine, tokens[user], "HouseholdDetail", {"id": h["id"]})
        detail = body["data"]["household"]
        if detail is None:  # out of the caller's scope: like an id that never existed
            assert user in ("cw-compiled", "va-compiled", "da-compiled") and audit == []
            continue
        assert detail["enrollments"] and detail["alerts"] and detail["aidChain"]["edges"]
        if user == "admin":
            assert detail["members"][0]["person"]["idNumber"] == h["head"]
            assert {r[2] for r in audit} == {"person", "household"}


ERRORS = [  # answered with an error by the general path, for every caller
    {"regionCode": "4401", "first": 101},  # a page size above the maximum
    {"regionCode": "4401", "first": -1},
    {"regionCode": "4401", "first": 2 ** 31},  # not a GraphQL Int
    {"regionCode": "4401", "first": "50"},  # a string for an Int
    {"regionCode": "4401", "after": "not base64!"},  # malformed cursors
    {"regionCode": "4401", "after": b64("abc")},
    {"regionCode": "4401", "after": b64("1|2")},
    {"regionCode": "4401", "after": b64("9" * 25)},
    {"regionCode": None},
    {},
    {"regionCode": 44},
    {"regionCode": "4401", "filter": {"category": "NOPE"}},
    {"regionCode": "4401", "filter": {"unknown": 1}},
    {"regionCode": "4401", "filter": "DIBAO"},
]
EMPTY = {"totalCount": 0, "pageInfo": {"hasNextPage": False, "endCursor": None}, "edges": []}


@pytest.mark.parametrize("variables", ERRORS)
def test_bad_list_input_gets_the_general_paths_error(live_server, sync_engine, tokens, households, variables):
    for user in ("admin", "cw-compiled"):
        body, _ = both(live_server, sync_engine, tokens[user], "HouseholdList", variables, compiled=False)
        assert body.get("errors") and body.get("data") is None, variables


@pytest.mark.parametrize("user, region, expected", [
    ("admin", "35", EMPTY),  # a region outside the caller's scope: an empty page, as for a region without any
    ("cw-compiled", "440105", EMPTY),
    ("cw-compiled", "44", None),  # wider than the scope: the caller's part of it
    ("admin", "44x", "error"),  # not a region code
    ("cw-compiled", "44x", EMPTY),  # ... under no prefix of the caller's: nothing, before it is read
])
def test_regions_outside_the_scope(live_server, sync_engine, tokens, households, user, region, expected):
    body, _ = both(live_server, sync_engine, tokens[user], "HouseholdList", {"regionCode": region},
                   compiled=expected != "error")
    if expected == "error":
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    elif expected is not None:
        assert body["data"]["households"] == expected
    else:
        assert body["data"]["households"]["totalCount"] == 3


def test_a_float_page_size_is_coerced_by_the_general_path(live_server, sync_engine, tokens, households):
    body, _ = both(live_server, sync_engine, tokens["admin"], "HouseholdList", {"regionCode": "4401", "first": 2.0},
                   compiled=False)
    assert len(body["data"]["households"]["edges"]) == 2


def test_page_size_and_cursor_errors_name_the_field(live_server, sync_engine, tokens, households):
    for variables, field in (({"first": 101}, "first"), ({"after": b64("abc")}, "after")):
        body, _ = both(live_server, sync_engine, tokens["admin"], "HouseholdList", {"regionCode": "4401", **variables},
                       compiled=False)
        assert body["errors"][0]["extensions"] == {"code": "VALIDATION", "field": field}


def test_bad_detail_input_gets_the_general_paths_answer(live_server, sync_engine, tokens, households):
    person = to_global_id("Person", households[0]["db"])
    other = households[-1]["id"]  # in another district: outside the caseworker's township
    with sync_engine.connect() as c:
        missing = c.execute(select(Household.id).order_by(Household.id.desc()).limit(1)).scalar() + 1000
    for variables, compiled in (({"id": "not an id"}, True), ({"id": person}, True),
                                ({"id": to_global_id("Household", missing)}, True), ({"id": b64("Household:x")}, True),
                                ({"id": 5}, False), ({"id": None}, False), ({}, False)):
        for user in ("admin", "cw-compiled"):
            body, audit = both(live_server, sync_engine, tokens[user], "HouseholdDetail", variables, compiled)
            assert audit == []
            if compiled:
                assert body == {"data": {"household": None}}
    body, audit = both(live_server, sync_engine, tokens["cw-compiled"], "HouseholdDetail", {"id": other})
    assert body == {"data": {"household": None}} and audit == []


def test_other_documents_go_to_the_general_path(live_server, sync_engine, tokens, households):
    # the same operation with another selection is not compiled; layout and comments do not matter
    narrower = "query HouseholdList($regionCode: String!) { households(regionCode: $regionCode) { totalCount } }"
    before = compiled_count("HouseholdList")
    r = live_server.post(narrower, {"regionCode": "4401"}, "HouseholdList", token=tokens["admin"])
    assert r.status_code == 200 and "errors" not in r.json()
    assert compiled_count("HouseholdList") == before
    relaid = "# a comment\n" + " ".join(OPERATION_TEXT["HouseholdList"].split())
    r = live_server.post(relaid, {"regionCode": "4401"}, "HouseholdList", token=tokens["admin"])
    assert r.status_code == 200 and "errors" not in r.json()
    assert compiled_count("HouseholdList") == before + 1
    # a wrong operation name is the general path's error
    r = live_server.post(OPERATION_TEXT["HouseholdList"], {"regionCode": "4401"}, "Other", token=tokens["admin"])
    assert r.json()["errors"] and compiled_count("HouseholdList") == before + 1


def test_the_setting_turns_the_compiled_plans_off(live_server):
    from dataclasses import replace

    from aidgraph.core.app.server import AidgraphGraphQL
    from aidgraph.core.storage.config import load_settings

    assert load_settings({"AIDGRAPH_COMPILED_OPERATIONS": "0"}).compiled_operations is False
    assert load_settings({}).compiled_operations is True
    components = live_server.components
    assert AidgraphGraphQL(components).compiled is not None
    off = replace(components, settings=components.settings.with_(compiled_operations=False))
    assert AidgraphGraphQL(off).compiled is None
