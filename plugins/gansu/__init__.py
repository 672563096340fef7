"""甘肃 Gansu province variant: rural dibao classes 1-4 and urban full or differential guarantee (GS-2024).

Only Gansu (62) enables this plugin (``PROVINCES``). GS-2024 names rural dibao classes 1-4 and urban
full-guarantee (全额保障) and differential (差额保障) dibao, because the medical premium subsidy depends on them
(class 1-2 and urban full: 310 yuan; class 3-4 and urban differential: 250 yuan). The source gives neither
how a household is classed nor the amounts of each class: ``gansu.rural_dibao_classes`` (the share of the
standard paid per member, by class) is illustrative, and the classing below is this plugin's documented
choice:

* urban full guarantee: no member has labour capacity (all NONE) -> the standard x members;
* urban differential: otherwise the gap (standard - per-capita income) x members;
* rural class 1: no member has labour capacity; class 2: a member severely disabled or seriously ill;
  class 3: per-capita income below half the standard; class 4: the rest.

A rural class share never pays a household more than its gap (standard - per-capita income) x members: the
source does not say a class may pay more. Urban full guarantee pays the standard x members (全额保障, named by
the source). Members included alone (单人保) are paid as one-person households, as in every province.

This benefit formula replaces the dibao plugin's (``tryfirst``) for Gansu only; the class is stored on the
enrolment as its category (``RURAL_CLASS_1`` ... ``URBAN_FULL`` / ``URBAN_DIFFERENTIAL``).
"""

from __future__ import annotations

import polars as pl
from aidgraph.plugin import (
    BenefitFormula,
    ParamSpec,
    Program,
    RuleContext,
    count_members,
    fmt,
    hookimpl,
    member,
    yuan,
)
from aidgraph.plugins.dibao import with_single_inclusion
from aidgraph.plugins.dibao.standard import dibao_standard


__version__ = "0.1.0"
PROVINCES = ("62",)


@hookimpl
def aidgraph_parameter_schemas() -> list[ParamSpec]:
    return [ParamSpec("gansu.rural_dibao_classes", "table",
                      "农村低保分类施保: share of the rural standard paid per member, by class { \"1\" = ..., \"4\" = ... }")]


SECONDARY_STAGES = ("HIGH_SCHOOL", "VOCATIONAL")
"""中等职业教育 and 普通高中: the stages whose grants GS-2024 lets cities and counties set."""
SECONDARY_CITY_COUNTY_RANGE = (1000.0, 3000.0)
SECONDARY_CITY_COUNTY_TIERS = (2, 3)
"""GS-2024: 中等职业教育国家助学金和普通高中国家助学金…市县具体标准由各地结合实际在1000-3000元范围内确定，可以分为2-3档."""


@hookimpl
def aidgraph_province_validate(params) -> list[str] | None:
    classes = params.parameters.get("gansu.rural_dibao_classes")
    problems = []
    for dated in classes.values if classes else []:
        if sorted(dated.value) != ["1", "2", "3", "4"]:
            problems.append(f"gansu.rural_dibao_classes: needs classes \"1\" to \"4\", got {sorted(dated.value)}")
    problems += _city_county_secondary_grants(params)
    return problems or None


