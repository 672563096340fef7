"""其他救助帮扶 (other assistance, GD-2021 §13): help the sources name without an amount.

GD-2021 §13 发展其他救助帮扶 lists measures beside the programs of the other plugins. Two decide who qualifies from
what the platform records, so they are programs here:

* ``electricity_relief`` 电费减免: "对低保、特困对象减免电费" — every household receiving dibao or tekun;
* ``child_rehabilitation`` 残疾儿童康复救助: "加强残疾儿童康复救助，实现持有居住证的残疾儿童康复救助全覆盖" —
  every disabled child (a member with a disability level, under :data:`ADULT_AGE`), whatever the household's
  income or hukou (holders of a residence permit are covered: the platform records residents, so no hukou test).

The source gives no amount for either, so neither has one here: the reasons say "amount not configured" (the
reduction is applied on the power bill by the supplier; rehabilitation is a service), and a case is recorded as
an enrolment like any other. Not built from the same
paragraph: 两癌 aid (needs a diagnosis kind the platform does not record), funeral fee waivers (the household frame
holds living members only), legal and judicial aid (no recorded inputs).
"""

from __future__ import annotations

import polars as pl
from aidgraph.plugin import (
    ADULT_AGE,
    EligibilityRule,
    PROGRAM_SEARCH_FIELDS,
    Program,
    RuleContext,
    count_members,
    fmt,
    hookimpl,
    member,
    program_search_document,
    receiving_any,
)

__version__ = "0.1.0"

ELECTRICITY = Program(key="electricity_relief", name="电费减免 electricity fee relief", domain="other",
                      unit="household",
                      description="Electricity fees reduced or waived for dibao and tekun households (GD-2021 §13).")
CHILD_REHAB = Program(key="child_rehabilitation", name="残疾儿童康复救助 rehabilitation aid for disabled children",
                      domain="disability", unit="person",
                      description="Rehabilitation aid for every disabled child, residence-permit holders included "
                                  "(GD-2021 §13).")
PROGRAMS = [ELECTRICITY, CHILD_REHAB]
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


@hookimpl
def aidgraph_eligibility_rules() -> list[EligibilityRule]:
    return [EligibilityRule(ELECTRICITY.key, "dibao_or_tekun", _relief),
            EligibilityRule(CHILD_REHAB.key, "disabled_child", _children)]


@hookimpl
def aidgraph_search_fields() -> dict:
    return PROGRAM_SEARCH_FIELDS


@hookimpl
def aidgraph_search_document(entity: str, record: dict) -> dict | None:
    return program_search_document(PROGRAMS, entity, record)
