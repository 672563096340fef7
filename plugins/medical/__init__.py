"""医疗救助 (medical aid): who is covered, premium subsidies, and claim settlement by province rules.

Rules (POLICY_FACTS §2 medical table):

* aid ratio on compliant costs left after basic and critical-illness insurance, by category: Guangdong
  (GD-2024) tekun, orphans 100%, dibao and rural at-risk >= 80%, other recipients >= 70%; Fujian (FJ-2021)
  tekun 92%, dibao >= 70%; Gansu (GS-2024) 60%-100% by category (the per-category split is not in the source:
  illustrative), no annual deductible for those categories;
* patients impoverished by illness (因病致贫重病患者, Gansu, on application): annual deductible 5,000 yuan and 70%;
* annual cap (Gansu): 50,000 yuan; 80,000 for the 35 listed major diseases;
* secondary aid (Gansu): out-of-pocket above 6,000 yuan after insurance and aid, 70% of the excess, no cap;
* premium subsidies for resident insurance (Gansu 380 / 310 / 250 / 100 yuan; Guangdong and Fujian full for
  the categories named).

Each province differs through its parameters only: a key a province does not configure is a rule it does not
have (no deductible, no cap, no secondary aid). Claims are settled by :mod:`aidgraph.plugins.medical.claims` and
exposed as the contract's ``settleMedicalAid`` mutation through the GraphQL hook.
"""

from __future__ import annotations

import polars as pl
from aidgraph.plugin import (
    BenefitFormula,
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
    receiving,
    yuan,
)

from aidgraph.plugins.low_income import CATEGORY_OF_PROGRAM
from aidgraph.plugins.medical.categories import combined
from aidgraph.plugins.medical.claims import PERSON_CATEGORIES
from aidgraph.plugins.medical.graphql import MedicalClaimType, contribution
from aidgraph.plugins.medical.models import MedicalClaim  # noqa: F401 - the plugin's table, declared on registration


__version__ = "0.1.0"

PROGRAM = Program(key="medical", name="医疗救助 medical aid", domain="medical", unit="person",
                  description="Aid on compliant medical costs after insurance, and resident-insurance premium subsidies.")

CATEGORIES = (*CATEGORY_OF_PROGRAM.values(), *(c for c in PERSON_CATEGORIES if c != "STABLY_LIFTED"))
"""Categories ``medical.aid_ratio`` may give a ratio: the low-income categories (an active enrolment in the
program, :mod:`aidgraph.plugins.low_income`) and the person-level ones but stably lifted persons, who get
premium subsidies only (GS-2024)."""
PREMIUM_CATEGORIES = CATEGORIES + ("RURAL_CLASS_1", "RURAL_CLASS_2", "RURAL_CLASS_3", "RURAL_CLASS_4", "URBAN_FULL",
                                   "URBAN_DIFFERENTIAL", "STABLY_LIFTED")


@hookimpl
def aidgraph_programs() -> list[Program]:
    return [PROGRAM]


@hookimpl
def aidgraph_parameter_schemas() -> list[ParamSpec]:
    money = "yuan per year"
    return [
        ParamSpec("medical.aid_ratio", "table", "救助比例: share of compliant costs after insurance, by category"),
        ParamSpec("medical.illness_impoverished_ratio", "number", "因病致贫重病患者: aid ratio", minimum=0, maximum=1,
                  required=False),
        ParamSpec("medical.illness_impoverished_deductible", "number", "因病致贫重病患者: annual deductible (起付线)",
                  money, minimum=0, required=False),
        ParamSpec("medical.annual_cap", "number", "年度救助限额: annual cap of aid per person", money, minimum=0,
                  required=False),
        ParamSpec("medical.major_disease_annual_cap", "number", "35种重大疾病: annual cap for the listed major diseases",
                  money, minimum=0, required=False),
        ParamSpec("medical.secondary_threshold", "number", "二次救助: out-of-pocket above this amount per year", money,
                  minimum=0, required=False),
        ParamSpec("medical.secondary_ratio", "number", "二次救助: share of the excess paid", minimum=0, maximum=1,
                  required=False),
        ParamSpec("medical.premium_subsidy", "table",
                  "参保资助: resident-insurance premium subsidy by category, yuan per year or \"full\"", required=False),
        ParamSpec("medical.resident_premium", "number", "城乡居民医保个人缴费: the individual resident-insurance premium",
                  money, minimum=0, required=False),
    ]


