"""Volunteer service (志愿服务; GD-2022 §13) over HTTP against a live server on SQLite and PostgreSQL: stations per
township or village, volunteers registered at them with their phone masked per rights (and a full read audited),
assignments to assist a lead's screening (对象排查) or a visit (巡访), a satisfaction survey (满意度调查) recorded
with its answer; scope (a township sees and assigns only its own), audit, idempotency, and bad input writing
nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from aidgraph.core.storage.models import AidChainEvent, AuditLog, Region, Volunteer, VolunteerAssignment, VolunteerStation
from aidgraph.schema.relay import to_global_id
from tests.casework.conftest import count, seed_township, token_for

ERR = "errors { code field message }"
STATION = f"""mutation S($input: AddVolunteerStationInput!) {{ addVolunteerStation(input: $input) {{
    station {{ id name regionCode }} {ERR} }} }}"""
REGISTER = f"""mutation R($input: RegisterVolunteerInput!) {{ registerVolunteer(input: $input) {{
    volunteer {{ id name phone tasks active stationId }} {ERR} }} }}"""
ASSIGN = f"""mutation A($input: AssignVolunteerInput!) {{ assignVolunteer(input: $input) {{
    assignment {{ id task taskName status regionCode volunteer {{ name }} lead {{ id }} visit {{ id }}
                  household {{ id }} }} {ERR} }} }}"""
COMPLETE = f"""mutation C($input: CompleteVolunteerAssignmentInput!) {{ completeVolunteerAssignment(input: $input) {{
    assignment {{ id status result satisfaction completedAt }} {ERR} }} }}"""
STATIONS = """query V($r: String!) { volunteerStations(regionCode: $r) { id name regionCode
    volunteers { id name phone tasks active } } }"""
ASSIGNMENTS = """query VA($r: String!, $s: VolunteerAssignmentStatus, $t: VolunteerTask) {
    volunteerAssignments(regionCode: $r, status: $s, task: $t) { totalCount edges { node { id task status
    satisfaction result volunteer { name } } } } }"""
VISIT = """mutation V($input: RecordVisitInput!) { recordVisit(input: $input) { visit { id } errors { code } } }"""


def post(live, query, variables, token=...):
    body = live.post(query, variables, token=token).json()
    assert "errors" not in body, body
    return next(iter(body["data"].values()))


@pytest.fixture(scope="module")
def towns(sync_engine, db_url):
    """Two Guangdong townships of three households each; a caseworker of each, their county's officer, a village
    assistant of the first (volunteer read, no identity right)."""
    here = seed_township(sync_engine, "44", households=3, start=11)
    there = seed_township(sync_engine, "44", households=3, start=12)
    town, other = next(iter(here.households.values()))[:9], next(iter(there.households.values()))[:9]
    assert town != other
    tokens = {"cw": token_for(db_url, sync_engine, "cw_vol", "township_caseworker", town),
              "cw_other": token_for(db_url, sync_engine, "cw_vol2", "township_caseworker", other),
              "assistant": token_for(db_url, sync_engine, "va_vol", "village_assistant", town)}
    return here, there, town, other, tokens


def test_stations_volunteers_and_scope(live_server, towns, sync_engine):
    here, there, town, other, tokens = towns
    village = next(iter(here.households.values()))
    cw = tokens["cw"]
    made = post(live_server, STATION, {"input": {"regionCode": village, "name": "幸福社区志愿服务站",
                                                 "address": "村委会一楼", "idempotencyKey": "st-1"}}, token=cw)
    assert made["errors"] == [] and made["station"]["regionCode"] == village
    replay = post(live_server, STATION, {"input": {"regionCode": village, "name": "幸福社区志愿服务站",
                                                   "address": "村委会一楼", "idempotencyKey": "st-1"}}, token=cw)
    assert replay["station"]["id"] == made["station"]["id"]
    twice = post(live_server, STATION, {"input": {"regionCode": village, "name": "幸福社区志愿服务站"}}, token=cw)
    assert twice["station"] is None and twice["errors"][0] == {
        "code": "VALIDATION", "field": "name", "message": f"{village} already has a station named '幸福社区志愿服务站'"}
    outside = post(live_server, STATION, {"input": {"regionCode": other, "name": "外乡站"}}, token=cw)
    assert outside["errors"][0]["code"] == "FORBIDDEN" and outside["errors"][0]["field"] == "regionCode"
    county = post(live_server, STATION, {"input": {"regionCode": town[:6], "name": "县站"}}, token=cw)
    assert county["errors"][0]["code"] == "VALIDATION" and county["errors"][0]["field"] == "regionCode"
    assert count(sync_engine, VolunteerStation) == 1

    station = made["station"]["id"]
    bad_phone = post(live_server, REGISTER, {"input": {"stationId": station, "name": "陈志愿", "phone": "abc",
                                                       "tasks": ["LEAD_SCREENING"]}}, token=cw)
    assert bad_phone["errors"][0]["field"] == "phone"
    no_task = post(live_server, REGISTER, {"input": {"stationId": station, "name": "陈志愿", "phone": "13800138000",
                                                     "tasks": []}}, token=cw)
    assert no_task["errors"][0]["field"] == "tasks"
    # An unknown task kind is not a value of the VolunteerTask enum: the request is refused before it runs.
    unknown = live_server.post(REGISTER, {"input": {"stationId": station, "name": "陈志愿", "phone": "13800138000",
                                                    "tasks": ["TIME_BANK"]}}, token=cw).json()
    assert unknown.get("data") is None and "VolunteerTask" in unknown["errors"][0]["message"]
    elsewhere = post(live_server, REGISTER, {"input": {"stationId": station, "name": "李", "phone": "13800138001",
                                                       "tasks": ["CARE"]}}, token=tokens["cw_other"])
    assert elsewhere["errors"][0] == {"code": "NOT_FOUND", "field": "stationId", "message": "volunteer station not found"}
    assert count(sync_engine, Volunteer) == 0

    registered = post(live_server, REGISTER, {"input": {
        "stationId": station, "name": "陈志愿", "phone": "13800138000", "idempotencyKey": "vol-1",
        "tasks": ["SATISFACTION_SURVEY", "LEAD_SCREENING", "CASE_FILE_VISIT"]}}, token=cw)
    assert registered["errors"] == []
    volunteer = registered["volunteer"]
    assert volunteer["phone"] == "13800138000"  # the caseworker holds the identity right in the township
    assert volunteer["tasks"] == ["CASE_FILE_VISIT", "LEAD_SCREENING", "SATISFACTION_SURVEY"]
    again = post(live_server, REGISTER, {"input": {
        "stationId": station, "name": "陈志愿", "phone": "13800138000", "idempotencyKey": "vol-1",
        "tasks": ["SATISFACTION_SURVEY", "LEAD_SCREENING", "CASE_FILE_VISIT"]}}, token=cw)
    assert again["volunteer"]["id"] == volunteer["id"] and count(sync_engine, Volunteer) == 1
    with Session(sync_engine) as s:  # stored encrypted, like a person's phone
        raw = s.execute(text("SELECT phone FROM volunteer")).scalar_one()
        assert "13800138000" not in raw and raw.startswith("v1:")

    seen = post(live_server, STATIONS, {"r": town}, token=tokens["assistant"])
    assert [s["name"] for s in seen] == ["幸福社区志愿服务站"]
    assert seen[0]["volunteers"][0]["phone"] == "138****8000"  # no identity right: masked
    assert post(live_server, STATIONS, {"r": town}, token=tokens["cw_other"]) == []
    assert post(live_server, STATIONS, {"r": other}, token=tokens["cw_other"]) == []
    with Session(sync_engine) as s:
        audits = s.scalars(select(AuditLog).where(AuditLog.object_type == "volunteer")).all()
        actions = [a.action for a in audits]
        assert actions.count("add_volunteer_station") == 1 and actions.count("register_volunteer") == 1
        assert any(a.action == "read_sensitive" and a.actor == "cw_vol" and a.detail["fields"] == ["phone"]
                   for a in audits)  # the caseworker's full read is a disclosure
        assert not any(a.action == "read_sensitive" and a.actor == "va_vol" for a in audits)


def test_assignments_to_a_lead_a_visit_and_a_satisfaction_survey(live_server, towns, sync_engine, db_url):
    here, there, town, other, tokens = towns
    cw = tokens["cw"]
    stations = post(live_server, STATIONS, {"r": town}, token=cw)
    if not stations:  # this test alone: make its own station and volunteer
        test_stations_volunteers_and_scope(live_server, towns, sync_engine)
        stations = post(live_server, STATIONS, {"r": town}, token=cw)
    volunteer = stations[0]["volunteers"][0]["id"]
    households = list(here.households)
    village = here.households[households[0]]

    lead = live_server.data("ReportLead", {"input": {
        "regionCode": village, "channel": "NEIGHBOUR", "address": f"{village} 桥头第三间",
        "description": "邻居反映一名老人独居，生活困难"}}, token=cw)["reportLead"]["lead"]
    screening = post(live_server, ASSIGN, {"input": {"volunteerId": volunteer, "task": "LEAD_SCREENING",
                                                     "leadId": lead["id"], "note": "上门核实", "idempotencyKey": "as-1"}},
                     token=cw)
    assert screening["errors"] == [], screening
    assignment = screening["assignment"]
    assert assignment["task"] == "LEAD_SCREENING" and assignment["taskName"] == "对象排查"
    assert assignment["lead"]["id"] == lead["id"] and assignment["status"] == "ASSIGNED"
    replay = post(live_server, ASSIGN, {"input": {"volunteerId": volunteer, "task": "LEAD_SCREENING",
                                                  "leadId": lead["id"], "note": "上门核实", "idempotencyKey": "as-1"}},
                  token=cw)
    assert replay["assignment"]["id"] == assignment["id"]

    before = count(sync_engine, VolunteerAssignment)
    refusals = [
        ({"task": "CARE", "householdId": to_global_id("Household", households[0])}, "VALIDATION", "task"),
        ({"task": "LEAD_SCREENING", "householdId": to_global_id("Household", households[0])}, "VALIDATION",
         "householdId"),
        ({"task": "LEAD_SCREENING"}, "VALIDATION", "leadId"),
        ({"task": "SATISFACTION_SURVEY", "householdId": to_global_id("Household", next(iter(there.households)))},
         "NOT_FOUND", "householdId"),  # a household of another township: outside the caseworker's scope
    ]
    for extra, code, field in refusals:
        refused = post(live_server, ASSIGN, {"input": {"volunteerId": volunteer, **extra}}, token=cw)
        assert refused["assignment"] is None and (refused["errors"][0]["code"], refused["errors"][0]["field"]) == (
            code, field), (extra, refused)
    other_cw = post(live_server, ASSIGN, {"input": {"volunteerId": volunteer, "task": "SATISFACTION_SURVEY",
                                                    "householdId": to_global_id("Household", next(iter(there.households)))}},
                    token=tokens["cw_other"])
    assert other_cw["errors"][0] == {"code": "NOT_FOUND", "field": "volunteerId", "message": "volunteer not found"}
    assert count(sync_engine, VolunteerAssignment) == before

    visit = post(live_server, VISIT, {"input": {"householdId": to_global_id("Household", households[1]),
                                                "findings": "建档访视：家中两位老人，一人卧床"}}, token=cw)["visit"]
    assisted = post(live_server, ASSIGN, {"input": {"volunteerId": volunteer, "task": "CASE_FILE_VISIT",
                                                    "visitId": visit["id"]}}, token=cw)
    assert assisted["errors"] == [] and assisted["assignment"]["visit"]["id"] == visit["id"]
    assert assisted["assignment"]["household"]["id"] == to_global_id("Household", households[1])

    survey = post(live_server, ASSIGN, {"input": {"volunteerId": volunteer, "task": "SATISFACTION_SURVEY",
                                                  "householdId": to_global_id("Household", households[2])}}, token=cw)
    assert survey["errors"] == []
    survey_id = survey["assignment"]["id"]
    no_answer = post(live_server, COMPLETE, {"input": {"assignmentId": survey_id, "result": "电话回访"}}, token=cw)
    assert no_answer["errors"][0]["field"] == "satisfaction"
    not_a_survey = post(live_server, COMPLETE, {"input": {"assignmentId": assignment["id"], "result": "已核实",
                                                          "satisfaction": "SATISFIED"}}, token=cw)
    assert not_a_survey["errors"][0]["field"] == "satisfaction"
    outsider = post(live_server, COMPLETE, {"input": {"assignmentId": survey_id, "result": "x",
                                                      "satisfaction": "SATISFIED"}}, token=tokens["cw_other"])
    assert outsider["errors"][0]["code"] == "NOT_FOUND"
    done = post(live_server, COMPLETE, {"input": {"assignmentId": survey_id, "result": "入户回访，对救助金发放及时性基本满意",
                                                  "satisfaction": "PARTLY_SATISFIED"}}, token=cw)
    assert done["errors"] == [] and done["assignment"]["status"] == "DONE"
    assert done["assignment"]["satisfaction"] == "PARTLY_SATISFIED" and done["assignment"]["completedAt"]
    twice = post(live_server, COMPLETE, {"input": {"assignmentId": survey_id, "result": "again",
                                                   "satisfaction": "SATISFIED"}}, token=cw)
    assert twice["errors"][0]["code"] == "INVALID_TRANSITION"

    # 政策宣传 in a village of the station's township; a county officer may reach the county's other townships,
    # but a community station's volunteer serves its own township.
    with Session(sync_engine) as s:
        neighbour = s.scalar(select(Region.code).where(Region.parent_code == town[:6], Region.code != town,
                                                       Region.level == "TOWNSHIP").order_by(Region.code).limit(1))
    officer = token_for(db_url, sync_engine, "county_vol", "county_officer", town[:6])
    not_offered = post(live_server, ASSIGN, {"input": {"volunteerId": volunteer, "task": "POLICY_OUTREACH",
                                                       "regionCode": village}}, token=officer)
    assert not_offered["errors"][0]["field"] == "task"  # this volunteer offers no outreach
    speaker = post(live_server, REGISTER, {"input": {"stationId": stations[0]["id"], "name": "黄宣讲",
                                                     "phone": "020-83001234", "tasks": ["POLICY_OUTREACH"]}},
                   token=officer)["volunteer"]["id"]
    away = post(live_server, ASSIGN, {"input": {"volunteerId": speaker, "task": "POLICY_OUTREACH",
                                                "regionCode": neighbour}}, token=officer)
    assert away["errors"][0]["code"] == "VALIDATION" and away["errors"][0]["field"] == "regionCode"
    assert "serves township" in away["errors"][0]["message"]
    outreach = post(live_server, ASSIGN, {"input": {"volunteerId": speaker, "task": "POLICY_OUTREACH",
                                                    "regionCode": village, "note": "低保政策进村宣讲"}}, token=officer)
    assert outreach["errors"] == [] and outreach["assignment"]["regionCode"] == village
    assert outreach["assignment"]["household"] is None

    listed = post(live_server, ASSIGNMENTS, {"r": town}, token=cw)
    assert listed["totalCount"] == 4
    surveys = post(live_server, ASSIGNMENTS, {"r": town, "s": "DONE", "t": "SATISFACTION_SURVEY"}, token=cw)
    assert [e["node"]["satisfaction"] for e in surveys["edges"]] == ["PARTLY_SATISFIED"]
    assert post(live_server, ASSIGNMENTS, {"r": town}, token=tokens["cw_other"])["totalCount"] == 0

    # Deactivated, the volunteer takes no new assignment.
    off = post(live_server, """mutation D($input: SetVolunteerActiveInput!) { setVolunteerActive(input: $input) {
        volunteer { active } errors { code } } }""", {"input": {"volunteerId": volunteer, "active": False}}, token=cw)
    assert off["volunteer"]["active"] is False
    late = post(live_server, ASSIGN, {"input": {"volunteerId": volunteer, "task": "SATISFACTION_SURVEY",
                                                "householdId": to_global_id("Household", households[2])}}, token=cw)
    assert late["errors"][0]["code"] == "INVALID_TRANSITION"

    with Session(sync_engine) as s:
        rows = s.scalars(select(VolunteerAssignment).order_by(VolunteerAssignment.id)).all()
        assert [(r.task, r.status, r.satisfaction) for r in rows] == [
            ("LEAD_SCREENING", "ASSIGNED", None), ("CASE_FILE_VISIT", "ASSIGNED", None),
            ("SATISFACTION_SURVEY", "DONE", "PARTLY_SATISFIED"), ("POLICY_OUTREACH", "ASSIGNED", None)]
        chain = s.scalars(select(AidChainEvent.summary).where(AidChainEvent.household_id == households[2],
                                                               AidChainEvent.ref_type == "volunteer_assignment")
                          .order_by(AidChainEvent.id)).all()
        assert "满意度调查" in chain[0] and "PARTLY_SATISFIED" in chain[1]
        actions = s.scalars(select(AuditLog.action).where(AuditLog.object_type == "volunteer")).all()
        assert actions.count("assign_volunteer") == 4 and actions.count("complete_volunteer_assignment") == 1
