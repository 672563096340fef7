"""其他救助帮扶 (other assistance, GD-2021 §13): help the sources name without an amount.

GD-2021 §13 发展其他救助帮扶 lists measures beside the programs of the other plugins. Two decide who qualifies from
what the platform records, so they are programs here:

* ``electricity_relief`` 电费减免: "对低保、特困对象减免电费" — every household receiving dibao or tekun;
* ``child_rehabilitation`` 残疾儿童康复救助: "加强残疾儿童康复救助，实现持有居住证的残疾儿童康复救助全覆盖" —
  every disabled child (a member with a disability level, under :data:`ADULT_AGE`), whatever the household's
  income or hukou (holders of a residence permit are covered: the platform records residents, so no hukou test).

  GD-2024's 每年为广东省户籍有需求的残疾儿童提供抢救性康复服务 (Guangdong-hukou children) is inside this coverage;
* ``funeral_fee_waiver`` 殡葬基本服务费用减免: "为身故困难群众免除殡葬基本服务费用" — a member who died in the last 12
  months while the household was in the low-income population (enrolled, on the day of death, in one of the
  :data:`aidgraph.plugins.low_income.LOW_INCOME_PROGRAMS`: 困难群众); the frame's ``deceased`` column holds them,
  since ``members`` holds the living only;
* ``two_cancers_aid`` 农村贫困妇女“两癌”救助: "开展农村贫困妇女“两癌”救助" — a woman of a rural household in the
  low-income population (贫困) with a recorded diagnosis (``recordDiagnosis``) of a kind the province lists in
  ``other_assistance.two_cancers_diagnoses``; a province listing none gets "not configured";
* ``orphan_basic_living`` 孤儿基本生活保障: "对低保、特困、孤儿、事实无人抚养儿童等对象，给予基本生活救助" and §13's
  "推进…孤儿基本生活保障" — every member recorded as an orphan or a de-facto-unattended child (ORPHAN,
  UNATTENDED_CHILD: ``recordPersonCategory``), whatever the household's income.

The sources give no amount for any of them, so none has one here: the reasons say "amount not configured" (the
electricity reduction is applied on the power bill by the supplier; rehabilitation and funeral services are
services; the 两癌 aid and the orphans' allowance have amounts the sources do not state), and a case is recorded
as an enrolment like any other. Not built from the same paragraph: legal and judicial aid (no recorded inputs).
"""

from __future__ import annotations

import polars as pl
from aidgraph.plugin import (
    ADULT_AGE,
    EligibilityRule,
    PROGRAM_SEARCH_FIELDS,
    ParamSpec,
    Program,
    RuleContext,
    count_members,
    fmt,
    hookimpl,
    member,
    program_search_document,
    receiving_any,
    text,
)
from aidgraph.plugins.low_income import LOW_INCOME_PROGRAMS
from aidgraph.plugins.other_assistance.graphql import DIAGNOSES_KEY, Diagnosis, contribution

__version__ = "0.1.0"

ELECTRICITY = Program(key="electricity_relief", name="电费减免 electricity fee relief", domain="other",
                      unit="household",
                      description="Electricity fees reduced or waived for dibao and tekun households (GD-2021 §13).")
CHILD_REHAB = Program(key="child_rehabilitation", name="残疾儿童康复救助 rehabilitation aid for disabled children",
                      domain="disability", unit="person",
                      description="Rehabilitation aid for every disabled child, residence-permit holders included "
                                  "(GD-2021 §13).")
FUNERAL = Program(key="funeral_fee_waiver", name="殡葬基本服务费用减免 funeral basic service fee waiver",
                  domain="other", unit="person",
                  description="Basic funeral service fees waived for deceased members of low-income households "
                              "(GD-2021 §13).")
TWO_CANCERS = Program(key="two_cancers_aid", name="农村贫困妇女“两癌”救助 aid for poor rural women with cervical or "
                                                   "breast cancer", domain="medical", unit="person",
                      description="Aid for women of poor rural households diagnosed with cervical or breast cancer "
                                  "(GD-2021 §13).")
ORPHAN_LIVING = Program(key="orphan_basic_living", name="孤儿基本生活保障 basic living allowance for orphans",
                        domain="other", unit="person",
                        description="Basic living aid for orphans and de-facto-unattended children (GD-2021 §1, §13).")
PROGRAMS = [ELECTRICITY, CHILD_REHAB, FUNERAL, TWO_CANCERS, ORPHAN_LIVING]
ORPHAN_CATEGORIES = ("ORPHAN", "UNATTENDED_CHILD")
"""孤儿, 事实无人抚养儿童: the person categories ``recordPersonCategory`` records."""
RELIEF_PROGRAMS = ("dibao", "tekun")
"""对低保、特困对象减免电费."""


