"""Saved simulation scenarios (政策模拟方案) over HTTP against a live server, on SQLite and PostgreSQL: the contract
copy's SaveSimulationScenario, SimulationScenarios, SimulationScenario, RerunSimulationScenario and
CompareSimulationScenarios. A scenario keeps the engine's summary; a re-run compares today's figures with it;
bad input is an error naming the key with nothing written; scenarios follow the caller's scope; saving is a
Casbin action of its own (province and city planners), audited."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from aidgraph.core.access.actor import system_actor
from aidgraph.core.policy.simulation import (
    ParameterChange,
    Simulator,
)
from aidgraph.core.storage.db import make_sync_engine, session_scope
from tests.plugins.db import add_household
from tests.simulation.conftest import ON, URBAN, run
from tests.simulation.test_api import user_token

CHANGE = {"key": "dibao.urban_standard", "value": 1500}


def save(live, name, token=..., **input_):
    body = {"name": name, "provinceCode": "44", "asOf": ON.isoformat(), "changes": [CHANGE], **input_}
    return live.data("SaveSimulationScenario", {"input": body}, token=token)["saveSimulationScenario"]


def counts(db_url) -> dict[str, int]:
    engine = make_sync_engine(db_url)
    try:
        with engine.connect() as conn:
            tables = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in (
                "simulation_scenario", "enrollment", "aid_chain_event", "idempotency_record")}
            actions = {a: conn.execute(text("SELECT count(*) FROM audit_log WHERE action = :a"), {"a": a}).scalar()
                       for a in ("simulate", "save_scenario")}
            return tables | actions
    finally:
        engine.dispose()


def audit_details(db_url, action: str) -> list[dict]:
    engine = make_sync_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT detail, actor FROM audit_log WHERE action = :a ORDER BY id"),
                                {"a": action}).all()
        return [{**(json.loads(d) if isinstance(d, str) else d), "_actor": actor} for d, actor in rows]
    finally:
        engine.dispose()


def engine_summary(live, db_url, region: str, changes: list[dict]) -> dict:
    simulator = Simulator(live.components.policy_engine)
    result = run(db_url, lambda s: simulator.run(s, system_actor(), "44", [ParameterChange(**c) for c in changes],
                                                 region_code=region, on=ON, record=False))
    return result.summary()


def test_save_read_rerun_and_compare(db_url, households, live_server, sync_engine):
    before = counts(db_url)
    saved = save(live_server, "urban 1500", regionCode="4405")
    assert saved["errors"] == []
    scenario = saved["scenario"]
    assert (scenario["name"], scenario["provinceCode"], scenario["asOf"]) == ("urban 1500", "44", ON.isoformat())
    assert scenario["region"] == {"code": "4405", "name": scenario["region"]["name"], "level": "CITY"}
    assert scenario["changes"] == [{"key": "dibao.urban_standard", "value": 1500, "regionCode": None}]
    assert scenario["createdBy"] == "admin44" and scenario["createdAt"]
    # the summary kept is the engine's, one-off grants costed apart
    expected = engine_summary(live_server, db_url, "4405", [CHANGE])
    summary = scenario["summary"]
    assert summary["baseline"] == expected["baseline"] and summary["reform"] == expected["reform"]
    assert summary["annualCostChange"] == pytest.approx(expected["annualCostChange"])
    assert summary["annualCostChange"] > 0
    assert summary["oneOffCostChange"] == expected["oneOffCostChange"]
    assert summary["householdsInScope"] == expected["householdsInScope"]
    assert summary["affectedCount"] == expected["affected"] > 0
    assert {b["band"]: b["households"] for b in summary["winnersLosers"]} == expected["winnersLosers"]
    assert {p["program"]["key"] for p in summary["byProgram"]} == set(expected["byProgram"])
    assert {r["region"]["code"] for r in summary["byRegion"]} == set(expected["byRegion"])
    after = counts(db_url)
    assert after["simulation_scenario"] == before["simulation_scenario"] + 1
    assert after["save_scenario"] == before["save_scenario"] + 1 and after["simulate"] == before["simulate"] + 1
    assert (after["enrollment"], after["aid_chain_event"]) == (before["enrollment"], before["aid_chain_event"])
    assert audit_details(db_url, "save_scenario")[-1]["name"] == "urban 1500"

    # listed and read
    listed = live_server.data("SimulationScenarios", {"provinceCode": "44", "first": 100})["simulationScenarios"]
    assert "urban 1500" in [e["node"]["name"] for e in listed["edges"]]
    assert listed["totalCount"] == len(listed["edges"]) == counts(db_url)["simulation_scenario"]
    read = live_server.data("SimulationScenario", {"id": scenario["id"]})["simulationScenario"]
    assert read["summary"]["baseline"] == summary["baseline"] and read["changes"] == scenario["changes"]

    # run again on the same data: every difference is zero, the run is audited with the scenario
    rerun = live_server.data("RerunSimulationScenario", {"id": scenario["id"]})["rerunSimulationScenario"]
    assert rerun["scenario"]["id"] == scenario["id"] and rerun["simulation"]["asOf"] == ON.isoformat()
    assert rerun["simulation"]["baseline"] == summary["baseline"] and rerun["simulation"]["reform"] == summary["reform"]
    deltas = {d["figure"]: d for d in rerun["deltas"]}
    assert all(d["difference"] == 0 for d in deltas.values()), rerun["deltas"]
    assert deltas["annualCostChange"]["first"] == summary["annualCostChange"]
    assert audit_details(db_url, "simulate")[-1]["scenarioId"] == int(
        __import__("base64").b64decode(scenario["id"]).decode().split(":")[1])

    # a new household in Shantou below the standard: the re-run counts it, the deltas say by how much
    with session_scope(sync_engine) as s:
        add_household(s, URBAN, [{"age": 50}], wages=1000, on=ON)  # dibao now (200) and under the reform (500)
    later = live_server.data("RerunSimulationScenario", {"id": scenario["id"]})["rerunSimulationScenario"]
    deltas = {d["figure"]: d for d in later["deltas"]}
    assert deltas["baseline households"]["difference"] == 1 and deltas["reform households"]["difference"] == 1
    assert deltas["baseline monthlyCost"]["difference"] == pytest.approx(200.0)
    assert deltas["reform monthlyCost"]["difference"] == pytest.approx(500.0)
    assert deltas["annualCostChange"]["difference"] == pytest.approx(12 * 300.0)
    assert deltas["baseline monthlyCost"]["second"] == later["simulation"]["baseline"]["monthlyCost"]

    # a second scenario, compared with the first without running anything
    other = save(live_server, "urban 1300 tekun 1.7", regionCode="4405",
                 changes=[{"key": "dibao.urban_standard", "value": 1300},
                          {"key": "tekun.standard_multiplier", "value": 1.7}])
    assert other["errors"] == []
    runs = counts(db_url)["simulate"]
    compared = live_server.data("CompareSimulationScenarios", {"id": scenario["id"], "otherId": other["scenario"]["id"]})
    compared = compared["compareSimulationScenarios"]
    assert (compared["scenario"]["name"], compared["other"]["name"]) == ("urban 1500", "urban 1300 tekun 1.7")
    figures = {d["figure"]: d for d in compared["deltas"]}
    first, second = summary, other["scenario"]["summary"]
    assert figures["reform yearCost"]["first"] == first["reform"]["yearCost"]
    assert figures["reform yearCost"]["second"] == second["reform"]["yearCost"]
    assert figures["annualCostChange"]["difference"] == pytest.approx(
        second["annualCostChange"] - first["annualCostChange"], abs=0.01)
    assert counts(db_url)["simulate"] == runs  # comparing saved summaries runs nothing


def test_the_same_name_again_is_a_conflict_and_writes_nothing(db_url, households, live_server):
    assert save(live_server, "duplicate me", regionCode="4405")["errors"] == []
    before = counts(db_url)
    again = save(live_server, "duplicate me", regionCode="4405")
    assert again["scenario"] is None
    assert again["errors"] == [{"field": "name", "code": "CONFLICT",
                                "message": "region 4405 already has a scenario named 'duplicate me'"}]
    assert counts(db_url) == before


def test_a_name_kept_outside_the_callers_scope_is_neither_refused_nor_revealed(db_url, households, live_server):
    """Names are unique per region: another city's (or the province's) scenario of the same name does not make
    a planner's save fail, which would tell the planner it exists."""
    shantou = user_token(db_url, "planner4405n", "city_officer", "4405")
    guangzhou = user_token(db_url, "planner4401n", "city_officer", "4401")
    assert save(live_server, "raise 8%")["errors"] == []  # the province's, region 44
    assert save(live_server, "raise 8%", token=guangzhou)["errors"] == []
    mine = save(live_server, "raise 8%", token=shantou)
    assert mine["errors"] == [] and mine["scenario"]["region"]["code"] == "4405"
    again = save(live_server, "raise 8%", token=shantou)  # the planner's own region: a name they can read
    assert [(e["field"], e["code"]) for e in again["errors"]] == [("name", "CONFLICT")]
    assert "4401" not in again["errors"][0]["message"]


