"""``aidgraph simulate``: the table and county breakdown, JSON, saved scenarios re-run and compared, errors."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from aidgraph.core.app.cli import app
from tests.simulation.conftest import ON


@pytest.fixture
def env(db_url, households, monkeypatch):
    from aidgraph.core.app.commands import simulate

    monkeypatch.setenv("AIDGRAPH_DATABASE_URL", db_url)
    monkeypatch.setattr(simulate.console, "width", 200)  # tables unwrapped whatever the terminal (or none)
    return db_url


def invoke(*args: str):
    result = CliRunner().invoke(app, ["simulate", *args], catch_exceptions=False, env={"COLUMNS": "200"})
    return result


def test_table_and_county_breakdown(env):
    result = invoke("--province", "44", "--set", "dibao.urban_standard=1500", "--region", "4405",
                    "--as-of", ON.isoformat())
    assert result.exit_code == 0, result.output
    out = result.output
    assert "annual cost change" in out and "by child region of 4405" in out
    assert "440507" in out  # the county of the test households
    assert "GAIN_MORE_THAN_5" in out and "now: " in out


def test_json_saved_scenario_rerun_and_compare(env, sync_engine):
    first = invoke("--province", "44", "--set", "dibao.urban_standard=1500", "--region", "4405", "--as-of",
                   ON.isoformat(), "--json", "--save", "urban 1500")
    assert first.exit_code == 0, first.output
    summary = json.loads(first.output)
    assert summary["annualCostChange"] > 0 and summary["changes"][0]["value"] == 1500
    second = invoke("--province", "44", "--set", "dibao.urban_standard@4405=1300", "--set",
                    "tekun.standard_multiplier=1.7", "--region", "4405", "--as-of", ON.isoformat(), "--json",
                    "--save", "shantou 1300")
    assert second.exit_code == 0, second.output
    with sync_engine.connect() as conn:
        rows = conn.execute(text("SELECT name, created_by, changes FROM simulation_scenario WHERE province_code = '44' "
                                 "ORDER BY name")).all()
    assert [r[0] for r in rows] == ["shantou 1300", "urban 1500"] and rows[0][1] == "simulate"
    again = invoke("--province", "44", "--scenario", "urban 1500", "--json")
    assert again.exit_code == 0, again.output
    rerun = json.loads(again.output)
    assert rerun["saved"] == {k: v for k, v in summary.items() if k not in ("changes", "seconds")}
    assert rerun["annualCostChange"] == summary["annualCostChange"]  # same data, same answer
    compared = invoke("--province", "44", "--compare", "urban 1500", "--compare", "shantou 1300")
    assert compared.exit_code == 0, compared.output
    assert "annualCostChange" in compared.output and "difference" in compared.output
    listed = invoke("--list", "--province", "44")
    assert "urban 1500" in listed.output and "shantou 1300" in listed.output
    duplicate = invoke("--province", "44", "--set", "dibao.urban_standard=1500", "--region", "4405", "--as-of",
                       ON.isoformat(), "--save", "urban 1500")
    assert duplicate.exit_code == 2 and "region 4405 already has a scenario" in " ".join(duplicate.output.split())
    # names are unique per region: the province may keep its own "urban 1500", and then the name needs a region
    province = invoke("--province", "44", "--set", "dibao.urban_standard=1500", "--as-of", ON.isoformat(),
                      "--json", "--save", "urban 1500")
    assert province.exit_code == 0, province.output
    ambiguous = invoke("--province", "44", "--scenario", "urban 1500", "--json")
    assert ambiguous.exit_code == 2 and "regions 44, 4405: give --region" in " ".join(ambiguous.output.split())
    chosen = invoke("--province", "44", "--scenario", "urban 1500", "--region", "4405", "--json")
    assert chosen.exit_code == 0 and json.loads(chosen.output)["annualCostChange"] == summary["annualCostChange"]


@pytest.mark.parametrize("args,message", [
    (["--set", "dibao.nope=1"], "dibao.nope"),
    (["--set", "dibao.urban_standard=abc"], "dibao.urban_standard"),
    (["--set", "no equals sign"], "KEY=VALUE"),
    (["--set", "dibao.urban_standard=1500", "--as-of", "2019-01-01"], "before the parameter's history"),
    (["--scenario", "never saved"], "no scenario named"),
])
def test_errors_exit_2_naming_the_problem(env, args, message):
    result = invoke("--province", "44", *args)
    assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output
