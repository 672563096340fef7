"""Every hook of aidgraph.core.policy.hookspecs is documented and exercised: one ``test_hook_<name>`` per hook, each calling the
hook through the real plugin manager, and a test that no hook lacks its test."""

from __future__ import annotations

import datetime as dt
import inspect
import re
from pathlib import Path

import pytest

from aidgraph.core.policy import hookspecs
from aidgraph.core.policy.engine import BenefitFormula, EligibilityRule, IncomeDeduction, Program
from aidgraph.core.policy.parameters import ParamSpec
from aidgraph.core.policy.host import flatten

HERE = Path(__file__).parent


def test_every_hook_is_documented():
    for name in hookspecs.HOOK_NAMES:
        spec = getattr(hookspecs, name)
        doc = inspect.getdoc(spec) or ""
        assert len(doc) > 60, f"{name} needs a docstring saying what it contributes and how results combine"
        assert inspect.signature(spec).return_annotation is not inspect.Signature.empty, f"{name} is not typed"


def test_every_hook_has_a_test():
    source = "\n".join(p.read_text(encoding="utf-8") for p in HERE.glob("test_*.py"))
    tested = set(re.findall(r"def test_hook_(aidgraph_\w+)\(", source))
    assert set(hookspecs.HOOK_NAMES) - tested == set()
    assert tested - set(hookspecs.HOOK_NAMES) == set()


def test_hook_aidgraph_programs(engine):
    programs = flatten(engine.province("44").plugins.hook.aidgraph_programs())
    assert all(isinstance(p, Program) for p in programs)
    assert {"dibao", "tekun", "dibao_edge", "expenditure_hardship", "medical", "education", "housing", "employment",
            "temporary", "temporary_emergency", "disaster", "disability"} <= {p.key for p in programs}


def test_hook_aidgraph_parameter_schemas(pm):
    specs = flatten(pm.hook.aidgraph_parameter_schemas())
    assert all(isinstance(s, ParamSpec) for s in specs)
    keys = [s.key for s in specs]
    assert len(keys) == len(set(keys))
    assert {"dibao.urban_standard", "tekun.standard_multiplier", "medical.aid_ratio",
            "fujian.earned_income_deduction_rate", "workflow.township_approval"} <= set(keys)


def test_hook_aidgraph_eligibility_rules(engine):
    rules = flatten(engine.province("35").plugins.hook.aidgraph_eligibility_rules())
    assert all(isinstance(r, EligibilityRule) for r in rules)
    assert {("dibao", "income"), ("tekun", "persons"), ("tekun", "fujian_assets")} <= {(r.program, r.key) for r in rules}


def test_hook_aidgraph_benefit_formula(engine):
    gs = engine.province("62")
    program = gs.programs["dibao"]
    formula = gs.plugins.hook.aidgraph_benefit_formula(program=program, params=gs.params)
    assert isinstance(formula, BenefitFormula) and formula.key == "gansu_classes"
    assert gs.plugins.hook.aidgraph_benefit_formula(program=gs.programs["housing"], params=gs.params) is None


def test_hook_aidgraph_income_deductions(engine):
    gd = engine.province("44")
    deductions = flatten(gd.plugins.hook.aidgraph_income_deductions(params=gd.params))
    assert [d.key for d in deductions] == ["guangdong.employment_costs"]
    assert all(isinstance(d, IncomeDeduction) for d in deductions)


def test_hook_aidgraph_province_validate(engine):
    gd = engine.province("44")
    assert flatten(gd.plugins.hook.aidgraph_province_validate(params=gd.params)) == []


def test_hook_aidgraph_review_interval_months(engine):
    gd = engine.province("44")
    on = dt.date(2025, 3, 1)
    hook = gd.plugins.hook.aidgraph_review_interval_months
    # GD-2021: yearly for stable households, six months with unstable income and working-age members
    able = [{"age": 40, "labour_capacity": "FULL"}, {"age": 12, "labour_capacity": None}]
    assert hook(program=gd.programs["dibao"], params=gd.params,
                facts={"on": on, "monthly_earned_income": 0, "members": able}) == 12
    assert hook(program=gd.programs["dibao"], params=gd.params,
                facts={"on": on, "monthly_earned_income": 800, "members": able}) == 6
    # nobody able to work: earnings alone do not make the income "unstable with able members"
    assert hook(program=gd.programs["dibao"], params=gd.params, facts={
        "on": on, "monthly_earned_income": 800, "members": [{"age": 70, "labour_capacity": "NONE"}]}) == 12
    # Gansu configures a working-age band (劳动年龄, illustrative 16 to below 60): an able 65-year-old is outside it
    gs = engine.province("62")
    stable, unstable = (gs.params.value(k, on) for k in ("dibao.review_months_stable", "dibao.review_months_unstable"))
    assert stable != unstable
    gs_hook = gs.plugins.hook.aidgraph_review_interval_months
    assert gs_hook(program=gs.programs["dibao"], params=gs.params, facts={
        "on": on, "monthly_earned_income": 800, "members": [{"age": 65, "labour_capacity": "FULL"}]}) == stable
    assert gs_hook(program=gs.programs["dibao"], params=gs.params, facts={
        "on": on, "monthly_earned_income": 800, "members": [{"age": 59, "labour_capacity": "PARTIAL"}]}) == unstable
    assert hook(program=gd.programs["tekun"], params=gd.params, facts={"on": on}) == 12
    assert hook(program=gd.programs["housing"], params=gd.params, facts={"on": on}) is None


