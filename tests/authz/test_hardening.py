"""GraphQL hardening over HTTP: each limit configurable and enforced, production masking, no introspection,
no suggestions, no batching, 401 without valid credentials, and enforce calls that do not grow with results.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
import strawberry
from graphql import parse

from aidgraph.core.access import authn
from aidgraph.core.app.demo import ensure_demo_user
from aidgraph.core.access import authz
from aidgraph.core.storage.config import load_settings
from aidgraph.core.storage.db import make_sync_engine, session_scope
from aidgraph.core.graph.idnumber import make
from aidgraph.core.storage.models import Household, Membership, Person
from aidgraph.core.app.server import default_components
from aidgraph.schema.build import build_schema
from aidgraph.schema.hardening import query_cost, scrub_message
from tests.authz.conftest import CONFIGS
from tests.live import run_live_server

SECRET = "s" * 48
VILLAGE = "440106011004"


@strawberry.type
class BoomQuery:
    @strawberry.field
    def boom(self) -> str:
        # An unexpected failure whose message carries SQL and personal data: production must not show it.
        raise RuntimeError("SELECT * FROM person WHERE id_number = '440106199001011234' -- phone 13812341234")


def settings_for(url: str, tmp_path, **changes):
    values = dict(database_url=url, env="test", secret_key=SECRET, state_dir=tmp_path, province_configs_dir=CONFIGS)
    return load_settings({}).with_(**{**values, **changes})


def start(url: str, settings):
    components = default_components(settings)
    components.schema = build_schema([("test.boom", BoomQuery, None)], settings=settings)
    return run_live_server(components)


@pytest.fixture(scope="module")
def admin_token(sqlite_url, tmp_path_factory):
    settings = settings_for(sqlite_url, tmp_path_factory.mktemp("state"))
    engine = make_sync_engine(sqlite_url)
    token = ensure_demo_user(engine, settings, username="hard-admin", region_codes=("44",))
    with session_scope(engine) as s:  # 60 households under one village, for the enforce-count test
        for i in range(60):
            h = Household(household_number=f"HARD{i:04d}", region_code=VILLAGE)
            p = Person(id_number=make("440106", dt.date(1980, 1, 1) + dt.timedelta(days=i), 11), name=f"户主{i}",
                       sex="MALE", birth_date=dt.date(1980, 1, 1) + dt.timedelta(days=i), hukou_region_code="440106",
                       region_code=VILLAGE)
            s.add_all([h, p])
            s.flush()
            s.add(Membership(household_id=h.id, person_id=p.id, relation_to_head="SELF", valid_from=dt.date(2020, 1, 1)))
    engine.dispose()
    authz.forget_authorizers()
    return token


@pytest.fixture(scope="module")
def strict(sqlite_url, tmp_path_factory, admin_token):
    settings = settings_for(sqlite_url, tmp_path_factory.mktemp("strict"), max_query_depth=4, max_query_aliases=2,
                            max_query_tokens=120, max_query_cost=150)
    with start(sqlite_url, settings) as live:
        live.token = admin_token
        yield live


@pytest.fixture(scope="module")
def production(sqlite_url, tmp_path_factory, admin_token):
    with start(sqlite_url, settings_for(sqlite_url, tmp_path_factory.mktemp("prod"), env="production")) as live:
        live.token = admin_token
        yield live


@pytest.fixture(scope="module")
def development(sqlite_url, tmp_path_factory, admin_token):
    with start(sqlite_url, settings_for(sqlite_url, tmp_path_factory.mktemp("dev"), env="development")) as live:
        live.token = admin_token
        yield live


def refused(response, fragment: str) -> None:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body.get("data") is None, body
    assert any(fragment in e["message"] for e in body["errors"]), body["errors"]


# --- limits -------------------------------------------------------------------------------------------------


def test_depth_limit(strict):
    ok = "{ region(code: \"44\") { parent { parent { code } } } }"
    deep = "{ region(code: \"44\") { parent { parent { parent { parent { code } } } } } }"
    assert "errors" not in strict.post(ok).json()
    refused(strict.post(deep), "exceeds maximum operation depth of 4")


def test_alias_limit(strict):
    assert "errors" not in strict.post("{ a: me { username } b: me { username } }").json()
    refused(strict.post("{ a: me { username } b: me { username } c: me { username } }"),
            "3 aliases found. Allowed: 2")


def test_token_limit(strict):
    query = "{ " + " ".join(["me { username }"] * 40) + " }"
    refused(strict.post(query), "more than 120 tokens")


def test_cost_limit_counts_page_sizes(strict):
    query = ("query($first: Int) { households(regionCode: \"44\", first: $first) "
             "{ edges { node { id householdNumber head { name } } } } }")
    assert query_cost(parse(query), None, {"first": 5}, 20) == 1 + 5 * 6  # households, then 6 fields per item
    small = strict.post(query, {"first": 5}).json()
    assert "errors" not in small and len(small["data"]["households"]["edges"]) == 5
    refused(strict.post(query, {"first": 50}), "query cost exceeds the limit of 150")
    # Without `first`, the default page size counts: 1 + 20 * 6 = 121 fits.
    assert "errors" not in strict.post(query, {}).json()


def test_query_cost_of_fragments_and_cycles():
    doc = parse("""
        query Q { households(regionCode: "44", first: 10) { edges { node { ...H } } } }
        fragment H on Household { id aidChain(first: 7) { edges { node { kind } } } }
        fragment Loop on Household { ...Loop }
        query R { household(id: "x") { ...Loop } }
    """)
    assert query_cost(doc, "Q", {}, 20) == 1 + 10 * (4 + 7 * 3)  # nested pages multiply
    assert query_cost(doc, "R", {}, 20) == 1  # the fragment cycle is cut, validation reports it
    assert query_cost(doc, None, {}, 20) == 0  # two operations, none named: strawberry answers


def test_limits_come_from_the_environment():
    s = load_settings({"AIDGRAPH_MAX_QUERY_DEPTH": "7", "AIDGRAPH_MAX_QUERY_COST": "900"})
    assert (s.max_query_depth, s.max_query_cost) == (7, 900)
    with pytest.raises(ValueError, match="AIDGRAPH_MAX_QUERY_ALIASES"):
        load_settings({"AIDGRAPH_MAX_QUERY_ALIASES": "-1"})


# --- production mode ------------------------------------------------------------------------------------------


def test_unexpected_errors_are_masked_in_production_only(production, development):
    body = production.post("{ boom }").json()
    assert body["errors"][0]["message"] == "Unexpected error."
    text = json.dumps(body)
    assert "SELECT" not in text and "440106199001011234" not in text and "Traceback" not in text
    assert "SELECT" in development.post("{ boom }").json()["errors"][0]["message"]


def test_no_introspection_and_no_graphiql_in_production(production, development):
    refused(production.post("{ __schema { types { name } } }"), "introspection")
    assert development.post("{ __schema { queryType { name } } }").json()["data"]["__schema"]["queryType"]
    assert production.client.get(f"{production.url}/graphql", headers={"Accept": "text/html"}).status_code == 404
    assert development.client.get(f"{development.url}/graphql", headers={"Accept": "text/html"}).status_code == 200


def test_no_suggestions_and_no_echoed_values_in_production(production, development):
    assert "Did you mean" in json.dumps(development.post("{ househlds(regionCode: \"44\") { totalCount } }").json())
    prod = production.post("{ househlds(regionCode: \"44\") { totalCount } }").json()
    assert prod["errors"] and "Did you mean" not in json.dumps(prod)
    query = "query($f: HouseholdFilter) { households(regionCode: \"44\", filter: $f) { totalCount } }"
    leaked = {"f": {"category": "440106199001011234"}}
    assert "440106199001011234" in json.dumps(development.post(query, leaked).json())
    body = production.post(query, leaked).json()
    assert body["errors"] and body.get("data") is None
    assert "440106199001011234" not in json.dumps(body)


def test_scrub_message():
    assert scrub_message("Cannot query field 'x' on type 'Query'. Did you mean 'y' or 'z'?") == \
        "Cannot query field 'x' on type 'Query'."
    assert "13812341234" not in scrub_message("Variable '$p' got invalid value '13812341234'; Expected type 'Int'.")


# --- transport --------------------------------------------------------------------------------------------------


def test_batching_is_off(development):
    r = development.client.post(f"{development.url}/graphql", json=[{"query": "{ me { username } }"}] * 2,
                                headers={"Authorization": f"Bearer {development.token}"})
    assert r.status_code == 400 and "data" not in r.text


def test_mutations_only_over_post_with_json(development):
    headers = {"Authorization": f"Bearer {development.token}"}
    mutation = 'mutation { addHouseholdMember(input: {householdId: "x", member: {name: "a", idNumber: "b", relationToHead: OTHER}}) { errors { code } } }'
    r = development.client.get(f"{development.url}/graphql", params={"query": mutation}, headers=headers)
    assert r.status_code in (400, 405)
    r = development.client.post(f"{development.url}/graphql", data={"query": mutation}, headers=headers)
    assert r.status_code in (400, 415) and "addHouseholdMember" not in r.text


@pytest.mark.parametrize("header", [None, "Bearer nonsense", f"Bearer {'x' * 20}.{'y' * 20}.{'z' * 20}", "Token abc"])
def test_no_valid_token_is_401_json_without_data(development, header):
    headers = {"Authorization": header} if header else {}
    r = development.client.post(f"{development.url}/graphql", json={"query": "{ me { username } }"}, headers=headers)
    assert r.status_code == 401
    body = r.json()
    assert "data" not in body and body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert r.headers["WWW-Authenticate"] == "Bearer"


def test_enforce_calls_per_request_do_not_grow_with_result_size(development, sqlite_url):
    authorizer = authz.authorizer_for(sqlite_url)
    query = ("query($first: Int) { households(regionCode: \"44\", first: $first) { totalCount edges { node { id "
             "memberCount warningLevel categories head { id name idNumber phone disabilityLevel chronicDisease } "
             "members { person { idNumber } } economics { perCapitaMonthlyIncome } enrollments { id } "
             "alerts { id } } } } }")
    authorizer.reload()  # forget memoised answers: the first request below pays every Casbin call
    decisions, calls = [], []
    for first in (1, 10, 60):
        before = (authorizer.decisions, authorizer.enforce_calls)
        body = development.post(query, {"first": first}).json()
        assert "errors" not in body and len(body["data"]["households"]["edges"]) == first
        decisions.append(authorizer.decisions - before[0])
        calls.append(authorizer.enforce_calls - before[1])
    # One decision per (action, object type) the request touches, for the one grant: not per row. Enrolments
    # add one object per aid domain (enrollment:<domain>, for department analysts).
    domains = {p.domain for p in development.components.programs.programs.values()}
    assert decisions[0] == decisions[1] == decisions[2], decisions
    assert 0 < decisions[0] <= 10 + len(domains)
    assert calls == [decisions[0], 0, 0]  # Casbin's answers are reused until the policy changes


def test_production_server_refuses_to_start_without_a_secret(sqlite_url, tmp_path):
    from aidgraph.core.app.server import create_app

    settings = settings_for(sqlite_url, tmp_path, env="production", secret_key=None)
    with pytest.raises(authn.ConfigurationError, match="AIDGRAPH_SECRET_KEY"):
        create_app(default_components(settings))
