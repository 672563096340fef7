"""受灾人员救助 (aid for disaster victims): living aid for households in a declared disaster area and phase.

Rules (POLICY_FACTS §2, GD-2021): phases are the emergency period, the transition period, winter-spring living
aid and house reconstruction. Which areas are affected, and when, is declared by the province as the
parameter ``disaster.declared_areas`` (a list of { region, from, until, phase }); the amount per person is
not in the sources (illustrative).
"""

from __future__ import annotations

import datetime as dt

import polars as pl
from aidgraph.plugin import (
    BenefitFormula,
    EligibilityRule,
    PROGRAM_SEARCH_FIELDS,
    ParamSpec,
    Program,
    RuleContext,
    fmt,
    hookimpl,
    program_search_document,
    yuan,
)


__version__ = "0.1.0"

PROGRAM = Program(key="disaster", name="受灾人员救助 aid for disaster victims", domain="disaster", pays_monthly=True,
                  description="Emergency, transition, winter-spring and reconstruction aid in declared areas.")
PHASES = ("emergency", "transition", "winter_spring", "reconstruction")


@hookimpl
def aidgraph_programs() -> list[Program]:
    return [PROGRAM]


@hookimpl
def aidgraph_parameter_schemas() -> list[ParamSpec]:
    return [
        ParamSpec("disaster.declared_areas", "list",
                  "declared disaster areas: [{ region = \"440101\", from = 2025-06-01, until = 2025-09-01, phase = "
                  "\"transition\" }]"),
        ParamSpec("disaster.living_aid_per_person", "number", "过渡期生活救助 per person", "yuan per person per month",
                  minimum=0),
    ]


@hookimpl
def aidgraph_province_validate(params) -> list[str] | None:
    problems = []
    declared = params.parameters.get("disaster.declared_areas")
    for dated in declared.values if declared else []:
        for i, area in enumerate(dated.value, start=1):
            if not isinstance(area, dict) or not isinstance(area.get("region"), str) or not isinstance(
                    area.get("from"), dt.date) or area.get("phase") not in PHASES:
                problems.append(f"disaster.declared_areas: area {i} needs region, from (a date) and phase among "
                                f"{', '.join(PHASES)}")
            elif not area["region"].startswith(params.province_code):
                problems.append(f"disaster.declared_areas: area {i} region {area['region']} is outside province "
                                f"{params.province_code}")
    return problems or None


def _areas(c: RuleContext) -> list[dict]:
    return [a for a in c.p("disaster.declared_areas") if a["from"] <= c.on and (a.get("until") is None or c.on < a["until"])]


def _declared(c: RuleContext):
    areas = _areas(c)
    hit: pl.Expr = pl.lit(None, dtype=pl.String)
    for area in areas:
        hit = pl.when(pl.col("region_code").str.starts_with(area["region"])).then(
            pl.lit(f"{area['region']} ({area['phase']} phase from {area['from']})")).otherwise(hit)
    return hit.is_not_null(), fmt("declared disaster area: {} ({} area(s) in force, {})", hit.fill_null("none"),
                                  len(areas), c.cite("disaster.declared_areas"))


def _benefit(c: RuleContext):
    per_person = float(c.p("disaster.living_aid_per_person"))
    amount = pl.col("member_count") * per_person
    return amount, fmt("{} yuan x {} member(s) = {} yuan/month ({})", yuan(per_person), pl.col("member_count"),
                       yuan(amount), c.cite("disaster.living_aid_per_person"))


@hookimpl
def aidgraph_eligibility_rules() -> list[EligibilityRule]:
    return [EligibilityRule("disaster", "declared_area", _declared)]


@hookimpl(trylast=True)
def aidgraph_benefit_formula(program: Program, params) -> BenefitFormula | None:
    return BenefitFormula("disaster", "living_aid", _benefit) if program.key == "disaster" else None



@hookimpl
def aidgraph_search_fields() -> dict:
    return PROGRAM_SEARCH_FIELDS


@hookimpl
def aidgraph_search_document(entity: str, record: dict) -> dict | None:
    return program_search_document([PROGRAM], entity, record)