TOO_MANY = [{"key": "dibao.urban_standard", "value": 1000 + i, "regionCode": f"44{i + 1:02d}"} for i in range(21)]


@pytest.mark.parametrize("input_,field,code,key", [
    ({"changes": [{"key": "dibao.nope", "value": 1}]}, "changes.0.key", "VALIDATION", "dibao.nope"),
    ({"changes": [{"key": "dibao.urban_standard", "value": "lots"}]}, "changes.0.value", "VALIDATION",
     "dibao.urban_standard"),
    ({"changes": [{"key": "dibao.urban_standard", "value": -1}]}, "changes.0.value", "VALIDATION",
     "dibao.urban_standard"),
    ({"asOf": "2019-01-01"}, "asOf", "VALIDATION", "dibao.urban_standard"),
    ({"changes": [{**CHANGE, "regionCode": "3501"}]}, "changes.0.regionCode", "VALIDATION", "dibao.urban_standard"),
    ({"regionCode": "3501"}, "regionCode", "VALIDATION", "3501"),
    ({"changes": TOO_MANY}, "changes", "VALIDATION", "at most 20"),
    ({"name": "  "}, "name", "VALIDATION", "1 to 100 characters"),
], ids=["unknown-key", "type", "bounds", "before-history", "change-other-province", "region-other-province",
        "too-many", "empty-name"])
