"""The plugin architecture: the factory, province-scoped hook calls, third-party distributions through the
``aidgraph`` entry point, the GraphQL duplicate check, and the strict parameter loader's errors."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import strawberry
from typer.testing import CliRunner

from aidgraph.core.policy.engine import PolicyEngine
from aidgraph.core.policy.hookspecs import hookimpl
from aidgraph.core.policy.parameters import ParameterError
from aidgraph.core.policy.provinces import load_province
from aidgraph.core.policy.contract import GraphQLContribution
from aidgraph.core.policy.host import (
    DuplicateFieldError,
    PluginError,
    ProvincePlugins,
    build_plugin_manager,
    builtin_plugin_names,
    merge_graphql_fields,
    plugin_records,
)

FIXTURE_DIST = Path(__file__).parent / "fixtures" / "aidgraph_longevity"
DOMAIN_PLUGINS = {"dibao", "tekun", "dibao_edge", "expenditure_hardship", "medical", "education", "housing",
                  "employment", "temporary", "disaster", "disability"}


def test_factory_registers_every_builtin_and_checks_pending(pm):
    names = {name for name, _ in pm.list_name_plugin()}
    assert DOMAIN_PLUGINS | {"guangdong", "fujian", "gansu", "core.workflow"} <= names
    assert set(builtin_plugin_names()) <= names
    # every registered implementation is of a declared hook (check_pending ran in the factory)
    pm.check_pending()


@pytest.mark.parametrize("code,name,variant", [("44", "广东省", "guangdong"), ("35", "福建省", "fujian"),
                                               ("62", "甘肃省", "gansu")])
def test_all_three_provinces_load_with_their_plugins(engine, code, name, variant):
    policy = engine.province(code)
    assert policy.config.name == name
    assert variant in policy.config.enabled
    assert DOMAIN_PLUGINS <= set(policy.config.enabled)
    assert {"dibao", "tekun", "dibao_edge", "expenditure_hardship", "medical", "temporary"} <= set(policy.programs)
    # other provinces' variants are not enabled here
    assert not ({"guangdong", "fujian", "gansu"} - {variant}) & set(policy.config.enabled)


def test_province_scoped_calls_never_reach_another_provinces_plugin(engine):
    gd, fj = engine.province("44"), engine.province("35")
    gd_deductions = [d.key for d in gd.plugins.hook.aidgraph_income_deductions(params=gd.params)[0]]
    fj_deductions = [d.key for r in fj.plugins.hook.aidgraph_income_deductions(params=fj.params) for d in r]
    assert gd_deductions == ["guangdong.employment_costs"]
    assert fj_deductions == ["fujian.earned_income"]
    # Gansu's dibao formula replaces the domain default in Gansu only
    assert engine.province("62").formulas["dibao"].key == "gansu_classes"
    assert gd.formulas["dibao"].key == "gap_or_tiers" and fj.formulas["dibao"].key == "gap_or_tiers"
    # Fujian's asset rule replaces the tekun/dibao_edge one in Fujian only
    assert [r.key for r in fj.rules["tekun"]].count("fujian_assets") == 1
    assert "fujian_assets" not in [r.key for r in gd.rules["tekun"]]


def test_scoped_caller_removes_disabled_plugins(pm):
    scoped = ProvincePlugins(pm, "44", ["dibao"])
    programs = [p.key for r in scoped.hook.aidgraph_programs() for p in r]
    assert programs == ["dibao"]
    with pytest.raises(AttributeError, match="no hook named"):
        scoped.hook.aidgraph_nonexistent  # noqa: B018


def test_unknown_hook_is_a_startup_error_naming_plugin_and_hook():
    class Typo:
        PLUGIN_NAME = "typo_plugin"

        @hookimpl
        def aidgraph_program(self):  # the real hook is aidgraph_programs
            return []

    with pytest.raises(PluginError) as err:
        build_plugin_manager(extra_plugins=[Typo()], builtins=[], entry_points=False)
    assert "typo_plugin" in str(err.value) and "aidgraph_program" in str(err.value)


def test_duplicate_plugin_name_is_an_error():
    class Dibao:
        PLUGIN_NAME = "dibao"

    with pytest.raises(PluginError, match="two plugins are named 'dibao'"):
        build_plugin_manager(extra_plugins=[Dibao()], builtins=["dibao"], entry_points=False)


def test_colliding_graphql_field_names_both_contributors():
    @strawberry.type
    class CoreQuery:
        programs: list[str]

    @strawberry.type
    class PluginQuery:
        @strawberry.field
        def programs(self) -> list[str]:
            return []

    @strawberry.type
    class Other:
        @strawberry.field
        def longevity_min_age(self) -> int:
            return 1

    merged = merge_graphql_fields({"query": [("core aidgraph.schema.programs", CoreQuery)]},
                                  [("longevity", GraphQLContribution(query=Other))])
    assert merged["query"] == [CoreQuery, Other]
    with pytest.raises(DuplicateFieldError) as err:
        merge_graphql_fields({"query": [("core aidgraph.schema.programs", CoreQuery)]},
                             [("rogue", GraphQLContribution(query=PluginQuery))])
    assert "Query.programs" in str(err.value)
    assert "core aidgraph.schema.programs" in str(err.value) and "plugin rogue" in str(err.value)


def test_duplicate_program_key_is_an_error(copy_settings, configs):
    from aidgraph.core.policy.engine import Program

    class Rogue:
        PLUGIN_NAME = "rogue"

        @hookimpl
        def aidgraph_programs(self):
            return [Program(key="dibao", name="another dibao", domain="basic_living")]

    pm = build_plugin_manager(copy_settings, extra_plugins=[Rogue()], entry_points=False)
    _enable(configs / "44", "rogue")
    with pytest.raises(PluginError, match="program 'dibao' is registered by both"):
        PolicyEngine(copy_settings, pm).province("44")


# --- third-party distribution ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def installed_longevity(tmp_path_factory):
    """The fixture distribution, really built and installed by pip into a target folder on sys.path."""
    target = tmp_path_factory.mktemp("site")
    source = tmp_path_factory.mktemp("src") / FIXTURE_DIST.name  # build outside the checkout: no build/ left there
    shutil.copytree(FIXTURE_DIST, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(source)], check=True, capture_output=True)
    sys.path.insert(0, str(target))
    import importlib

    importlib.invalidate_caches()
    yield target
    sys.path.remove(str(target))
    sys.modules.pop("aidgraph_longevity", None)


def _enable(province_dir: Path, name: str) -> None:
    path = province_dir / "province.toml"
    path.write_text(path.read_text(encoding="utf-8").replace("enabled = [\n", f'enabled = [\n  "{name}",\n'),
                    encoding="utf-8")


def test_third_party_distribution_is_picked_up_through_the_entry_point(installed_longevity, copy_settings, configs):
    pm = build_plugin_manager(copy_settings)
    assert pm.has_plugin("longevity")
    record = next(r for r in plugin_records(pm) if r.name == "longevity")
    assert record.version == "0.3.0" and record.origin == "entry point (aidgraph-longevity)"
    # installed but not enabled: Guangdong does not see it
    engine = PolicyEngine(copy_settings, pm)
    assert "longevity" not in engine.province("44").programs
    # enabled for Guangdong with its parameters: the program, rule and formula work
    _enable(configs / "44", "longevity")
    (configs / "44" / "parameters" / "longevity.toml").write_text(
        '["longevity.min_age"]\ndescription = "高龄"\nsource = "illustrative"\n'
        'values = [ { from = 2024-01-01, value = 80 } ]\n\n'
        '["longevity.amount"]\ndescription = "amount"\nsource = "illustrative"\n'
        'values = [ { from = 2024-01-01, value = 100 }, { from = 2024-01-01, value = 150, region = "4401" } ]\n',
        encoding="utf-8")
    policy = PolicyEngine(copy_settings, pm).province("44")
    assert "longevity" in policy.programs
    assert policy.params.value("longevity.amount", dt.date(2025, 1, 1), region="440106") == 150
    frame = _frame([{"age": 85}, {"age": 40}], region="440106001001")
    result = policy.evaluate_frame(frame, dt.date(2025, 1, 1), ["longevity"]).row(0, named=True)
    assert result["eligible"] and result["monthly_amount"] == 150.0
    assert any("1 member(s) aged 80 or more" in r for r in result["reasons"])
    # still absent from Fujian
    assert "longevity" not in PolicyEngine(copy_settings, pm).province("35").programs


# --- parameters -----------------------------------------------------------------------------------------


def test_dated_values_and_regional_overrides(engine):
    params = engine.province("44").params
    on = dt.date(2025, 1, 1)
    assert params.value("dibao.urban_standard", on) == 1200
    assert params.value("dibao.urban_standard", on, region="440106001001") == 1400  # Guangzhou override
    assert params.value("dibao.urban_standard", on, region="440301001001") == 1200
    # a change on a date is a new entry: GD-2022 added level-3/4 mental and intellectual disability
    assert "mental_intellectual_3_4" not in params.value("dibao.single_inclusion_groups", dt.date(2021, 12, 31))
    assert "mental_intellectual_3_4" in params.value("dibao.single_inclusion_groups", dt.date(2022, 1, 1))
    # township approval delegated in the Pearl River Delta only (GD-2021)
    assert params.value("workflow.township_approval", on, region="440106001001") == ["dibao", "tekun"]
    assert params.value("workflow.township_approval", on, region="445102001001") == []
    # the column lookup gives the same answers set-at-a-time
    frame = pl.DataFrame({"region_code": ["440106001001", "440301001001", "440106"]})
    values = frame.select(params.column("dibao.urban_standard", on))["literal"].to_list()
    assert values == [1400, 1200, 1400]
    assert params.is_illustrative("dibao.urban_standard") and not params.is_illustrative("tekun.standard_multiplier")
    assert params.source("tekun.standard_multiplier").startswith("GD-2021")


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


BAD_FILES = [
    # (file, content appended or replacing, expected key, expected message part)
    ("dibao.toml", 'append', '["dibao.unknown_thing"]\ndescription = "x"\nsource = "illustrative"\n'
                              'values = [ { from = 2024-01-01, value = 1 } ]\n', "dibao.unknown_thing", "unknown key"),
    ("dibao.toml", 'append', '["dibao.tiers2"]\n', "dibao.tiers2", "unknown key"),
    ("guangdong.toml", 'replace', '["guangdong.employment_cost_deduction"]\ndescription = "x"\nsource = "GD-2021"\n'
                                   'values = [ { value = 300 } ]\n', "guangdong.employment_cost_deduction",
     "missing 'from' date"),
    ("guangdong.toml", 'replace', '["guangdong.employment_cost_deduction"]\ndescription = "x"\nsource = "GD-2021"\n'
                                   'values = [ { from = 2024-01-01 } ]\n', "guangdong.employment_cost_deduction",
     "missing value"),
    ("guangdong.toml", 'replace', '["guangdong.employment_cost_deduction"]\ndescription = "x"\nsource = "GD-2021"\n'
                                   'values = []\n', "guangdong.employment_cost_deduction", "missing value"),
    ("guangdong.toml", 'replace', '["guangdong.employment_cost_deduction"]\ndescription = "x"\nsource = "GD-2021"\n'
                                   'values = [ { from = 2024-01-01, value = "300" } ]\n',
     "guangdong.employment_cost_deduction", "bad type: expected a number"),
    ("guangdong.toml", 'replace', '["guangdong.employment_cost_deduction"]\ndescription = "x"\n'
                                   'values = [ { from = 2024-01-01, value = 300 } ]\n',
     "guangdong.employment_cost_deduction", "missing source"),
    ("guangdong.toml", 'replace', '["guangdong.employment_cost_deduction"]\ndescription = "x"\nsource = "GD-2021"\n'
                                   'values = [ { from = "2024-01-01", value = 300 } ]\n',
     "guangdong.employment_cost_deduction", "'from' must be a date"),
    ("guangdong.toml", 'replace', '["guangdong.employment_cost_deduction"]\ndescription = "x"\nsource = "GD-2021"\n'
                                   'values = [ { from = 2024-01-01, value = 300, region = "4401" } ]\n',
     "guangdong.employment_cost_deduction", "does not vary by region"),
    ("dibao.toml", 'append', '["dibao.urban_standard"]\ndescription = "dup"\nsource = "illustrative"\n'
                              'values = [ { from = 2024-01-01, value = 1 } ]\n', None, "not valid TOML"),
    ("tekun.toml", 'sub', ("value = 1.6", "value = 1.5"), "tekun.standard_multiplier", "at least 1.6 (GD-2021)"),
    ("guangdong.toml", 'delete', None, "guangdong.employment_cost_deduction", "missing value: required"),
]


@pytest.mark.parametrize("filename,mode,content,key,message", BAD_FILES,
                         ids=[f"{b[0]}-{b[4][:24]}" for b in BAD_FILES])
def test_bad_parameter_files_name_file_and_key(copy_settings, configs, pm, filename, mode, content, key, message):
    path = configs / "44" / "parameters" / filename
    if mode == "append":
        _write(path, path.read_text(encoding="utf-8") + "\n" + content)
    elif mode == "replace":
        _write(path, content)
    elif mode == "sub":
        _write(path, path.read_text(encoding="utf-8").replace(*content))
    elif mode == "delete":
        path.unlink()
    with pytest.raises(ParameterError) as err:
        load_province("44", copy_settings, pm)
    assert err.value.file.endswith(filename)
    assert err.value.key == key
    assert message in str(err.value)


def test_fujian_deduction_rate_outside_the_sources_range_is_rejected(copy_settings, configs, pm):
    path = configs / "35" / "parameters" / "fujian.toml"
    _write(path, path.read_text(encoding="utf-8").replace("value = 0.2 }", "value = 0.35 }"))
    with pytest.raises(ParameterError) as err:
        load_province("35", copy_settings, pm)
    assert err.value.key == "fujian.earned_income_deduction_rate" and "above the maximum 0.3" in str(err.value)
    assert err.value.file.endswith("fujian.toml")


def test_region_outside_the_province_is_rejected(copy_settings, configs, pm):
    path = configs / "35" / "parameters" / "dibao.toml"
    _write(path, path.read_text(encoding="utf-8").replace('  { from = 2021-01-01, value = 900 },',
                                                          '  { from = 2021-01-01, value = 900 },\n'
                                                          '  { from = 2021-01-01, value = 950, region = "4401" },'))
    with pytest.raises(ParameterError, match="not a region code of province 35") as err:
        load_province("35", copy_settings, pm)
    assert err.value.key == "dibao.urban_standard"


def test_province_plugin_enabled_elsewhere_and_unknown_plugin_are_rejected(copy_settings, configs, pm):
    _enable(configs / "35", "guangdong")
    with pytest.raises(ParameterError, match="written for province\\(s\\) 44, not 35") as err:
        load_province("35", copy_settings, pm)
    assert err.value.file.endswith("province.toml") and err.value.key == "plugins.enabled"
    _enable(configs / "62", "no_such_plugin")
    with pytest.raises(ParameterError, match="unknown plugin 'no_such_plugin'"):
        load_province("62", copy_settings, pm)


def test_switching_a_plugin_off_needs_no_code_change(copy_settings, configs, pm):
    path = configs / "35" / "province.toml"
    _write(path, path.read_text(encoding="utf-8").replace('  "housing",\n', ""))
    policy = PolicyEngine(copy_settings, pm).province("35")
    assert "housing" not in policy.programs and "housing" not in policy.config.enabled
    assert "housing.measures" in policy.config.inactive_keys  # its parameters stay in place, unloaded


def test_plugins_command_lists_versions_and_illustrative_parameters():
    from aidgraph.core.app.cli import app

    result = CliRunner().invoke(app, ["plugins", "--province", "35"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "core.workflow" in result.output and "fujian" in result.output and "0.1.0" in result.output
    assert "35 福建省" in result.output
    # N lost in FJ-2021: shipped without a value, listed as not configured
    assert "fujian.financial_assets_multiplier" in result.output.split("not configured")[1]
    assert "fujian.earned_income_deduction_rate" not in result.output.split("illustrative parameters")[1]
    bad = CliRunner().invoke(app, ["plugins", "--province", "99"])
    assert bad.exit_code == 1 and "no configuration for province 99" in bad.output


# --- helpers -----------------------------------------------------------------------------------------------


def _frame(members: list[dict], region: str = "440106001001", **household) -> pl.DataFrame:
    from tests.plugins.frames import household_frame

    return household_frame(members, region=region, **household)