@hookimpl
def aidgraph_province_validate(params) -> list[str] | None:
    problems = []
    ratios = params.parameters.get("medical.aid_ratio")
    for value in ratios.values if ratios else []:
        for category, ratio in value.value.items():
            if category not in CATEGORIES:
                problems.append(f"medical.aid_ratio: unknown category {category!r} (known: {', '.join(CATEGORIES)})")
            elif isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 <= ratio <= 1:
                problems.append(f"medical.aid_ratio: {category} must be a ratio between 0 and 1, got {ratio!r}")
    subsidies = params.parameters.get("medical.premium_subsidy")
    for value in subsidies.values if subsidies else []:
        for category, amount in value.value.items():
            if category not in PREMIUM_CATEGORIES:
                problems.append(f"medical.premium_subsidy: unknown category {category!r}")
            elif amount != "full" and (isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount < 0):
                problems.append(f"medical.premium_subsidy: {category} must be \"full\" or an amount >= 0, got {amount!r}")
    return problems or None


def ratio_table(c: RuleContext) -> dict[str, float]:
    return {k: float(v) for k, v in (c.p("medical.aid_ratio") or {}).items()}


def _covered(c: RuleContext):
    ratios = ratio_table(c)
    covered = [key for key, cat in CATEGORY_OF_PROGRAM.items() if cat in ratios]
    if not covered:
        return pl.lit(False), pl.lit("no category has a medical-aid ratio configured")
    hit = pl.lit(False)
    parts = []
    for key in covered:
        hit = hit | receiving(key)
        parts.append(pl.when(receiving(key)).then(pl.lit(f"{CATEGORY_OF_PROGRAM[key]} aid ratio "
                                                         f"{ratios[CATEGORY_OF_PROGRAM[key]]:.0%}")))
    text = pl.concat_str(parts, separator="; ", ignore_nulls=True)
    return hit, fmt("household in a covered category: {} ({})", pl.when(hit).then(text).otherwise(pl.lit("none of " + ", ".join(
        CATEGORY_OF_PROGRAM[k] for k in covered))), c.cite("medical.aid_ratio"))


def _illness_impoverished(c: RuleContext):
    """因病致贫重病患者 (on application, where the province configures a ratio for them, Gansu): a seriously ill
    member, and per-capita income left after rigid expenditure below the low-income line."""
    if not c.has("medical.illness_impoverished_ratio"):
        return pl.lit(False), pl.lit("no rule for patients impoverished by illness here")
    line = c.col("dibao.urban_standard").cast(pl.Float64) * float(c.params.value("dibao.low_income_multiplier", c.on,
                                                                                 default=1.5))
    left = pl.col("per_capita_income") - pl.col("monthly_rigid_expenditure") / pl.max_horizontal(pl.col("member_count"), 1)
    ill = count_members(member("major_disease"))
    return (ill > 0) & (left < line), fmt(
        "因病致贫: {} seriously ill member(s); per-capita income after rigid expenditure {} below the low-income line "
        "{}; ratio {} with annual deductible {} ({})", ill, yuan(left), yuan(line),
        c.p("medical.illness_impoverished_ratio"), c.params.value("medical.illness_impoverished_deductible", c.on,
                                                                  default=0),
        c.cite("medical.illness_impoverished_ratio"))


@hookimpl
def aidgraph_eligibility_rules() -> list[EligibilityRule]:
    return [EligibilityRule("medical", "covered_category", _covered),
            EligibilityRule("medical", "illness_impoverished", _illness_impoverished, kind="alternative")]


def _claims(c: RuleContext):
    return pl.lit(None, dtype=pl.Float64), pl.lit("no monthly amount: medical aid is settled claim by claim")


def _label(c: RuleContext) -> pl.Expr:
    covered, _ = _covered(c)
    ill, _ = _illness_impoverished(c)
    return pl.when(~covered.fill_null(False) & ill.fill_null(False)).then(pl.lit("ILLNESS_IMPOVERISHED"))


@hookimpl(trylast=True)
def aidgraph_benefit_formula(program: Program, params) -> BenefitFormula | None:
    """No monthly amount; the label records an illness-impoverished enrolment, which settlement reads."""
    return BenefitFormula("medical", "per_claim", _claims, label=_label) if program.key == "medical" else None


@hookimpl
def aidgraph_casbin_objects() -> list[tuple[str, list[str]]]:
    # settling a claim pays aid out: the disburse action on payments (granted to counties and above)
    return [("medical_claim", ["read"])]  # enrolment and payment actions are the core's own objects


@hookimpl
def aidgraph_search_fields() -> dict:
    return PROGRAM_SEARCH_FIELDS


@hookimpl
def aidgraph_search_document(entity: str, record: dict) -> dict | None:
    return program_search_document([PROGRAM], entity, record)


@hookimpl
def aidgraph_graphql_fields():
    return combined(contribution())


@hookimpl
def aidgraph_graphql_types() -> list[type]:
    return [MedicalClaimType]
