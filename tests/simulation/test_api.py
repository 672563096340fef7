"""The contract's SimulatePolicy against a live server over HTTP, on SQLite and PostgreSQL: the same figures as
the engine, errors that name the key, the caller's scope, the audit entry, nothing else written."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from aidgraph.core.access.actor import system_actor
from aidgraph.core.policy.simulation import (
    ParameterChange,
    Simulator,
    first_of_next_month,
)
from aidgraph.core.storage.db import make_sync_engine
from tests.conftest import server_settings
from tests.simulation.conftest import ON, run

CHANGE = {"key": "dibao.urban_standard", "value": 1500}


def simulate(live, token=..., **input_):
    body = {"provinceCode": "44", "asOf": ON.isoformat(), "changes": [CHANGE], **input_}
    return live.op("SimulatePolicy", {"input": body}, token=token)


def user_token(db_url, username, role, region):
    from aidgraph.core.app.demo import ensure_demo_user

    engine = make_sync_engine(db_url)
    try:
        return ensure_demo_user(engine, server_settings(db_url), username=username, region_codes=(region,), role=role)
    finally:
        engine.dispose()


def counts(db_url) -> dict[str, int]:
    engine = make_sync_engine(db_url)
    try:
        with engine.connect() as conn:
            return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in (
                "enrollment", "enrollment_step", "aid_chain_event", "outbox", "simulation_scenario")} | {
                "simulate": conn.execute(text("SELECT count(*) FROM audit_log WHERE action = 'simulate'")).scalar()}
    finally:
        engine.dispose()


def contract_figures(summary: dict) -> dict:
    """The summary with the totals the contract's SimulatePolicy selects (households, persons, monthlyCost)."""
    def pick(totals: dict) -> dict:
        return {k: totals[k] for k in ("households", "persons", "monthlyCost")}

    return {**summary, "baseline": pick(summary["baseline"]), "reform": pick(summary["reform"]),
            "byProgram": {k: {s: pick(v[s]) for s in ("baseline", "reform")} for k, v in summary["byProgram"].items()},
            "byRegion": {k: {s: pick(v[s]) for s in ("baseline", "reform")} for k, v in summary["byRegion"].items()}}


def test_simulate_policy_over_http_equals_the_engine(db_url, households, live_server):
    before = counts(db_url)
    data = simulate(live_server, regionCode="4405")
    assert "errors" not in data, data.get("errors")
    got = data["data"]["simulatePolicy"]
    simulator = Simulator(live_server.components.policy_engine)
    expected = run(db_url, lambda s: simulator.run(s, system_actor(), "44", [ParameterChange(**CHANGE)],
                                                   region_code="4405", on=ON, record=False))
    summary = contract_figures(expected.summary())
    assert got["baseline"] == summary["baseline"] and got["reform"] == summary["reform"]
    assert got["annualCostChange"] == pytest.approx(summary["annualCostChange"])
    assert got["newlyEligible"] == summary["newlyEligible"]
    assert got["noLongerEligible"] == summary["noLongerEligible"]
    assert {b["band"]: b["households"] for b in got["winnersLosers"]} == summary["winnersLosers"]
    assert {p["program"]["key"]: {"baseline": p["baseline"], "reform": p["reform"]} for p in got["byProgram"]} == \
        summary["byProgram"]
    assert {r["region"]["code"]: {"baseline": r["baseline"], "reform": r["reform"]} for r in got["byRegion"]} == \
        summary["byRegion"]
    assert all(r["region"]["level"] == "COUNTY" and r["region"]["name"] for r in got["byRegion"])
    affected = got["affected"]
    assert affected["totalCount"] == expected.affected.height > 0
    first = affected["edges"][0]["node"]
    top = expected.affected.row(0, named=True)
    assert first["program"]["key"] == top["program"] and first["reformAmount"] == pytest.approx(top["reform_amount"])
    assert first["household"]["householdNumber"] == top["household_number"]
    assert any(line.startswith("now: ") for line in first["reasons"])
    numbers = {e["node"]["household"]["householdNumber"] for e in affected["edges"]}
    assert numbers <= set(expected.affected["household_number"].to_list())
    after = counts(db_url)
    assert after["simulate"] == before["simulate"] + 1
    assert {k: v for k, v in after.items() if k != "simulate"} == {k: v for k, v in before.items() if k != "simulate"}


