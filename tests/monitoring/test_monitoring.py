"""The monthly monitoring run (aidgraph.core.monitoring.cycle) over a small seeded province, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from aidgraph.core.access.actor import system_actor
from aidgraph.core.storage.db import session_scope
from aidgraph.core.monitoring.feeds import import_feed
from aidgraph.core.storage.models import AidChainEvent, Alert, AuditLog, Outbox
from aidgraph.core.monitoring.cycle import Bands, MonitoringError, run_month
from tests.monitoring.conftest import seed_world
from tests.monitoring.helpers import category_programs, indicators, monitoring_params, write_feed

TODAY = dt.date(2025, 6, 15)
# Guangdong (illustrative): weights income_drop 35, expenditure_surge 35, household_change 20, hospitalisation 25,
# chronic 15, major 35, college 15, disability 20, unemployment 20; bands GREEN 20, BLUE 30, YELLOW 45,
# ORANGE 60, RED 80.
EXPECTED = {
    0: None,       # chronic 15: below the lowest band
    1: ("GREEN", 20.0, ["new_unemployment"]),
    2: ("BLUE", 35.0, ["major_disease"]),
    3: ("YELLOW", 45.0, ["disability_registration", "hospitalisation"]),
    4: ("ORANGE", 60.0, ["hospitalisation", "major_disease"]),
    5: ("RED", 80.0, ["hospitalisation", "household_change", "income_drop"]),
    6: ("BLUE", 35.0, ["expenditure_surge"]),
    7: ("YELLOW", 50.0, ["hospitalisation"]),  # two members in hospital
}


def member(world, household: int, index: int = 0):
    return world.persons[household * 3 + index]


@pytest.fixture(scope="module")
def seeded(sync_engine, tmp_path_factory):
    world = seed_world(sync_engine, "44", households=10, start=3)
    tmp = tmp_path_factory.mktemp("feeds")
    m = lambda h, i=0: member(world, h, i).id_number  # noqa: E731
    feeds = {
        "disease": [[m(0), "", "CHRONIC", "高血压", "2025-03-04"], [m(2), "", "MAJOR", "白血病", "2025-03-05"],
                    [m(4, 1), "", "MAJOR", "尿毒症", "2025-03-20"]],
        "unemployment": [[m(1), "", "2025-03-10", "REGISTERED"]],
        "hospitalisation": [
            [m(3), "", "2025-03-02", "2025-03-09", "医院", "", "9000", "8000", "6000"],
            [m(3), "", "2025-03-20", "", "医院", "", "1000", "800", "600"],  # second stay: one signal
            [m(4), "", "2025-03-12", "2025-03-30", "医院", "", "50000", "45000", "30000"],
            [m(5, 2), "", "2025-03-01", "2025-03-05", "医院", "", "3000", "2000", "1500"],
            [m(7), "", "2025-03-07", "", "医院", "", "3000", "2000", "1500"],
            [m(7, 1), "", "2025-03-08", "", "医院", "", "3000", "2000", "1500"],
            [m(8), "", "2025-02-07", "", "医院", "", "3000", "2000", "1500"],  # another month
        ],
        "disability": [[m(3, 2), "", "言语", "3", "2025-03-15"]],
        "household_event": [[m(5, 1), "DEATH", "2025-03-18", ""]],
        "income": [
            *[[m(5), p, "WAGE", "3000", "税务"] for p in ("2024-12", "2025-01", "2025-02")],
            [m(5), "2025-03", "WAGE", "500", "税务"],
            *[[m(9), p, "WAGE", "3000", "税务"] for p in ("2024-12", "2025-01", "2025-02")],
            [m(9), "2025-03", "WAGE", "2900", "税务"],  # a small dip: no signal
            [m(6), "2025-03", "EXPENDITURE_MEDICAL", "5000", "医保"],
        ],
    }
    for kind, rows in feeds.items():
        summary = import_feed(sync_engine, kind, write_feed(tmp / f"{kind}.csv", kind, rows), today=TODAY)
        assert summary.rejected == 0, (kind, summary)
    return world


def run(engine, month, params=None, today=TODAY):
    with session_scope(engine) as session:
        return run_month(session, "44", month, params=params or monitoring_params("44"), indicators=indicators(),
                         category_programs=category_programs(), actor=system_actor("monitor"), today=today)


def alerts_by_household(engine, world):
    with Session(engine) as s:
        alerts = s.scalars(select(Alert).where(Alert.household_id.in_(list(world.households)))).all()
    return {a.household_id: a for a in alerts}


def test_monthly_run_raises_alerts_at_every_guangdong_level(sync_engine, seeded):
    summary = run(sync_engine, "2025-03")
    assert summary.alerts_raised == 7 and summary.alerts_updated == 0
    assert summary.hits_by_indicator["hospitalisation"] == 6  # rows of the month (the February stay is not)
    assert "monitoring.bands" in summary.illustrative
    alerts = alerts_by_household(sync_engine, seeded)
    households = list(seeded.households)
    for index, expected in EXPECTED.items():
        alert = alerts.get(households[index])
        if expected is None:
            assert alert is None, index
            continue
        level, score, keys = expected
        assert (alert.level, float(alert.score), alert.indicators) == (level, score, keys), index
        assert alert.status == "OPEN" and alert.month == "2025-03"
        assert alert.township_code == seeded.households[households[index]][:9]
    assert {a.level for a in alerts.values()} == {"GREEN", "BLUE", "YELLOW", "ORANGE", "RED"}
    assert alerts[households[7]].person_id in (member(seeded, 7).id, member(seeded, 7, 1).id)
    ids = [a.id for a in alerts.values()]
    with Session(sync_engine) as s:
        chain = s.scalars(select(AidChainEvent).where(AidChainEvent.ref_type == "alert",
                                                      AidChainEvent.ref_id.in_(ids))).all()
        assert len(chain) == 7 and all(c.kind == "ALERT" and c.program_key == "relapse_monitoring" for c in chain)
        red = alerts[households[5]]
        township = seeded.households[households[5]][:9]
        assert [c.summary for c in chain if c.ref_id == red.id] == [
            f"监测预警 RED (score 80, 2025-03): 住院、家庭成员变化、收入骤减; routed to township {township}"]
        audits = s.scalars(select(AuditLog).where(
            AuditLog.action == "raise_alert", AuditLog.object_id.in_([str(i) for i in ids]))).all()
        assert len(audits) == 7
        assert [(a.detail, a.region_code, a.object_type) for a in audits if a.object_id == str(red.id)] == [
            ({"month": "2025-03", "level": "RED", "score": 80.0,
              "indicators": ["hospitalisation", "household_change", "income_drop"]},
             seeded.households[households[5]], "alert")]
        assert sorted(s.execute(select(Outbox.entity_id, Outbox.version, Outbox.deleted).where(
            Outbox.entity == "ALERT", Outbox.entity_id.in_(ids))).all()) == [(i, 1, False) for i in sorted(ids)]


def test_rerunning_a_month_changes_nothing(sync_engine, seeded):
    before = alerts_by_household(sync_engine, seeded)
    with Session(sync_engine) as s:
        chain_before = s.scalar(select(func.count()).select_from(AidChainEvent))
    summary = run(sync_engine, "2025-03")
    assert (summary.alerts_raised, summary.alerts_updated, summary.alerts_unchanged) == (0, 0, 7)
    after = alerts_by_household(sync_engine, seeded)
    assert {h: (a.id, a.version, a.level) for h, a in after.items()} == \
        {h: (a.id, a.version, a.level) for h, a in before.items()}
    with Session(sync_engine) as s:
        assert s.scalar(select(func.count()).select_from(AidChainEvent)) == chain_before


def test_next_month_updates_the_open_alert_instead_of_a_duplicate(sync_engine, seeded, tmp_path):
    households = list(seeded.households)
    m1 = member(seeded, 1, 2).id_number
    m0 = member(seeded, 0, 1).id_number  # household 0: chronic disease only in March, below every band
    import_feed(sync_engine, "hospitalisation", write_feed(tmp_path / "april.csv", "hospitalisation", [
        [m1, "", "2025-04-03", "", "医院", "", "2000", "1500", "1000"],
        [m0, "", "2025-04-05", "", "医院", "", "2000", "1500", "1000"]]), today=TODAY)
    summary = run(sync_engine, "2025-04")
    assert (summary.alerts_raised, summary.alerts_updated) == (1, 1)  # one new alert and one update in one run
    raised = alerts_by_household(sync_engine, seeded)[households[0]]
    assert (raised.level, float(raised.score), raised.indicators, raised.month, raised.version) == (
        "GREEN", 25.0, ["hospitalisation"], "2025-04", 1)
    alert = alerts_by_household(sync_engine, seeded)[households[1]]
    assert (alert.level, float(alert.score), alert.indicators, alert.month, alert.version) == (
        "GREEN", 25.0, ["hospitalisation", "new_unemployment"], "2025-04", 2)
    with Session(sync_engine) as s:
        assert s.scalar(select(func.count()).select_from(Alert).where(Alert.household_id == households[1])) == 1
        assert s.scalars(select(AidChainEvent.summary).where(
            AidChainEvent.ref_id == alert.id).order_by(AidChainEvent.id.desc())).first() == \
            "监测预警更新 GREEN→GREEN (score 20→25, 2025-04): 住院、新增失业"
        assert s.scalars(select(AuditLog.detail).where(AuditLog.action == "update_alert",
                                                       AuditLog.object_id == str(alert.id))).all() == [
            {"month": "2025-04", "level": "GREEN", "score": 25.0, "indicators": ["hospitalisation", "new_unemployment"]}]
        assert s.scalar(select(func.max(Outbox.version)).where(Outbox.entity == "ALERT",
                                                              Outbox.entity_id == alert.id)) == 2
    # March again after April: the merge keeps the newer month and the union, so nothing changes.
    assert run(sync_engine, "2025-03").alerts_updated == 0


def test_a_closed_alert_is_not_raised_again_for_the_same_month(sync_engine, seeded):
    households = list(seeded.households)
    with session_scope(sync_engine) as s:
        s.execute(update(Alert).where(Alert.household_id == households[3]).values(status="DISMISSED"))
    summary = run(sync_engine, "2025-03")
    assert summary.alerts_raised == 0 and summary.skipped_closed_this_month == 1


def test_bad_months_and_missing_bands_are_clear_errors(sync_engine, seeded):
    with pytest.raises(MonitoringError, match="month 2025-07 is in the future"):
        run(sync_engine, "2025-07")
    with pytest.raises(MonitoringError, match="not a month"):
        run(sync_engine, "2025-3")
    with pytest.raises(MonitoringError, match="province 44 has no warning bands .*monitoring.bands"):
        run(sync_engine, "2025-03", params=monitoring_params("44", drop=("monitoring.bands",)))
    with pytest.raises(MonitoringError, match="monitoring.weights.hospitalisation"):
        run(sync_engine, "2025-03", params=monitoring_params("44", drop=("monitoring.weights.hospitalisation",)))


def test_bands_of_each_province():
    gansu = Bands.from_value(monitoring_params("62").value("monitoring.bands", dt.date(2025, 1, 1)), "62")
    assert [lv for lv, _ in gansu.levels] == ["BLUE", "YELLOW", "ORANGE", "RED"]  # low to high, GS-2024
    assert gansu.classify(np.array([0, 19.9, 20, 35, 50, 70, 500])) == [None, None, "BLUE", "YELLOW", "ORANGE",
                                                                        "RED", "RED"]
    guangdong = Bands.from_value(monitoring_params("44").value("monitoring.bands", dt.date(2025, 1, 1)), "44")
    assert [lv for lv, _ in guangdong.levels] == ["GREEN", "BLUE", "YELLOW", "ORANGE", "RED"]
    fujian = Bands.from_value(monitoring_params("35").value("monitoring.bands", dt.date(2025, 1, 1)), "35")
    assert len(fujian.levels) >= 2
    with pytest.raises(MonitoringError, match="RED .* must need a higher score than ORANGE"):
        Bands.from_value({"ORANGE": 50, "RED": 40}, "x")
    with pytest.raises(MonitoringError, match="'PURPLE' is not a warning level"):
        Bands.from_value({"PURPLE": 50}, "x")