def test_bad_input_is_a_payload_error_naming_the_key_and_nothing_is_written(db_url, households, live_server, input_,
                                                                            field, code, key):
    before = counts(db_url)
    body = {"name": "bad", "provinceCode": "44", "asOf": ON.isoformat(), "changes": [CHANGE], **input_}
    payload = live_server.data("SaveSimulationScenario", {"input": body})["saveSimulationScenario"]
    assert payload["scenario"] is None
    [error] = payload["errors"]
    assert (error["field"], error["code"]) == (field, code) and key in error["message"], error
    assert counts(db_url) == before


def test_scenarios_follow_the_callers_scope(db_url, households, live_server):
    shantou = user_token(db_url, "planner4405", "city_officer", "4405")
    guangzhou = user_token(db_url, "planner4401", "city_officer", "4401")
    caseworker = user_token(db_url, "caseworker440507001", "township_caseworker", "440507001")
    province = save(live_server, "province 1500")["scenario"]
    assert province["region"]["code"] == "44"
    # a city planner asking for the province keeps a scenario of their city: its figures are the city's
    mine = save(live_server, "shantou 1500", token=shantou)
    assert mine["errors"] == [] and mine["scenario"]["region"]["code"] == "4405"
    assert mine["scenario"]["summary"]["baseline"] == engine_summary(live_server, db_url, "4405", [CHANGE])["baseline"]
    assert mine["scenario"]["createdBy"] == "planner4405"

    def names(token):
        listed = live_server.data("SimulationScenarios", {"provinceCode": "44", "first": 100}, token=token)
        return {e["node"]["name"] for e in listed["simulationScenarios"]["edges"]}

    assert "shantou 1500" in names(shantou) and "province 1500" not in names(shantou)
    assert "shantou 1500" not in names(guangzhou) and "province 1500" not in names(guangzhou)
    assert {"shantou 1500", "province 1500"} <= names(...)  # the province administrator sees both
    # out of scope behaves as never existing: null, NOT_FOUND
    assert live_server.data("SimulationScenario", {"id": province["id"]}, token=shantou)["simulationScenario"] is None
    assert live_server.data("SimulationScenario", {"id": mine["scenario"]["id"]},
                            token=guangzhou)["simulationScenario"] is None
    assert live_server.data("SimulationScenario", {"id": "bm9wZToz"})["simulationScenario"] is None
    for token, scenario_id in ((shantou, province["id"]), (guangzhou, mine["scenario"]["id"])):
        body = live_server.op("RerunSimulationScenario", {"id": scenario_id}, token=token)
        assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        body = live_server.op("CompareSimulationScenarios", {"id": scenario_id, "otherId": scenario_id}, token=token)
        assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    rerun = live_server.data("RerunSimulationScenario", {"id": mine["scenario"]["id"]}, token=shantou)
    assert all(d["difference"] == 0 for d in rerun["rerunSimulationScenario"]["deltas"])
    # a city planner cannot keep another city's region; a caseworker may not save scenarios (nor run simulations)
    before = counts(db_url)
    other_city = save(live_server, "guangzhou by shantou", token=shantou, regionCode="4401")
    assert other_city["errors"][0]["code"] == "FORBIDDEN" and other_city["errors"][0]["field"] == "regionCode"
    refused = save(live_server, "by a caseworker", token=caseworker)
    assert refused["scenario"] is None and refused["errors"][0]["code"] == "FORBIDDEN"
    assert counts(db_url) == before
    assert names(caseworker) == set()


