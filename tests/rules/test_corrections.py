"""The corrections of issue 11, each with the source's own figures (GD-2021, GD-2022, GD-2024, FJ-2021, GS-2024).

Standards (dibao lines) are the shipped illustrative values (Shantou urban 1200 / rural 1000, Guangzhou urban
1400, Fuzhou 900 / 800, Lanzhou 800 / 600); the multipliers, ratios, amounts and categories are the sources'.
Each test names the register row(s) it checks (docs/rules/register.toml)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import polars as pl
import pytest

from aidgraph.core.policy.engine import PolicyEngine, to_fen
from aidgraph.core.policy.parameters import ParameterError
from aidgraph.plugins.medical.claims import best_terms, premium_subsidy, settle_amounts, terms_for
from tests.plugins.frames import household_frame

ON = dt.date(2025, 6, 1)
GZ = "440106001001"
SHANTOU = "440507001001"
FUZHOU = "350102001001"
LANZHOU = "620102001001"


def evaluate(engine, code, frame, program, on=ON) -> dict:
    return engine.province(code).evaluate_frame(frame, on, [program]).row(0, named=True)


def text(result) -> str:
    return " | ".join(result["reasons"])


# --- missing data is not zero income (GD-2021 §5 家庭经济状况核对) -------------------------------------------


@pytest.mark.parametrize("program", ["dibao", "dibao_edge", "tekun", "expenditure_hardship", "temporary"])
def test_no_verified_income_or_assets_needs_economic_verification(engine, program):
    # the bug: a two-member Guangzhou household with no income data was dibao at 1400 x 2 = 2800 yuan a month
    members = [{"age": 80, "labour_capacity": "NONE"}, {"age": 78, "relation_to_head": "SPOUSE",
                                                        "labour_capacity": "NONE"}]
    nothing = household_frame(members, GZ, income_verified=False, assets_verified=False,
                              monthly_rigid_expenditure=500)
    result = evaluate(engine, "44", nothing, program)
    assert not result["eligible"] and result["monthly_amount"] is None and result["one_off_amount"] is None
    assert "not met: needs economic verification (家庭经济状况核对): missing income, financial assets" in result["reasons"]
    only_assets = evaluate(engine, "44", household_frame(members, GZ, income_verified=False), program)
    assert "not met: needs economic verification (家庭经济状况核对): missing income" in only_assets["reasons"]
    # a frame built without the columns (a simulation, say) is unverified too, never a silent yes
    bare = nothing.drop("income_verified", "assets_verified")
    assert not evaluate(engine, "44", bare, program)["eligible"]


def test_verified_zero_income_is_decided(engine):
    members = [{"age": 80, "labour_capacity": "NONE"}, {"age": 78, "relation_to_head": "SPOUSE",
                                                        "labour_capacity": "NONE"}]
    verified = evaluate(engine, "44", household_frame(members, GZ), "dibao")
    assert verified["eligible"] and verified["monthly_amount"] == 2800.0


# --- single-person inclusion (单人保): assessed and paid as a one-person household ----------------------------


@pytest.mark.parametrize("code,region,rural,standard,line", [
    ("44", SHANTOU, False, 1200, 1800), ("44", SHANTOU, True, 1000, 1800),
    ("35", FUZHOU, False, 900, 1350), ("35", FUZHOU, True, 800, 1350),
    ("62", LANZHOU, False, 800, 1200), ("62", LANZHOU, True, 600, 1200),
])
def test_single_person_inclusion_is_a_one_person_household(engine, code, region, rural, standard, line):
    # GD-2021 对低收入家庭中的重度残疾人、重病患者等特殊困难人员，单独纳入低保: a severely disabled son with his own
    # income of 150 a month, in a three-member household above the dibao line and below the low-income line
    per_capita = (standard + line) / 2
    members = [{}, {"relation_to_head": "SPOUSE"},
               {"relation_to_head": "CHILD", "age": 22, "disability_level": 1, "own_monthly_income": 150.0}]
    frame = household_frame(members, region, rural=rural, monthly_income=3 * per_capita)
    result = evaluate(engine, code, frame, "dibao")
    assert result["eligible"]
    assert result["monthly_amount"] == pytest.approx(standard - 150)  # his gap alone, not the household's standard x 1
    assert "each assessed and paid as a one-person household" in text(result)
    # assessed alone: his own income at or above the standard leaves nothing to include
    rich = [*members[:2], {**members[2], "own_monthly_income": float(standard)}]
    assert not evaluate(engine, code, household_frame(rich, region, rural=rural, monthly_income=3 * per_capita),
                        "dibao")["eligible"]


# --- low-income household (GD-2021): below 1.5 x urban standard, assets within the rules ------------------------


def test_low_income_household_includes_one_failing_dibaos_asset_test(engine):
    # per-capita income 1000 (< Shantou's 1200): dibao's assets limit is 24 months x 1200 = 28,800 per person,
    # the low-income household's 36 x 1200 = 43,200; 30,000 per person fails the first, passes the second
    two = [{}, {"relation_to_head": "SPOUSE"}]
    frame = household_frame(two, SHANTOU, monthly_income=2000, financial_assets=60000)
    dibao = evaluate(engine, "44", frame, "dibao")
    low_income = evaluate(engine, "44", frame, "dibao_edge")
    assert not dibao["eligible"] and "not met: per-capita financial assets 30000.00" in text(dibao)
    assert low_income["eligible"] and "a low-income household that does not receive dibao" in text(low_income)
    # the categories follow: special aid open to low-income households reads the category
    assert engine.province("44").programs["dibao_edge"].category == "DIBAO_EDGE"


# --- Gansu: class shares never pay above the gap ---------------------------------------------------------------


def test_gansu_rural_class_share_is_capped_at_the_gap(engine):
    # rural class 1 (nobody can work): share 1.0 x 600 would be 600, the gap is 600 - 500 = 100
    frame = household_frame([{"age": 70, "labour_capacity": "NONE"}], LANZHOU, rural=True, monthly_income=500)
    result = evaluate(engine, "62", frame, "dibao")
    assert result["benefit_label"] == "RURAL_CLASS_1" and result["monthly_amount"] == pytest.approx(100)
    assert "at most the gap 100.00" in text(result)
    # class 4 (share 0.4 x 600 = 240 per member) below a larger gap pays the class share
    workers = household_frame([{}, {"relation_to_head": "SPOUSE"}], LANZHOU, rural=True, monthly_income=2 * 320)
    result = evaluate(engine, "62", workers, "dibao")
    assert result["benefit_label"] == "RURAL_CLASS_4" and result["monthly_amount"] == pytest.approx(0.4 * 600 * 2)


# --- Fujian's lost multiplier: no default, "not configured" -----------------------------------------------------


def test_fujian_financial_asset_multiplier_is_not_configured(engine, configs, copy_settings):
    assert not engine.province("35").params.has("fujian.financial_assets_multiplier")
    elderly = [{"age": 80, "labour_capacity": "NONE"}]
    saved = evaluate(engine, "35", household_frame(elderly, FUZHOU, financial_assets=5000), "tekun")
    assert not saved["eligible"] and "not configured: fujian.financial_assets_multiplier" in text(saved)
    none = evaluate(engine, "35", household_frame(elderly, FUZHOU), "tekun")
    assert none["eligible"] and "within N x the dibao standard whatever N" in text(none)
    # once the province configures N (here 3, a test value) the same household is decided
    path = configs / "35" / "parameters" / "fujian.toml"
    path.write_text(path.read_text(encoding="utf-8") + '\n["fujian.financial_assets_multiplier"]\n'
                    'description = "N"\nsource = "illustrative (test)"\nvalues = [ { from = 2021-01-01, value = 3 } ]\n',
                    encoding="utf-8")
    policy = PolicyEngine(copy_settings).province("35")
    decided = policy.evaluate_frame(household_frame(elderly, FUZHOU, financial_assets=5000), ON, ["tekun"]).row(0, named=True)
    assert not decided["eligible"] and "within 3.0 x dibao standard = 2700.00" in text(decided)


# --- money: exact until one rounding to the fen ------------------------------------------------------------------


def test_money_is_rounded_once_at_the_end(engine):
    # 1000 a month for 3 members: 333.333... per capita; the gap (1200 - 333.33...) x 3 is exactly 2600.00
    # (rounding the per-capita income first would give 2600.01)
    three = [{}, {"relation_to_head": "SPOUSE"}, {"relation_to_head": "CHILD", "age": 9}]
    result = evaluate(engine, "44", household_frame(three, SHANTOU, monthly_income=1000), "dibao")
    assert result["monthly_amount"] == 2600.00
    rounded = pl.DataFrame({"a": [1.005, 2.675, 0.125, 2599.995]}).select(to_fen(pl.col("a")))["a"].to_list()
    assert rounded == [1.01, 2.68, 0.13, 2600.0]  # 四舍五入 to the fen, half away from zero


# --- medical aid -------------------------------------------------------------------------------------------------


def test_several_categories_get_the_terms_leaving_least_to_pay_computed(engine, configs, copy_settings):
    # a Gansu dibao member (ratio 80%, no deductible) who is also an illness-impoverished patient; with that
    # patient's ratio raised to 90% (test value) a ratio-guess would pick it, but its 5,000 deductible leaves more
    path = configs / "62" / "parameters" / "medical.toml"
    path.write_text(path.read_text(encoding="utf-8").replace("{ from = 2024-01-01, value = 0.7 },\n]\n\n"
                                                             "[\"medical.illness_impoverished_deductible\"]",
                                                             "{ from = 2024-01-01, value = 0.9 },\n]\n\n"
                                                             "[\"medical.illness_impoverished_deductible\"]", 1),
                    encoding="utf-8")
    params = PolicyEngine(copy_settings).province("62").params
    both = ["DIBAO", "ILLNESS_IMPOVERISHED"]
    assert terms_for(params, both, ON).category == "ILLNESS_IMPOVERISHED"  # the guess from the ratio
    small = best_terms(params, both, ON, 10000, 4000)
    # 6,000 left: dibao 80% -> 4,800 aid, 1,200 to pay; illness (6,000 - 5,000) x 90% = 900, 5,100 to pay
    assert small.category == "DIBAO" and settle_amounts(10000, 4000, small).out_of_pocket == Decimal("1200.00")
    large = best_terms(params, both, ON, 40000, 0)
    # 40,000: dibao 32,000 aid, 8,000 left, secondary 70% of 2,000 = 1,400 -> 6,600; illness (35,000 x 90%) =
    # 31,500, 8,500 left, secondary 1,750 -> 6,750: dibao still leaves less
    assert large.category == "DIBAO"
    assert settle_amounts(40000, 0, large).out_of_pocket == Decimal("6600.00")


def test_gansu_premium_subsidies_are_computed(engine):
    params = engine.province("62").params
    cases = {("TEKUN",): ("380.00", "0.00"), ("ORPHAN",): ("380.00", "0.00"),
             ("RURAL_CLASS_1",): ("310.00", "70.00"), ("URBAN_FULL",): ("310.00", "70.00"),
             ("RETURNED_TO_POVERTY",): ("310.00", "70.00"), ("RURAL_CLASS_3",): ("250.00", "130.00"),
             ("URBAN_DIFFERENTIAL",): ("250.00", "130.00"), ("RELAPSE_MONITORING",): ("250.00", "130.00"),
             ("DIBAO_EDGE",): ("100.00", "280.00"), ("STABLY_LIFTED",): ("100.00", "280.00"),
             ("DIBAO_EDGE", "RURAL_CLASS_4"): ("250.00", "130.00")}  # several categories: the least to pay
    for categories, (subsidy, to_pay) in cases.items():
        result = premium_subsidy(params, list(categories), ON)
        assert (result.subsidy, result.to_pay) == (Decimal(subsidy), Decimal(to_pay)), categories
    assert premium_subsidy(params, ["EXPENDITURE_HARDSHIP"], ON).subsidy == Decimal("0.00")


@pytest.mark.parametrize("code,categories", [
    ("44", ["TEKUN"]), ("44", ["ORPHAN"]), ("44", ["UNATTENDED_CHILD"]), ("44", ["DIBAO"]),
    ("35", ["TEKUN"]), ("35", ["DIBAO"]),
])
def test_guangdong_and_fujian_premiums_are_paid_in_full(engine, code, categories):
    result = premium_subsidy(engine.province(code).params, categories, ON)
    assert result.to_pay == Decimal("0.00") and "full subsidy, nothing to pay" in result.reason
    # the premium itself is not in the sources: the amount says so instead of guessing
    assert result.subsidy is None and "medical.resident_premium not configured" in result.reason


def test_fujian_pays_no_premium_for_categories_it_does_not_name(engine):
    assert premium_subsidy(engine.province("35").params, ["DIBAO_EDGE"], ON).category is None


def test_gansu_one_stop_categories_exactly_as_listed(engine):
    ratios = engine.province("62").params.value("medical.aid_ratio", ON)
    assert set(ratios) == {"TEKUN", "ORPHAN", "DIBAO", "DIBAO_EDGE", "RETURNED_TO_POVERTY", "RELAPSE_MONITORING",
                           "TRANSITION_LIFTED"}
    assert all(Decimal("0.6") <= Decimal(str(v)) <= 1 for v in ratios.values())  # 60%-100%
    assert terms_for(engine.province("62").params, ["EXPENDITURE_HARDSHIP"], ON) is None


@pytest.mark.parametrize("category", ["ORPHAN", "UNATTENDED_CHILD"])
def test_orphans_and_de_facto_unattended_children_reach_100_percent(engine, category):
    terms = terms_for(engine.province("44").params, [category], ON)
    settled = settle_amounts(10000, 4000, terms)
    assert terms.ratio == 1 and settled.aid_amount == Decimal("6000.00") and settled.out_of_pocket == 0


# --- housing: Fujian's renovation shares compute an amount (FJ-2021) ------------------------------------------


def test_fujian_renovation_aid_from_the_households_contribution(engine):
    from aidgraph.plugin import DomainError
    from aidgraph.plugins.housing import renovation_aid

    shares = engine.province("35").params.value("housing.renovation_contribution_share", ON)
    # 特困 100%, 低保 70% of the personal contribution (个人出资)
    assert renovation_aid(shares, ["TEKUN"], 8000)[0] == Decimal("8000.00")
    assert renovation_aid(shares, ["DIBAO"], 12345.67)[0] == Decimal("8641.97")  # 70%, rounded once
    assert renovation_aid(shares, ["DIBAO", "TEKUN"], 1000)[0] == Decimal("1000.00")  # the better category
    assert renovation_aid(shares, ["DIBAO_EDGE"], 1000)[0] == 0
    gd = engine.province("44").params.value("housing.renovation_contribution_share", ON, default=None)
    assert renovation_aid(gd, ["DIBAO"], 1000) == (Decimal("0.00"), "not configured: housing.renovation_contribution_share")
    with pytest.raises(DomainError) as bad:
        renovation_aid(shares, ["DIBAO"], -1)
    assert bad.value.errors[0].code.value == "VALIDATION" and bad.value.errors[0].field == "contribution"


# --- education: GD student loans and the freshman grant computed (GD-2024) --------------------------------------


def test_guangdong_student_loans_and_freshman_grant_are_computed(engine):
    students = [{}, {"relation_to_head": "CHILD", "age": 19, "student_stage": "UNDERGRADUATE", "school_year": 1},
                {"relation_to_head": "CHILD", "age": 21, "student_stage": "UNDERGRADUATE", "school_year": 3},
                {"relation_to_head": "CHILD", "age": 19, "student_stage": "UNDERGRADUATE", "school_year": 1,
                 "local_hukou": False},
                {"relation_to_head": "CHILD", "age": 24, "student_stage": "POSTGRADUATE"}]
    result = evaluate(engine, "44", household_frame(students, SHANTOU, receiving=["dibao"]), "education")
    # 本专科生不超过20000元、研究生不超过25000元: 3 x 20,000 + 25,000 a year
    assert "student loans up to 85000.00 yuan this year" in text(result)
    # 广东户籍…本专科新生…不超过6000元: the one Guangdong-hukou first-year undergraduate
    assert "freshman grant up to 6000.00 yuan once x 1 undergraduate freshman(men) with local hukou = up to 6000.00" \
        in text(result)
    gansu = evaluate(engine, "62", household_frame(students, LANZHOU, receiving=["dibao"]), "education")
    assert "no loans or freshman grant configured" in text(gansu)


# --- education: the tier from the school's hardship recognition; Gansu's veteran students (GS-2024) ---------------


def test_grant_tier_follows_the_schools_hardship_recognition(engine):
    def student(**fields):
        return [{}, {"relation_to_head": "CHILD", "age": 20, "student_stage": "UNDERGRADUATE", **fields}]

    def grants(members, receiving=("tekun",)):
        return text(evaluate(engine, "62", household_frame(members, LANZHOU, receiving=list(receiving)), "education"))

    # tekun's category tier (illustrative fallback) is the top one, 4,500; the school recognised tier 1: 2,000
    assert "yearly grants up to 4500.0 yuan" in grants(student())
    assert "yearly grants up to 2000.0 yuan" in grants(student(school_hardship_tier=1))
    assert "yearly grants up to 3300.0 yuan" in grants(student(school_hardship_tier=2), receiving=("dibao_edge",))
    # 全日制在校退役士兵学生…每生每年3300元, whatever the tier
    assert "yearly grants up to 3300.0 yuan" in grants(student(school_hardship_tier=3, veteran_student=True))
    # a tier the province does not have gives no grant, and says so
    out = grants(student(school_hardship_tier=4))
    assert "yearly grants up to 0.0 yuan" in out and "1 student(s) with a hardship tier outside the configured tiers" in out
    # secondary school (省属 tiers 1,000 / 2,000 / 3,000)
    assert "yearly grants up to 1000.0 yuan" in grants([{}, {"relation_to_head": "CHILD", "age": 16,
                                                             "student_stage": "VOCATIONAL", "school_hardship_tier": 1}])


def test_undergraduates_include_preparatory_higher_vocational_and_second_degree_students(engine):
    """gs24-undergraduate-includes: 本专科生（含预科生、高职生、第二学士学位学生，不含退役士兵学生）国家助学金…按照每生每年
    2000元、3300元、4500元三档确定; 全日制在校退役士兵学生…每生每年3300元; 中等职业教育…1000元、2000元、3000元."""
    def grants(stage, **fields):
        members = [{}, {"relation_to_head": "CHILD", "age": 19, "student_stage": stage, **fields}]
        return text(evaluate(engine, "62", household_frame(members, LANZHOU, receiving=["tekun"]), "education"))

    # tekun's illustrative fallback tier is the third: 4,500 for every 本专科生, 3,000 for secondary vocational
    for stage in ("PREPARATORY", "JUNIOR_COLLEGE", "UNDERGRADUATE", "SECOND_DEGREE"):
        assert "yearly grants up to 4500.0 yuan" in grants(stage), stage
    assert "yearly grants up to 3000.0 yuan" in grants("VOCATIONAL")
    # the school's recognised tiers read the undergraduate tiers: 2,000 / 3,300
    assert "yearly grants up to 2000.0 yuan" in grants("PREPARATORY", school_hardship_tier=1)
    assert "yearly grants up to 3300.0 yuan" in grants("SECOND_DEGREE", school_hardship_tier=2)
    # veterans are outside the tiers: a flat 3,300 for a veteran 高职生 too, not the secondary vocational one
    assert "yearly grants up to 3300.0 yuan" in grants("JUNIOR_COLLEGE", school_hardship_tier=3, veteran_student=True)
    assert "yearly grants up to 3000.0 yuan" in grants("VOCATIONAL", school_hardship_tier=3, veteran_student=True)
    # GD-2024 本专科生…不超过20000元: a 高职 freshman's loan ceiling and freshman grant are the undergraduate ones
    members = [{}, {"relation_to_head": "CHILD", "age": 19, "student_stage": "JUNIOR_COLLEGE", "school_year": 1}]
    guangdong = text(evaluate(engine, "44", household_frame(members, SHANTOU, receiving=["dibao"]), "education"))
    assert "student loans up to 20000.00 yuan this year" in guangdong
    assert "x 1 undergraduate freshman(men) with local hukou = up to 6000.00" in guangdong


def _gansu_with_city_grants(configs, copy_settings, value: str):
    path = configs / "62" / "parameters" / "education.toml"
    text_ = path.read_text(encoding="utf-8")
    anchor = "VOCATIONAL = [1000, 2000, 3000] } },"
    assert anchor in text_
    path.write_text(text_.replace(anchor, anchor + f"\n  {{ from = 2024-01-01, region = \"6201\", value = {value}, "
                                                    "source = \"illustrative (a city's own tiers)\" },"), encoding="utf-8")
    return PolicyEngine(copy_settings).province("62")


def test_cities_and_counties_set_secondary_grant_tiers_within_the_range(configs, copy_settings):
    """gs24-secondary-city-county: 中等职业教育国家助学金和普通高中国家助学金…省属学校具体标准由学校按照每生每年1000元、
    2000元、3000元三档确定，市县具体标准由各地结合实际在1000-3000元范围内确定，可以分为2-3档."""
    policy = _gansu_with_city_grants(configs, copy_settings, "{ HIGH_SCHOOL = [1500, 3000] }")

    def grants(village, stage, tier):
        members = [{}, {"relation_to_head": "CHILD", "age": 16, "student_stage": stage, "school_hardship_tier": tier}]
        result = policy.evaluate_frame(household_frame(members, village, receiving=["dibao"]), ON, ["education"])
        return text(result.row(0, named=True))

    tianshui = "620502001001"
    # Lanzhou's own two tiers for high school; the province's three elsewhere and for the stages Lanzhou leaves
    assert "yearly grants up to 1500.0 yuan" in grants(LANZHOU, "HIGH_SCHOOL", 1)
    assert "yearly grants up to 3000.0 yuan" in grants(LANZHOU, "HIGH_SCHOOL", 2)
    out = grants(LANZHOU, "HIGH_SCHOOL", 3)  # Lanzhou has two tiers
    assert "yearly grants up to 0.0 yuan" in out and "1 student(s) with a hardship tier outside" in out
    assert "yearly grants up to 1000.0 yuan" in grants(tianshui, "HIGH_SCHOOL", 1)
    assert "yearly grants up to 3000.0 yuan" in grants(tianshui, "HIGH_SCHOOL", 3)
    assert "yearly grants up to 1000.0 yuan" in grants(LANZHOU, "VOCATIONAL", 1)
    assert "yearly grants up to 2000.0 yuan" in grants(LANZHOU, "UNDERGRADUATE", 1)


@pytest.mark.parametrize("value, problem", [
    ("{ HIGH_SCHOOL = [800, 2000] }", "HIGH_SCHOOL tier(s) [800] outside GS-2024's 1000-3000 yuan"),
    ("{ VOCATIONAL = [1000, 3500] }", "VOCATIONAL tier(s) [3500] outside GS-2024's 1000-3000 yuan"),
    ("{ HIGH_SCHOOL = [1000, 1500, 2000, 2500] }", "HIGH_SCHOOL has 4 tier(s); GS-2024 allows 2-3"),
    ("{ HIGH_SCHOOL = [2000] }", "HIGH_SCHOOL has 1 tier(s); GS-2024 allows 2-3"),
    ("{ UNDERGRADUATE = [2000, 3000] }", "UNDERGRADUATE tiers are set by the province or the schools"),
])
def test_city_grant_tiers_outside_the_source_are_refused_with_the_key(configs, copy_settings, value, problem):
    with pytest.raises(ParameterError) as e:
        _gansu_with_city_grants(configs, copy_settings, value)
    assert "education.grants" in str(e.value) and "region 6201" in str(e.value) and problem in str(e.value)


# --- other assistance (GD-2021 §13 发展其他救助帮扶): who qualifies, no amount in the source --------------------


def test_electricity_relief_for_dibao_and_tekun_households(engine):
    """gd21-electricity: 对低保、特困对象减免电费."""
    for receiving, expected in ((["dibao"], True), (["tekun"], True), (["dibao_edge"], False), ([], False)):
        result = evaluate(engine, "44", household_frame([{}, {}], SHANTOU, receiving=receiving), "electricity_relief")
        assert result["eligible"] is expected, receiving
        assert result["monthly_amount"] is None and "amount not configured" in text(result)


def test_rehabilitation_aid_for_every_disabled_child_residence_permit_holders_included(engine):
    """gd21-disabled-child-rehab: 加强残疾儿童康复救助，实现持有居住证的残疾儿童康复救助全覆盖."""
    migrant_child = [{"local_hukou": False}, {"relation_to_head": "CHILD", "age": 7, "disability_level": 3,
                                              "local_hukou": False}]
    # no income test: a household earning well above any standard
    result = evaluate(engine, "44", household_frame(migrant_child, GZ, monthly_income=30000), "child_rehabilitation")
    assert result["eligible"] and "1 disabled child(ren) under 18" in text(result)
    assert "amount not configured" in text(result) and result["monthly_amount"] is None
    adult = [{"age": 18, "disability_level": 3}]
    assert not evaluate(engine, "44", household_frame(adult, GZ), "child_rehabilitation")["eligible"]


# --- employment: certified difficulty, tiered help; Gansu's entrepreneurship subsidy and loans ------------------


def test_certified_employment_difficulty_gets_tiered_help_and_priority_jobs(engine):
    # GD-2021 对经认定的就业困难人员实施分级帮扶，特别困难人员优先提供公益性岗位 (the level is illustrative)
    working = [{"age": 35, "employment_status": "EMPLOYED"}, {"age": 50, "relation_to_head": "PARENT",
                                                            "employment_difficulty_level": 2}]
    result = evaluate(engine, "44", household_frame(working, SHANTOU), "employment")
    assert result["eligible"]  # not a zero-employment household, but a certified member
    assert "就业困难人员: 1 certified member(s)" in text(result) and "1 at level 2 or above: public-benefit jobs" in text(result)
    lower = [working[0], {**working[1], "employment_difficulty_level": 1}]
    assert "0 at level 2 or above" in text(evaluate(engine, "44", household_frame(lower, SHANTOU), "employment"))
    assert not evaluate(engine, "44", household_frame(working[:1], SHANTOU), "employment")["eligible"]


def test_gansu_entrepreneurship_subsidy_after_a_year_and_loan_offers(engine):
    # GS-2024 正常运营1年以上的，给予5000元一次性创业补贴; 个人创业担保贷款不超过30万元、3年; 小微企业不超过400万元、2年
    owner = [{"age": 40, "employment_status": "EMPLOYED", "business_registered_on": dt.date(2024, 5, 31)}]
    result = evaluate(engine, "62", household_frame(owner, LANZHOU, receiving=["dibao_edge"]), "employment")
    assert result["eligible"] and result["one_off_amount"] == 5000.0
    assert "personal guaranteed loan up to 300000.00 yuan for up to 3 years" in text(result)
    assert "up to 4000000.00 yuan for up to 2 years" in text(result)
    recent = [{**owner[0], "business_registered_on": dt.date(2024, 6, 2)}]  # not yet a year on 2025-06-01
    assert not evaluate(engine, "62", household_frame(recent, LANZHOU, receiving=["dibao_edge"]), "employment")["eligible"]
    # not a low-income household: no subsidy; Guangdong configures no subsidy: no amount
    assert not evaluate(engine, "62", household_frame(owner, LANZHOU), "employment")["eligible"]
    assert evaluate(engine, "44", household_frame(owner, SHANTOU, receiving=["dibao_edge"]), "employment")[
        "one_off_amount"] is None


@pytest.mark.parametrize("stage", ["PRESCHOOL", "COMPULSORY", "HIGH_SCHOOL", "VOCATIONAL", "PREPARATORY",
                                   "JUNIOR_COLLEGE", "UNDERGRADUATE", "SECOND_DEGREE", "POSTGRADUATE"])
@pytest.mark.parametrize("category", ["dibao", "tekun"])
def test_education_aid_at_every_stage_for_dibao_and_tekun_students(engine, stage, category):
    # GD-2021 对在学前教育、义务教育、高中阶段教育（含中等职业教育）和普通高等教育…就学的低保、特困等家庭学生
    child = [{}, {"relation_to_head": "CHILD", "age": 10, "student_stage": stage}]
    result = evaluate(engine, "44", household_frame(child, SHANTOU, receiving=[category]), "education")
    assert result["eligible"] and "1 student(s) from pre-school to postgraduate" in text(result)
    # GD-2024 gives amounts for higher education only (本专科生, which GS-2024 says includes 预科/高职/第二学士学位)
    configured = stage in ("PREPARATORY", "JUNIOR_COLLEGE", "UNDERGRADUATE", "SECOND_DEGREE", "POSTGRADUATE")
    assert (f"0 in a stage without a configured grant amount" in text(result)) == configured


@pytest.mark.parametrize("kind", ["SUDDEN_EVENT", "ACCIDENT", "MAJOR_ILLNESS", "EPIDEMIC", "DISASTER", "OTHER"])
def test_every_emergency_kind_of_the_sources_makes_emergency_aid_eligible(engine, kind):
    # GD-2021 突发事件、意外伤害、重大疾病、传染病疫情…或其他特殊原因; GD-2022 因疫因灾
    event = [{"kind": kind, "occurred_on": dt.date(2025, 5, 1)}]
    assert evaluate(engine, "44", household_frame([{}], SHANTOU, emergencies=event), "temporary_emergency")["eligible"]
    old = [{"kind": kind, "occurred_on": dt.date(2025, 2, 28)}]  # more than 3 months before (illustrative window)
    assert not evaluate(engine, "44", household_frame([{}], SHANTOU, emergencies=old), "temporary_emergency")["eligible"]
    assert not evaluate(engine, "44", household_frame([{}], SHANTOU, emergencies=[{"kind": "UNKNOWN", "occurred_on":
                                                                                  dt.date(2025, 5, 1)}]),
                        "temporary_emergency")["eligible"]


def test_disabled_children_of_school_age_out_of_school_get_teaching_at_home(engine):
    # GD-2021 因身心障碍等原因不方便入学接受义务教育的适龄残疾未成年人…送教上门 (ages illustrative: 6-15)
    home = [{}, {"relation_to_head": "CHILD", "age": 9, "disability_level": 1}]
    result = evaluate(engine, "44", household_frame(home, SHANTOU), "education")
    assert result["eligible"] and "送教上门: 1 disabled child(ren) aged 6-15 in no school stage" in text(result)
    at_school = [{}, {**home[1], "student_stage": "COMPULSORY"}]
    assert not evaluate(engine, "44", household_frame(at_school, SHANTOU), "education")["eligible"]  # no category
    older = [{}, {**home[1], "age": 16}]
    assert not evaluate(engine, "44", household_frame(older, SHANTOU), "education")["eligible"]