def test_affected_pages_follow_the_cursor(db_url, households, live_server):
    query = """query($input: PolicySimulationInput!, $after: String) { simulatePolicy(input: $input) {
      affected(first: 2, after: $after) { totalCount pageInfo { hasNextPage endCursor }
        edges { node { household { id } program { key } } } } } }"""
    variables = {"input": {"provinceCode": "44", "regionCode": "4405", "asOf": ON.isoformat(), "changes": [CHANGE]}}
    seen, after = [], None
    while True:
        body = live_server.post(query, {**variables, "after": after}).json()
        assert "errors" not in body, body
        page = body["data"]["simulatePolicy"]["affected"]
        seen += [(e["node"]["household"]["id"], e["node"]["program"]["key"]) for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) == page["totalCount"]


def test_default_date_is_the_first_of_next_month(db_url, households, live_server):
    body = live_server.post("""query($input: PolicySimulationInput!) { simulatePolicy(input: $input) { asOf } }""",
                            {"input": {"provinceCode": "44", "changes": [CHANGE]}}).json()
    assert body["data"]["simulatePolicy"]["asOf"] == first_of_next_month().isoformat()


@pytest.mark.parametrize("change,field,code", [
    ({"key": "dibao.nope", "value": 1}, "changes.0.key", "VALIDATION"),
    ({"key": "dibao.urban_standard", "value": "lots"}, "changes.0.value", "VALIDATION"),
    ({"key": "dibao.urban_standard", "value": -1}, "changes.0.value", "VALIDATION"),
    ({"key": "dibao.urban_standard", "value": 1500, "regionCode": "3501"}, "changes.0.regionCode", "VALIDATION"),
])
def test_bad_input_is_an_error_naming_the_key(db_url, households, live_server, change, field, code):
    before = counts(db_url)
    body = live_server.op("SimulatePolicy", {"input": {"provinceCode": "44", "asOf": ON.isoformat(),
                                                       "changes": [change]}})
    assert body["data"] is None
    error = body["errors"][0]
    assert error["extensions"]["code"] == code and error["extensions"]["field"] == field
    assert change["key"] in error["message"]
    assert counts(db_url) == before


def test_a_city_planner_sees_the_city_only(db_url, households, live_server):
    token = user_token(db_url, "planner4405", "city_officer", "4405")
    both = [CHANGE, {**CHANGE, "regionCode": "4401"}]  # Guangzhou has its own standard: change it too
    mine = simulate(live_server, token=token, changes=both)["data"]["simulatePolicy"]
    shantou = simulate(live_server, regionCode="4405", changes=both)["data"]["simulatePolicy"]
    whole = simulate(live_server, changes=both)["data"]["simulatePolicy"]
    assert mine["baseline"] == shantou["baseline"] and mine["reform"] == shantou["reform"]
    assert mine["baseline"] != whole["baseline"]
    assert mine["affected"]["totalCount"] == shantou["affected"]["totalCount"] < whole["affected"]["totalCount"]
    outside = simulate(live_server, token=token, regionCode="4401")
    assert outside["data"] is None and outside["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_roles_without_the_simulation_action_are_refused(db_url, households, live_server):
    token = user_token(db_url, "caseworker440507001", "township_caseworker", "440507001")
    body = simulate(live_server, token=token)
    assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_the_server_keeps_the_household_frame_between_requests(db_url, households, live_server):
    assert "errors" not in simulate(live_server, regionCode="4405")
    cache = live_server.components.services["simulation"].cache
    hits = cache.hits
    body = simulate(live_server, regionCode="4405", changes=[{"key": "dibao.urban_standard", "value": 1600}])
    assert "errors" not in body and cache.hits == hits + 1  # the audit entries of the runs are no data change