def _city_county_secondary_grants(params) -> list[str]:
    """A city's or county's own secondary-school grant tiers (a regional value of ``education.grants``) stay in
    GS-2024's range: 1,000-3,000 yuan a year, in two or three tiers; and only cities and counties set them."""
    grants = params.parameters.get("education.grants")
    low, high = SECONDARY_CITY_COUNTY_RANGE
    fewest, most = SECONDARY_CITY_COUNTY_TIERS
    problems = []
    for dated in grants.values if grants else []:
        if dated.region is None:
            continue
        where = f"education.grants: the value for region {dated.region} from {dated.start.isoformat()}"
        if len(dated.region) not in (4, 6):
            problems.append(f"{where}: GS-2024 lets cities and counties (市县) set grant tiers, not a "
                            f"{len(dated.region)}-digit region")
        others = sorted(set(dated.value) - set(SECONDARY_STAGES))
        if others:
            problems.append(f"{where}: {', '.join(others)} tiers are set by the province or the schools; GS-2024 "
                            "lets cities and counties set secondary-school tiers only")
        for stage in SECONDARY_STAGES:
            tiers = dated.value.get(stage)
            if tiers is None:
                continue
            if not fewest <= len(tiers) <= most:
                problems.append(f"{where}: {stage} has {len(tiers)} tier(s); GS-2024 allows {fewest}-{most} (可以分为2-3档)")
            outside = [t for t in tiers if not low <= float(t) <= high]
            if outside:
                problems.append(f"{where}: {stage} tier(s) {outside} outside GS-2024's {low:.0f}-{high:.0f} yuan "
                                "(在1000-3000元范围内确定)")
    return problems


def dibao_class(c: RuleContext) -> pl.Expr:
    """The Gansu dibao class label of each household."""
    nobody_works = count_members(member("labour_capacity") != "NONE") == 0
    severe = count_members((member("disability_level") <= c.params.value("dibao.severe_disability_max_level", c.on,
                                                                         default=2)) | member("major_disease")) > 0
    half = pl.col("per_capita_income") < dibao_standard(c) * 0.5
    rural = (pl.when(nobody_works).then(pl.lit("RURAL_CLASS_1")).when(severe).then(pl.lit("RURAL_CLASS_2"))
             .when(half).then(pl.lit("RURAL_CLASS_3")).otherwise(pl.lit("RURAL_CLASS_4")))
    urban = pl.when(nobody_works).then(pl.lit("URBAN_FULL")).otherwise(pl.lit("URBAN_DIFFERENTIAL"))
    return pl.when(pl.col("rural")).then(rural).otherwise(urban)


def _benefit(c: RuleContext):
    std = dibao_standard(c)
    members = pl.col("member_count")
    label = dibao_class(c)
    shares = {k: float(v) for k, v in c.p("gansu.rural_dibao_classes").items()}
    share: pl.Expr = pl.lit(None, dtype=pl.Float64)
    for k, v in shares.items():
        share = pl.when(label == f"RURAL_CLASS_{k}").then(pl.lit(v)).otherwise(share)
    gap = (std - pl.col("per_capita_income")).clip(lower_bound=0) * members
    by_class = share * std * members
    # a class share never pays above the household's gap: GS-2024 names the classes, not that they may pay more
    amount = (pl.when(label == "URBAN_FULL").then(std * members).when(label == "URBAN_DIFFERENTIAL").then(gap)
              .otherwise(pl.min_horizontal(by_class, gap)))
    reason = (pl.when(label == "URBAN_FULL").then(fmt("全额保障 urban full guarantee: standard {} x {} = {} yuan/month",
                                                      yuan(std), members, yuan(amount)))
              .when(label == "URBAN_DIFFERENTIAL").then(fmt(
                  "差额保障 urban differential: (standard {} - per-capita income {}) x {} = {} yuan/month", yuan(std),
                  yuan(pl.col("per_capita_income")), members, yuan(amount)))
              .otherwise(fmt("农村 {}: share {} x standard {} x {} = {}, at most the gap {}: {} yuan/month ({})", label,
                             share, yuan(std), members, yuan(by_class), yuan(gap), yuan(amount),
                             c.cite("gansu.rural_dibao_classes"))))
    return with_single_inclusion(c, amount, reason)


@hookimpl(tryfirst=True)
def aidgraph_benefit_formula(program: Program, params) -> BenefitFormula | None:
    if program.key != "dibao":
        return None
    return BenefitFormula("dibao", "gansu_classes", _benefit, label=dibao_class,
                          description="GS-2024 rural classes 1-4 and urban full / differential guarantee")