def test_the_save_action_is_its_own(db_url, households, live_server):
    """An actor who may run simulations (``run``) but not ``save_scenario`` simulates and saves nothing."""
    from aidgraph.core.access.actor import Actor, RoleGrant
    from aidgraph.core.access.scope import Scope
    from aidgraph.core.policy.simulation import SimulationError

    runner = Actor(username="runner4405", display_name="runner", grants=(RoleGrant("city_officer", "4405"),))
    runner._scopes.update({("run", "simulation"): Scope.of(["4405"]), ("read", "household"): Scope.of(["4405"]),
                           ("save_scenario", "simulation"): Scope.nothing()})
    simulator = Simulator(live_server.components.policy_engine)
    changes = [ParameterChange(**CHANGE)]
    assert run(db_url, lambda s: simulator.run(s, runner, "44", changes, on=ON, record=False)).households_in_scope
    before = counts(db_url)
    with pytest.raises(SimulationError) as caught:
        run(db_url, lambda s: simulator.save(s, runner, "not allowed", "44", changes, on=ON))
    assert caught.value.code == "FORBIDDEN" and caught.value.field == "regionCode"
    assert counts(db_url) == before


def test_idempotency_key_replays_the_first_scenario(db_url, households, live_server):
    first = save(live_server, "keyed", regionCode="4405", idempotencyKey="scenario-key-1")
    before = counts(db_url)
    again = save(live_server, "keyed", regionCode="4405", idempotencyKey="scenario-key-1")
    assert again["errors"] == [] and again["scenario"]["id"] == first["scenario"]["id"]
    assert counts(db_url)["simulation_scenario"] == before["simulation_scenario"]
    assert counts(db_url)["save_scenario"] == before["save_scenario"]
    reused = save(live_server, "keyed other", regionCode="4405", idempotencyKey="scenario-key-1")
    assert reused["scenario"] is None and reused["errors"][0]["code"] == "IDEMPOTENCY_KEY_REUSED"


def test_the_list_pages_follow_the_cursor(db_url, households, live_server):
    for value in (1300, 1400):
        assert save(live_server, f"page {value}", regionCode="4405",
                    changes=[{"key": "dibao.urban_standard", "value": value}])["errors"] == []
    everything = live_server.data("SimulationScenarios", {"provinceCode": "44", "first": 100})["simulationScenarios"]
    assert everything["totalCount"] >= 2
    seen, after = [], None
    while True:
        page = live_server.data("SimulationScenarios", {"provinceCode": "44", "first": 1, "after": after})
        page = page["simulationScenarios"]
        assert page["totalCount"] == everything["totalCount"] and len(page["edges"]) == 1
        seen += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == [e["node"]["id"] for e in everything["edges"]]
    assert live_server.data("SimulationScenarios", {"provinceCode": "35"})["simulationScenarios"]["totalCount"] == 0
    too_many = live_server.op("SimulationScenarios", {"first": 101})
    assert too_many["errors"][0]["extensions"] == {"code": "VALIDATION", "field": "first"}


def test_a_saved_change_no_longer_valid_is_an_error_naming_the_key_and_nothing_runs(db_url, households, live_server,
                                                                                   sync_engine):
    """A scenario whose change the province no longer accepts (a plugin switched off, a bound tightened): the
    re-run checks it as a new simulation would and runs nothing."""
    saved = save(live_server, "to be outdated", regionCode="4405")["scenario"]
    with session_scope(sync_engine) as s:
        s.execute(text("UPDATE simulation_scenario SET changes = :c WHERE name = 'to be outdated'"),
                  {"c": json.dumps([{"key": "dibao.retired_key", "value": 1, "region": None}])})
    before = counts(db_url)
    body = live_server.op("RerunSimulationScenario", {"id": saved["id"]})
    assert body["data"] is None
    error = body["errors"][0]
    assert error["extensions"] == {"code": "VALIDATION", "field": "changes.0.key", "key": "dibao.retired_key"}
    assert "dibao.retired_key" in error["message"]
    assert counts(db_url) == before
