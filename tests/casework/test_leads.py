"""Leads (ReportLead) and visits (巡访) against a live server on SQLite and PostgreSQL: routing to the township,
deduplication against the household's open alert, address-only leads closed with a reason, bad input writing
nothing, scope."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from aidgraph.core.storage.models import AidChainEvent, Alert, AuditLog, Lead, Outbox, Visit
from aidgraph.schema.relay import to_global_id
from tests.casework.conftest import count, token_for


def report(live, token=..., **fields):
    variables = {"input": {"channel": "VILLAGE_ASSISTANT", "description": "家中老人重病卧床，无人照料", **fields}}
    return live.data("ReportLead", variables, token=token)["reportLead"]


def test_a_lead_about_a_person_raises_an_alert_and_a_second_joins_it(live_server, world, sync_engine, db_url):
    person = world.persons[0]
    assistant = token_for(db_url, sync_engine, "va_lead", "village_assistant", person.region_code)
    first = report(live_server, token=assistant, regionCode=person.region_code,
                   personId=to_global_id("Person", person.id), reportedBy="村协理员王某", idempotencyKey="l-1")
    assert first["errors"] == []
    lead = first["lead"]
    assert lead["status"] == "ALERTED" and lead["channel"] == "VILLAGE_ASSISTANT"
    assert lead["township"]["code"] == person.region_code[:9] and lead["township"]["name"]
    assert lead["alert"]["level"] == "YELLOW"  # workflow.lead_alert_level (illustrative)
    replay = report(live_server, token=assistant, regionCode=person.region_code,
                    personId=to_global_id("Person", person.id), reportedBy="村协理员王某", idempotencyKey="l-1")
    assert replay["lead"]["id"] == lead["id"]
    # The same key without the reporter is another request: refused, not answered with the first lead.
    trimmed = report(live_server, token=assistant, regionCode=person.region_code,
                     personId=to_global_id("Person", person.id), idempotencyKey="l-1")
    assert trimmed["lead"] is None and [e["code"] for e in trimmed["errors"]] == ["IDEMPOTENCY_KEY_REUSED"]
    # The hotline reports the same person by ID number: the lead joins the open alert, no second alert.
    second = report(live_server, regionCode=person.region_code[:9], idNumber=person.id_number.lower(),
                    channel="HOTLINE_12349", description="12349热线来电反映同一户困难")
    assert second["lead"]["status"] == "ALERTED" and second["lead"]["alert"]["id"] == lead["alert"]["id"]
    with Session(sync_engine) as s:
        alerts = s.scalars(select(Alert).where(Alert.household_id == person.household_id)).all()
        assert len(alerts) == 1 and alerts[0].indicators == ["lead:VILLAGE_ASSISTANT"]
        assert alerts[0].township_code == person.region_code[:9] and alerts[0].status == "OPEN"
        assert s.scalar(select(Outbox.id).where(Outbox.entity == "ALERT", Outbox.entity_id == alerts[0].id))
        chain = s.scalars(select(AidChainEvent.summary).where(AidChainEvent.household_id == person.household_id,
                                                               AidChainEvent.kind == "ALERT")
                          .order_by(AidChainEvent.id)).all()
        assert "raised a YELLOW alert" in chain[0] and "joined the open YELLOW alert" in chain[1]
        audits = s.scalars(select(AuditLog.action).where(AuditLog.object_type == "lead")).all()
        assert audits.count("report_lead") == 2
    assert count(sync_engine, Lead, Lead.household_id == person.household_id) == 2
    alerts = live_server.data("Alerts", {"regionCode": person.region_code})["alerts"]
    assert lead["alert"]["id"] in {e["node"]["id"] for e in alerts["edges"]}


def test_an_address_only_lead_stays_open_until_closed_with_a_reason(live_server, world, sync_engine, db_url):
    village = world.persons[3].region_code
    open_lead = report(live_server, regionCode=village, address=f"{village} 桥头第三间", channel="NEIGHBOUR",
                       description="邻居反映一名流浪老人夜宿桥下")
    assert open_lead["errors"] == [] and open_lead["lead"]["status"] == "OPEN" and open_lead["lead"]["alert"] is None
    assert open_lead["lead"]["township"]["code"] == village[:9]
    query = "query L($r: String!) { leads(regionCode: $r, status: OPEN) { totalCount edges { node { id } } } }"
    body = live_server.post(query, {"r": village[:9]}).json()
    assert open_lead["lead"]["id"] in {e["node"]["id"] for e in body["data"]["leads"]["edges"]}
    close = "mutation C($input: CloseLeadInput!) { closeLead(input: $input) { lead { status closeReason } errors { code field } } }"
    blank = live_server.post(close, {"input": {"leadId": open_lead["lead"]["id"], "reason": " "}}).json()
    assert blank["data"]["closeLead"]["errors"][0]["code"] == "VALIDATION"
    closed = live_server.post(close, {"input": {"leadId": open_lead["lead"]["id"],
                                                "reason": "已由救助站接回安置"}}).json()["data"]["closeLead"]
    assert closed["errors"] == [] and closed["lead"] == {"status": "CLOSED", "closeReason": "已由救助站接回安置"}
    again = live_server.post(close, {"input": {"leadId": open_lead["lead"]["id"], "reason": "x"}}).json()
    assert again["data"]["closeLead"]["errors"][0]["code"] == "INVALID_TRANSITION"


def test_bad_leads_are_clear_errors_and_write_nothing(live_server, world, sync_engine, db_url):
    village = world.persons[6].region_code
    before = (count(sync_engine, Lead), count(sync_engine, Alert))
    nothing = report(live_server, regionCode=village)
    assert nothing["lead"] is None and nothing["errors"][0]["code"] == "VALIDATION"
    assert nothing["errors"][0]["field"] == "personId"
    bad_id = report(live_server, regionCode=village, idNumber="440106199001011234")
    assert bad_id["errors"][0]["code"] == "INVALID_ID_NUMBER"
    county_only = report(live_server, regionCode=village[:6], address="某街道某号")
    assert county_only["errors"][0]["code"] == "VALIDATION" and county_only["errors"][0]["field"] == "regionCode"
    unknown = report(live_server, regionCode="449999999999", address="某号")
    assert unknown["errors"][0]["code"] == "VALIDATION"
    other = [p for p in world.persons if p.region_code[:9] != village[:9]][0]
    caseworker = token_for(db_url, sync_engine, "cw_lead_other", "township_caseworker", other.region_code[:9])
    outside = report(live_server, token=caseworker, regionCode=village, address="某号")
    assert outside["errors"][0]["code"] == "FORBIDDEN" and outside["errors"][0]["field"] == "regionCode"
    hidden = report(live_server, token=caseworker, regionCode=other.region_code,
                    personId=to_global_id("Person", world.persons[6].id))
    assert hidden["errors"][0]["code"] == "NOT_FOUND"
    auditor = token_for(db_url, sync_engine, "auditor_lead", "auditor", "44")
    assert report(live_server, token=auditor, regionCode=village, address="x")["errors"][0]["code"] == "FORBIDDEN"
    assert (count(sync_engine, Lead), count(sync_engine, Alert)) == before


def test_a_visit_is_recorded_and_one_that_finds_need_reports_a_lead(live_server, world, sync_engine, db_url):
    household = world.persons[9].household_id
    caseworker = token_for(db_url, sync_engine, "cw_visit", "township_caseworker", world.households[household][:9])
    visit = """mutation V($input: RecordVisitInput!) { recordVisit(input: $input) {
        visit { id visitedOn findings needsHelp leadId } errors { code field } } }"""
    hid = to_global_id("Household", household)
    calm = live_server.post(visit, {"input": {"householdId": hid, "findings": "生活平稳，按时领取低保金"}},
                            token=caseworker).json()["data"]["recordVisit"]
    assert calm["errors"] == [] and calm["visit"]["leadId"] is None
    need = live_server.post(visit, {"input": {"householdId": hid, "findings": "户主突发中风，家中无收入",
                                              "needsHelp": True}}, token=caseworker).json()["data"]["recordVisit"]
    assert need["errors"] == [] and need["visit"]["leadId"]
    empty = live_server.post(visit, {"input": {"householdId": hid, "findings": " "}},
                             token=caseworker).json()["data"]["recordVisit"]
    assert empty["errors"][0]["field"] == "findings"
    listed = live_server.post("query($h: ID!) { visits(householdId: $h) { findings needsHelp } }",
                              {"h": hid}, token=caseworker).json()["data"]["visits"]
    assert [v["needsHelp"] for v in listed] == [True, False]
    with Session(sync_engine) as s:
        assert s.scalar(select(Lead.status).where(Lead.household_id == household, Lead.channel == "VISIT")) == "ALERTED"
        assert len(s.scalars(select(Visit).where(Visit.household_id == household)).all()) == 2


def test_concurrent_leads_about_one_household_raise_one_alert(live_server, world, sync_engine):
    import threading

    person = world.persons[27]
    results: list[dict] = []

    def send(channel):
        results.append(report(live_server, regionCode=person.region_code, personId=to_global_id("Person", person.id),
                              channel=channel, description=f"{channel} 同时反映"))

    threads = [threading.Thread(target=send, args=(c,)) for c in ("HOTLINE_12345", "NEIGHBOUR", "VILLAGE_ASSISTANT")]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert all(r["errors"] == [] for r in results), results
    assert len({r["lead"]["alert"]["id"] for r in results}) == 1
    with Session(sync_engine) as s:
        assert len(s.scalars(select(Alert).where(Alert.household_id == person.household_id)).all()) == 1
        assert len(s.scalars(select(Lead).where(Lead.household_id == person.household_id)).all()) == 3


CHANGE = """mutation C($input: ReportHouseholdChangeInput!) { reportHouseholdChange(input: $input) {
  household { id } reviewBroughtForward { id status } errors { code field } } }"""


def test_a_reported_major_change_brings_the_households_review_forward(live_server, world, sync_engine, db_url):
    """GD-2021 落实救助对象家庭人口、经济状况重大变化报告机制: the report is on the aid chain and in the audit log, and
    the household's ACTIVE enrolments become due for review (复核) on the day of the change; a GRADUAL_EXIT one
    and another household's are untouched; bad input writes nothing."""
    import datetime as dt

    from sqlalchemy import insert

    from aidgraph.core.storage.models import Enrollment

    household, other = world.persons[15].household_id, world.persons[18].household_id
    region = world.households[household]
    later, changed = dt.date.today() + dt.timedelta(days=180), dt.date.today() - dt.timedelta(days=3)
    with Session(sync_engine) as s, s.begin():
        ids = [s.execute(insert(Enrollment).returning(Enrollment.id), {
            "household_id": h, "program_key": key, "province_code": "44", "region_code": world.households[h],
            "status": status, "monthly_amount": 300, "start_date": dt.date.today() - dt.timedelta(days=200),
            "next_review_date": later}).scalar_one()
            for h, key, status in ((household, "dibao", "ACTIVE"), (household, "dibao_edge", "GRADUAL_EXIT"),
                                   (other, "dibao", "ACTIVE"))]
    caseworker = token_for(db_url, sync_engine, "cw_change", "township_caseworker", region[:9])
    hid = to_global_id("Household", household)
    variables = {"input": {"householdId": hid, "kind": "POPULATION", "description": "长子外出务工，户内人口减少",
                           "changedOn": changed.isoformat(), "idempotencyKey": "change-1"}}
    done = live_server.post(CHANGE, variables, token=caseworker).json()["data"]["reportHouseholdChange"]
    assert done["errors"] == [] and done["household"]["id"] == hid
    assert [e["id"] for e in done["reviewBroughtForward"]] == [to_global_id("Enrollment", ids[0])]
    again = live_server.post(CHANGE, variables, token=caseworker).json()["data"]["reportHouseholdChange"]
    assert again == done  # the same key answers the first answer
    with Session(sync_engine) as s:
        due = dict(s.execute(select(Enrollment.id, Enrollment.next_review_date).where(Enrollment.id.in_(ids))).all())
        chain = s.scalars(select(AidChainEvent.summary).where(AidChainEvent.household_id == household,
                                                               AidChainEvent.summary.contains("重大变化报告"))).all()
        audits = s.scalars(select(AuditLog).where(AuditLog.action == "report_household_change")).all()
    assert due == {ids[0]: changed, ids[1]: later, ids[2]: later}
    assert len(chain) == 1 and "家庭人口" in chain[0] and "dibao" in chain[0]
    assert len(audits) == 1 and audits[0].detail["enrollments"] == [ids[0]]
    for field, bad in (("description", {"description": " "}), ("changedOn", {"changedOn": "2999-01-01"})):
        refused = live_server.post(CHANGE, {"input": {**variables["input"], "idempotencyKey": None, **bad}},
                                   token=caseworker).json()["data"]["reportHouseholdChange"]
        assert refused["household"] is None and refused["errors"][0]["field"] == field
    # a caseworker of another township (always a different one): the household does not exist for them
    elsewhere = "440106001" if region[:9] != "440106001" else "440106002"
    outside = token_for(db_url, sync_engine, "cw_change_other", "township_caseworker", elsewhere)
    hidden = live_server.post(CHANGE, {"input": {**variables["input"], "idempotencyKey": None}},
                              token=outside).json()["data"]["reportHouseholdChange"]
    assert hidden["household"] is None and hidden["errors"][0]["code"] == "NOT_FOUND"
    with Session(sync_engine) as s:
        assert len(s.scalars(select(AuditLog).where(AuditLog.action == "report_household_change")).all()) == 1
