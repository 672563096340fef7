"""The demo province's monitoring month, end to end against a live server, on SQLite and PostgreSQL.

``aidgraph demo --no-serve`` seeds 2,000 synthetic Guangdong households, imports a month of synthetic
department feeds (``aidgraph.core.app.synthetic_feeds``) and runs that month's monitoring. The contract's Alerts query must
then return alerts at every Guangdong level, matching the database, and DisposeAlert must move demo alerts
through their states. Running the demo again changes nothing.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from aidgraph.core.app.demo import ensure_demo_user
from aidgraph.core.storage.models import Alert, Enrollment, FeedRecord
from aidgraph.schema.relay import to_global_id
from tests.conftest import server_settings

GUANGDONG_LEVELS = {"GREEN", "BLUE", "YELLOW", "ORANGE", "RED"}


def run_demo(db_url, tmp_path):
    from aidgraph.core.app.cli import app

    result = CliRunner().invoke(app, ["demo", "--no-serve", "--province", "44", "--households", "2000"],
                                env={"AIDGRAPH_DATABASE_URL": db_url, "AIDGRAPH_STATE_DIR": str(tmp_path)})
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


@pytest.fixture(scope="module")
def demo(db_url, sync_engine, live_server, tmp_path_factory):
    output = run_demo(db_url, tmp_path_factory.mktemp("state"))
    with Session(sync_engine) as s:
        alerts = s.scalars(select(Alert).where(Alert.region_code.startswith("44"), Alert.status == "OPEN",
                                               Alert.month == dt.date.today().strftime("%Y-%m"))).all()
    return output, alerts


def test_demo_month_raises_alerts_at_every_level_and_alerts_returns_them(live_server, demo):
    output, alerts = demo
    assert f"monitoring {dt.date.today():%Y-%m}" in output and "alerts raised" in output
    assert {a.level for a in alerts} == GUANGDONG_LEVELS
    # the demo day disposes of a few alerts: compare the open ones
    every = live_server.data("Alerts", {"regionCode": "44", "status": "OPEN", "first": 1})["alerts"]
    assert every["totalCount"] == len(alerts)
    for level in sorted(GUANGDONG_LEVELS):
        page = live_server.data("Alerts", {"regionCode": "44", "level": level, "status": "OPEN",
                                           "first": 100})["alerts"]
        expected = sorted(a.id for a in alerts if a.level == level)
        assert page["totalCount"] == len(expected) > 0
        nodes = [e["node"] for e in page["edges"]]
        assert {n["level"] for n in nodes} == {level} and all(n["status"] == "OPEN" for n in nodes)
        assert {n["id"] for n in nodes} <= {to_global_id("Alert", i) for i in expected}
        assert all(n["township"]["code"] and n["indicators"] for n in nodes)


def test_demo_alerts_move_through_their_states(live_server, demo, db_url, sync_engine):
    _, alerts = demo
    by_level = {}
    for alert in sorted(alerts, key=lambda a: a.id):
        by_level.setdefault(alert.level, alert)
    plan = {"RED": "ENROL", "ORANGE": "REFER", "YELLOW": "NO_ACTION_NEEDED"}
    final = {"ENROL": "RESOLVED", "REFER": "RESOLVED", "NO_ACTION_NEEDED": "DISMISSED"}
    for level, action in plan.items():
        alert = by_level[level]
        token = ensure_demo_user(sync_engine, server_settings(db_url), username=f"tw_demo_{level.lower()}",
                                 role="township_caseworker", region_code=alert.township_code)

        def dispose(step, note):
            return live_server.data("DisposeAlert", {"input": {
                "alertId": to_global_id("Alert", alert.id), "action": step, "note": note}},
                token=token)["disposeAlert"]

        started = dispose("START_VERIFICATION", "入户核查")
        assert started["errors"] == [] and started["alert"]["status"] == "VERIFYING"
        done = dispose(action, "核查完毕")
        assert done["errors"] == [] and done["alert"]["status"] == final[action]
    with Session(sync_engine) as s:
        assert s.scalar(select(Enrollment.program_key).where(
            Enrollment.household_id == by_level["RED"].household_id)) == "relapse_monitoring"


def test_running_the_demo_again_changes_nothing(db_url, sync_engine, demo, tmp_path):
    with Session(sync_engine) as s:
        records = s.scalar(select(func.count()).select_from(FeedRecord))
        alerts = s.scalar(select(func.count()).select_from(Alert))
    output = run_demo(db_url, tmp_path)
    assert "alerts raised 0, updated 0" in output
    with Session(sync_engine) as s:
        assert s.scalar(select(func.count()).select_from(FeedRecord)) == records
        assert s.scalar(select(func.count()).select_from(Alert)) == alerts