def test_hook_aidgraph_monitoring_indicators(pm):
    indicators = flatten(pm.hook.aidgraph_monitoring_indicators())
    assert indicators, "the relapse_monitoring plugin contributes indicators"
    assert all(hasattr(i, "key") and hasattr(i, "compute") for i in indicators)


def test_hook_aidgraph_search_fields(pm):
    merged: dict = {}
    for fields in pm.hook.aidgraph_search_fields():
        for entity, mapping in fields.items():
            for name, definition in mapping.items():
                assert merged.setdefault(entity, {}).setdefault(name, definition) == definition
    assert merged["enrollment"]["program_domain"] == {"type": "keyword"}


def test_hook_aidgraph_search_document(pm):
    docs = pm.hook.aidgraph_search_document(entity="enrollment", record={"program_key": "medical"})
    assert docs == [{"program_domain": "medical", "program_name": "医疗救助 medical aid"}]
    assert pm.hook.aidgraph_search_document(entity="person", record={"name": "x"}) == []


def test_hook_aidgraph_casbin_objects(pm):
    objects: dict[str, set[str]] = {}
    for pairs in pm.hook.aidgraph_casbin_objects():
        for obj, actions in pairs:
            objects.setdefault(obj, set()).update(actions)
    # The workflow's own actions come from the core's default plugin (aidgraph.core.workflow.enrollment), declared once there;
    # aid-domain plugins contribute only objects of their own.
    assert {"apply", "review", "approve", "disburse"} <= objects["enrollment"]
    assert objects["medical_claim"] == {"read"}


@pytest.mark.parametrize("code", ["44", "35", "62"])
def test_programs_of_each_province_have_rules(engine, code):
    policy = engine.province(code)
    for key in policy.programs:
        assert policy.rules[key], f"{key} has no eligibility rule in {code}"


def test_hook_aidgraph_graphql_fields(pm):
    from aidgraph.core.policy.host import graphql_contributions
    from aidgraph.schema.build import build_schema

    contributions = dict(graphql_contributions(pm))
    fields = [f.python_name for f in contributions["medical"].mutation.__strawberry_definition__.fields]
    assert sorted(fields) == ["record_person_category", "settle_medical_aid"]
    # the rule inputs of issue 11: each from the plugin whose rules read it
    assert [f.python_name for f in contributions["education"].mutation.__strawberry_definition__.fields] == [
        "record_student_status"]
    assert sorted(f.python_name for f in contributions["temporary"].mutation.__strawberry_definition__.fields) == [
        "explain_emergency", "record_emergency"]
    sdl = build_schema(pm=pm).as_str()
    assert "settleMedicalAid(input: MedicalClaimInput!): MedicalClaimPayload!" in sdl
    assert "recordHousingNeed(input: HousingNeedInput!): HousingNeedPayload!" in sdl
    assert "recordEmploymentSupport(input: EmploymentSupportInput!): EmploymentSupportPayload!" in sdl


def test_plugin_field_colliding_with_the_core_is_a_startup_error(pm):
    import strawberry

    from aidgraph.core.policy.hookspecs import hookimpl
    from aidgraph.core.policy.contract import GraphQLContribution
    from aidgraph.core.policy.host import build_plugin_manager
    from aidgraph.schema.build import SchemaConflict, build_schema

    @strawberry.type
    class Rogue:
        @strawberry.field
        def programs(self, province_code: str) -> list[str]:
            return []

    class RoguePlugin:
        PLUGIN_NAME = "rogue"

        @hookimpl
        def aidgraph_graphql_fields(self):
            return GraphQLContribution(query=Rogue)

    rogue_pm = build_plugin_manager(extra_plugins=[RoguePlugin()], entry_points=False)
    with pytest.raises(SchemaConflict) as err:
        build_schema(pm=rogue_pm)
    assert "Query.programs" in str(err.value) and "aidgraph.schema.programs" in str(err.value) and "plugin rogue" in str(err.value)


def test_hook_aidgraph_graphql_types(pm):
    from aidgraph.core.policy.host import graphql_types

    types = graphql_types(pm)
    assert sorted(t.__strawberry_definition__.name for t in types) == [
        "Diagnosis", "EmergencyEvent", "EmploymentSupport", "MedicalClaim", "StudentStatus"]
