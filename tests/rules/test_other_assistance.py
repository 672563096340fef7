"""GD-2021 §1/§5/§13 and GD-2024 rules without amounts, each with the source's own words and figures: the funeral
fee waiver for deceased members of low-income households, the 两癌 aid for poor rural women with a recorded
diagnosis (recordDiagnosis), the orphans' basic living aid, rescue rehabilitation for Guangdong-hukou disabled
children, and the verification sources 住房公积金、商业保险、互联网金融资产 as economic item kinds (RecordEconomicItem
and the assets feed). Each test names its register row (docs/rules/register.toml)."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import func, select, update

from aidgraph.core.graph.economics import window_start
from aidgraph.core.policy.engine import PolicyEngine, household_frame as db_frame
from aidgraph.core.storage.db import async_session_factory, make_async_engine, make_sync_engine, session_scope
from aidgraph.core.storage.models import AuditLog, EconomicItem, Enrollment, Membership, Person
from aidgraph.schema.relay import db_id
from tests.plugins.db import add_household
from tests.plugins.frames import household_frame
from tests.plugins.test_api_programs import member, register

ON = dt.date(2025, 6, 1)
TODAY = dt.date.today()
SHANTOU = "440507001001"  # a 社区: urban
SHANTOU_VILLAGE = "440507009201"  # 蓬中村委会: rural
GZ = "440106001001"


def evaluate(engine, frame, program, code="44", on=ON) -> dict:
    return engine.province(code).evaluate_frame(frame, on, [program]).row(0, named=True)


def text(result) -> str:
    return " | ".join(result["reasons"])


# --- gd21-funeral: 为身故困难群众免除殡葬基本服务费用 ---------------------------------------------------------------


def test_funeral_fee_waiver_for_deceased_members_of_low_income_households(engine):
    died = dt.date(2025, 4, 2)
    # the widow of a dibao household whose husband died: the frame's members hold her alone
    dibao = household_frame([{"age": 70, "sex": "FEMALE"}], SHANTOU, receiving=["dibao"],
                            deceased=[{"death_date": died}])
    result = evaluate(engine, dibao, "funeral_fee_waiver")
    assert result["eligible"] and "1 member(s) died in the last 12 months" in text(result)
    assert result["monthly_amount"] is None and result["one_off_amount"] is None
    assert "amount not configured" in text(result)
    # a one-person tekun household: its case ended with the death, the household was tekun on the day of death
    alone = household_frame([], SHANTOU, receiving=[], deceased=[{"death_date": died, "aided": ["tekun"]}])
    assert evaluate(engine, alone, "funeral_fee_waiver")["eligible"]
    # not 困难群众: a household in no low-income program, or aided only by a program outside them
    for aided in ([], ["electricity_relief"]):
        other = household_frame([{}], SHANTOU, deceased=[{"death_date": died, "aided": aided}])
        assert not evaluate(engine, other, "funeral_fee_waiver")["eligible"]
    assert not evaluate(engine, household_frame([{}], SHANTOU, receiving=["dibao"]), "funeral_fee_waiver")["eligible"]


def test_deceased_members_read_from_the_database_with_their_cases(db_url, sync_engine, engine):
    """The frame's ``deceased`` column on both engines: the member who died in the 12 months up to the date, with
    the programs the household was enrolled in that day (an ended case counts up to its end date)."""
    died = dt.date(2025, 3, 10)
    with session_scope(sync_engine) as s:
        couple = add_household(s, SHANTOU, [{"age": 75}, {"age": 72, "relation_to_head": "SPOUSE"}],
                               receiving=["dibao"])
        alone = add_household(s, SHANTOU, [{"age": 90, "labour_capacity": "NONE"}], receiving=["tekun"])
        earlier = add_household(s, SHANTOU, [{"age": 80}, {"age": 79, "relation_to_head": "SPOUSE"}],
                                receiving=["dibao"])
        s.execute(update(Person).where(Person.id.in_([couple.person_ids[0], alone.person_ids[0]]))
                  .values(death_date=died))
        # the tekun case ended on the day of death, the membership too
        s.execute(update(Enrollment).where(Enrollment.household_id == alone.household_id)
                  .values(status="ENDED", end_date=died))
        s.execute(update(Membership).where(Membership.household_id == alone.household_id).values(valid_to=died))
        # died before the dibao case began: not aided on the day of death
        s.execute(update(Person).where(Person.id == earlier.person_ids[1]).values(death_date=dt.date(2023, 12, 1)))
        s.execute(update(Enrollment).where(Enrollment.household_id == earlier.household_id)
                  .values(start_date=dt.date(2024, 1, 1)))
    ids = [couple.household_id, alone.household_id, earlier.household_id]

    async def frame(on):
        engine_ = make_async_engine(db_url)
        try:
            async with async_session_factory(engine_)() as session:
                return await db_frame(session, on=on, household_ids=ids)
        finally:
            await engine_.dispose()

    rows = {r["household_id"]: r for r in asyncio.run(frame(ON)).iter_rows(named=True)}
    assert rows[couple.household_id]["deceased"] == [{"person_id": couple.person_ids[0], "death_date": died,
                                                      "aided": ["dibao"]}]
    assert rows[couple.household_id]["member_count"] == 1
    assert rows[alone.household_id]["deceased"] == [{"person_id": alone.person_ids[0], "death_date": died,
                                                     "aided": ["tekun"]}]
    assert rows[earlier.household_id]["deceased"] == []  # died more than 12 months before ON
    frame_on = asyncio.run(frame(ON))
    results = engine.province("44").evaluate_frame(frame_on, ON, ["funeral_fee_waiver"])
    eligible = {r["household_id"]: r["eligible"] for r in results.iter_rows(named=True)}
    assert eligible == {couple.household_id: True, alone.household_id: True, earlier.household_id: False}
    # before the death nobody has died yet
    before = asyncio.run(frame(dt.date(2025, 3, 9)))
    assert all(r["deceased"] == [] for r in before.iter_rows(named=True))


# --- gd21-two-cancers: 开展农村贫困妇女“两癌”救助 ---------------------------------------------------------------------


@pytest.mark.parametrize("diagnosis", ["CERVICAL_CANCER", "BREAST_CANCER"])
def test_two_cancers_aid_for_poor_rural_women_with_the_diagnosis(engine, diagnosis):
    woman = [{"age": 48, "sex": "FEMALE", "diagnosis": diagnosis}]
    result = evaluate(engine, household_frame(woman, SHANTOU_VILLAGE, rural=True, receiving=["dibao"]),
                      "two_cancers_aid")
    assert result["eligible"] and "1 woman/women diagnosed with CERVICAL_CANCER or BREAST_CANCER" in text(result)
    assert "amount not configured" in text(result) and result["monthly_amount"] is None
    # 农村: an urban household is not covered; 贫困: nor a rural one outside the low-income population
    assert not evaluate(engine, household_frame(woman, SHANTOU, receiving=["dibao"]), "two_cancers_aid")["eligible"]
    assert not evaluate(engine, household_frame(woman, SHANTOU_VILLAGE, rural=True), "two_cancers_aid")["eligible"]
    # 妇女: a man with the same recorded diagnosis; no diagnosis at all
    for people in ([{"age": 48, "sex": "MALE", "diagnosis": diagnosis}], [{"age": 48, "sex": "FEMALE"}]):
        frame = household_frame(people, SHANTOU_VILLAGE, rural=True, receiving=["tekun"])
        assert not evaluate(engine, frame, "two_cancers_aid")["eligible"]


def test_two_cancers_aid_not_configured_without_the_diagnoses(copy_settings, configs, pm):
    (configs / "44" / "parameters" / "other_assistance.toml").unlink()
    engine = PolicyEngine(copy_settings, pm)
    woman = [{"age": 48, "sex": "FEMALE", "diagnosis": "BREAST_CANCER"}]
    result = evaluate(engine, household_frame(woman, SHANTOU_VILLAGE, rural=True, receiving=["dibao"]),
                      "two_cancers_aid")
    assert not result["eligible"]
    assert "not met: not configured: other_assistance.two_cancers_diagnoses" in text(result)


DIAGNOSIS = """mutation D($input: DiagnosisInput!) { recordDiagnosis(input: $input) {
  diagnosis { diagnosis diagnosedOn } errors { field message code } } }"""


def _reasons(live, household_id, program) -> tuple[bool, list[str]]:
    results = live.data("Eligibility", {"householdId": household_id})["eligibility"]
    row = next(r for r in results if r["program"]["key"] == program)
    return row["eligible"], row["reasons"]


def test_diagnosis_recorded_through_the_api_and_read_by_the_two_cancers_aid(live_server):
    household = register(live_server, SHANTOU_VILLAGE, [member("440507", 50, 52)])  # an even sequence: a woman
    woman = household["members"][0]["person"]["id"]
    url = live_server.components.settings.database_url
    engine = make_sync_engine(url)

    def audits():
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(AuditLog)).scalar_one()

    def stored():
        with engine.connect() as conn:
            return conn.execute(select(Person.diagnosis, Person.diagnosed_on).where(
                Person.id == db_id(woman, "Person"))).one()

    try:
        before = audits()
        tomorrow = (TODAY + dt.timedelta(days=1)).isoformat()
        for bad, field in (({"diagnosis": "LUNG_CANCER", "diagnosedOn": TODAY.isoformat()}, "diagnosis"),
                           ({"diagnosis": "BREAST_CANCER", "diagnosedOn": tomorrow}, "diagnosedOn"),
                           ({"diagnosis": "BREAST_CANCER"}, "diagnosedOn")):
            body = live_server.post(DIAGNOSIS, {"input": {"personId": woman, **bad}}).json()
            result = body["data"]["recordDiagnosis"]
            assert result["diagnosis"] is None and result["errors"][0]["field"] == field, result
            assert result["errors"][0]["code"] == "VALIDATION"
        assert audits() == before and stored() == (None, None)  # nothing written
        on = (TODAY - dt.timedelta(days=30)).isoformat()
        ok = live_server.post(DIAGNOSIS, {"input": {"personId": woman, "diagnosis": "CERVICAL_CANCER",
                                                    "diagnosedOn": on}}).json()["data"]["recordDiagnosis"]
        assert ok == {"diagnosis": {"diagnosis": "CERVICAL_CANCER", "diagnosedOn": on}, "errors": []}
        eligible, reasons = _reasons(live_server, household["id"], "two_cancers_aid")
        # recorded, but the household is in no low-income program yet: 贫困 not met
        assert not eligible and any("1 woman/women diagnosed with CERVICAL_CANCER or BREAST_CANCER" in r
                                    for r in reasons)
        with session_scope(engine) as s:  # the household's dibao case, as an approval leaves it
            s.add(Enrollment(household_id=db_id(household["id"], "Household"), program_key="dibao",
                             province_code="44", region_code=SHANTOU_VILLAGE, status="ACTIVE",
                             start_date=TODAY - dt.timedelta(days=60)))
        eligible, reasons = _reasons(live_server, household["id"], "two_cancers_aid")
        assert eligible and any("amount not configured" in r for r in reasons)
    finally:
        engine.dispose()


# --- gd21-orphans-basic-living: 对低保、特困、孤儿、事实无人抚养儿童等对象，给予基本生活救助 ------------------------------


@pytest.mark.parametrize("category", ["ORPHAN", "UNATTENDED_CHILD"])
def test_orphans_and_unattended_children_get_basic_living_aid(engine, category):
    # a grandmother caring for a grandchild; no income test: the household earns well above the standard
    family = [{"age": 66, "sex": "FEMALE"}, {"age": 9, "relation_to_head": "GRANDCHILD", "special_category": category}]
    result = evaluate(engine, household_frame(family, GZ, monthly_income=9000), "orphan_basic_living")
    assert result["eligible"] and "1 orphan(s) or de-facto-unattended child(ren)" in text(result)
    assert "amount not configured" in text(result) and result["monthly_amount"] is None
    other = [{"age": 66}, {"age": 9, "relation_to_head": "GRANDCHILD", "special_category": "RETURNED_TO_POVERTY"}]
    assert not evaluate(engine, household_frame(other, GZ), "orphan_basic_living")["eligible"]


# --- gd24-disabled-child-rehab: 每年为广东省户籍有需求的残疾儿童提供抢救性康复服务 --------------------------------------


def test_guangdong_hukou_disabled_children_get_rescue_rehabilitation(engine):
    # 有需求的残疾儿童: a certified disability (level 1-4) under 18; 广东省户籍: local hukou (the hukou-free GD-2021
    # coverage includes them)
    child = [{"age": 35}, {"age": 3, "relation_to_head": "CHILD", "disability_level": 1, "local_hukou": True}]
    result = evaluate(engine, household_frame(child, SHANTOU, monthly_income=20000), "child_rehabilitation")
    assert result["eligible"] and "1 disabled child(ren) under 18" in text(result)
    no_need = [{"age": 35}, {"age": 3, "relation_to_head": "CHILD", "local_hukou": True}]
    assert not evaluate(engine, household_frame(no_need, SHANTOU), "child_rehabilitation")["eligible"]


# --- gd21-verification-sources: 住房公积金缴存 … 商业保险、证券、互联网金融资产 -----------------------------------------


def test_provident_fund_insurance_and_internet_finance_are_economic_items(live_server):
    household = register(live_server, SHANTOU, [member("440507", 45, 91)])
    end = TODAY - dt.timedelta(days=1)

    def record(kind, amount):
        return live_server.data("RecordEconomicItem", {"input": {
            "householdId": household["id"], "kind": kind, "source": "核对", "amount": amount,
            "periodStart": window_start(TODAY).isoformat(), "periodEnd": end.isoformat()}})["recordEconomicItem"]

    assert record("DEPOSIT", 1000)["errors"] == []
    # 商业保险 and 互联网金融资产 are financial assets, like deposits and securities
    assert record("COMMERCIAL_INSURANCE", 2000.5)["errors"] == []
    result = record("INTERNET_FINANCE", 300.25)
    assert result["errors"] == [] and result["household"]["economics"]["totalFinancialAssets"] == pytest.approx(3300.75)
    # 住房公积金 is an asset checked like real estate and vehicles: not a financial asset, and no income
    fund = record("HOUSING_PROVIDENT_FUND", 50000)
    assert fund["errors"] == [] and fund["household"]["economics"]["totalFinancialAssets"] == pytest.approx(3300.75)
    detail = live_server.post("query($id: ID!) { household(id: $id) { economics { monthlyIncome } } }",
                              {"id": household["id"]}).json()
    assert detail["data"]["household"]["economics"]["monthlyIncome"] == 0
    engine = make_sync_engine(live_server.components.settings.database_url)
    try:
        with engine.connect() as conn:
            kinds = conn.execute(select(EconomicItem.kind).where(
                EconomicItem.household_id == db_id(household["id"], "Household")).order_by(EconomicItem.id)).scalars().all()
        assert kinds == ["DEPOSIT", "COMMERCIAL_INSURANCE", "INTERNET_FINANCE", "HOUSING_PROVIDENT_FUND"]
        # a kind nobody knows is refused by the schema, and nothing is written
        body = live_server.post("mutation($input: EconomicItemInput!) { recordEconomicItem(input: $input) { errors { "
                                "field } } }", {"input": {"householdId": household["id"], "kind": "CRYPTO",
                                                          "source": "x", "amount": 1, "periodStart": "2025-01-01",
                                                          "periodEnd": "2025-01-31"}}).json()
        assert body.get("data") is None and body["errors"]
        assert body["errors"][0]["extensions"]["code"]
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(EconomicItem).where(
                EconomicItem.household_id == db_id(household["id"], "Household"))).scalar_one() == 4
    finally:
        engine.dispose()


def test_assets_feed_takes_the_new_kinds_by_their_chinese_names():
    from aidgraph.core.monitoring.feeds import FEEDS

    kind = FEEDS["assets"].column("kind")
    assert {"HOUSING_PROVIDENT_FUND", "COMMERCIAL_INSURANCE", "INTERNET_FINANCE"} <= set(kind.choices)
    assert kind.aliases["住房公积金"] == "HOUSING_PROVIDENT_FUND" and kind.aliases["商业保险"] == "COMMERCIAL_INSURANCE"
    assert kind.aliases["互联网金融资产"] == "INTERNET_FINANCE"


# --- gd21-temporary-event-place: 取消户籍地、居住地申请限制，由急难发生地实施临时救助 ------------------------------------


EMERGENCY = """mutation E($input: EmergencyInput!) { recordEmergency(input: $input) {
  event { id regionCode } errors { field message code } } }"""
APPLY = """mutation A($input: ApplyForAidInput!) { applyForAid(input: $input) {
  enrollment { id status program { key } } errors { field message code } } }"""
DECIDE = """mutation D($input: DecideEnrollmentInput!) { decideEnrollment(input: $input) {
  enrollment { status } errors { field message code } } }"""


def test_emergency_aid_applied_for_and_priced_where_it_happened(live_server, sync_engine, db_url):
    from tests.casework.conftest import token_for

    tianhe = "440106001001"  # 广州 天河区, urban: Guangzhou's urban standard 1,400 (Shantou's: 1,200)
    officer = token_for(db_url, sync_engine, "county_tianhe_event", "county_officer", tianhe[:6])
    # a two-person household registered in 汕头, where the Guangzhou officer has no scope
    household = register(live_server, SHANTOU, [member("440507", 40, 111), member("440507", 12, 113, "CHILD")])
    hid = household["id"]

    def post(query, variables, token=officer):
        body = live_server.post(query, {"input": variables}, token=token).json()
        assert "errors" not in body, body
        return next(iter(body["data"].values()))

    # no emergency yet: to the Guangzhou officer the household does not exist
    hidden = post(APPLY, {"householdId": hid, "programKey": "temporary_emergency"})
    assert hidden["enrollment"] is None and hidden["errors"][0]["code"] == "NOT_FOUND"
    # an accident in 天河, recorded by the officer there
    event = post(EMERGENCY, {"householdId": hid, "kind": "ACCIDENT", "regionCode": tianhe,
                             "occurredOn": (TODAY - dt.timedelta(days=2)).isoformat()})
    assert event["errors"] == [], event
    # the amount goes by the place's standard: 3 months (illustrative) x 1,400 x 2 members = 8,400 (not 7,200)
    eligible, reasons = _reasons(live_server, hid, "temporary_emergency")
    assert eligible and any(f"the urban standard of the emergency's place {tianhe}" in r and "1400.00 x 2 member(s) "
                            "= 8400.00 yuan" in r for r in reasons), reasons
    # only aid-first (急难) programs follow the event: dibao stays with the household's registration
    other = post(APPLY, {"householdId": hid, "programKey": "dibao"})
    assert other["errors"][0]["code"] == "NOT_FOUND"
    # the officer of the place applies and approves (aid first) for the household registered elsewhere
    applied = post(APPLY, {"householdId": hid, "programKey": "temporary_emergency"})
    assert applied["errors"] == [] and applied["enrollment"]["status"] == "APPLIED", applied
    approved = post(DECIDE, {"enrollmentId": applied["enrollment"]["id"], "action": "APPROVE"})
    assert approved == {"enrollment": {"status": "APPROVED"}, "errors": []}, approved
    engine = make_sync_engine(live_server.components.settings.database_url)
    try:
        with engine.connect() as conn:
            region, details = conn.execute(select(Enrollment.region_code, Enrollment.details).where(
                Enrollment.id == db_id(applied["enrollment"]["id"], "Enrollment"))).one()
    finally:
        engine.dispose()
    assert region == tianhe and details["emergency_place"] == tianhe
    assert details["one_off_amount"] == pytest.approx(8400.0)


def test_emergency_aid_uses_the_rural_standard_of_a_rural_place(engine):
    # registered in a Guangzhou 社区 (urban 1,400), the emergency in a Shantou 村委会 (rural 1,000): 3 x 1,000 x 1
    frame = household_frame([{}], GZ, emergencies=[{"kind": "ACCIDENT", "occurred_on": dt.date(2025, 5, 20),
                                                    "region_code": SHANTOU_VILLAGE, "rural": True}])
    result = evaluate(engine, frame, "temporary_emergency")
    assert result["eligible"] and result["one_off_amount"] == pytest.approx(3000.0)
    assert f"the rural standard of the emergency's place {SHANTOU_VILLAGE}" in text(result)
    # expenditure-type aid stays with the household's residence
    spent = household_frame([{}], GZ, monthly_rigid_expenditure=2000, emergencies=[
        {"kind": "ACCIDENT", "occurred_on": dt.date(2025, 5, 20), "region_code": SHANTOU_VILLAGE, "rural": True}])
    assert evaluate(engine, spent, "temporary")["one_off_amount"] == pytest.approx(4200.0)


# --- fj21-epidemic-one-off: 向莆田等受新冠疫情影响地区的困难群众发放一次性生活补贴 ---------------------------------------


def test_epidemic_one_off_for_low_income_households_in_putian(engine, copy_settings, configs, pm):
    putian, fuzhou = "350302001001", "350102001001"
    in_2021 = dt.date(2021, 10, 1)
    poor = household_frame([{}, {"relation_to_head": "SPOUSE"}], putian, receiving=["dibao"])
    result = evaluate(engine, poor, "epidemic_one_off", code="35", on=in_2021)
    assert result["eligible"] and "declared affected by the epidemic (3503" in text(result)
    # the source gives no amount: none is paid, and the reasons say so
    assert result["one_off_amount"] is None and "amount not configured: temporary.epidemic_one_off_amount" in text(result)
    # 困难群众 only, in the declared area only, and in 2021 only
    assert not evaluate(engine, household_frame([{}], putian), "epidemic_one_off", code="35", on=in_2021)["eligible"]
    fz = household_frame([{}], fuzhou, receiving=["tekun"])
    assert not evaluate(engine, fz, "epidemic_one_off", code="35", on=in_2021)["eligible"]
    later = evaluate(engine, poor, "epidemic_one_off", code="35", on=dt.date(2022, 3, 1))
    assert not later["eligible"] and "no area declared affected by an epidemic on 2022-03-01" in text(later)
    # Guangdong declares nothing: not configured
    gd = evaluate(engine, household_frame([{}], SHANTOU, receiving=["dibao"]), "epidemic_one_off")
    assert not gd["eligible"] and "not configured: temporary.epidemic_areas" in text(gd)
    # a province that configures an amount gets it per member (the figure here is the test's, not a policy's)
    with open(configs / "35" / "parameters" / "temporary.toml", "a", encoding="utf-8") as f:
        f.write('\n["temporary.epidemic_one_off_amount"]\ndescription = "test"\nunit = "yuan"\n'
                'source = "illustrative (test)"\nvalues = [ { from = 2021-01-01, value = 500 } ]\n')
    paid = evaluate(PolicyEngine(copy_settings, pm), poor, "epidemic_one_off", code="35", on=in_2021)
    assert paid["one_off_amount"] == pytest.approx(1000.0) and "500.00 x 2 member(s) = 1000.00 yuan" in text(paid)


# --- fj21-housing-low-middle: 住房保障覆盖中低收入家庭 -------------------------------------------------------------------


def test_housing_covers_middle_income_households_only_by_a_configured_line(engine, copy_settings, configs, pm):
    fuzhou = "350102001001"  # Fuzhou urban standard 900 (illustrative)
    # a household in no low-income program, in housing difficulty, per-capita income 1,500 (2 members, 3,000)
    middle = household_frame([{}, {"relation_to_head": "SPOUSE"}], fuzhou, monthly_income=3000, housing_need=True)
    unset = evaluate(engine, middle, "housing", code="35")
    assert not unset["eligible"]
    assert "middle-income (中低收入) households: not configured: housing.middle_income_multiple" in text(unset)
    # the low-income households of the sentence are covered as before
    low = household_frame([{}], fuzhou, receiving=["dibao_edge"], housing_need=True)
    assert evaluate(engine, low, "housing", code="35")["eligible"]
    # with a line configured (2 x the urban standard here: the test's figure, no source's) they are covered
    with open(configs / "35" / "parameters" / "housing.toml", "a", encoding="utf-8") as f:
        f.write('\n["housing.middle_income_multiple"]\ndescription = "test"\nsource = "illustrative (test)"\n'
                'values = [ { from = 2021-01-01, value = 2 } ]\n')
    configured = PolicyEngine(copy_settings, pm)
    result = evaluate(configured, middle, "housing", code="35")
    assert result["eligible"] and "per-capita income 1500.00 below 2 x urban standard = 1800.00" in text(result)
    above = household_frame([{}], fuzhou, monthly_income=1900, housing_need=True)
    assert not evaluate(configured, above, "housing", code="35")["eligible"]
    unverified = household_frame([{}], fuzhou, monthly_income=0, income_verified=False, housing_need=True)
    assert not evaluate(configured, unverified, "housing", code="35")["eligible"]
    no_need = household_frame([{}, {"relation_to_head": "SPOUSE"}], fuzhou, monthly_income=3000)
    assert not evaluate(configured, no_need, "housing", code="35")["eligible"]
