"""The simulation engine against the eligibility engine itself, on SQLite and PostgreSQL.

Exactness: the reform's values written into a copy of province_configs/ and evaluated by Eligibility and
EligibilityGaps (``PolicyEngine.evaluate`` and ``PolicyEngine.gaps``, the code behind both operations) give the
same households and amounts as the simulation's reform side. A change that changes nothing gives zero deltas.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import polars as pl
import pytest

from aidgraph.core.access.actor import Actor, RoleGrant, system_actor
from aidgraph.core.access.scope import Scope
from aidgraph.core.policy.engine import PolicyEngine
from aidgraph.core.policy.host import build_plugin_manager
from aidgraph.core.policy.simulation import (
    BANDS,
    ParameterChange,
    SimulationError,
    Simulator,
)
from aidgraph.core.storage.config import Settings, builtin_province_configs
from tests.simulation.conftest import ON, run

ACTOR = system_actor("simulation-test")


@pytest.fixture(scope="module")
def pm():
    return build_plugin_manager()


@pytest.fixture(scope="module")
def simulator(pm):
    return Simulator(PolicyEngine(Settings(), pm))


def write_reform(target: Path, province: str, changes: list[ParameterChange], on: dt.date) -> None:
    """Add each change to the province folder as a new dated value, as an editor of the file would."""
    for change in changes:
        for path in sorted((target / province / "parameters").glob("*.toml")):
            text = path.read_text(encoding="utf-8")
            header = f'["{change.key}"]'
            if header not in text:
                continue
            start = text.index(header)
            match = re.compile(r"values = \[").search(text, start)
            value = repr(change.value).lower() if isinstance(change.value, bool) else repr(change.value)
            region = f', region = "{change.region}"' if change.region else ""
            entry = f"\n  {{ from = {on.isoformat()}, value = {value}{region} }},"
            path.write_text(text[:match.end()] + entry + text[match.end():], encoding="utf-8")
            break
        else:
            raise AssertionError(f"{change.key} is in no parameter file")


def amounts(frame: pl.DataFrame) -> dict[tuple[int, str], tuple[bool, float | None]]:
    return {(r["household_id"], r["program"]): (r["eligible"], r["monthly_amount"])
            for r in frame.iter_rows(named=True)}


REFORMS = [
    [ParameterChange("dibao.urban_standard", 1500)],
    [ParameterChange("dibao.urban_standard", 1500, "4405"), ParameterChange("tekun.standard_multiplier", 1.8)],
    [ParameterChange("dibao.urban_standard", 1000.5)],
    [ParameterChange("tekun.standard_multiplier", 2.0)],
    [ParameterChange("guangdong.employment_cost_deduction", 900)],
]


@pytest.mark.parametrize("changes", REFORMS, ids=["province", "shantou+tekun", "lower", "tekun", "deduction"])
def test_reform_equals_eligibility_under_the_changed_configuration(db_url, households, pm, simulator, tmp_path,
                                                                   changes):
    result = run(db_url, lambda s: simulator.run(s, ACTOR, "44", changes, on=ON))
    configs = tmp_path / "province_configs"
    shutil.copytree(builtin_province_configs(), configs)
    write_reform(configs, "44", changes, ON)
    changed = PolicyEngine(Settings(province_configs_dir=configs), pm)

    evaluated = run(db_url, lambda s: changed.evaluate(s, on=ON, region_code="44"))
    reform = amounts(result.reform_decisions)
    assert amounts(evaluated) == reform
    total, gaps = run(db_url, lambda s: changed.gaps(s, region_code="44", on=ON))
    expected = result.reform_decisions.filter(pl.col("eligible") & ~pl.col("enrolled"))
    assert total == expected.height
    assert sorted(gaps.select("household_id", "program").rows()) == sorted(
        expected.select("household_id", "program").rows())
    assert {(r[0], r[1]): r[2] for r in gaps.select("household_id", "program", "monthly_amount").rows()} == {
        (r[0], r[1]): r[2] for r in expected.select("household_id", "program", "monthly_amount").rows()}
    # and the baseline side is the shipped configuration
    assert amounts(result.baseline_decisions) == amounts(
        run(db_url, lambda s: simulator.engine.evaluate(s, on=ON, region_code="44")))
    # totals follow from the decisions
    r = result.reform_decisions
    assert result.reform.monthly_cost == pytest.approx(r["monthly_amount"].fill_null(0).sum(), abs=0.01)
    assert result.reform.households == r.filter("eligible")["household_id"].n_unique()


def test_a_higher_standard_reaches_new_households_and_moves_linked_lines(db_url, households, simulator):
    result = run(db_url, lambda s: simulator.run(s, ACTOR, "44", [ParameterChange("dibao.urban_standard", 1500)],
                                                 region_code="4405", on=ON))
    rows = {(r["household_id"], r["program"]): r for r in result.affected.iter_rows(named=True)}
    between, poor, edge, elderly = (households[k] for k in ("between", "poor", "edge", "elderly"))
    assert rows[(between, "dibao")]["baseline_eligible"] is False and rows[(between, "dibao")]["reform_eligible"]
    assert rows[(between, "dibao")]["reform_amount"] == pytest.approx(200.0)   # (1500 - 1300) x 1
    assert rows[(poor, "dibao")]["change"] == pytest.approx(600.0)              # 300 x 2 members
    assert rows[(edge, "dibao_edge")]["reform_eligible"] and not rows[(edge, "dibao_edge")]["baseline_eligible"]
    assert rows[(elderly, "tekun")]["change"] == pytest.approx(1.6 * 300)       # the tekun line is 1.6 x
    assert households["guangzhou"] not in {k[0] for k in rows}                  # outside the region asked
    assert households["rich"] not in {k[0] for k in rows}
    # largest change first
    changes = [abs(c) for c in result.affected["change"].to_list()]
    assert changes == sorted(changes, reverse=True)
    assert result.newly_eligible.households >= 2 and result.no_longer_eligible.households == 0
    assert result.annual_cost_change == pytest.approx(12 * (result.reform.monthly_cost - result.baseline.monthly_cost),
                                                      abs=0.01)
    assert result.annual_cost_change > 0
    assert sum(result.bands.values()) == result.households_in_scope
    assert result.bands["LOSS_UP_TO_5"] == result.bands["LOSS_MORE_THAN_5"] == 0
    assert result.bands["GAIN_MORE_THAN_5"] >= 3
    # by county: every household of 4405 lies in one of its counties; sums equal the totals
    assert all(len(code) == 6 and code.startswith("4405") for code, _, _ in result.by_region)
    assert sum(b.households for _, b, _ in result.by_region) == result.baseline.households
    assert sum(r.monthly_cost for _, _, r in result.by_region) == pytest.approx(result.reform.monthly_cost, abs=0.01)
    # reasons name the numbers that changed
    page = result.affected.filter((pl.col("household_id") == between) & (pl.col("program") == "dibao"))
    reasons = result.reasons(page)[(between, "dibao")]
    assert any(line.startswith("now: ") and "1500.00" in line for line in reasons)
    assert any(line.startswith("was: ") and "1200.00" in line for line in reasons)


def test_a_change_that_changes_nothing_gives_zero_deltas(db_url, households, simulator):
    result = run(db_url, lambda s: simulator.run(s, ACTOR, "44", [ParameterChange("dibao.urban_standard", 1200)],
                                                 on=ON))
    assert result.affected.height == 0
    assert result.baseline == result.reform
    assert result.annual_cost_change == 0
    assert result.newly_eligible.households == result.no_longer_eligible.households == 0
    assert result.bands == {b: (result.households_in_scope if b == "NO_CHANGE" else 0) for b in BANDS}
    assert all(b == r for _, b, r in result.by_program)
    assert all(b == r for _, b, r in result.by_region)


def test_the_frame_is_kept_until_a_write(db_url, households, simulator, sync_engine):
    from aidgraph.core.storage.db import session_scope
    from tests.plugins.db import add_household

    change = [ParameterChange("dibao.urban_standard", 1300)]
    first = run(db_url, lambda s: simulator.run(s, ACTOR, "44", change, region_code="4405", on=ON))
    # the first run's audit entry (committed) is not a change of the household facts
    again = run(db_url, lambda s: simulator.run(s, ACTOR, "44", change, region_code="4405", on=ON))
    assert again.cached and again.summary() == first.summary()
    with session_scope(sync_engine) as s:
        add_household(s, "440507001001", [{"age": 30}], wages=500, on=ON)
    after = run(db_url, lambda s: simulator.run(s, ACTOR, "44", change, region_code="4405", on=ON, record=False))
    assert not after.cached and after.households_in_scope == first.households_in_scope + 1
    assert after.frame_source == "kept"  # the kept frames in the database, updated from the write's stale mark
    # a change made outside the platform (SQL by hand) is marked by the database's triggers: a miss too, and the
    # next run uses the frame kept in memory again
    from sqlalchemy import text

    with sync_engine.begin() as conn:
        conn.execute(text("UPDATE household SET housing_need = NOT housing_need WHERE region_code LIKE '4405%' "
                          "AND id = (SELECT min(id) FROM household WHERE region_code LIKE '4405%')"))
    changed = run(db_url, lambda s: simulator.run(s, ACTOR, "44", change, region_code="4405", on=ON))
    assert not changed.cached
    assert run(db_url, lambda s: simulator.run(s, ACTOR, "44", change, region_code="4405", on=ON)).cached


BAD = [
    ([ParameterChange("dibao.no_such_key", 1)], ON, "changes.0.key", "dibao.no_such_key"),
    ([ParameterChange("dibao.urban_standard", "high")], ON, "changes.0.value", "dibao.urban_standard"),
    ([ParameterChange("dibao.urban_standard", -5)], ON, "changes.0.value", "dibao.urban_standard"),
    ([ParameterChange("dibao.severe_disability_max_level", 7)], ON, "changes.0.value",
     "dibao.severe_disability_max_level"),
    ([ParameterChange("dibao.urban_standard", 1500)], dt.date(2019, 1, 1), "asOf", "dibao.urban_standard"),
    ([ParameterChange("dibao.low_income_multiplier", 1.5, "4401")], ON, "changes.0.regionCode",
     "dibao.low_income_multiplier"),
    ([ParameterChange("dibao.urban_standard", 1500, "3501")], ON, "changes.0.regionCode", "dibao.urban_standard"),
    ([ParameterChange("tekun.standard_multiplier", 1.2)], ON, "changes", "tekun.standard_multiplier"),
    ([ParameterChange("dibao.urban_standard", 1000 + i) for i in range(21)], ON, "changes", None),
]


@pytest.mark.parametrize("changes,on,field,key", BAD, ids=["unknown", "type", "below-minimum", "above-maximum",
                                                           "before-history", "not-regional", "other-province",
                                                           "province-rule", "too-many"])
def test_bad_input_names_the_key_and_runs_nothing(db_url, households, simulator, changes, on, field, key):
    from sqlalchemy import text

    from aidgraph.core.storage.db import make_sync_engine

    sync = make_sync_engine(db_url)
    with sync.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM audit_log WHERE action = 'simulate'")).scalar()
    with pytest.raises(SimulationError) as caught:
        run(db_url, lambda s: simulator.run(s, ACTOR, "44", changes, on=on))
    assert caught.value.field == field
    if key:
        assert key in str(caught.value) and caught.value.key == key
    with sync.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_log WHERE action = 'simulate'")).scalar() == before
    sync.dispose()


def test_scope_a_city_planner_covers_the_city_only(db_url, households, simulator):
    city = Actor(username="planner4405", display_name="planner", grants=(RoleGrant("city_officer", "4405"),))
    city._scopes.update({("run", "simulation"): Scope.of(["4405"]), ("read", "household"): Scope.of(["4405"])})
    change = [ParameterChange("dibao.urban_standard", 1500)]
    mine = run(db_url, lambda s: simulator.run(s, city, "44", change, on=ON))
    whole = run(db_url, lambda s: simulator.run(s, ACTOR, "44", change, on=ON))
    shantou = run(db_url, lambda s: simulator.run(s, ACTOR, "44", change, region_code="4405", on=ON))
    assert mine.summary()["baseline"] == shantou.summary()["baseline"]
    assert mine.households_in_scope == shantou.households_in_scope < whole.households_in_scope
    assert set(mine.affected["region_code"].str.slice(0, 4).to_list()) == {"4405"}
    with pytest.raises(SimulationError) as caught:
        run(db_url, lambda s: simulator.run(s, city, "44", change, region_code="4401", on=ON))
    assert caught.value.code == "FORBIDDEN" and caught.value.field == "regionCode"
    nobody = Actor(username="nobody", display_name="nobody")
    with pytest.raises(SimulationError):
        run(db_url, lambda s: simulator.run(s, nobody, "44", change, on=ON))


def test_only_programs_reading_a_changed_key_are_decided_again(db_url, households, simulator):
    tekun = run(db_url, lambda s: simulator.run(s, ACTOR, "44", [ParameterChange("tekun.standard_multiplier", 2.0)],
                                                on=ON, record=False))
    assert tekun.reevaluated == ["tekun"]
    assert set(tekun.affected["program"].to_list()) == {"tekun"}
    standard = run(db_url, lambda s: simulator.run(s, ACTOR, "44", [ParameterChange("dibao.urban_standard", 1300)],
                                                   on=ON, record=False))
    assert {"dibao", "dibao_edge", "tekun"} <= set(standard.reevaluated) < set(simulator.engine.province("44").programs)
    # a deduction changes every program's assessed income: all are decided again
    deduction = run(db_url, lambda s: simulator.run(
        s, ACTOR, "44", [ParameterChange("guangdong.employment_cost_deduction", 900)], on=ON, record=False))
    assert deduction.reevaluated == list(simulator.engine.province("44").programs)


# --- one-off grants (一次性救助): costed apart from the monthly amounts, annual = 12 x monthly + one-off -----------

SHANTOU_ONE_OFF = "440507001003"  # a Shantou 社区 with no other test household: the totals are these households'
LANZHOU_ONE_OFF = "620102001002"


@pytest.fixture(scope="module")
def one_off_households(sync_engine):
    from aidgraph.core.storage.db import session_scope
    from tests.plugins.db import add_household

    with session_scope(sync_engine) as s:
        built = {
            # 2 members, per-capita income 1300; rigid (medical) expenditure 1000/month, 500 per member, leaves 800
            # per member, below the urban standard 1200: temporary aid (临时救助, 支出型), paid once
            "temporary": add_household(s, SHANTOU_ONE_OFF, [{"age": 45}, {"age": 15}], wages=2600, expenditure=1000,
                                       on=ON),
            # GS-2024 正常运营1年以上的，给予5000元一次性创业补贴: a near-dibao household whose head registered a
            # business more than a year before ON
            "entrepreneur": add_household(s, LANZHOU_ONE_OFF, [{"age": 40, "employment_status": "EMPLOYED",
                                                                "business_registered_on": dt.date(2024, 5, 31)}],
                                          wages=3000, on=ON, receiving=["dibao_edge"]),
        }
    return {k: v.household_id for k, v in built.items()}


def test_temporary_aid_is_a_one_off_cost_moved_by_the_standard(db_url, households, one_off_households, simulator):
    # the plugin's formula: months_of_standard (3, illustrative) x the local dibao standard x members
    result = run(db_url, lambda s: simulator.run(s, ACTOR, "44", [ParameterChange("dibao.urban_standard", 1500)],
                                                 region_code=SHANTOU_ONE_OFF, on=ON, record=False))
    assert result.households_in_scope == 1
    rows = {r["program"]: r for r in result.affected.iter_rows(named=True)}
    temporary = rows["temporary"]
    assert temporary["baseline_eligible"] and temporary["reform_eligible"]
    assert temporary["baseline_amount"] is None and temporary["reform_amount"] is None  # not a monthly amount
    assert temporary["baseline_one_off"] == 3 * 1200 * 2 == 7200
    assert temporary["reform_one_off"] == 3 * 1500 * 2 == 9000
    assert temporary["one_off_change"] == 1800
    by_program = {k: (b, r) for k, b, r in result.by_program}
    assert by_program["temporary"][0].one_off_cost == 7200 and by_program["temporary"][0].monthly_cost == 0
    assert by_program["temporary"][1].one_off_cost == 9000
    assert by_program["temporary"][1].year_cost == 9000  # paid once in the year, not 12 times
    # the totals: every one-off grant of the household (only temporary aid here), the monthly amounts apart
    assert result.baseline.one_off_cost == 7200 and result.reform.one_off_cost == 9000
    assert result.one_off_cost_change == 1800
    for side in (result.baseline, result.reform):
        assert side.year_cost == pytest.approx(12 * side.monthly_cost + side.one_off_cost, abs=0.01)
    assert result.year_cost_change == pytest.approx(12 * result.monthly_cost_change + 1800, abs=0.01)
    assert result.annual_cost_change == pytest.approx(12 * result.monthly_cost_change, abs=0.01)  # the contract's
    # dibao: per-capita 1300 < 1500, newly eligible at (1500 - 1300) x 2 = 400 a month
    assert rows["dibao"]["reform_amount"] == 400 and not rows["dibao"]["baseline_eligible"]
    summary = result.summary()
    assert summary["baseline"]["oneOffCost"] == 7200 and summary["reform"]["yearCost"] == result.reform.year_cost
    assert summary["oneOffCostChange"] == 1800
    # the decisions hold the same amounts as the plugin gives under Eligibility
    reform_rows = result.reform_decisions.filter(pl.col("program") == "temporary")
    assert reform_rows["one_off_amount"].to_list() == [9000.0] and reform_rows["monthly_amount"].to_list() == [None]


def test_gansu_entrepreneurship_subsidy_is_costed_once(db_url, one_off_households, simulator):
    # GS-2024: 5,000 yuan once after a year of operation; the reform raises it to 6,000: 1,000 more a year, nothing
    # more a month
    change = [ParameterChange("employment.entrepreneurship_subsidy", 6000)]
    result = run(db_url, lambda s: simulator.run(s, ACTOR, "62", change, region_code=LANZHOU_ONE_OFF, on=ON,
                                                 record=False))
    assert result.households_in_scope == 1
    by_program = {k: (b, r) for k, b, r in result.by_program}
    baseline, reform = by_program["employment"]
    assert (baseline.one_off_cost, reform.one_off_cost) == (5000, 6000)
    assert baseline.monthly_cost == reform.monthly_cost == 0
    assert result.monthly_cost_change == 0
    assert result.one_off_cost_change == 1000 and result.annual_cost_change == 0  # the contract's: 12 x monthly
    assert result.reform.year_cost - result.baseline.year_cost == 1000 == result.year_cost_change
    [row] = result.affected.iter_rows(named=True)
    assert (row["program"], row["baseline_one_off"], row["reform_one_off"], row["change"]) == (
        "employment", 5000, 6000, 0)
    assert result.bands == {b: (1 if b == "NO_CHANGE" else 0) for b in BANDS}  # no monthly income changes