@hookimpl
def aidgraph_programs() -> list[Program]:
    return PROGRAMS


def _relief(c: RuleContext):
    return receiving_any(RELIEF_PROGRAMS), fmt(
        "receiving dibao or tekun: {} (GD-2021 对低保、特困对象减免电费); amount not configured: the source names the "
        "reduction, not its amount (applied on the power bill)", receiving_any(RELIEF_PROGRAMS))


def disabled_children() -> pl.Expr:
    """Members with a disability level, under the adult age."""
    return count_members(member("disability_level").is_not_null() & (member("age") < ADULT_AGE))


def _children(c: RuleContext):
    n = disabled_children()
    return n > 0, fmt("{} disabled child(ren) under {}; no income or hukou test (GD-2021 残疾儿童康复救助全覆盖, "
                      "持有居住证的 included); amount not configured: rehabilitation is a service the source gives "
                      "no amount for", n, ADULT_AGE)


def _funeral(c: RuleContext):
    aided = pl.lit(list(LOW_INCOME_PROGRAMS), dtype=pl.List(pl.String))
    n = pl.col("deceased").list.eval(
        pl.element().struct.field("aided").list.set_intersection(aided).list.len() > 0).list.sum().fill_null(0)
    return n > 0, fmt("{} member(s) died in the last 12 months while the household was in the low-income population "
                      "({}) (GD-2021 为身故困难群众免除殡葬基本服务费用); amount not configured: the waiver is of the "
                      "funeral service's basic fees, which the source does not state", n,
                      pl.lit(", ".join(LOW_INCOME_PROGRAMS)))


def _two_cancers(c: RuleContext):
    diagnoses = list(c.p(DIAGNOSES_KEY, default=None) or [])
    if not diagnoses:
        return pl.lit(False), pl.lit(f"not configured: {DIAGNOSES_KEY} (the diagnoses of the 两癌 aid)")
    women = count_members((member("sex") == "FEMALE") & member("diagnosis").is_in(diagnoses))
    poor = receiving_any(LOW_INCOME_PROGRAMS)
    rural = pl.col("rural").fill_null(False)
    return (women > 0) & poor & rural, fmt(
        "{} woman/women diagnosed with {} ({}); rural household: {}; in the low-income population (贫困): {} "
        "(GD-2021 开展农村贫困妇女“两癌”救助); amount not configured: the source gives none",
        women, text(" or ".join(diagnoses)), text(c.cite(DIAGNOSES_KEY)), rural, poor)


def _orphans(c: RuleContext):
    n = count_members(member("special_category").is_in(list(ORPHAN_CATEGORIES)))
    return n > 0, fmt("{} orphan(s) or de-facto-unattended child(ren) (孤儿、事实无人抚养儿童) recorded; no income test "
                      "(GD-2021 对…孤儿、事实无人抚养儿童等对象，给予基本生活救助); amount not configured: the sources "
                      "give no allowance figure", n)


@hookimpl
def aidgraph_eligibility_rules() -> list[EligibilityRule]:
    return [EligibilityRule(ELECTRICITY.key, "dibao_or_tekun", _relief),
            EligibilityRule(CHILD_REHAB.key, "disabled_child", _children),
            EligibilityRule(FUNERAL.key, "deceased_low_income_member", _funeral),
            EligibilityRule(TWO_CANCERS.key, "rural_poor_woman_diagnosed", _two_cancers),
            EligibilityRule(ORPHAN_LIVING.key, "orphan_or_unattended_child", _orphans)]


@hookimpl
def aidgraph_parameter_schemas() -> list[ParamSpec]:
    return [ParamSpec(DIAGNOSES_KEY, "list", "两癌救助: the diagnoses it covers (宫颈癌 CERVICAL_CANCER, 乳腺癌 "
                      "BREAST_CANCER)", required=False, choices=("CERVICAL_CANCER", "BREAST_CANCER"))]


@hookimpl
def aidgraph_graphql_fields():
    return contribution()


@hookimpl
def aidgraph_graphql_types() -> list[type]:
    return [Diagnosis]


@hookimpl
def aidgraph_search_fields() -> dict:
    return PROGRAM_SEARCH_FIELDS


@hookimpl
def aidgraph_search_document(entity: str, record: dict) -> dict | None:
    return program_search_document(PROGRAMS, entity, record)
