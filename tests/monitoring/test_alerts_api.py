"""The contract's Alerts query and DisposeAlert mutation against a live server, on SQLite and PostgreSQL.

A small province is seeded, department feeds are imported and ``aidgraph monitor run`` raises the month's
alerts at every Guangdong level; a township caseworker then moves alerts through their disposition.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from aidgraph.core.app.demo import ensure_demo_user
from aidgraph.core.monitoring.feeds import import_feed
from aidgraph.core.storage.models import AidChainEvent, Alert, AuditLog, Enrollment
from aidgraph.schema.relay import to_global_id
from tests.conftest import server_settings
from tests.monitoring.conftest import seed_world
from tests.monitoring.helpers import write_feed

MONTH = "2025-03"


@pytest.fixture(scope="module")
def alerted(db_url, sync_engine, live_server, tmp_path_factory):
    """The seeded province with one CLI monitoring run done; alerts by household index."""
    from aidgraph.core.app.cli import app

    world = seed_world(sync_engine, "44", households=8, start=11)
    m = lambda h, i=0: world.persons[h * 3 + i].id_number  # noqa: E731
    tmp = tmp_path_factory.mktemp("feeds")
    feeds = {
        "unemployment": [[m(0), "", "2025-03-10", "REGISTERED"]],                                   # GREEN 20
        "disease": [[m(1), "", "MAJOR", "白血病", "2025-03-05"], [m(3), "", "MAJOR", "尿毒症", "2025-03-06"],
                    [m(4), "", "MAJOR", "肿瘤", "2025-03-07"]],
        "hospitalisation": [[m(2), "", "2025-03-02", "", "医院", "", "900", "800", "600"],
                            [m(3, 1), "", "2025-03-12", "", "医院", "", "900", "800", "600"],
                            [m(4, 1), "", "2025-03-13", "", "医院", "", "900", "800", "600"],
                            [m(5), "", "2025-03-14", "", "医院", "", "900", "800", "600"],
                            [m(6), "", "2025-03-15", "", "医院", "", "900", "800", "600"]],
        "disability": [[m(2, 1), "", "肢体", "2", "2025-03-15"], [m(4, 2), "", "肢体", "2", "2025-03-15"]],
        "household_event": [[m(6, 1), "DEATH", "2025-03-20", ""]],
    }
    for kind, rows in feeds.items():
        assert import_feed(sync_engine, kind, write_feed(tmp / f"{kind}.csv", kind, rows)).rejected == 0
    # major 35 -> BLUE (1); hosp 25 + disability 20 -> YELLOW (2); major 35 + hosp 25 -> ORANGE (3);
    # major 35 + hosp 25 + disability 20 -> RED (4); hosp 25 -> GREEN (5); hosp 25 + death 20 -> YELLOW (6)
    runner = CliRunner()
    result = runner.invoke(app, ["monitor", "run", "--province", "44", "--month", MONTH],
                           env={"AIDGRAPH_DATABASE_URL": db_url})
    assert result.exit_code == 0, result.output
    assert "alerts raised 7" in " ".join(result.output.split()), result.output
    assert "illustrative" in result.output
    again = runner.invoke(app, ["monitor", "run", "--province", "44", "--month", MONTH],
                          env={"AIDGRAPH_DATABASE_URL": db_url})
    assert "alerts raised 0, updated 0, unchanged 7" in " ".join(again.output.split()), again.output
    households = list(world.households)
    with Session(sync_engine) as s:
        alerts = {a.household_id: a for a in s.scalars(select(Alert).where(Alert.household_id.in_(households)))}
    return world, [alerts.get(h) for h in households]


def token_for(db_url, sync_engine, username, role, region):
    return ensure_demo_user(sync_engine, server_settings(db_url), username=username, role=role, region_code=region)


def dispose(live, alert, action, note="入户核查", token=..., **extra):
    variables = {"input": {"alertId": to_global_id("Alert", alert.id), "action": action, "note": note, **extra}}
    return live.data("DisposeAlert", variables, token=token)["disposeAlert"]


def test_cli_refuses_future_months_and_unknown_provinces(db_url):
    from aidgraph.core.app.cli import app

    env = {"AIDGRAPH_DATABASE_URL": db_url}
    future = (dt.date.today().replace(day=1) + dt.timedelta(days=40)).strftime("%Y-%m")
    result = CliRunner().invoke(app, ["monitor", "run", "--province", "44", "--month", future], env=env)
    assert result.exit_code == 2 and "in the future" in " ".join(result.output.split())
    result = CliRunner().invoke(app, ["monitor", "run", "--province", "99", "--month", MONTH], env=env)
    assert result.exit_code == 2 and "99" in result.output


def test_alerts_query_returns_every_level_with_township_and_household(live_server, alerted):
    world, alerts = alerted
    data = live_server.data("Alerts", {"regionCode": "44", "first": 100})["alerts"]
    ours = {e["node"]["id"]: e["node"] for e in data["edges"]}
    mine = [a for a in alerts if a is not None]
    assert len(mine) == 7 and data["totalCount"] >= 7
    for alert in mine:
        node = ours[to_global_id("Alert", alert.id)]
        assert node["level"] == alert.level and node["status"] == "OPEN"
        assert node["township"]["code"] == alert.township_code and node["township"]["name"]
        assert node["household"]["id"] == to_global_id("Household", alert.household_id)
        assert node["indicators"] == alert.indicators and node["score"] == float(alert.score)
    assert {ours[to_global_id("Alert", a.id)]["level"] for a in mine} == {"GREEN", "BLUE", "YELLOW", "ORANGE", "RED"}
    assert alerts[7] is None  # no hits
    red = live_server.data("Alerts", {"regionCode": "44", "level": "RED"})["alerts"]
    assert {e["node"]["level"] for e in red["edges"]} == {"RED"} and red["totalCount"] >= 1
    page = live_server.data("Alerts", {"regionCode": "44", "first": 2})["alerts"]
    assert len(page["edges"]) == 2 and page["pageInfo"]["hasNextPage"]
    rest = live_server.data("Alerts", {"regionCode": "44", "first": 100,
                                       "after": page["pageInfo"]["endCursor"]})["alerts"]
    assert not {e["node"]["id"] for e in rest["edges"]} & {e["node"]["id"] for e in page["edges"]}
    township = alerts[4].township_code
    scoped = live_server.data("Alerts", {"regionCode": township})["alerts"]
    assert {e["node"]["township"]["code"] for e in scoped["edges"]} == {township}


def test_household_warning_level_reflects_open_alerts(live_server, alerted):
    world, alerts = alerted
    detail = live_server.data("HouseholdDetail", {"id": to_global_id("Household", alerts[4].household_id)})
    assert detail["household"]["warningLevel"] == "RED"
    assert any(e["node"]["kind"] == "ALERT" for e in detail["household"]["aidChain"]["edges"])


def test_dispose_alert_moves_through_its_states(live_server, alerted, db_url, sync_engine):
    world, alerts = alerted
    red, yellow = alerts[4], alerts[2]
    caseworker = token_for(db_url, sync_engine, "tw_red", "township_caseworker", red.township_code)

    early = dispose(live_server, red, "NO_ACTION_NEEDED", token=caseworker)
    assert early["alert"] is None and early["errors"][0]["code"] == "INVALID_TRANSITION"
    blank = dispose(live_server, red, "START_VERIFICATION", note="  ", token=caseworker)
    assert blank["errors"][0]["code"] == "VALIDATION" and blank["errors"][0]["field"] == "note"

    started = dispose(live_server, red, "START_VERIFICATION", token=caseworker)
    assert started["errors"] == [] and started["alert"]["status"] == "VERIFYING"
    again = dispose(live_server, red, "START_VERIFICATION", token=caseworker)
    assert again["errors"][0]["code"] == "INVALID_TRANSITION"
    done = dispose(live_server, red, "NO_ACTION_NEEDED", note="家庭已有稳定收入", token=caseworker)
    assert done["errors"] == [] and done["alert"]["status"] == "DISMISSED"

    # A caseworker of another township, and a city officer who may read but not dispose.
    other_town = token_for(db_url, sync_engine, "tw_other", "township_caseworker", yellow.township_code)
    assert dispose(live_server, red, "START_VERIFICATION", token=other_town)["errors"][0]["code"] == "NOT_FOUND"
    officer = token_for(db_url, sync_engine, "city_officer_44", "city_officer", yellow.region_code[:4])
    assert dispose(live_server, yellow, "START_VERIFICATION", token=officer)["errors"][0]["code"] == "FORBIDDEN"
    gansu = token_for(db_url, sync_engine, "admin62", "province_admin", "62")
    assert dispose(live_server, yellow, "START_VERIFICATION", token=gansu)["errors"][0]["code"] == "NOT_FOUND"
    assert not live_server.data("Alerts", {"regionCode": "44"}, token=gansu)["alerts"]["edges"]

    referred = alerts[5]
    dispose(live_server, referred, "START_VERIFICATION")
    refer = dispose(live_server, referred, "REFER", note="转办人社部门就业援助")
    assert refer["errors"] == [] and refer["alert"]["status"] == "RESOLVED"

    with Session(sync_engine) as s:
        chain = s.scalars(select(AidChainEvent).where(AidChainEvent.ref_type == "alert",
                                                      AidChainEvent.ref_id.in_([red.id, referred.id]))).all()
        kinds = sorted(c.kind for c in chain)
        assert kinds == ["ALERT", "ALERT", "REFERRAL", "VERIFICATION", "VERIFICATION", "VERIFICATION"]
        verification = next(c for c in chain if c.kind == "VERIFICATION" and c.ref_id == red.id
                             and "预警核实开始" in c.summary)
        assert "programs the household appears eligible for" in verification.summary or "due programs" in \
            verification.summary
        audits = s.scalars(select(AuditLog).where(AuditLog.action == "dispose_alert",
                                                  AuditLog.object_id == str(red.id))).all()
        assert [a.detail["to"] for a in sorted(audits, key=lambda a: a.id)] == ["VERIFYING", "DISMISSED"]
        assert all(a.actor == "tw_red" for a in audits)
    detail = live_server.data("HouseholdDetail", {"id": to_global_id("Household", red.household_id)})
    assert detail["household"]["warningLevel"] is None


def test_enrol_opens_an_application_through_the_workflow(live_server, alerted, sync_engine):
    world, alerts = alerted
    alert = alerts[3]
    dispose(live_server, alert, "START_VERIFICATION")
    enrolled = dispose(live_server, alert, "ENROL", note="纳入防止返贫监测")
    assert enrolled["errors"] == [] and enrolled["alert"]["status"] == "RESOLVED"
    with Session(sync_engine) as s:
        enrollment = s.scalars(select(Enrollment).where(Enrollment.household_id == alert.household_id)).one()
        assert enrollment.program_key == "relapse_monitoring" and enrollment.status == "APPLIED"
        assert s.get(Alert, alert.id).disposition == "ENROLLED"
